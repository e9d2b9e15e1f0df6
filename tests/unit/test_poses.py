import os

import numpy as np
import pandas as pd
import pytest

from ultrabones.cli import main
from ultrabones.io.calibration import Calibration, write_calibration
from ultrabones.io.png import write_png
from ultrabones.io.record import open_record
from ultrabones.io.registration import write_registration
from ultrabones.io.tracker import MarkerStream, write_tracker_stream
from ultrabones.poses import ct_from_probe_frames, poses_table, stream_at
from ultrabones.transforms import invert_rigid, matrix_from_params
from ultrabones.vocabulary import Reason

CT_FROM_SPECIMEN = matrix_from_params([10.0, 20.0, 30.0, 5.0, -10.0, 15.0])
STAMPS = np.arange(0, 2001, 17)

#: A rigid probe marker (the calibration reader refuses fewer than three spheres).
MARKER_MM = np.array([[0.0, 0, 50], [30, 0, 50], [0, 30, 50]])


def _probe_stream(visible=None):
    # Constant-velocity translation and rotation about z: exact under slerp + lerp.
    t = STAMPS.astype(float)
    params = np.c_[0.05 * t, -0.02 * t, 100 + 0 * t, 0 * t, 0 * t, 0.01 * t]
    vis = np.ones(t.size, bool) if visible is None else visible
    T = matrix_from_params(params)
    T[~vis] = np.nan
    return MarkerStream(STAMPS.copy(), T, vis)


def _specimen_stream():
    T = np.tile(matrix_from_params([1.0, 2, 3, 40, 0, 0]), (STAMPS.size, 1, 1))
    return MarkerStream(STAMPS.copy(), T, np.ones(STAMPS.size, bool))


def _expected(query):
    q = np.asarray(query, float)
    params = np.c_[0.05 * q, -0.02 * q, 100 + 0 * q, 0 * q, 0 * q, 0.01 * q]
    specimen = matrix_from_params([1.0, 2, 3, 40, 0, 0])
    return CT_FROM_SPECIMEN @ invert_rigid(specimen) @ matrix_from_params(params)


def _compose(stamps, dt_ms):
    """Poses and status of ``stamps`` from the test's probe and specimen streams."""
    return ct_from_probe_frames(
        stamps,
        probe=_probe_stream(),
        specimen=_specimen_stream(),
        ct_from_specimen=CT_FROM_SPECIMEN,
        dt_ms=dt_ms,
    )


def test_poses_match_composition_at_lagged_times():
    stamps = np.array([300, 555, 1001, 1800])
    pose, status = _compose(stamps, dt_ms=-123.4)
    np.testing.assert_allclose(pose, _expected(stamps - 123.4), atol=1e-9)
    assert set(status) == {Reason.OK.value}


def test_frames_outside_coverage_have_no_tracking():
    pose, status = _compose(np.array([50, 1000, 2100]), dt_ms=-100.0)
    assert list(status) == ["no_tracking", "ok", "no_tracking"]
    assert np.isnan(pose[0]).all() and np.isnan(pose[2]).all()


def test_long_dropout_gives_no_tracking_short_one_interpolates():
    visible = np.ones(STAMPS.size, bool)
    visible[10:12] = False  # 170..187 ms: gap 51 ms between 153 and 204
    visible[50:55] = False  # 850..918 ms: gap 102 ms
    T, tracked = stream_at(_probe_stream(visible), [180.0, 880.0], max_gap_ms=60)
    np.testing.assert_array_equal(tracked, [True, False])
    np.testing.assert_allclose(T[0], matrix_from_params([9.0, -3.6, 100, 0, 0, 1.8]))


def test_poses_table_marks_untracked_rows():
    pose = np.stack([np.eye(4), np.full((4, 4), np.nan)])
    table = poses_table([5, 9], pose, ["ok", "no_tracking"], space_factor=0.1)
    assert list(table["status"]) == ["ok", "no_tracking"]
    assert list(table["image"]) == ["5.png", "9.png"]
    assert np.isnan(table.loc[1, "x"])


