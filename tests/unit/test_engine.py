"""Label engine: labels, physics filter, objectives and refinement on known geometry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from engine_fixtures import SHAPE, SPACING, calibration

from ultrabones.engine import EngineParams, FrameResult, prepare_specimen, process_frame
from ultrabones.engine.frame import _lit
from ultrabones.engine.geometry import (
    FrameGeometry,
    fiducial_displacement_mm,
    flat_directions,
    frame_geometry,
)
from ultrabones.engine.labels import (
    first_interface_mm,
    incidence_deg,
    render_label,
    shadow_mask,
)
from ultrabones.engine.model import sample_surface
from ultrabones.engine.refine import _population, at_bound
from ultrabones.engine.warm import pilot_indices, sweep_prior
from ultrabones.errors import ConfigError
from ultrabones.studies.bench import pose_errors
from ultrabones.sweep.lam import choose_lambda
from ultrabones.transforms import matrix_from_params, params_from_matrix
from ultrabones.vocabulary import Reason

RADIUS = 3.0
CENTRE = (8.0, 6.0)  # image x (cols) and y (depth), mm


def cylinder(radius=RADIUS, length=12.0, segments=180, rings=13, centre=CENTRE):
    """Closed polygonal cylinder along z (the image normal), outward winding."""
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    xy = np.stack([radius * np.cos(phi), radius * np.sin(phi)], axis=1) + centre
    z = np.linspace(-length / 2, length / 2, rings)
    v = np.r_[
        np.c_[np.tile(xy, (rings, 1)), np.repeat(z, segments)],
        [[*centre, z[0]], [*centre, z[-1]]],
    ]
    i = np.arange(segments)
    j = (i + 1) % segments
    side = [
        np.r_[np.c_[i, j, j + segments], np.c_[i, j + segments, i + segments]]
        + k * segments
        for k in range(rings - 1)
    ]
    last = (rings - 1) * segments
    caps = np.r_[
        np.c_[np.full(segments, rings * segments), j, i],
        np.c_[np.full(segments, rings * segments + 1), i + last, j + last],
    ]
    return v, np.r_[np.concatenate(side), caps]


@pytest.fixture(scope="module")
def cyl_model():
    return prepare_specimen({"Bone": cylinder()}, params=EngineParams())


def pixel_xy(shape=SHAPE):
    r, c = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (c + 0.5) * SPACING[0], (r + 0.5) * SPACING[1]


def test_render_label_matches_brute_force_ring(cyl_model):
    geom = frame_geometry(np.zeros(6), calibration(), SHAPE)
    render = render_label(cyl_model, geom, np.zeros(6), gamma_mm=0.3)
    x, y = pixel_xy()
    brute = np.abs(np.hypot(x - CENTRE[0], y - CENTRE[1]) - RADIUS) <= 0.3
    disagree = render.mask ^ brute
    # polygon chords differ from the circle by < 5e-4 mm: only knife-edge pixels
    assert disagree.sum() <= 4 and brute.sum() > 1000


def test_shadow_is_lower_arc_below_upper_arc():
    x, y = pixel_xy()
    r = np.hypot(x - CENTRE[0], y - CENTRE[1])
    ring = np.abs(r - RADIUS) <= 0.3
    shadow = shadow_mask(ring)
    lower = ring & (y > CENTRE[1]) & (np.abs(x - CENTRE[0]) < RADIUS - 0.6)
    upper = ring & (y < CENTRE[1])
    assert shadow[lower].all() and not shadow[upper].any()


def test_incidence_angle_of_known_normals():
    normals = np.array([[0, -1, 0], [1, 0, 0], [1, -1, 0], [0, 0, 1], [0, -1, 5]])
    # the 3D angle: a normal tilted out of the plane is oblique (78.7 deg), though
    # its in-plane projection faces the beam
    expected = [0, 90, 45, 90, np.degrees(np.arccos(1 / np.sqrt(26)))]
    np.testing.assert_allclose(incidence_deg(normals), expected, atol=1e-9)


def test_oblique_pixels_are_the_ring_flanks(cyl_model):
    geom = frame_geometry(np.zeros(6), calibration(), SHAPE)
    render = render_label(cyl_model, geom, np.zeros(6), gamma_mm=0.3)
    angle = incidence_deg(render.normals_image)
    x = (render.rc[:, 1] + 0.5) * SPACING[0] - CENTRE[0]
    y = (render.rc[:, 0] + 0.5) * SPACING[1] - CENTRE[1]
    expected = np.degrees(np.arccos(np.abs(y) / np.hypot(x, y)))
    # normals are those of a nearest facet of the 180-gon: <= 2 deg off radial
    assert np.abs(angle - expected).max() < 2.1


def test_surface_samples_cover_the_mesh():
    v, f = cylinder(segments=24)
    pts, normals, weights = sample_surface(v, f, spacing_mm=0.2)
    rng = np.random.default_rng(1234)
    tri = v[f[rng.integers(0, len(f), 2000)]]
    a, b = rng.random((2, 2000, 1))
    swap = a + b > 1
    a, b = np.where(swap, 1 - a, a), np.where(swap, 1 - b, b)
    probe = tri[:, 0] + a * (tri[:, 1] - tri[:, 0]) + b * (tri[:, 2] - tri[:, 0])
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(pts).query(probe)
    assert dist.max() <= 0.2 and len(pts) < 60000
    assert np.allclose(np.linalg.norm(normals, axis=1), 1)
    tri = v[f]
    area = 0.5 * np.linalg.norm(
        np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1
    )
    assert weights.sum() == pytest.approx(area.sum(), rel=1e-9)


def test_fiducial_displacement_of_pure_translation():
    eps = np.array([[0.3, 0.4, 0.0, 0, 0, 0]])
    fid = np.array([[10.0, 0, 0], [0, 10.0, 0]])
    np.testing.assert_allclose(fiducial_displacement_mm(np.zeros(6), eps, fid), 0.5)


def test_empty_mesh_is_an_error_naming_the_bone():
    with pytest.raises(ValueError, match="bone 'Tibia'.*no triangles"):
        prepare_specimen({"Tibia": (np.zeros((3, 3)), np.zeros((0, 3), int))})


def test_missing_image_is_no_image(cyl_model):
    res = process_frame(None, np.eye(4), model=cyl_model, calibration=calibration())
    assert res.reason == Reason.NO_IMAGE and not res.masks["label"].any()


def test_wrong_size_image_is_rejected(cyl_model):
    img = np.zeros((10, 10), np.uint8)
    res = process_frame(img, np.eye(4), model=cyl_model, calibration=calibration())
    assert res.reason == Reason.WRONG_IMAGE_SIZE


def test_corrupt_image_array_is_unreadable(cyl_model):
    img = np.full(SHAPE, np.nan)
    res = process_frame(img, np.eye(4), model=cyl_model, calibration=calibration())
    assert res.reason == Reason.UNREADABLE_IMAGE


def test_nan_pose_is_invalid(cyl_model):
    img = np.zeros(SHAPE, np.uint8)
    pose = np.full((4, 4), np.nan)
    res = process_frame(img, pose, model=cyl_model, calibration=calibration())
    assert res.reason == Reason.INVALID_POSE


def test_pose_far_from_bone_is_no_bone_in_view(cyl_model):
    img = np.zeros(SHAPE, np.uint8)
    far = matrix_from_params([0, 0, 40.0, 0, 0, 0])
    res = process_frame(img, far, model=cyl_model, calibration=calibration())
    assert res.reason == Reason.NO_BONE_IN_VIEW


def ring_image(cyl_shift=(0.0, 0.0)):
    """Bright upper arc with a dark shadow below, on mid-grey speckle."""
    rng = np.random.default_rng(7)
    x, y = pixel_xy()
    cx, cy = CENTRE[0] + cyl_shift[0], CENTRE[1] + cyl_shift[1]
    r = np.hypot(x - cx, y - cy)
    img = 60 + 25 * rng.random(SHAPE)
    img[(r < RADIUS) | ((y > cy) & (np.abs(x - cx) < RADIUS))] = 5
    img[(np.abs(r - RADIUS) <= 0.2) & (y < cy)] = 230
    return img.astype(np.uint8)


def refine_ring(model, start, *, image=None, search_start=None, **params):
    """Refine the ring image from pose parameters ``start`` (a weak, quick search).

    ``search_start``: ``process_frame``'s ``start`` (pass two of the sweep mode).
    """
    return process_frame(
        ring_image() if image is None else image,
        matrix_from_params(start),
        model=model,
        calibration=calibration(),
        params=EngineParams(lam=0.5, coarse_points=400, **params),
        seed=3,
        start=search_start,
    )


def test_refinement_recovers_known_shift(cyl_model):
    res = refine_ring(cyl_model, [0.5, -0.4, 0, 0, 0, 0])
    assert res.reason == Reason.OK
    # the image shows the bone at the true pose (zero): x, y must come back
    np.testing.assert_allclose(res.pose_refined[:2], [0, 0], atol=0.1)  # 1 px
    assert res.objective_refined > res.objective_initial


def test_in_plane_refinement_keeps_the_tracked_image_plane(cyl_model):
    cal = calibration()
    start = [0.5, -0.4, 0.3, 0.4, -0.3, 0.2]
    res = refine_ring(cyl_model, start)
    assert res.objective_refined > res.objective_initial
    placed = [
        matrix_from_params(p) @ cal.probe_from_image
        for p in (res.pose_initial, res.pose_refined)
    ]
    normal = placed[0][:3, 2]
    # the same plane: its normal and its offset along the normal do not move
    np.testing.assert_allclose(placed[1][:3, 2], normal, atol=1e-9)
    assert abs(normal @ (placed[1][:3, 3] - placed[0][:3, 3])) < 1e-9
    assert not np.allclose(res.pose_refined, res.pose_initial)
    rigid = refine_ring(cyl_model, start, motion="rigid")
    assert not np.allclose(
        (matrix_from_params(rigid.pose_refined) @ cal.probe_from_image)[:3, 2], normal
    )


def test_refined_pose_never_worse_than_start(cyl_model):
    res = process_frame(
        ring_image(), np.eye(4), model=cyl_model, calibration=calibration(), seed=5
    )
    assert res.objective_refined >= res.objective_initial


def test_result_pose_is_record_convention(cyl_model):
    T = matrix_from_params([0.1, 0.2, 0.0, 0.3, -0.2, 0.1])
    res = process_frame(None, T, model=cyl_model, calibration=calibration())
    np.testing.assert_allclose(res.pose_initial, params_from_matrix(T))


def test_model_save_load_round_trip_is_byte_identical(cyl_model, tmp_path):
    cyl_model.save(tmp_path / "a")
    again = type(cyl_model).load(tmp_path / "a")
    again.save(tmp_path / "b")
    for path in sorted((tmp_path / "a").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()
    np.testing.assert_array_equal(again.points, cyl_model.points)


def test_label_error_of_shifted_line_is_the_shift():
    from ultrabones.evaluate.metrics import label_error_mm

    a = np.zeros(SHAPE, bool)
    b = np.zeros(SHAPE, bool)
    a[40, 10:150] = True
    b[43, 10:150] = True
    assert label_error_mm(a, b, spacing_mm=SPACING) == pytest.approx(0.3)


def test_label_error_of_empty_mask_is_nan():
    from ultrabones.evaluate.metrics import label_error_mm

    a = np.zeros(SHAPE, bool)
    assert np.isnan(label_error_mm(a, a | True, spacing_mm=SPACING))


def test_flat_directions_of_a_cylinder_are_its_axis_and_roll(cyl_model):
    pts = cyl_model.points
    near = np.abs(pts[:, 2]) < 1.0
    centre = np.array([*CENTRE, 0.0])
    flat = flat_directions(
        pts[near],
        cyl_model.normals[near].astype(float),
        cyl_model.weights[near].astype(float),
        centre,
        sigma_mm=0.25,
        ratio=0.05,
    )
    span = flat.T @ flat  # projector onto the flat directions
    axis_shift, roll, lateral = np.eye(6)[2], np.eye(6)[5], np.eye(6)[0]
    np.testing.assert_allclose(span @ axis_shift, axis_shift, atol=1e-3)
    np.testing.assert_allclose(span @ roll, roll, atol=1e-3)
    assert np.linalg.norm(span @ lateral) < 1e-3


def test_local_motion_round_trip():
    T = matrix_from_params([5, 1, 2, 3, 4, 5])
    geom = FrameGeometry([10, 20, 30, 40, -50, 170], T, SPACING, SHAPE)
    eps = np.array([0.3, -0.2, 0.5, 0.4, -0.7, 0.9])
    local = geom.local_from_eps(eps, np.array([4.0, 3.0, 0.0]))
    back = geom.eps_from_local(local, np.array([4.0, 3.0, 0.0]))
    np.testing.assert_allclose(back, eps, atol=1e-9)


def test_refinement_does_not_move_along_the_bone_axis(cyl_model):
    res = refine_ring(cyl_model, [0.5, -0.4, 0.6, 0, 0, 0])
    # the image cannot see motion along the cylinder's axis (z): it stays put
    assert abs(res.pose_refined[2] - 0.6) < 0.05
    np.testing.assert_allclose(res.pose_refined[:2], [0, 0], atol=0.1)


def test_pose_error_of_a_pure_shift_is_the_shift():
    cal = calibration()
    res = FrameResult(
        "ok", np.array([0.3, 0, 0, 0, 0, 0]), np.array([0, 0.4, 0, 0, 0, 0.0])
    )
    err = pose_errors(res, np.eye(4), calibration=cal, label_rc=np.zeros((0, 2)))
    assert err["pose_error_mm_initial"] == pytest.approx(0.3)
    assert err["pose_error_mm_refined"] == pytest.approx(0.4)
    assert err["fiducial_error_mm_refined"] == pytest.approx(0.4)
    assert np.isnan(err["label_pose_error_mm_refined"])


def test_at_bound_flags_parameters_at_the_box_edge():
    eps = np.array(
        [
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.5, -0.97, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, -0.99, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        ]
    )
    hits = at_bound(eps, bounds_mm=1.0, bounds_deg=1.0)
    assert hits.tolist() == [False, False, True, True]
    # a parameter that cannot move is never "at its bound"
    assert not at_bound(np.zeros(6), bounds_mm=0.0, bounds_deg=1.0)


#: A select-lambda table of three lambdas, none at a bound: 10 corrects nothing, 1
#: keeps 75 % of 0.1's correction, and 0.1 has the least label error (the truth's).
THREE_LAMBDAS = {
    "lam": [0.1, 1.0, 10.0],
    "correction_mm_median": [0.4, 0.3, 0.0],
    "bound_hit_fraction": [0.0, 0.0, 0.0],
    "label_error_mm_median": [0.01, 0.05, 0.2],
}


def three_lambdas(discarded_fraction: list[float]) -> pd.DataFrame:
    """:data:`THREE_LAMBDAS` with each lambda's discarded fraction."""
    return pd.DataFrame({**THREE_LAMBDAS, "discarded_fraction": discarded_fraction})


