import numpy as np
import pandas as pd
import pytest

from ultrabones.errors import InputDataError
from ultrabones.io.calibration import read_calibration, write_calibration
from ultrabones.io.markers import read_marker_ini, write_marker_ini
from ultrabones.io.png import read_png, write_png
from ultrabones.io.record import open_record, read_poses_table
from ultrabones.io.stl import read_stl, write_stl
from ultrabones.io.tracker import (
    MarkerStream,
    read_tracker_stream,
    write_tracker_stream,
)
from ultrabones.transforms import matrix_from_params

POSES = "timestamp,space_factor,x,y,z,euler_x,euler_y,euler_z\n"


def test_stl_roundtrip(tmp_path):
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    f = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]])
    write_stl(tmp_path / "t.stl", v, f)
    v2, f2 = read_stl(tmp_path / "t.stl")
    np.testing.assert_allclose(
        np.sort(v2[f2].reshape(-1, 3), axis=0), np.sort(v[f].reshape(-1, 3), axis=0)
    )


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "shorter"),
        (b"x" * 80 + np.uint32(0).tobytes(), "no triangles"),
        (b"x" * 80 + np.uint32(5).tobytes() + b"\0" * 10, "truncated"),
        (b"x" * 80 + np.uint32(2).tobytes() + b"\0" * 100, "zero area"),
    ],
)
def test_stl_errors_name_file(tmp_path, content, match):
    p = tmp_path / "bad.stl"
    p.write_bytes(content)
    with pytest.raises(InputDataError, match=f"bad.stl.*{match}"):
        read_stl(p)


def test_png_roundtrip_and_corrupt(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (7, 9), dtype=np.uint8)
    write_png(tmp_path / "a.png", img)
    np.testing.assert_array_equal(read_png(tmp_path / "a.png"), img)
    (tmp_path / "b.png").write_bytes(b"not a png")
    with pytest.raises(InputDataError, match="b.png.*decode"):
        read_png(tmp_path / "b.png")


def test_float_image_is_refused_not_clipped(tmp_path):
    from PIL import Image

    arr = np.linspace(0, 900, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(arr).save(tmp_path / "w.tiff")
    with pytest.raises(InputDataError, match="w.tiff.*32-bit float"):
        read_png(tmp_path / "w.tiff")


def test_png_16_bit_file_is_refused(tmp_path):
    from PIL import Image

    arr = np.full((8, 8), 60000, dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "deep.png")
    with pytest.raises(InputDataError, match="deep.png.*16-bit"):
        read_png(tmp_path / "deep.png")


def test_png_decompression_bomb_is_refused_before_decoding(tmp_path):
    import struct
    import zlib

    # A valid PNG header announcing 20000 x 20000 pixels (the data never decodes).
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)

    def chunk_bytes(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk_bytes(b"IHDR", ihdr)
        + chunk_bytes(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk_bytes(b"IEND", b"")
    )
    (tmp_path / "bomb.png").write_bytes(png)
    with pytest.raises(InputDataError, match="bomb.png.*exceeds"):
        read_png(tmp_path / "bomb.png")


def test_poses_duplicate_timestamp_names_line(tmp_path):
    p = tmp_path / "sweep_initial.csv"
    p.write_text(POSES + "1,0.05,0,0,0,0,0,0\n1,0.05,0,0,0,0,0,0\n")
    with pytest.raises(InputDataError, match="line 3: duplicate timestamp"):
        read_poses_table(p)


def test_poses_non_increasing_timestamp(tmp_path):
    p = tmp_path / "sweep_initial.csv"
    p.write_text(POSES + "5,0.05,0,0,0,0,0,0\n3,0.05,0,0,0,0,0,0\n")
    with pytest.raises(InputDataError, match="line 3: non-increasing"):
        read_poses_table(p)


def test_poses_nan_row_becomes_invalid_pose(tmp_path):
    p = tmp_path / "sweep_initial.csv"
    p.write_text(POSES + "1,0.05,0,0,0,0,0,0\n2,0.05,nan,0,0,0,0,0\n")
    df = read_poses_table(p)
    assert df["status"].tolist() == ["ok", "invalid_pose"]


def test_poses_huge_timestamp_is_named(tmp_path):
    p = tmp_path / "sweep_initial.csv"
    p.write_text(POSES + "1,0.05,0,0,0,0,0,0\n1e19,0.05,0,0,0,0,0,0\n")
    with pytest.raises(InputDataError, match="line 3: timestamp must be an integer"):
        read_poses_table(p)


def _record_with_spacing(tmp_path, real_sample, factors):
    import shutil

    rec = tmp_path / "rec"
    rec.mkdir()
    shutil.copy(real_sample / "calibration.yaml", rec)
    (rec / "CT_models").symlink_to(real_sample / "CT_models")
    rows = "".join(f"{i + 1},{f},0,0,0,0,0,0\n" for i, f in enumerate(factors))
    (rec / "sweep_initial.csv").write_text(POSES + rows)
    return rec


def test_row_with_another_pixel_spacing_is_marked(tmp_path, real_sample):
    s = read_calibration(real_sample / "calibration.yaml").pixel_spacing_mm[0]
    rec = _record_with_spacing(tmp_path, real_sample, [s, 2 * s, s])
    status = open_record(rec).poses["status"].tolist()
    assert status == ["no_image", "invalid_pose", "no_image"]


def test_record_with_another_pixel_spacing_is_named(tmp_path, real_sample):
    s = read_calibration(real_sample / "calibration.yaml").pixel_spacing_mm[0]
    rec = _record_with_spacing(tmp_path, real_sample, [2 * s, 2 * s])
    with pytest.raises(InputDataError, match="sweep_initial.csv line 2: space_factor"):
        open_record(rec)


def test_poses_missing_column(tmp_path):
    p = tmp_path / "sweep_initial.csv"
    p.write_text("timestamp,x\n1,2\n")
    with pytest.raises(InputDataError, match="lacks column"):
        read_poses_table(p)


def test_calibration_roundtrip_and_missing_key(tmp_path, real_sample):
    cal = read_calibration(real_sample / "calibration.yaml")
    write_calibration(tmp_path / "c.yaml", cal)
    again = read_calibration(tmp_path / "c.yaml")
    np.testing.assert_allclose(again.probe_from_image, cal.probe_from_image, atol=1e-7)
    text = (
        (real_sample / "calibration.yaml")
        .read_text()
        .replace("pixel_spacing_mm", "spacing")
    )
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(InputDataError, match="bad.yaml.*pixel_spacing_mm"):
        read_calibration(tmp_path / "bad.yaml")


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        ("pixel_spacing_mm:\n- ", "pixel_spacing_mm:\n- .nan\n- ", "finite positive"),
        ("pixel_spacing_mm:\n- ", "pixel_spacing_mm:\n- .inf\n- ", "finite positive"),
    ],
)
def test_calibration_rejects_non_finite_spacing(tmp_path, real_sample, old, new, match):
    cal = read_calibration(real_sample / "calibration.yaml")
    write_calibration(tmp_path / "c.yaml", cal)
    text = (tmp_path / "c.yaml").read_text()
    assert old in text
    # Replace the first spacing value and drop the original one after it.
    lines = text.replace(old, new, 1).splitlines()
    i = lines.index(new.splitlines()[1])
    del lines[i + 1]
    (tmp_path / "bad.yaml").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputDataError, match=f"bad.yaml.*{match}"):
        read_calibration(tmp_path / "bad.yaml")