def _sweep(tmp_path, *, tracker_rows=None):
    sweep = tmp_path / "sweeps" / "tibia-1"
    (sweep / "UltrasoundImages").mkdir(parents=True)
    (tmp_path / "bones").mkdir()
    (tmp_path / "bones" / "Tibia.stl").write_bytes(b"")
    os.symlink("../../bones", sweep / "CT_models")
    for t in (300, 1000, 2100):
        write_png(sweep / "UltrasoundImages" / f"{t}.png", np.zeros((4, 6), np.uint8))
    write_tracker_stream(
        sweep / "tracker.csv",
        {"probe": _probe_stream(), "specimen": _specimen_stream()},
    )
    if tracker_rows is not None:
        with open(sweep / "tracker.csv", "a") as fh:
            fh.write(tracker_rows)
    cal = Calibration(np.eye(4), (0.1, 0.1), (6, 4), MARKER_MM, {"dt_ms": -50.0})
    write_calibration(tmp_path / "cal.yaml", cal)
    write_registration(tmp_path / "reg.json", CT_FROM_SPECIMEN, {})
    return sweep


def _run_poses(tmp_path, sweep):
    return main(
        [
            "poses",
            str(sweep),
            "--calibration",
            str(tmp_path / "cal.yaml"),
            "--registration",
            str(tmp_path / "reg.json"),
            "--out",
            str(tmp_path / "out"),
        ]
    )


def test_cli_poses_writes_a_public_record(tmp_path):
    sweep = _sweep(tmp_path)
    assert _run_poses(tmp_path, sweep) == 0
    out = tmp_path / "out"
    table = pd.read_csv(out / "sweep_initial.csv")
    np.testing.assert_array_equal(table["timestamp"], [300, 1000, 2100])
    assert list(table["status"]) == ["ok", "ok", "no_tracking"]
    assert (out / "UltrasoundImages").is_symlink()
    assert not os.path.isabs(os.readlink(out / "CT_models"))
    record = open_record(out)
    np.testing.assert_allclose(
        record.ct_from_probe()[:2], _expected([250, 950]), atol=1e-9
    )


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ("1989,probe,1,0,0,0,0,0,0\n", "marker 'probe' timestamp 1989 is not after"),
        ("2100,,1,0,0,0,0,0,0\n", "tracking row without a marker"),
    ],
)
def test_cli_poses_bad_tracker_rows_name_line(tmp_path, capsys, rows, match):
    sweep = _sweep(tmp_path, tracker_rows=rows)
    assert _run_poses(tmp_path, sweep) == 1
    assert match in capsys.readouterr().err


def test_cli_poses_calibration_missing_key(tmp_path, capsys):
    sweep = _sweep(tmp_path)
    (tmp_path / "cal.yaml").write_text("pixel_spacing_mm: [0.1, 0.1]\n")
    assert _run_poses(tmp_path, sweep) == 1
    assert "cal.yaml: calibration is missing key(s)" in capsys.readouterr().err


def test_ingest_real_sample_reports_missing_images(real_sample, tmp_path, capsys):
    assert main(["ingest", str(real_sample), "--out", str(tmp_path / "rec")]) == 0
    printed = capsys.readouterr().out
    record = open_record(tmp_path / "rec")
    assert "888 row(s) without image" in printed
    assert (record.poses["status"] == "no_image").sum() == 888
    assert (record.poses["image"] != "").sum() == 222