def test_choose_lambda_with_truth_takes_least_error_within_discard_bound():
    table = three_lambdas([0.5, 0.1, 0.0])
    lam, rule = choose_lambda(table, choose_by="truth")
    # 0.1 has the least error but discards half the frames: not allowed to win
    assert lam == 1.0 and "label error" in rule


def test_choose_lambda_without_truth_takes_strongest_penalty_that_still_corrects():
    table = pd.DataFrame(
        {
            "lam": [0.01, 0.1, 1.0, 10.0],
            "correction_mm_median": [0.6, 0.5, 0.35, 0.0],
            "bound_hit_fraction": [0.3, 0.0, 0.0, 0.0],
            "discarded_fraction": [0.3, 0.0, 0.0, 0.0],
        }
    )
    # 0.01 runs to the bounds; of the rest, 1.0 still keeps >= 50 % of 0.1's motion
    lam, rule = choose_lambda(table)
    assert lam == 1.0 and "correction" in rule


def test_choose_lambda_by_evidence_ignores_the_truth_columns():
    # the release's rule: a simulated table (with truth) chooses as a real one would
    table = three_lambdas([0.0, 0.0, 0.0])
    assert choose_lambda(table)[0] == 1.0
    assert choose_lambda(table.drop(columns="label_error_mm_median"))[0] == 1.0
    assert choose_lambda(table, choose_by="truth")[0] == 0.1


