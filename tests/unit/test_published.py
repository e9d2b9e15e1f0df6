import numpy as np
import pandas as pd
import pytest
from scipy.spatial.transform import Rotation

from ultrabones.errors import InputDataError
from ultrabones.io.calibration import Calibration, write_calibration
from ultrabones.io.png import write_png
from ultrabones.io.published import (
    PUBLISHED_ANGLE_UNIT,
    PUBLISHED_EULER,
    PUBLISHED_LABEL_VALUE,
    TRACKING_COLUMNS,
    open_published_record,
    write_published_as_record,
)
from ultrabones.io.record import open_record
from ultrabones.io.stl import write_stl
from ultrabones.transforms import matrix_from_params

STAMPS = (1000, 1088, 1176)
FIDUCIALS = np.array([[0, 0, 0], [50, 0, 0], [0, 40, 0], [30, 30, 10]], float)


def _params(seed):
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [rng.uniform(-200, 200, (len(STAMPS), 3)), rng.uniform(-90, 90, (3, 3))]
    )


def _published(tmp_path, *, tracking=None):
    """specimen01 with three bones and one fibula record (no image for 1176)."""
    specimen = tmp_path / "specimen01"
    bones = specimen / "CT_bone_segmentations"
    bones.mkdir(parents=True)
    for name in ("fibula", "tibia", "foot"):
        write_stl(bones / f"{name}.stl", np.eye(3), np.array([[0, 1, 2]]))
    record = specimen / "ultrasound_records" / "fibula" / "record01"
    (record / "UltrasoundImages").mkdir(parents=True)
    (record / "Labels").mkdir()
    for ts in STAMPS[:2]:
        write_png(record / "UltrasoundImages" / f"{ts}.png", np.zeros((5, 7), np.uint8))
        write_png(record / "Labels" / f"{ts}_label.png", np.zeros((5, 7), np.uint8))
    if tracking is None:
        tracking = pd.DataFrame(
            np.column_stack([STAMPS, _params(1), _params(2)]), columns=TRACKING_COLUMNS
        ).astype({"timestamp": int})
    tracking.to_csv(record / "tracking.csv", index=False, float_format="%.17g")
    return record


def _calibration(tmp_path):
    path = tmp_path / "calibration.yaml"
    probe_from_image = matrix_from_params([10, -5, 2, 90, 0, 30])
    write_calibration(
        path, Calibration(probe_from_image, (0.1, 0.1), (7, 5), FIDUCIALS)
    )
    return path, probe_from_image


def test_published_constants_are_the_transforms_convention():
    params = _params(3)
    degrees = PUBLISHED_ANGLE_UNIT == "deg"
    R = Rotation.from_euler(PUBLISHED_EULER, params[:, 3:], degrees=degrees)
    np.testing.assert_allclose(matrix_from_params(params)[:, :3, :3], R.as_matrix())


def test_open_published_record_finds_all_bones(tmp_path):
    record = open_published_record(_published(tmp_path))
    assert sorted(record.bone_paths) == ["fibula", "foot", "tibia"]
    assert (record.specimen, record.anatomy) == ("specimen01", "fibula")
    assert record.label_path(1000).is_file()
    assert record.tracking["timestamp"].tolist() == list(STAMPS)


@pytest.mark.parametrize(("optimized", "seed"), [(False, 1), (True, 2)])
def test_record_holds_published_ct_from_probe(tmp_path, optimized, seed):
    calibration, probe_from_image = _calibration(tmp_path)
    published = open_published_record(_published(tmp_path))
    write_published_as_record(
        published, tmp_path / "rec", calibration=calibration, optimized=optimized
    )
    record = open_record(tmp_path / "rec")
    assert sorted(record.bone_paths) == ["fibula", "foot", "tibia"]
    assert list(record.poses["status"]) == ["ok", "ok", "no_image"]
    np.testing.assert_allclose(
        record.ct_from_probe(), matrix_from_params(_params(seed)), atol=1e-9
    )
    np.testing.assert_allclose(
        record.calibration.probe_from_image, probe_from_image, atol=1e-6
    )


def test_record_calibration_is_used_by_default(tmp_path):
    root = _published(tmp_path)
    calibration, _ = _calibration(tmp_path)
    (root / "calibration.yaml").write_bytes(calibration.read_bytes())
    write_published_as_record(open_published_record(root), tmp_path / "rec")
    assert open_record(tmp_path / "rec").calibration.pixel_spacing_mm == (0.1, 0.1)


def test_missing_calibration_raises_naming_it(tmp_path):
    published = open_published_record(_published(tmp_path))
    with pytest.raises(InputDataError, match="record01/calibration.yaml: cannot read"):
        write_published_as_record(published, tmp_path / "rec")


def test_read_label_is_bone_mask(tmp_path):
    root = _published(tmp_path)
    label = np.zeros((5, 7), np.uint8)
    label[2, 3] = PUBLISHED_LABEL_VALUE
    write_png(root / "Labels" / "1088_label.png", label)
    record = open_published_record(root)
    np.testing.assert_array_equal(record.read_label(1088), label > 0)
    label[0, 0] = 7
    write_png(root / "Labels" / "1088_label.png", label)
    with pytest.raises(InputDataError, match="1088_label.png: label values .* got 7"):
        record.read_label(1088)


def test_non_numeric_pose_is_invalid_pose(tmp_path):
    table = pd.DataFrame(
        np.column_stack([STAMPS, _params(1), _params(2)]), columns=TRACKING_COLUMNS
    ).astype({"timestamp": int, "euler_y": object})
    table.loc[1, "euler_y"] = "n/a"
    calibration, _ = _calibration(tmp_path)
    published = open_published_record(_published(tmp_path, tracking=table))
    write_published_as_record(published, tmp_path / "rec", calibration=calibration)
    record = open_record(tmp_path / "rec")
    assert list(record.poses["status"]) == ["ok", "invalid_pose", "no_image"]


def test_missing_column_raises_naming_file(tmp_path):
    table = pd.DataFrame({"timestamp": STAMPS, "x": 0.0})
    with pytest.raises(InputDataError, match="tracking.csv: lacks column.*euler_x"):
        open_published_record(_published(tmp_path, tracking=table))


def test_non_integer_timestamp_raises_naming_line(tmp_path):
    table = pd.DataFrame(
        np.column_stack([STAMPS, _params(1), _params(2)]), columns=TRACKING_COLUMNS
    )
    table.loc[2, "timestamp"] = 1176.5
    with pytest.raises(InputDataError, match="tracking.csv line 4: timestamp"):
        open_published_record(_published(tmp_path, tracking=table))


def test_folder_outside_layout_raises(tmp_path):
    with pytest.raises(InputDataError, match="not a record folder"):
        open_published_record(tmp_path)


def test_specimen_without_bones_raises(tmp_path):
    record = _published(tmp_path)
    for stl in (tmp_path / "specimen01" / "CT_bone_segmentations").glob("*.stl"):
        stl.unlink()
    with pytest.raises(InputDataError, match="CT_bone_segmentations: no bone models"):
        open_published_record(record)
