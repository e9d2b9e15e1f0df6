"""The engine's fast paths give what the plain definitions give."""

from __future__ import annotations

import numpy as np
import pytest
from engine_fixtures import SHAPE, SPACING, calibration

from ultrabones.engine import EngineParams, prepare_specimen
from ultrabones.engine.geometry import _candidate_cells, frame_geometry, select_samples
from ultrabones.engine.labels import (
    _cells_near_plane,
    _point_triangle_dist2,
    render_label,
)
from ultrabones.transforms import apply_rigid, points_image_from_rc

GAMMA = 0.3


def sphere(radius, centre, rings=14, segments=20):
    """Closed UV sphere, outward winding; coarse, so its facets are visible."""
    theta = np.linspace(0, np.pi, rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1)
    v = np.r_[ring.reshape(-1, 3), [[0, 0, 1], [0, 0, -1]]] * radius + centre
    i, j = np.arange(segments), (np.arange(segments) + 1) % segments
    faces = [
        np.r_[
            np.c_[a + i, a + segments + j, a + j],
            np.c_[a + i, a + segments + i, a + segments + j],
        ]
        for a in range(0, (rings - 2) * segments, segments)
    ]
    top, bottom, last = len(v) - 2, len(v) - 1, (rings - 2) * segments
    faces += [np.c_[np.full(segments, top), i, j]]
    faces += [np.c_[np.full(segments, bottom), last + j, last + i]]
    return v, np.concatenate(faces)


@pytest.fixture(scope="module")
def two_bones():
    """A sphere cut by the image plane and a far one (60 mm off the plane)."""
    return prepare_specimen(
        {
            "Near": sphere(4.0, (8.0, 6.0, 0.5)),
            "Far": sphere(4.0, (8.0, 6.0, 60.0)),
        },
        params=EngineParams(),
    )


POSES = [[0.0] * 6, [0.3, -0.2, 0.4, 6.0, -5.0, 4.0], [-1.0, 0.5, 2.5, -9.0, 3.0, 7.0]]


@pytest.mark.parametrize("pose", POSES)
@pytest.mark.parametrize(("slab", "margin"), [(0.5, 0.5), (5.0, 5.0), (0.25, 30.0)])
def test_select_samples_equals_testing_every_sample(two_bones, pose, slab, margin):
    geom = frame_geometry(np.array(pose), calibration(), SHAPE)
    index, pts = select_samples(two_bones, geom, slab_mm=slab, margin_mm=margin)
    local = apply_rigid(geom.image_from_ct, two_bones.points)
    w, h = geom.extent_mm
    keep = np.abs(local[:, 2]) <= slab
    keep &= (local[:, 0] >= -margin) & (local[:, 0] <= w + margin)
    keep &= (local[:, 1] >= -margin) & (local[:, 1] <= h + margin)
    np.testing.assert_array_equal(index, np.flatnonzero(keep))
    np.testing.assert_allclose(pts, local[keep], atol=1e-9)
    assert index.size > 0


def test_far_bone_cells_are_not_visited(two_bones):
    geom = frame_geometry(np.zeros(6), calibration(), SHAPE)
    cells = _candidate_cells(two_bones, geom, 5.0, 30.0)
    starts, stops = two_bones.cell_start[cells], two_bones.cell_start[cells + 1]
    visited = np.concatenate(
        [np.arange(a, b) for a, b in zip(starts, stops, strict=True)]
    )
    far = two_bones.bone_names.index("Far")
    assert visited.size > 0 and not np.any(two_bones.bone_index[visited] == far)


def exact_distances(model, ct_from_image, rc):
    """Point-to-mesh distances of pixel centres (open3d, float32 about the centre)."""
    import open3d as o3d

    points_ct = apply_rigid(ct_from_image, points_image_from_rc(rc, SPACING))
    query = o3d.core.Tensor((points_ct - model.origin).astype(np.float32))
    return model.scene().compute_distance(query, nthreads=1).numpy()