@pytest.mark.parametrize(
    "fiducials",
    [[[1.0, 2.0, 3.0]], [[0.0, 0, 0], [10, 0, 0], [20, 0, 0]]],
    ids=["one", "collinear"],
)
def test_calibration_needs_a_rigid_probe_marker(tmp_path, real_sample, fiducials):
    import dataclasses

    cal = read_calibration(real_sample / "calibration.yaml")
    bad = dataclasses.replace(cal, probe_marker_fiducials_mm=np.asarray(fiducials))
    write_calibration(tmp_path / "bad.yaml", bad)
    with pytest.raises(InputDataError, match="bad.yaml.*at least 3 fiducials"):
        read_calibration(tmp_path / "bad.yaml")


def test_real_record_marks_rows_without_images(real_sample):
    rec = open_record(real_sample)
    counts = rec.poses["status"].value_counts()
    assert counts["ok"] == 222 and counts["no_image"] == 888
    assert rec.calibration.shape == (811, 950)


def test_marker_ini_roundtrip(tmp_path):
    fid = np.array([[0, 0, 0], [50, 0, 0], [0, 40, 0], [20, 20, 10.5]])
    write_marker_ini(tmp_path / "m.ini", 1000, fid)
    mid, got = read_marker_ini(tmp_path / "m.ini")
    assert mid == 1000
    np.testing.assert_allclose(got, fid)
    (tmp_path / "bad.ini").write_text("[geometry]\ncount=4\nid=1\n")
    with pytest.raises(InputDataError, match="bad.ini"):
        read_marker_ini(tmp_path / "bad.ini")


def test_tracker_roundtrip_and_errors(tmp_path):
    t = np.array([0, 17, 33])
    T = matrix_from_params([[0, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6], [2, 2, 2, 2, 2, 2]])
    vis = np.array([True, False, True])
    write_tracker_stream(tmp_path / "tr.csv", {"probe": MarkerStream(t, T, vis)})
    s = read_tracker_stream(tmp_path / "tr.csv")["probe"]
    np.testing.assert_array_equal(s.visible, vis)
    np.testing.assert_allclose(s.tracker_from_marker[vis], T[vis], atol=1e-8)
    df = pd.read_csv(tmp_path / "tr.csv")
    df.loc[1, "marker"] = np.nan
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(
        InputDataError, match="bad.csv line 3: tracking row without a marker"
    ):
        read_tracker_stream(tmp_path / "bad.csv")


@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (1, 5), (811, 950)])
def test_png_encoder_decodes_identically_with_pillow(tmp_path, shape):
    img = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    write_png(tmp_path / "x.png", img)
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "x.png")), img)