def test_choose_lambda_refuses_an_unknown_rule_or_truth_without_truth():
    table = pd.DataFrame(
        {
            "lam": [0.1],
            "correction_mm_median": [0.4],
            "bound_hit_fraction": [0.0],
            "discarded_fraction": [0.0],
        }
    )
    with pytest.raises(ConfigError, match="unknown lambda rule 'oracle'.*evidence"):
        choose_lambda(table, choose_by="oracle")
    with pytest.raises(ConfigError, match="needs the simulator's truth"):
        choose_lambda(table, choose_by="truth")


def test_bone_beyond_the_search_box_is_rejected_at_bound(cyl_model):
    # the image shows the bone 1.6 mm from the start pose: the box (0.5 mm, and
    # rotations that cannot shift this image) cannot reach it
    res = refine_ring(
        cyl_model,
        np.zeros(6),
        image=ring_image(cyl_shift=(1.6, 0.0)),
        bounds_mm=0.5,
        bounds_deg=0.0,
        reject_at_bound=True,
    )
    assert res.reason == Reason.CORRECTION_AT_BOUND
    assert not res.masks["label"].any()


def test_first_interface_is_the_shallowest_label_pixel_per_column():
    full = np.zeros((50, 4), bool)
    full[10, 0] = full[30, 0] = True  # two interfaces: the first one counts
    full[20:23, 1] = True
    depth = first_interface_mm(full, (0.1, 0.2))
    np.testing.assert_allclose(depth[:2], [10.5 * 0.2, 20.5 * 0.2])
    assert np.isinf(depth[2:]).all()