@pytest.mark.parametrize("eps", [[0.0] * 6, [0.4, -0.3, 0.6, 0.8, -0.7, 0.5]])
def test_render_label_equals_exact_distances_on_every_pixel(two_bones, eps):
    geom = frame_geometry(np.array(POSES[1]), calibration(), SHAPE)
    render = render_label(two_bones, geom, np.array(eps), gamma_mm=GAMMA)
    moved = frame_geometry(np.array(POSES[1]) + eps, calibration(), SHAPE)
    rc = np.argwhere(np.ones(SHAPE, bool))
    exact = exact_distances(two_bones, moved.ct_from_image, rc).reshape(SHAPE)
    disagree = render.mask ^ (exact <= GAMMA)
    # only knife-edge pixels (open3d's float32 distances) may differ
    assert np.all(np.abs(exact[disagree] - GAMMA) < 1e-5)
    assert (exact <= GAMMA).sum() > 500
    np.testing.assert_array_equal(np.argwhere(render.mask), render.rc)


def test_render_label_normals_are_the_nearest_triangles(two_bones):
    geom = frame_geometry(np.array(POSES[1]), calibration(), SHAPE)
    render = render_label(two_bones, geom, np.zeros(6), gamma_mm=GAMMA)
    # on a sphere about (8, 6, 0.5) the facet normals point away from the centre
    centre = apply_rigid(geom.image_from_ct, np.array([[8.0, 6.0, 0.5]]))[0]
    radial = points_image_from_rc(render.rc, SPACING) - centre
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    cos = (render.normals_image * radial).sum(axis=1)
    assert cos.min() > np.cos(np.radians(20)) and len(cos) > 500


def test_far_bone_triangles_are_not_visited(two_bones):
    geom = frame_geometry(np.zeros(6), calibration(), SHAPE)
    tri = two_bones.triangles()
    cells = _cells_near_plane(tri, geom.image_from_ct, geom.extent_mm, GAMMA)
    starts, stops = tri.cell_start[cells], tri.cell_start[cells + 1]
    visited = np.concatenate(
        [np.arange(a, b) for a, b in zip(starts, stops, strict=True)]
    )
    # the far sphere spans z 56-64 mm, the near one -3.5-4.5 mm
    assert visited.size > 0 and tri.corners[visited, :, 2].max() < 10.0


def test_point_triangle_distance_matches_dense_sampling():
    from ultrabones.engine.model import sample_surface

    rng = np.random.default_rng(1234)
    for _ in range(20):
        q = rng.normal(0, 1, (3, 3))
        dense, _, _ = sample_surface(q, np.array([[0, 1, 2]]), spacing_mm=0.01)
        dense = np.r_[dense, q]
        # points near each Voronoi region: corners, edges and the face
        for p in np.r_[rng.normal(0, 1.5, (10, 3)), q + rng.normal(0, 0.1, (3, 3))]:
            brute = np.sqrt(((dense - p) ** 2).sum(axis=1).min())
            got = np.sqrt(_point_triangle_dist2(p, q))
            assert got <= brute + 1e-9 and got >= brute - 0.01


def test_rigid_from_params_is_matrix_from_params():
    from ultrabones.engine.geometry import rigid_from_params
    from ultrabones.transforms import matrix_from_params

    rng = np.random.default_rng(1234)
    params = np.c_[rng.normal(0, 50, (3, 5, 3)), rng.uniform(-180, 180, (3, 5, 3))]
    np.testing.assert_allclose(
        rigid_from_params(params), matrix_from_params(params), atol=1e-13
    )
    assert rigid_from_params(params[0, 0]).shape == (4, 4)


@pytest.mark.parametrize("f", [2, 3])
def test_block_mean_is_the_mean_of_each_block(f):
    from ultrabones.engine.features import _block_mean

    image = np.random.default_rng(1234).integers(0, 256, (11, 10)).astype(np.uint8)
    r, c = 11 // f, 10 // f
    ref = image[: r * f, : c * f].reshape(r, f, c, f).mean(axis=(1, 3))
    np.testing.assert_allclose(_block_mean(image, f), ref, rtol=1e-6)


def test_mean_below_is_the_window_mean_with_zeros_past_the_image():
    from ultrabones.engine.features import _mean_below

    image = np.random.default_rng(1234).random((30, 4)).astype(np.float32)
    padded = np.r_[image, np.zeros((9, 4))]
    ref = np.array([padded[r + 2 : r + 9].mean(axis=0) for r in range(30)])
    np.testing.assert_allclose(_mean_below(image, 2, 8), ref, atol=1e-6)


