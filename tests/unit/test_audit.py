"""Tests of the 3D audit: echo ridge, back-projection, surface distances, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ultrabones.audit import (
    audit_sweep,
    distance_summary,
    near_surface_mask,
    plane_offset_mm,
    points_ct_from_rc,
    ridge_points_rc,
    surface_distance_fn,
)
from ultrabones.cli import main
from ultrabones.io.calibration import Calibration, write_calibration
from ultrabones.io.png import write_png
from ultrabones.io.record import write_poses_table
from ultrabones.io.stl import write_stl
from ultrabones.transforms import POSE_COLUMNS, matrix_from_params, params_from_matrix

SPACING = (0.1, 0.1)
SHAPE = (60, 40)
BONE_ROW = 40
BONE_Y_MM = (BONE_ROW + 0.5) * SPACING[1]  # depth of the echo in the image, mm


def plane_mesh(y_mm):
    """A large square at CT y = y_mm (the bone surface seen by an identity pose)."""
    v = np.array([[-50, y_mm, -50], [50, y_mm, -50], [50, y_mm, 50], [-50, y_mm, 50]])
    return v.astype(float), np.array([[0, 1, 2], [0, 2, 3]])


def echo_image(seed=1234, row=BONE_ROW):
    """Speckle plus a bright echo band centred on ``row``."""
    rng = np.random.default_rng(seed)
    rows = np.arange(SHAPE[0])[:, None]
    band = 200 * np.exp(-0.5 * ((rows - row) / 2.0) ** 2)
    return np.clip(band + rng.integers(0, 30, SHAPE), 0, 255).astype(np.uint8)


def label_at(row, cols=slice(5, 35)):
    label = np.zeros(SHAPE, bool)
    label[row, cols] = True
    return label


def test_ridge_finds_echo_row_in_labelled_columns():
    rc = ridge_points_rc(echo_image(), label_at(BONE_ROW), spacing_mm=SPACING)
    np.testing.assert_array_equal(rc[:, 1], np.arange(5, 35))
    assert np.all(np.abs(rc[:, 0] - BONE_ROW) <= 1)


def test_ridge_finds_echo_within_window_of_an_offset_label():
    # Label 2 mm above the echo: the 3 mm window still reaches the echo.
    rc = ridge_points_rc(echo_image(), label_at(BONE_ROW - 20), spacing_mm=SPACING)
    assert np.all(np.abs(rc[:, 0] - BONE_ROW) <= 1)


def test_ridge_stays_inside_window():
    # A 1 mm window around a label 2 mm away cannot reach the echo.
    rc = ridge_points_rc(
        echo_image(), label_at(BONE_ROW - 20), spacing_mm=SPACING, window_mm=1.0
    )
    assert np.all(rc[:, 0] <= BONE_ROW - 20 + 10)


def test_ridge_of_empty_label_is_empty():
    rc = ridge_points_rc(echo_image(), np.zeros(SHAPE, bool), spacing_mm=SPACING)
    assert rc.shape == (0, 2)


def test_points_ct_from_rc_composes_pose_and_calibration():
    ct_from_probe = matrix_from_params([1, 2, 3, 0, 0, 90])
    probe_from_image = matrix_from_params([10, 0, 0, 0, 0, 0])
    pts = points_ct_from_rc(
        [[0, 0]],
        ct_from_probe=ct_from_probe,
        probe_from_image=probe_from_image,
        spacing_mm=(0.2, 0.4),
    )
    # image (0.1, 0.2, 0) -> probe (10.1, 0.2, 0) -> rot z 90: (-0.2, 10.1, 0) + t
    np.testing.assert_allclose(pts, [[0.8, 12.1, 3.0]], atol=1e-12)


def test_surface_distance_matches_plane_distance():
    distance = surface_distance_fn({"Plane": plane_mesh(2.0)})
    pts = np.array([[0.0, 2.0, 0.0], [1.0, 3.5, -2.0], [-3.0, -1.0, 4.0]])
    np.testing.assert_allclose(distance(pts), [0.0, 1.5, 3.0], atol=1e-5)


def test_distance_summary_is_mean_and_95th_percentile():
    d = np.random.default_rng(7).random(101)
    s = distance_summary(d)
    assert s["n"] == 101
    assert s["cd_mm"] == pytest.approx(d.mean())
    assert s["hd95_mm"] == pytest.approx(np.sort(d)[95])


def test_distance_summary_of_no_points_is_none():
    assert distance_summary([]) == {
        "n": 0,
        "cd_mm": None,
        "hd95_mm": None,
        "median_mm": None,
        "mean_signed_mm": None,
    }


def test_distance_summary_of_signed_distances_uses_magnitudes():
    s = distance_summary([-1.0, -1.0, 2.0])
    assert s["cd_mm"] == pytest.approx(4 / 3) and s["mean_signed_mm"] == 0.0


def box_mesh(half=1.0):
    """A closed cube of half-width ``half`` centred at the origin."""
    v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * half
    faces = [
        [0, 1, 3],
        [0, 3, 2],
        [4, 6, 7],
        [4, 7, 5],
        [0, 4, 5],
        [0, 5, 1],
        [2, 3, 7],
        [2, 7, 6],
        [0, 2, 6],
        [0, 6, 4],
        [1, 5, 7],
        [1, 7, 3],
    ]
    return v.astype(float), np.array(faces)


def test_signed_surface_distance_is_negative_inside():
    distance = surface_distance_fn({"Box": box_mesh()}, signed=True)
    np.testing.assert_allclose(
        distance([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]]), [-1.0, 1.0], atol=1e-5
    )


def test_plane_offset_of_a_translation_is_its_length():
    shifted = matrix_from_params([0, 1.0, 0, 0, 0, 0])
    assert plane_offset_mm(shifted, np.eye(4), size_mm=(4, 6)) == pytest.approx(1.0)


def sweep_frames(n=3, offset_mm=1.0):
    """Frames whose initial pose is shifted by ``offset_mm`` in depth."""
    initial = matrix_from_params([0, offset_mm, 0, 0, 0, 0])
    for i in range(n):
        yield {
            "timestamp": 100 + i,
            "image": echo_image(seed=i),
            "label": label_at(BONE_ROW),
            "ct_from_probe": {
                "initial": initial,
                "refined": np.eye(4),
                "truth": np.eye(4),
            },
        }


def test_audit_sweep_separates_initial_error_from_refined():
    out = audit_sweep(
        sweep_frames(),
        distance=surface_distance_fn({"Plane": plane_mesh(BONE_Y_MM)}),
        probe_from_image={s: np.eye(4) for s in ("initial", "refined", "truth")},
        spacing_mm=SPACING,
    )
    assert out["frames"] == 3 and len(out["per_frame"]) == 3
    assert out["echo"]["initial"]["cd_mm"] == pytest.approx(1.0, abs=0.1)
    assert out["echo"]["refined"]["hd95_mm"] <= 0.1
    assert out["labels"]["refined"]["cd_mm"] == pytest.approx(0.0, abs=1e-5)
    assert out["plane_offset_mm"]["initial"] == pytest.approx(1.0)
    assert out["plane_offset_mm"]["refined"] == pytest.approx(0.0, abs=1e-12)


# --- CLI on a tiny store --------------------------------------------------------


def write_audit_store(path, n=3, offset_mm=1.0):
    images = np.stack([echo_image(seed=i) for i in range(n)])
    labels = np.stack([label_at(BONE_ROW)] * n).astype(np.uint8)
    pose_initial = np.tile([0, offset_mm, 0, 0, 0, 0], (n, 1)).astype(float)
    string = np.dtypes.StringDType()
    status = np.array(["kept"] * (n - 1) + ["discarded"], dtype=string)
    ds = xr.Dataset(
        {
            "image": (("frame", "y", "x"), images),
            "label": (("frame", "y", "x"), labels),
            "pose_initial": (("frame", "pose"), pose_initial),
            "pose_refined": (("frame", "pose"), np.zeros((n, 6))),
            "status": (("frame",), status),
        },
        coords={"timestamp": (("frame",), np.arange(100, 100 + n, dtype=np.int64))},
        attrs={"pixel_spacing_mm": list(SPACING), "probe_from_image": [0.0] * 6},
    )
    ds.to_zarr(path, consolidated=False, mode="w")
    return path


#: A rigid probe marker (the calibration reader refuses fewer than three spheres).
MARKER_MM = np.array([[0.0, 0, 50], [30, 0, 50], [0, 30, 50]])


@pytest.fixture
def audit_inputs(tmp_path):
    store = write_audit_store(tmp_path / "sweep.zarr")
    (tmp_path / "bones").mkdir()
    write_stl(tmp_path / "bones" / "Plane.stl", *plane_mesh(BONE_Y_MM))
    truth = tmp_path / "truth" / "specimens" / "S01" / "sweeps" / "tibia-1"
    truth.mkdir(parents=True)
    cal = Calibration(np.eye(4), SPACING, (SHAPE[1], SHAPE[0]), MARKER_MM)
    write_calibration(tmp_path / "truth" / "calibration.yaml", cal)
    rows = params_from_matrix(np.stack([np.eye(4)] * 3))
    table = pd.DataFrame(rows, columns=["x", "y", "z", "euler_x", "euler_y", "euler_z"])
    table.insert(0, "timestamp", [100, 101, 102])
    table.to_csv(truth / "poses.csv", index=False)
    return {"store": store, "bones": tmp_path / "bones", "truth": truth}


def audit_argv(inputs, out, *extra):
    """The ``audit`` command line of the fixture's store, bones and truth."""
    store, bones, truth = (str(inputs[k]) for k in ("store", "bones", "truth"))
    flags = ["--bones", bones, "--truth", truth, "--out", str(out)]
    return ["audit", store, *flags, *extra]