def test_samples_below_a_shallower_bone_are_in_its_shadow():
    full = np.zeros((100, 10), bool)
    full[20, :5] = True  # a bone at 2.05 mm depth under columns 0-4
    spacing = (0.1, 0.1)
    points = np.array(
        [
            [0.25, 2.05, 0.0],  # on the interface
            [0.25, 2.05 + 1.5 + 0.5, 0.0],  # a deeper bone below the margin
            [0.75, 6.0, 0.0],  # deep, but no bone above in its column
            [-1.0, 9.0, 0.0],  # outside the image's columns
        ]
    )
    lit = _lit(points, full, spacing, margin_mm=1.5)
    assert lit.tolist() == [True, False, True, True]


def test_sweep_prior_is_the_median_of_enough_pilots():
    eps = np.array([[0.1] * 6, [0.3] * 6, [0.2] * 6, [np.nan] * 6])
    np.testing.assert_allclose(sweep_prior(eps), [0.2] * 6)
    assert sweep_prior(eps[:2]) is None  # two kept pilots are not a sweep


def test_pilots_spread_over_the_candidates():
    picks = pilot_indices(np.arange(100, 200), 4)
    assert picks.tolist() == [112, 137, 162, 187]
    assert pilot_indices(np.arange(3), 12).tolist() == [0, 1, 2]
    assert pilot_indices(np.arange(3), 0).size == 0


def test_prior_joins_the_initial_population_clipped_to_the_box():
    bounds = np.array([[-1.0, 1.0]] * 6)
    prior = np.array([0.5, -2.0, 0, 0, 0, 0])
    pop = _population(bounds, 10, np.random.default_rng(0), prior)
    np.testing.assert_allclose(pop[0], 0.0)
    np.testing.assert_allclose(pop[1], [0.5, -1.0, 0, 0, 0, 0])


def test_bench_reports_over_several_simulated_cohorts(capsys):
    import json

    from ultrabones.cli import main

    code = main(
        ["bench", "--preset", "tiny", "--frames", "2", "--cohorts", "2", "--json"]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 4
    assert [c["seed"] for c in summary["cohorts"]] == [0, 1]
    assert {"label_error_mm_median_refined", "improved_fraction"} <= summary.keys()


def test_bench_cohorts_need_a_preset(real_sample):
    from ultrabones.cli import main

    assert main(["bench", "--record", str(real_sample), "--cohorts", "2"]) == 1