def test_information_matrix_is_the_weighted_normal_equations():
    from ultrabones.engine.geometry import _information

    rng = np.random.default_rng(1234)
    points, normals = rng.normal(0, 3, (500, 3)), rng.normal(0, 1, (500, 3))
    weights, centre = rng.random(500), np.array([1.0, -2.0, 0.0])
    arm = (points - centre) * (np.pi / 180.0)
    A = np.concatenate([normals, np.cross(arm, normals)], axis=1)
    w = weights * np.exp(-0.5 * (points[:, 2] / 0.25) ** 2)
    info, total = _information(points, normals, weights, centre, 0.25)
    np.testing.assert_allclose(info, (A * w[:, None]).T @ A, rtol=1e-10, atol=1e-14)
    assert total == pytest.approx(w.sum(), rel=1e-12)


def test_robust_objective_run_of_samples_gives_the_full_sum():
    from ultrabones.engine.features import FeatureMaps
    from ultrabones.engine.objective import RobustObjective, Surface, bilinear

    outside = -EngineParams().evidence_offset

    rng = np.random.default_rng(1234)
    geom = frame_geometry(np.array(POSES[1]), calibration(), SHAPE)
    points = np.c_[rng.uniform(-1, 17, 3000), rng.uniform(-1, 13, 3000)]
    points = np.c_[points, rng.uniform(-5, 5, 3000)]
    normals = rng.normal(0, 1, (3000, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    weights, evidence = rng.random(3000), rng.normal(0, 1, (60, 80))
    objective = RobustObjective(
        geom,
        Surface(points, normals, weights),
        FeatureMaps(evidence, 2, outside),
        sigma_mm=0.25,
        lam=0.0,
        fiducials=np.zeros((1, 3)),
    )
    eps = rng.uniform(-1, 1, (40, 6))
    T = geom.image_from_image0(eps)
    q = np.einsum("sij,kj->ski", T[:, :3, :3], points) + T[:, None, :3, 3]
    nz = np.einsum("sj,kj->sk", T[:, 2, :3], normals)
    g = weights * np.exp(-0.5 * (q[..., 2] / 0.25) ** 2) * np.sqrt(1 - nz**2)
    col, row = q[..., 0] / 0.2 - 0.5, q[..., 1] / 0.2 - 0.5
    value = bilinear(evidence, row, col)
    out = (np.floor(row) < 0) | (np.floor(col) < 0)
    out |= (np.floor(row) >= 59) | (np.floor(col) >= 79)
    value[out] = outside
    brute = (g * value * (np.abs(q[..., 2]) <= 0.75)).sum(axis=1) * objective.scale
    np.testing.assert_allclose(objective.data(eps), brute, rtol=1e-9, atol=1e-12)
    assert np.abs(brute).min() > 0


def test_two_pass_model_equals_sorting_all_samples(two_bones):
    from ultrabones.engine.model import CELL_MM, sample_surface

    meshes = [sphere(4.0, (8.0, 6.0, 60.0)), sphere(4.0, (8.0, 6.0, 0.5))]
    parts = [sample_surface(v, f, spacing_mm=0.25) for v, f in meshes]  # Far, Near
    points = np.concatenate([p for p, _, _ in parts])
    keys = np.floor(points / CELL_MM).astype(np.int64)
    order = np.lexsort((keys[:, 2], keys[:, 1], keys[:, 0]))
    np.testing.assert_array_equal(two_bones.points, points[order])
    normals = np.concatenate([n for _, n, _ in parts])[order].astype(np.float32)
    np.testing.assert_array_equal(two_bones.normals, normals)
    bone = np.repeat([0, 1], [len(parts[0][0]), len(parts[1][0])])[order]
    np.testing.assert_array_equal(two_bones.bone_index, bone)
    cells = np.unique(keys, axis=0)
    np.testing.assert_array_equal(two_bones.cell_keys, cells)
    assert two_bones.cell_start[-1] == len(points)
