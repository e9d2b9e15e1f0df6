"""Bench truth measures: true 3D pose error, curve offset, summaries and the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bench_fixtures import SHAPE, SPACING, calibration

from ultrabones.engine import FrameResult
from ultrabones.studies.bench import (
    curve_offset_mm,
    image_grid_rc,
    pose_errors,
    summarise_truth,
)
from ultrabones.transforms import (
    apply_rigid,
    invert_rigid,
    matrix_from_params,
    params_from_matrix,
    points_image_from_rc,
)


def test_grid_covers_the_image_evenly():
    rc = image_grid_rc(SHAPE)
    assert rc.shape == (256, 2)
    assert rc[:, 0].min() == 2 and rc[:, 0].max() == 77
    assert rc[:, 1].min() == 3 and rc[:, 1].max() == 116
    np.testing.assert_allclose(rc.mean(axis=0), [39.5, 59.5], atol=0.5)


def test_pose_error_of_a_tilt_is_the_mean_image_point_motion():
    cal = calibration()
    true_ct_from_image = matrix_from_params([5.0, 1.0, -2.0, 0, 0, 0])
    probe = invert_rigid(cal.probe_from_image)
    # initial pose: the true one tilted 2 deg about the image x axis (the top edge),
    # so each image point moves by 2 sin(1 deg) times its depth y
    tilt = matrix_from_params([0, 0, 0, 2.0, 0, 0])
    res = FrameResult(
        "ok",
        params_from_matrix(true_ct_from_image @ tilt @ probe),
        params_from_matrix(true_ct_from_image @ probe),
    )
    err = pose_errors(res, true_ct_from_image, calibration=cal, label_rc=[[0, 0]])
    depth = points_image_from_rc(image_grid_rc(SHAPE), SPACING)[:, 1]
    expected = (2 * np.sin(np.radians(1.0)) * depth).mean()
    assert err["pose_error_mm_initial"] == pytest.approx(expected, rel=1e-9)
    assert err["pose_error_mm_refined"] == pytest.approx(0.0, abs=1e-9)


def test_pose_error_of_a_spin_averages_the_whole_image_not_its_corners():
    cal = calibration()
    probe = invert_rigid(cal.probe_from_image)
    # 1 deg about the image normal through the image centre (8 mm deep, 6 mm across)
    centre = matrix_from_params([6.0, 8.0, 0, 0, 0, 0])
    spin = centre @ matrix_from_params([0, 0, 0, 0, 0, 1.0]) @ invert_rigid(centre)
    res = FrameResult("ok", params_from_matrix(spin @ probe), params_from_matrix(probe))
    err = pose_errors(res, np.eye(4), calibration=cal, label_rc=[[0, 0]])
    grid = points_image_from_rc(image_grid_rc(SHAPE), SPACING)[:, :2]
    radius = np.linalg.norm(grid - [6.0, 8.0], axis=1)
    assert err["pose_error_mm_initial"] == pytest.approx(
        (2 * np.sin(np.radians(0.5)) * radius).mean(), rel=1e-6
    )
    corner = 2 * np.sin(np.radians(0.5)) * np.hypot(6.0, 8.0)
    assert err["pose_error_mm_initial"] < 0.6 * corner


def test_pose_error_of_a_shift_is_the_shift_for_any_calibration():
    cal = calibration()
    true_ct_from_image = matrix_from_params([0, 0, 0, 0, 0, 0])
    shift = matrix_from_params([0.3, -0.4, 0, 0, 0, 0])
    probe = invert_rigid(cal.probe_from_image)
    res = FrameResult(
        "ok",
        params_from_matrix(shift @ true_ct_from_image @ probe),
        params_from_matrix(true_ct_from_image @ probe),
    )
    err = pose_errors(res, true_ct_from_image, calibration=cal, label_rc=[[1, 1]])
    assert err["pose_error_mm_initial"] == pytest.approx(0.5)
    assert err["fiducial_error_mm_initial"] == pytest.approx(0.5)


def test_pose_error_counts_where_a_depth_scaled_pixel_truly_lies():
    cal = calibration()
    probe = invert_rigid(cal.probe_from_image)
    # the true pose, but the tissue's speed of sound puts every pixel 2 % deeper
    res = FrameResult("ok", params_from_matrix(probe), params_from_matrix(probe))
    err = pose_errors(
        res, np.eye(4), calibration=cal, label_rc=[[10, 4]], depth_scale=1.02
    )
    depth = points_image_from_rc(image_grid_rc(SHAPE), SPACING)[:, 1]
    assert err["pose_error_mm_initial"] == pytest.approx(0.02 * depth.mean())
    label_depth = points_image_from_rc([[10, 4]], SPACING)[0, 1]
    assert err["label_pose_error_mm_refined"] == pytest.approx(0.02 * label_depth)
    # a pose shifted 2 % of the label's depth down is right at the label
    shift = matrix_from_params([0, 0.02 * label_depth, 0, 0, 0, 0])
    res = FrameResult(
        "ok", params_from_matrix(shift @ probe), params_from_matrix(probe)
    )
    err = pose_errors(
        res, np.eye(4), calibration=cal, label_rc=[[10, 4]], depth_scale=1.02
    )
    assert err["label_pose_error_mm_initial"] == pytest.approx(0.0, abs=1e-9)
    assert err["fiducial_error_mm_initial"] > 0.0


def band(top_rows, shape=SHAPE, width=3):
    """A mask whose column c has ``width`` pixels from row ``top_rows[c]`` down."""
    mask = np.zeros(shape, bool)
    for c, top in enumerate(top_rows):
        if top >= 0:
            mask[top : top + width, c] = True
    return mask


def test_curve_offset_is_positive_when_the_label_lies_deeper():
    truth = band(np.full(SHAPE[1], 30))
    deeper = band(np.full(SHAPE[1], 33))
    offset, offset_abs = curve_offset_mm(deeper, truth, spacing_mm=SPACING)
    assert offset == pytest.approx(3 * SPACING[1])
    assert offset_abs == pytest.approx(3 * SPACING[1])
    offset, offset_abs = curve_offset_mm(truth, deeper, spacing_mm=SPACING)
    assert offset == pytest.approx(-3 * SPACING[1])
    assert offset_abs == pytest.approx(3 * SPACING[1])


def test_curve_offset_is_the_median_over_the_truth_columns():
    truth = band([10] * 60 + [-1] * 60)
    # a tilted label, 0 to 59 rows below the truth where the truth is, and a line at
    # the top where the truth has nothing (not counted)
    mask = band([*range(10, 70), *[0] * 60])
    offset, offset_abs = curve_offset_mm(mask, truth, spacing_mm=SPACING)
    assert offset == pytest.approx(29.5 * SPACING[1])
    assert offset_abs == pytest.approx(29.5 * SPACING[1])


def test_curve_offset_without_common_columns_is_nan():
    left, right = band([5] * 10 + [-1] * 110), band([-1] * 10 + [5] * 110)
    assert np.isnan(curve_offset_mm(left, right, spacing_mm=SPACING)).all()


def test_worse_fraction_counts_kept_frames_whose_pose_error_grew():
    table = pd.DataFrame(
        {
            "status": ["kept", "kept", "kept", "discarded"],
            "label_error_mm_initial": [1.0, 1.0, 1.0, 1.0],
            "label_error_mm_refined": [0.1, 0.2, 1.5, 0.1],
            "pose_error_mm_initial": [1.0, 1.0, 1.0, 1.0],
            "pose_error_mm_refined": [0.5, 1.4, 0.9, 3.0],
            "curve_offset_abs_mm_initial": [0.8, 0.6, 0.4, 9.0],
            "curve_offset_abs_mm_refined": [0.1, 0.3, 0.2, 9.0],
            "f1_at_0_5mm": [1.0, 0.9, 0.8, 0.0],
        }
    )
    s = summarise_truth(table)
    assert s["worse_fraction"] == pytest.approx(1 / 3)
    assert s["improved_fraction"] == pytest.approx(2 / 3)
    assert s["pose_error_mm_median_refined"] == pytest.approx(0.9)
    assert s["curve_offset_abs_mm_median_refined"] == pytest.approx(0.2)


def test_pose_error_places_the_grid_with_the_record_calibration():
    cal = calibration()
    probe = invert_rigid(cal.probe_from_image)
    res = FrameResult("ok", params_from_matrix(probe), params_from_matrix(np.eye(4)))
    err = pose_errors(res, np.eye(4), calibration=cal, label_rc=[[0, 0]])
    grid = points_image_from_rc(image_grid_rc(SHAPE), SPACING)
    moved = apply_rigid(cal.probe_from_image, grid)
    assert err["pose_error_mm_initial"] == pytest.approx(0.0, abs=1e-9)
    assert err["pose_error_mm_refined"] == pytest.approx(
        np.linalg.norm(moved - grid, axis=1).mean()
    )


def test_bench_json_keeps_and_adds_the_truth_keys(capsys):
    import json

    from ultrabones.cli import main

    argv = ["bench", "--preset", "tiny", "--frames", "1", "--json"]
    assert main([*argv, "--without", "bone_drift"]) == 0
    summary = json.loads(capsys.readouterr().out)
    keys = {
        "ms_per_frame_median",
        "cpu_ms_per_frame_median",
        "label_error_mm_median_initial",
        "label_error_mm_median_refined",
        "improved_fraction",
        "f1_at_0_5mm_mean",
        "discarded_fraction",
        "pose_error_mm_median_initial",
        "pose_error_mm_median_refined",
        "curve_offset_abs_mm_median_initial",
        "curve_offset_abs_mm_median_refined",
        "worse_fraction",
        "bones",
    }
    assert keys <= summary.keys()
    assert summary["bones"] == ["Calcaneus", "Fibula", "Tibia"]
    assert summary["sources_off"] == ["bone_drift"]


def test_bench_without_needs_a_preset_and_known_sources(tmp_path):
    from ultrabones.cli import main

    assert main(["bench", "--record", str(tmp_path), "--without", "bone_drift"]) == 1
    assert main(["bench", "--record", str(tmp_path), "--ablation"]) == 1
    assert main(["bench", "--preset", "tiny", "--without", "no_such_source"]) == 1


def test_ablation_runs_baseline_then_each_source_off(monkeypatch, capsys):
    import json

    from ultrabones.cli import bench, main
    from ultrabones.simulate.presets import SOURCE_NAMES

    seen = []

    def fake(args, preset, *, figure=True):
        off = [n for n in SOURCE_NAMES if not getattr(preset.sources, n)]
        seen.append((off, figure))
        summary = {"frames": 1, "discarded_fraction": len(off) / 10}
        return summary, pd.DataFrame({"timestamp": [0]})

    monkeypatch.setattr(bench, "_cohorts", fake)
    argv = ["bench", "--preset", "tiny", "--ablation", "--json"]
    assert main([*argv, "--without", "bone_drift"]) == 0
    rows = json.loads(capsys.readouterr().out)["ablation"]
    rest = [n for n in SOURCE_NAMES if n != "bone_drift"]
    assert [r["without"] for r in rows] == ["baseline", *rest]
    assert seen[0] == (["bone_drift"], True)
    assert all(not fig for _, fig in seen[1:])
    assert [sorted(off) for off, _ in seen[1:]] == [
        sorted(["bone_drift", n]) for n in rest
    ]
    assert rows[1]["discarded_fraction"] == pytest.approx(0.2)
    assert np.isnan(rows[0]["pose_error_mm_median_refined"])
