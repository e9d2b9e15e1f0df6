import argparse
import gzip
import zlib

import numpy as np
import pytest

from ultrabones.cli import import_sequence
from ultrabones.errors import InputDataError
from ultrabones.io.calibration import Calibration, read_calibration, write_calibration
from ultrabones.io.markers import write_marker_ini
from ultrabones.io.png import read_png
from ultrabones.io.record import open_record, read_poses_table
from ultrabones.io.sequence import (
    orient_frames,
    parse_matrix,
    parse_metaimage_header,
    read_sequence,
    sequence_poses,
)
from ultrabones.io.stl import write_stl
from ultrabones.io.tracker import read_tracker_stream
from ultrabones.transforms import (
    invert_rigid,
    matrix_from_params,
    rotation_angle_deg,
    split_pixel_affine,
)

N, ROWS, COLS = 4, 5, 7
NAMES = ("ProbeToTracker", "ReferenceToTracker")
FIDUCIALS = np.array([[0, 0, 0], [50, 0, 0], [0, 40, 0], [30, 30, 10]], float)


def _frames(n=N):
    return np.random.default_rng(1234).integers(0, 256, (n, ROWS, COLS), np.uint8)


def _poses(n=N, seed=1):
    rng = np.random.default_rng(seed)
    params = np.column_stack(
        [rng.uniform(-300, 300, (n, 3)), rng.uniform(-90, 90, (n, 3))]
    )
    return matrix_from_params(params)


def _matrix_text(T):
    return " ".join(f"{v:.17g}" for v in np.ravel(T))


def _fields(n=N, *, status=None, drop=()):
    """Per-frame (key, value) pairs as PLUS writes them; ``drop`` omits keys."""
    probe, reference = _poses(n, 1), _poses(n, 2)
    status = status or {}
    pairs = []
    for i in range(n):
        for name, T in zip(NAMES, (probe[i], reference[i]), strict=True):
            pairs.append((f"{name}Transform", i, _matrix_text(T)))
            pairs.append((f"{name}TransformStatus", i, status.get((name, i), "OK")))
        pairs.append(("Timestamp", i, f"{100.0 + 0.05 * i:.6f}"))
        pairs.append(("ImageStatus", i, status.get(("Image", i), "OK")))
    return [(f"Seq_Frame{i:04d}_{k}", v) for k, i, v in pairs if (k, i) not in drop]


def _write_mha(path, frames, fields, *, orientation="MF", compressed=False, **kw):
    n, rows, cols = frames.shape
    data = frames.tobytes()
    data = zlib.compress(data) if compressed else data
    data = kw.get("data", data)
    datafile = kw.get("datafile")
    head = [
        "ObjectType = Image",
        "NDims = 3",
        "BinaryData = True",
        "BinaryDataByteOrderMSB = False",
        f"CompressedData = {compressed}",
        f"DimSize = {cols} {rows} {kw.get('n', n)}",
        f"ElementType = {kw.get('element_type', 'MET_UCHAR')}",
        *(f"{k} = {v}" for k, v in fields),
        f"UltrasoundImageOrientation = {orientation}",
        "UltrasoundImageType = BRIGHTNESS",
        f"ElementDataFile = {datafile.name if datafile else 'LOCAL'}",
    ]
    text = ("\n".join(head) + "\n").encode()
    if datafile:
        datafile.write_bytes(data)
        path.write_bytes(text)
    else:
        path.write_bytes(text + data)
    return path


def _write_nrrd(path, frames, fields, *, orientation="MF", gz=False):
    n, rows, cols = frames.shape
    head = [
        "NRRD0004",
        "type: unsigned char",
        "dimension: 4",
        f"sizes: {cols} {rows} 1 {n}",
        "kinds: domain domain domain list",
        f"encoding: {'gzip' if gz else 'raw'}",
        f"UltrasoundImageOrientation:={orientation}",
        *(f"{k}:={v}" for k, v in fields),
    ]
    data = gzip.compress(frames.tobytes()) if gz else frames.tobytes()
    path.write_bytes(("\n".join(head) + "\n\n").encode() + data)
    return path