def test_cli_audit_writes_json_table_and_uses_truth(audit_inputs, tmp_path, capsys):
    out = tmp_path / "audit"
    code = main(audit_argv(audit_inputs, out, "--json"))
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 2  # the discarded frame is not audited
    assert summary["echo"]["initial"]["cd_mm"] == pytest.approx(1.0, abs=0.1)
    assert summary["echo"]["truth"]["cd_mm"] < 0.1
    assert summary["plane_offset_mm"]["initial"] == pytest.approx(1.0)
    assert "| echo | initial |" in (out / "audit.md").read_text()
    assert len(pd.read_csv(out / "audit_frames.csv")) == 2


def test_cli_audit_without_bones_fails(audit_inputs, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(
        [
            "audit",
            str(audit_inputs["store"]),
            "--bones",
            str(tmp_path / "empty"),
            "--out",
            str(tmp_path / "a"),
        ]
    )
    assert code == 1
    assert "no bone surfaces" in capsys.readouterr().err


def test_cli_audit_store_without_poses_fails(tmp_path, capsys):
    ds = xr.Dataset(
        {"label": (("frame", "y", "x"), np.zeros((1, 2, 2), np.uint8))},
        coords={"timestamp": (("frame",), np.array([1], np.int64))},
        attrs={"pixel_spacing_mm": [1.0, 1.0]},
    )
    ds.to_zarr(tmp_path / "s.zarr", consolidated=False, mode="w")
    code = main(
        ["audit", str(tmp_path / "s.zarr"), "--bones", ".", "--out", str(tmp_path)]
    )
    assert code == 1
    assert "lacks image, pose_initial" in capsys.readouterr().err


def test_near_surface_mask_marks_the_intersection_band():
    distance = surface_distance_fn({"Plane": plane_mesh(BONE_Y_MM)})
    near = near_surface_mask(
        SHAPE,
        ct_from_image=np.eye(4),
        spacing_mm=SPACING,
        distance=distance,
        tol_mm=0.5,
        stride=2,
    )
    rows = np.flatnonzero(near.any(axis=1))
    assert near.shape == SHAPE and near[BONE_ROW].all()
    assert rows.min() >= BONE_ROW - 6 and rows.max() <= BONE_ROW + 6


def write_record(root, n=2):
    """A public-layout record: plane bone, echo images, identity poses."""
    (root / "UltrasoundImages").mkdir(parents=True)
    (root / "CT_models").mkdir()
    write_stl(root / "CT_models" / "Plane.stl", *plane_mesh(BONE_Y_MM + 1.0))
    cal = Calibration(np.eye(4), SPACING, (SHAPE[1], SHAPE[0]), MARKER_MM)
    write_calibration(root / "calibration.yaml", cal)
    poses = pd.DataFrame(np.zeros((n, 6)), columns=list(POSE_COLUMNS))
    poses.insert(0, "space_factor", SPACING[0])
    poses.insert(0, "timestamp", np.arange(n) * 88)
    write_poses_table(root / "sweep_initial.csv", poses)
    for i, stamp in enumerate(poses["timestamp"]):
        write_png(root / "UltrasoundImages" / f"{stamp}.png", echo_image(seed=i))
    return root


def test_cli_audit_of_a_record_measures_initial_pose_offset(tmp_path, capsys):
    record = write_record(tmp_path / "rec")
    code = main(["audit", str(record), "--out", str(tmp_path / "a"), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 2 and set(summary["echo"]) == {"initial"}
    # The bone sits 1 mm deeper than the echo the images show.
    assert summary["echo"]["initial"]["cd_mm"] == pytest.approx(1.0, abs=0.1)


def test_cli_audit_of_a_record_refuses_truth(tmp_path, capsys):
    record = write_record(tmp_path / "rec")
    code = main(
        ["audit", str(record), "--truth", str(tmp_path), "--out", str(tmp_path / "a")]
    )
    assert code == 1
    assert "--truth needs a label store" in capsys.readouterr().err


def test_truth_poses_without_pose_columns_raise(tmp_path):
    from ultrabones.errors import InputDataError
    from ultrabones.io.masks import read_truth_poses

    (tmp_path / "poses.csv").write_text("timestamp,x,y\n1,0,0\n")
    with pytest.raises(InputDataError, match="lack column.*z, euler_x"):
        read_truth_poses(tmp_path / "poses.csv")


def test_cli_audit_truth_without_calibration_fails(audit_inputs, tmp_path, capsys):
    (tmp_path / "truth" / "calibration.yaml").unlink()
    code = main(audit_argv(audit_inputs, tmp_path / "a"))
    assert code == 1
    assert "give --truth-calibration" in capsys.readouterr().err
