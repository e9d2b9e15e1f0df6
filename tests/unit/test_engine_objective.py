"""Fast objectives against plain brute-force implementations of their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from ultrabones.engine import EngineParams, prepare_specimen, process_frame
from ultrabones.engine.features import feature_maps
from ultrabones.engine.geometry import frame_geometry, select_samples
from ultrabones.engine.model import sample_surface
from ultrabones.engine.objective import (
    Eq3Objective,
    RobustObjective,
    Surface,
    bilinear,
)
from ultrabones.io.png import read_png
from ultrabones.io.record import open_record
from ultrabones.io.stl import read_stl
from ultrabones.transforms import (
    apply_rigid,
    invert_rigid,
    matrix_from_params,
    params_from_matrix,
)
from ultrabones.vocabulary import Reason

NO_FIBULA = (198255, 200992, 201241)
MARGIN = 6.0
DEFAULTS = EngineParams()


@pytest.fixture(scope="module")
def real(real_sample):
    record = open_record(real_sample)
    model = prepare_specimen(
        {k: read_stl(p) for k, p in record.bone_paths.items()}, params=EngineParams()
    )
    return record, model


def frame(record, k):
    rows = np.flatnonzero(record.poses["image"].to_numpy() != "")
    i = rows[k]
    image = read_png(record.image_path(record.poses["timestamp"].iat[i]))
    return image, params_from_matrix(record.ct_from_probe()[i])


def brute_robust(vertices, faces, pose, eps, cal, evidence, factor, sigma):
    """Direct quadrature: fine per-triangle samples weighted by their triangle area
    and the in-plane length of their normal at the perturbed pose."""
    ct_from_image0 = matrix_from_params(pose) @ cal.probe_from_image
    centre = apply_rigid(invert_rigid(ct_from_image0), vertices[faces].mean(axis=1))
    keep = np.abs(centre[:, 2]) < 3 * MARGIN  # culling far from the plane, any method
    pts, nrm, w = [], [], []
    for f in faces[keep]:
        p, n, _ = sample_surface(vertices, f[None], spacing_mm=0.08)
        tri = vertices[f]
        area = 0.5 * np.linalg.norm(np.cross(tri[1] - tri[0], tri[2] - tri[0]))
        pts.append(p), nrm.append(n), w.append(np.full(len(p), area / len(p)))
    pts, nrm, w = np.concatenate(pts), np.concatenate(nrm), np.concatenate(w)
    image_from_ct0 = invert_rigid(ct_from_image0)
    facing = (nrm @ image_from_ct0[:3, :3].T)[:, 1] < -DEFAULTS.facing_min
    # the definition's domain: within MARGIN of the image box at the initial pose
    p0 = apply_rigid(image_from_ct0, pts)
    (w_mm, h_mm), m = (np.array(cal.shape[::-1]) * cal.pixel_spacing_mm), MARGIN
    facing &= (np.abs(p0[:, 2]) <= m) & (p0[:, 0] >= -m) & (p0[:, 0] <= w_mm + m)
    facing &= (p0[:, 1] >= -m) & (p0[:, 1] <= h_mm + m)
    ct_from_image = matrix_from_params(pose + eps) @ cal.probe_from_image
    image_from_ct = invert_rigid(ct_from_image)
    q = apply_rigid(image_from_ct, pts[facing])
    slope = np.sqrt(1 - (nrm[facing] @ image_from_ct[2, :3]) ** 2)
    sx, sy = cal.pixel_spacing_mm
    col = ((q[:, 0] / sx - 0.5) - (factor - 1) / 2) / factor
    row = ((q[:, 1] / sy - 0.5) - (factor - 1) / 2) / factor
    g = np.exp(-0.5 * (q[:, 2] / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    value = bilinear(evidence, row, col)
    r0, c0 = np.floor(row), np.floor(col)
    rows, cols = evidence.shape
    out = (r0 < 0) | (c0 < 0) | (r0 >= rows - 1) | (c0 >= cols - 1)
    value[out] = -DEFAULTS.evidence_offset
    return float((w[facing] * slope * g * value).sum())


def test_robust_objective_matches_brute_force_on_real_frame(real):
    record, model = real
    cal = record.calibration
    image, pose = frame(record, 40)
    geom = frame_geometry(pose, cal, cal.shape)
    index, pts = select_samples(model, geom, slab_mm=MARGIN, margin_mm=MARGIN)
    normals = model.normals[index] @ geom.image_from_ct[:3, :3].T
    maps = feature_maps(image, spacing_mm=cal.pixel_spacing_mm)
    facing = normals[:, 1] < -DEFAULTS.facing_min
    fast = RobustObjective(
        geom,
        Surface(pts[facing], normals[facing], model.weights[index[facing]]),
        maps,
        sigma_mm=0.25,
        lam=0.0,
        fiducials=cal.probe_marker_fiducials_mm,
    )
    rng = np.random.default_rng(1234)
    eps = np.r_[[np.zeros(6)], rng.uniform(-0.6, 0.6, (2, 6))]
    v, f = model.vertices["Fibula"], model.faces["Fibula"]
    brute = [
        brute_robust(v, f, pose, e, cal, maps.evidence, maps.factor, 0.25) for e in eps
    ]
    # same integral, 0.25 mm vs 0.08 mm quadrature, slab culling vs none
    np.testing.assert_allclose(fast(eps), brute, rtol=0.03, atol=0.15)


def test_eq3_objective_matches_exact_distances_on_real_frame(real):
    record, model = real
    cal = record.calibration
    image, pose = frame(record, 60)
    geom = frame_geometry(pose, cal, cal.shape)
    index, pts = select_samples(model, geom, slab_mm=6.0, margin_mm=6.0)
    normals = model.normals[index] @ geom.image_from_ct[:3, :3].T
    r, c = np.mgrid[0 : cal.shape[0] : 2, 0 : cal.shape[1] : 2]
    rc = np.c_[r.ravel(), c.ravel()]
    intensity = image.astype(np.float32) / 255
    fast = Eq3Objective(
        geom,
        rc,
        Surface(pts, normals),
        intensity,
        gamma_mm=0.3,
        spacing_mm=model.spacing_mm,
        lam=0.0,
        fiducials=cal.probe_marker_fiducials_mm,
    )
    eps = np.array([[0.0] * 6, [0.3, -0.2, 0.1, 0.4, -0.3, 0.2]])
    import open3d as o3d

    from ultrabones.transforms import points_image_from_rc

    for e, got in zip(eps, fast(eps), strict=True):
        ct_from_image = matrix_from_params(pose + e) @ cal.probe_from_image
        x = apply_rigid(ct_from_image, points_image_from_rc(rc, cal.pixel_spacing_mm))
        q = o3d.core.Tensor((x - model.origin).astype(np.float32))
        d = model.scene().compute_distance(q, nthreads=1).numpy()
        expected = intensity[rc[d <= 0.3, 0], rc[d <= 0.3, 1]].mean()
        assert got == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("stamp", NO_FIBULA)
def test_real_frames_missing_the_fibula_are_rejected(real, stamp):
    record, model = real
    i = int(np.flatnonzero(record.poses["timestamp"].to_numpy() == stamp)[0])
    image = read_png(record.image_path(stamp))
    res = process_frame(
        image, record.ct_from_probe()[i], model=model, calibration=record.calibration
    )
    assert res.reason == Reason.NO_BONE_IN_VIEW


def test_real_frame_initial_label_size_is_the_readme_s(real):
    record, model = real
    image, pose = frame(record, 100)
    res = process_frame(
        image,
        matrix_from_params(pose),
        model=model,
        calibration=record.calibration,
        params=EngineParams(lam=1000.0),
    )
    # README: median 9,400 px within 0.3 mm per frame
    assert 4000 < res.masks["full_initial"].sum() < 20000