@pytest.mark.parametrize(
    ("orientation", "expected"),
    [
        ("MF", lambda f: f),
        ("MFA", lambda f: f),
        ("MN", lambda f: f[..., ::-1, :]),
        ("UF", lambda f: f[..., :, ::-1]),
        ("UN", lambda f: f[..., ::-1, ::-1]),
        ("UND", lambda f: f[..., ::-1, ::-1]),
    ],
)
def test_orient_frames_maps_plus_orientations_to_mf(orientation, expected):
    frames = _frames()
    np.testing.assert_array_equal(orient_frames(frames, orientation), expected(frames))


def test_orient_frames_rejects_rf_orientation():
    with pytest.raises(ValueError, match="orientation must be"):
        orient_frames(_frames(), "FM")


def test_parse_metaimage_header_stops_at_element_data_file():
    text = "NDims = 3\nDimSize = 7 5 4\nElementDataFile = LOCAL\nNot = header\n"
    assert parse_metaimage_header(text) == {
        "NDims": "3",
        "DimSize": "7 5 4",
        "ElementDataFile": "LOCAL",
    }


def test_parse_matrix_is_row_major():
    T = parse_matrix(" ".join(str(v) for v in range(16)))
    assert T[0, 3] == 3 and T[3, 0] == 12


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize(("orientation", "flip"), [("MF", (1, 1)), ("UN", (-1, -1))])
def test_read_mha_frames_after_flip(tmp_path, orientation, flip, compressed):
    frames = _frames()
    path = _write_mha(
        tmp_path / "s.igs.mha",
        frames,
        _fields(),
        orientation=orientation,
        compressed=compressed,
    )
    seq = read_sequence(path, transforms=NAMES)
    np.testing.assert_array_equal(seq.images, frames[:, :: flip[0], :: flip[1]])
    np.testing.assert_array_equal(seq.timestamps_ms, 100000 + 50 * np.arange(N))
    np.testing.assert_allclose(seq.transforms["ProbeToTracker"], _poses(N, 1))
    assert seq.image_ok.all()


def test_read_mhd_with_raw_file(tmp_path):
    frames = _frames()
    path = _write_mha(
        tmp_path / "s.mhd", frames, _fields(), datafile=tmp_path / "s.raw"
    )
    np.testing.assert_array_equal(read_sequence(path, transforms=NAMES).images, frames)


@pytest.mark.parametrize("gz", [False, True])
def test_read_seq_nrrd(tmp_path, gz):
    frames = _frames()
    path = _write_nrrd(
        tmp_path / "s.seq.nrrd", frames, _fields(), orientation="MN", gz=gz
    )
    seq = read_sequence(path, transforms=NAMES)
    np.testing.assert_array_equal(seq.images, frames[:, ::-1, :])
    np.testing.assert_allclose(seq.transforms["ReferenceToTracker"], _poses(N, 2))
    assert seq.orientation == "MN"


def test_invalid_transform_status_is_invalid_pose(tmp_path):
    fields = _fields(
        status={("ReferenceToTracker", 2): "INVALID", ("Image", 3): "INVALID"}
    )
    seq = read_sequence(
        _write_mha(tmp_path / "s.mha", _frames(), fields), transforms=NAMES
    )
    assert np.isnan(seq.transforms["ReferenceToTracker"][2]).all()
    pose, status = sequence_poses(
        seq, probe=NAMES[0], reference=NAMES[1], ct_from_reference=np.eye(4)
    )
    assert list(status) == ["ok", "ok", "invalid_pose", "no_image"]
    assert np.isnan(pose[2]).all() and np.isfinite(pose[[0, 1, 3]]).all()


