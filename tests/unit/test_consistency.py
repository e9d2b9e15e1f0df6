"""Sweep-consistent refinement: the sweep's correction, the strays, pass two."""

from __future__ import annotations

import numpy as np
import pytest
from test_engine import calibration, cyl_model, refine_ring  # noqa: F401

from ultrabones.engine import EngineParams
from ultrabones.engine.consistency import (
    probe_corrections,
    refit_plan,
    residual_params,
    sweep_trend,
    trend_poses,
)
from ultrabones.engine.geometry import fiducial_displacement_mm
from ultrabones.vocabulary import Reason

FIDUCIALS = calibration().probe_marker_fiducials_mm


def sweep_poses(n=40, seed=0):
    """A probe moving along x and turning, with one shared probe-frame correction."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) * 100.0
    initial = np.c_[
        t * 0.1, np.zeros(n), np.full(n, 20.0), np.zeros(n), t * 0.01, t * 0.05
    ]
    shared = np.array([0.4, -0.2, 0.1, 0.2, -0.1, 0.3])
    corrections = shared + rng.normal(0, 0.01, (n, 6))
    refined = trend_poses(initial, corrections)
    return t, initial, refined, shared


def test_probe_corrections_recover_the_shared_correction():
    _, initial, refined, shared = sweep_poses()
    got = probe_corrections(initial, refined)
    np.testing.assert_allclose(got, np.broadcast_to(shared, got.shape), atol=0.05)
    # in the CT frame the same correction differs from frame to frame
    assert np.ptp(refined[:, 0] - initial[:, 0]) > 0.05


def test_rows_never_refined_have_no_correction_and_no_plan():
    t, initial, refined, _ = sweep_poses(n=10)
    refined[3] = np.nan  # a row without an image
    initial[4] = np.nan  # an invalid pose
    c = probe_corrections(initial, refined)
    assert np.isnan(c[3:5]).all() and np.isfinite(np.delete(c, [3, 4], 0)).all()
    reason = np.array(["ok"] * 3 + ["no_image", "invalid_pose"] + ["ok"] * 5)
    frames, _ = refit_plan(
        t, initial, refined, reason, params=EngineParams(), fiducials=FIDUCIALS
    )
    assert not set(frames.tolist()) & {3, 4}


def test_one_failed_frame_cannot_pull_the_trend():
    t, initial, refined, shared = sweep_poses()
    refined[20] = initial[20] + [0.9, 0.9, 0, 0.9, 0, 0]  # a wrong optimum
    c = probe_corrections(initial, refined)
    trend = sweep_trend(t, c, np.ones(len(t), bool), window_ms=1000)
    np.testing.assert_allclose(trend[20], shared, atol=0.03)


def test_trend_widens_to_the_sweep_and_needs_three_frames():
    t = np.array([0.0, 100.0, 5000.0, 5100.0])
    c = np.tile(np.arange(6.0), (4, 1))
    use = np.ones(4, bool)
    trend = sweep_trend(t, c, use, window_ms=150)  # each window holds 2 frames
    np.testing.assert_allclose(trend, c)
    use[1:] = [True, False, False]
    assert np.isnan(sweep_trend(t, c, use, window_ms=150)).all()


def test_plan_picks_the_stray_and_the_failed_frames():
    t, initial, refined, _ = sweep_poses()
    refined[5] = trend_poses(initial[5:6], [[1.0, 0, 0, 0, 0, 0]])[0]  # 0.6 mm off
    reason = np.full(len(t), Reason.OK.value, dtype=object)
    reason[9] = Reason.CORRECTION_TOO_LARGE.value
    reason[12] = Reason.NO_BONE_IN_VIEW.value
    frames, starts = refit_plan(
        t, initial, refined, reason, params=EngineParams(), fiducials=FIDUCIALS
    )
    assert frames.tolist() == [5, 9]
    # each start is its tracked pose moved by the same (sweep's) correction
    c = probe_corrections(initial[[5, 9]], starts)
    np.testing.assert_allclose(c[0], c[1], atol=0.03)


def test_plan_is_empty_without_a_sweep_correction():
    t, initial, refined, _ = sweep_poses(n=2)
    frames, starts = refit_plan(
        t,
        initial,
        refined,
        np.array(["ok", "ok"]),
        params=EngineParams(),
        fiducials=FIDUCIALS,
    )
    assert frames.size == 0 and starts.shape == (0, 6)


def test_residual_params_shrink_the_box():
    params = residual_params(
        EngineParams(sweep_residual_mm=0.2, sweep_residual_deg=0.1)
    )
    assert (params.bounds_mm, params.bounds_deg, params.warm_start_frames) == (
        0.2,
        0.1,
        0,
    )


@pytest.mark.parametrize(
    "bad", [{"refinement": "joint"}, {"sweep_window_s": 0}, {"sweep_residual_mm": -1}]
)
def test_bad_sweep_parameters_are_named(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        EngineParams(**bad)


def test_pass_two_searches_around_the_start_and_reports_from_the_tracked_pose(
    cyl_model,  # noqa: F811
):
    tracked = np.array([0.5, -0.4, 0, 0, 0, 0])
    start = np.array([0.1, -0.1, 0, 0, 0, 0])  # the sweep's correction, near truth
    res = refine_ring(
        cyl_model,
        tracked,
        search_start=start,
        bounds_mm=0.3,
        bounds_deg=0.3,
    )
    assert res.reason == Reason.OK
    np.testing.assert_allclose(res.pose_initial, tracked)
    np.testing.assert_allclose(res.pose_refined[:2], [0, 0], atol=0.1)
    assert np.all(np.abs(res.pose_refined - start) <= 0.3 + 1e-9)
    # the correction is the whole move from the tracked pose
    whole = fiducial_displacement_mm(tracked, res.pose_refined - tracked, FIDUCIALS)
    assert res.fiducial_correction_mm == pytest.approx(float(whole))
    assert res.fiducial_correction_mm > 0.3
    # the initial label is the tracked pose's, not the start's
    at_tracked = refine_ring(cyl_model, tracked, bounds_mm=0.0, bounds_deg=0.0)
    assert (res.masks["full_initial"] == at_tracked.masks["full_initial"]).all()
