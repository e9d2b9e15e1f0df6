import logging

import numpy as np
import pytest

from ultrabones.errors import InputDataError
from ultrabones.io.record import read_poses_table

HEADER = "timestamp,space_factor,x,y,z,euler_x,euler_y,euler_z\n"
ROW = "{},0.1,1,2,3,4,5,6\n"


def _table(tmp_path, *rows, header=HEADER):
    path = tmp_path / "sweep_initial.csv"
    path.write_text(header + "".join(rows))
    return path


@pytest.mark.parametrize(
    "row",
    ["200,0.1,1,2\n", "200\n", "200,0.1,1,abc,3,4,5,6\n", "200,0;1,1,2,3,4,5,6\n"],
)
def test_malformed_row_is_invalid_pose_and_logged(tmp_path, caplog, row):
    path = _table(tmp_path, ROW.format(100), row, ROW.format(300))
    with caplog.at_level(logging.WARNING):
        poses = read_poses_table(path)
    assert list(poses["status"]) == ["ok", "invalid_pose", "ok"]
    assert "sweep_initial.csv line 3" in caplog.text


@pytest.mark.parametrize("first", [True, False])
def test_row_with_extra_field_raises_naming_line(tmp_path, first):
    extra = "200,0.1,1,2,3,4,5,6,7\n"
    rows = (extra, ROW.format(300)) if first else (ROW.format(100), extra)
    line = 2 if first else 3
    with pytest.raises(
        InputDataError, match=f"sweep_initial.csv line {line}: 9 fields"
    ):
        read_poses_table(_table(tmp_path, *rows))


def test_blank_lines_keep_line_numbers(tmp_path, caplog):
    path = _table(tmp_path, ROW.format(100), "\n", "300,0.1,1,x,3,4,5,6\n")
    with caplog.at_level(logging.WARNING):
        poses = read_poses_table(path)
    assert list(poses["timestamp"]) == [100, 300]
    assert "line 4: y='x'" in caplog.text


def test_unknown_status_raises_naming_line(tmp_path):
    header = HEADER.strip() + ",status,image\n"
    rows = ("100,0.1,1,2,3,4,5,6,ok,\n", "200,0.1,1,2,3,4,5,6,okay,200.png\n")
    with pytest.raises(InputDataError, match="line 3: status 'okay' is not a reason"):
        read_poses_table(_table(tmp_path, *rows, header=header))


def test_non_integer_timestamp_after_blank_line_names_its_line(tmp_path):
    path = _table(tmp_path, ROW.format(100), "\n", ROW.format("2O0"))
    with pytest.raises(InputDataError, match="line 4: timestamp must be an integer"):
        read_poses_table(path)


def test_well_formed_table_is_unchanged(tmp_path):
    poses = read_poses_table(_table(tmp_path, ROW.format(100), ROW.format(200)))
    assert list(poses["status"]) == ["ok", "ok"]
    np.testing.assert_allclose(poses[["x", "euler_z"]].to_numpy(), [[1, 6], [1, 6]])
    assert poses["timestamp"].dtype == np.int64