@pytest.mark.parametrize(
    ("kwargs", "fields", "match"),
    [
        ({"orientation": "XY"}, _fields(), "UltrasoundImageOrientation 'XY'"),
        ({"element_type": "MET_SHORT"}, _fields(), "ElementType MET_SHORT"),
        (
            {"n": N - 1, "data": _frames()[:3].tobytes()},
            _fields(),
            "holds 3 frames .* frame 3",
        ),
        ({"n": N + 1}, _fields(N + 1), "holds 140 bytes but DimSize 7 5 5 needs 175"),
        ({"data": b"\0" * 10}, _fields(), "truncated file"),
        (
            {"compressed": True, "data": zlib.compress(_frames().tobytes())[:50]},
            _fields(),
            "truncated",
        ),
        (
            {},
            _fields(
                drop=[(k, 1) for k in ("Timestamp", "ImageStatus")]
                + [(f"{n}Transform{s}", 1) for n in NAMES for s in ("", "Status")]
            ),
            "frame 1 has no Seq_Frame0001_",
        ),
        ({}, _fields(drop=[("Timestamp", 2)]), "frame 2 lacks Seq_Frame0002_Timestamp"),
        (
            {},
            _fields(drop=[("ProbeToTrackerTransform", 3)]),
            "Seq_Frame0003_ProbeToTrackerTransform",
        ),
    ],
)
def test_bad_sequence_raises_naming_file_and_field(tmp_path, kwargs, fields, match):
    path = _write_mha(tmp_path / "bad.mha", _frames(), fields, **kwargs)
    with pytest.raises(InputDataError, match=match) as err:
        read_sequence(path, transforms=NAMES)
    assert "bad.mha" in str(err.value)


def test_non_4x4_transform_raises_naming_frame(tmp_path):
    fields = [
        (k, "1 0 0 0 1 0 0 0 1")
        if k == "Seq_Frame0002_ProbeToTrackerTransform"
        else (k, v)
        for k, v in _fields()
    ]
    path = _write_mha(tmp_path / "bad.mha", _frames(), fields)
    with pytest.raises(
        InputDataError, match="Seq_Frame0002_ProbeToTrackerTransform.*got 9"
    ):
        read_sequence(path, transforms=NAMES)


def test_unknown_transform_name_lists_found(tmp_path):
    path = _write_mha(tmp_path / "s.mha", _frames(), _fields())
    with pytest.raises(
        InputDataError, match="no transform StylusToTracker.*ProbeToTracker"
    ):
        read_sequence(path, transforms=("StylusToTracker",))


def test_truncated_nrrd_raises(tmp_path):
    path = _write_nrrd(tmp_path / "s.seq.nrrd", _frames(), _fields())
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(InputDataError, match="s.seq.nrrd: cannot read NRRD"):
        read_sequence(path, transforms=NAMES)


def _calibration_yaml(path):
    cal = Calibration(
        matrix_from_params([10, -5, 2, 90, 0, 30]), (0.1, 0.12), (COLS, ROWS), FIDUCIALS
    )
    write_calibration(path, cal)
    return path


def _cli(argv):
    """Run the subcommand alone (as ``ultrabones`` would), raising its errors."""
    sub = argparse.ArgumentParser().add_subparsers()
    import_sequence.add_parser(sub)
    args = sub.choices["import-sequence"].parse_args(argv[1:])
    return args.run(args)


def _run_import(tmp_path, seq_path, *extra):
    out = tmp_path / "sweep"
    argv = ["import-sequence", str(seq_path), "--probe", "ProbeToTracker"]
    argv += ["--reference", "ReferenceToTrackerTransform", "--out", str(out), *extra]
    assert _cli(argv) == 0
    return out