def test_poses_match_simulator_truth_without_errors(tmp_path):
    from ultrabones.io.calibration import read_calibration
    from ultrabones.transforms import POSE_COLUMNS, apply_rigid

    args = ["--preset", "tiny", "--seed", "0", "--out", str(tmp_path / "c")]
    sweep_args = ["--specimen", "S01", "--sweep", "tibia-1", "--frames", "6"]
    assert main(["simulate", *args, *sweep_args, "--errors", "none"]) == 0
    cohort = tmp_path / "c"
    truth = cohort / "truth" / "specimens" / "S01"
    code = main(
        [
            "poses",
            str(cohort / "specimens" / "S01" / "sweeps" / "tibia-1"),
            "--calibration",
            str(cohort / "truth" / "calibration.yaml"),
            "--registration",
            str(truth / "ct_from_specimen.json"),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    ours = pd.read_csv(tmp_path / "out" / "sweep_initial.csv")
    true = pd.read_csv(truth / "sweeps" / "tibia-1" / "poses.csv")
    calibration = read_calibration(cohort / "truth" / "calibration.yaml")
    corners = np.array([[0, 0, 0], [50, 0, 0], [0, 40, 0], [50, 40, 0]], float)
    mapped = [
        apply_rigid(
            matrix_from_params(t[list(POSE_COLUMNS)].to_numpy(float))
            @ calibration.probe_from_image,
            corners,
        )
        for t in (ours, true)
    ]
    assert code == 0 and (ours["status"] == "ok").all()
    np.testing.assert_array_equal(ours["timestamp"], true["timestamp"])
    assert np.abs(mapped[0] - mapped[1]).max() < 0.01


def _real_like_record(tmp_path, rows):
    root = tmp_path / "rec"
    (root / "UltrasoundImages").mkdir(parents=True)
    (root / "CT_models").mkdir()
    (root / "CT_models" / "Fibula.stl").write_bytes(b"")
    write_png(root / "UltrasoundImages" / "10.png", np.zeros((4, 6), np.uint8))
    cal = Calibration(np.eye(4), (0.1, 0.1), (6, 4), MARKER_MM)
    write_calibration(root / "calibration.yaml", cal)
    header = "timestamp,space_factor,x,y,z,euler_x,euler_y,euler_z\n"
    (root / "sweep_initial.csv").write_text(header + rows)
    return root


def test_ingest_marks_nan_pose_and_missing_image(tmp_path, capsys):
    rows = "10,0.1,1,2,3,0,0,0\n20,0.1,,2,3,0,0,0\n30,0.1,1,2,3,0,0,0\n"
    root = _real_like_record(tmp_path, rows)
    assert main(["ingest", str(root), "--out", str(tmp_path / "out")]) == 0
    table = pd.read_csv(tmp_path / "out" / "sweep_initial.csv")
    assert list(table["status"]) == ["ok", "invalid_pose", "no_image"]
    assert "1 row(s) without image (first stamps: 30)" in capsys.readouterr().out


def test_ingest_duplicate_timestamp_names_line(tmp_path, capsys):
    root = _real_like_record(tmp_path, "10,0.1,1,2,3,0,0,0\n10,0.1,1,2,3,0,0,0\n")
    assert main(["ingest", str(root), "--out", str(tmp_path / "out")]) == 1
    assert "sweep_initial.csv line 3: duplicate timestamp 10" in capsys.readouterr().err


def test_nan_tracker_pose_is_a_dropout(tmp_path):
    sweep = _sweep(tmp_path)
    lines = (sweep / "tracker.csv").read_text().splitlines()
    # Blank out 4 consecutive probe samples around 950 ms (frame 1000 - 50).
    for i, line in enumerate(lines):
        t, marker = line.split(",")[:2]
        if marker == "probe" and 900 <= int(t) <= 970:
            lines[i] = f"{t},probe,1,nan,nan,nan,nan,nan,nan"
    (sweep / "tracker.csv").write_text("\n".join(lines) + "\n")
    assert _run_poses(tmp_path, sweep) == 0
    table = pd.read_csv(tmp_path / "out" / "sweep_initial.csv")
    assert list(table["status"]) == ["ok", "no_tracking", "no_tracking"]