def test_import_pose_is_reference_from_probe(tmp_path):
    fields = _fields(status={("ProbeToTracker", 1): "INVALID"})
    seq_path = _write_mha(tmp_path / "s.seq.mha", _frames(), fields, orientation="UN")
    models = tmp_path / "models"
    models.mkdir()
    write_stl(models / "Tibia.stl", np.eye(3), np.array([[0, 1, 2]]))
    out = _run_import(
        tmp_path,
        seq_path,
        "--calibration",
        str(_calibration_yaml(tmp_path / "c.yaml")),
        "--models",
        str(models),
    )
    record = open_record(out)
    expected = invert_rigid(_poses(N, 2)) @ _poses(N, 1)
    got = record.ct_from_probe()
    ok = [0, 2, 3]
    np.testing.assert_allclose(got[ok, :3, 3], expected[ok, :3, 3], atol=1e-3)
    angle = rotation_angle_deg(invert_rigid(got[ok]) @ expected[ok])
    assert np.all(np.radians(angle) < 1e-5)
    assert list(record.poses["status"]) == ["ok", "invalid_pose", "ok", "ok"]
    np.testing.assert_array_equal(record.poses["timestamp"], 100000 + 50 * np.arange(N))
    png = read_png(out / "UltrasoundImages" / "100100.png")
    np.testing.assert_array_equal(png, _frames()[2, ::-1, ::-1])


def test_import_writes_tracker_streams(tmp_path):
    fields = _fields(status={("ReferenceToTracker", 0): "INVALID"})
    out = _run_import(tmp_path, _write_mha(tmp_path / "s.mha", _frames(), fields))
    streams = read_tracker_stream(out / "tracker.csv")
    assert sorted(streams) == ["probe", "specimen"]
    np.testing.assert_array_equal(
        streams["specimen"].visible, [False, True, True, True]
    )
    np.testing.assert_allclose(
        streams["probe"].tracker_from_marker, _poses(N, 1), atol=1e-6
    )
    assert not (out / "sweep_initial.csv").exists()


def _plus_config(path, probe_from_pixel):
    matrix = " ".join(f"{v:.17g}" for v in np.ravel(probe_from_pixel))
    path.write_text(
        '<PlusConfiguration version="2.1"><CoordinateDefinitions>'
        f'<Transform From="Stylus" To="StylusTip" Matrix="{_matrix_text(np.eye(4))}"'
        "/>"
        f'<Transform From="Image" To="Probe" Matrix="{matrix}" Error="0.5"/>'
        "</CoordinateDefinitions></PlusConfiguration>"
    )
    return path


def _plus_image_to_probe(spacing=(0.1, 0.12)):
    A = matrix_from_params([10, -5, 2, 90, 20, 30])
    A[:3, 0] *= spacing[0]
    A[:3, 1] *= spacing[1]
    return A


def test_split_pixel_affine_keeps_pixel_positions():
    A = _plus_image_to_probe()
    probe_from_image, spacing = split_pixel_affine(A)
    assert spacing == pytest.approx((0.1, 0.12))
    rc = np.array([[0, 0], [4, 6], [2, 3]])  # (row, col)
    plus = (A @ np.c_[rc[:, 1], rc[:, 0], np.zeros(3), np.ones(3)].T).T[:, :3]
    ours_mm = np.c_[
        (rc[:, 1] + 0.5) * 0.1, (rc[:, 0] + 0.5) * 0.12, np.zeros(3), np.ones(3)
    ]
    np.testing.assert_allclose(
        (probe_from_image @ ours_mm.T).T[:, :3], plus, atol=1e-12
    )


def test_split_pixel_affine_rejects_shear():
    A = _plus_image_to_probe()
    A[:3, 1] += 0.01 * A[:3, 0]
    with pytest.raises(ValueError, match="perpendicular"):
        split_pixel_affine(A)


def test_import_with_plus_xml_calibration(tmp_path):
    seq_path = _write_mha(tmp_path / "s.mha", _frames(), _fields())
    xml = _plus_config(tmp_path / "PlusDeviceSet.xml", _plus_image_to_probe())
    write_marker_ini(tmp_path / "probe.ini", 1000, FIDUCIALS)
    out = _run_import(
        tmp_path,
        seq_path,
        "--calibration",
        str(xml),
        "--probe-marker",
        str(tmp_path / "probe.ini"),
    )
    cal = read_calibration(out / "calibration.yaml")
    assert cal.pixel_spacing_mm == pytest.approx((0.1, 0.12))
    assert cal.image_size_px == (COLS, ROWS)
    np.testing.assert_allclose(
        cal.probe_from_image, split_pixel_affine(_plus_image_to_probe())[0], atol=1e-6
    )
    poses = read_poses_table(out / "sweep_initial.csv")
    np.testing.assert_allclose(poses["space_factor"], 0.1)
    assert len(poses) == N


def test_plus_xml_without_probe_marker_raises(tmp_path):
    seq_path = _write_mha(tmp_path / "s.mha", _frames(), _fields())
    xml = _plus_config(tmp_path / "c.xml", _plus_image_to_probe())
    argv = ["import-sequence", str(seq_path), "--probe", "ProbeToTracker"]
    argv += ["--reference", "ReferenceToTracker", "--out", str(tmp_path / "o")]
    with pytest.raises(InputDataError, match="c.xml: .* give --probe-marker"):
        _cli([*argv, "--calibration", str(xml)])


def test_plus_xml_without_image_to_probe_raises(tmp_path):
    from ultrabones.io.sequence import read_plus_calibration

    path = tmp_path / "c.xml"
    path.write_text("<PlusConfiguration><CoordinateDefinitions/></PlusConfiguration>")
    with pytest.raises(InputDataError, match='c.xml: no <Transform From="Image"'):
        read_plus_calibration(
            path, image_size_px=(7, 5), probe_marker_fiducials_mm=FIDUCIALS
        )


def test_calibration_of_other_image_size_raises(tmp_path):
    seq_path = _write_nrrd(tmp_path / "s.seq.nrrd", _frames()[:, :, :6], _fields())
    out = tmp_path / "o"
    argv = ["import-sequence", str(seq_path), "--probe", "ProbeToTracker"]
    argv += ["--reference", "ReferenceToTracker", "--out", str(out)]
    argv += ["--calibration", str(_calibration_yaml(tmp_path / "c.yaml"))]
    with pytest.raises(InputDataError, match=r"c.yaml: image_size_px \[7, 5\] differs"):
        _cli(argv)


def test_non_rigid_ok_transform_is_invalid_pose(tmp_path, caplog):
    scaled = _matrix_text(np.diag([2.0, 1.0, 1.0, 1.0]))
    key = "Seq_Frame0001_ProbeToTrackerTransform"
    fields = [(k, scaled if k == key else v) for k, v in _fields()]
    seq = read_sequence(
        _write_mha(tmp_path / "s.mha", _frames(), fields), transforms=NAMES
    )
    assert np.isnan(seq.transforms["ProbeToTracker"][1]).all()
    assert np.isfinite(seq.transforms["ProbeToTracker"][[0, 2, 3]]).all()
    assert f"{key} rotation must be orthonormal" in caplog.text


def test_repeated_timestamp_raises_naming_frame(tmp_path):
    key = "Seq_Frame0002_Timestamp"
    fields = [(k, "100.0504" if k == key else v) for k, v in _fields()]
    path = _write_mha(tmp_path / "s.mha", _frames(), fields)
    with pytest.raises(
        InputDataError, match=f"{key} = 100.0504 s is not after frame 1"
    ):
        read_sequence(path, transforms=NAMES)


def test_non_numeric_transform_raises_naming_frame(tmp_path):
    key = "Seq_Frame0001_ReferenceToTrackerTransform"
    fields = [
        (k, "1 0 0 0 0 1 0 0 0 0 1 x 0 0 0 1" if k == key else v) for k, v in _fields()
    ]
    path = _write_mha(tmp_path / "bad.mha", _frames(), fields)
    with pytest.raises(InputDataError, match=f"bad.mha: {key}: .*16 numbers"):
        read_sequence(path, transforms=NAMES)
