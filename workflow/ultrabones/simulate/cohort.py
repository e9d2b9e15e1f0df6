"""Whole cohorts, single specimens and single sweeps, written in the raw layout.

Every random draw comes from ``rng_for(seed, specimen, ...)`` or
``rng_for(seed, specimen, sweep, ...)``, so a sweep generated alone is byte-identical
to the same sweep of a whole-cohort run.

Three surfaces per specimen (`SweepScene`): the true bones make the images and the
truth labels, a bone without a CT model is imaged too, and the CT models the
pipeline receives (``ct/bones``) are the true bones' segmentation, a few tenths of a
mm off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..io.calibration import Calibration, write_calibration
from ..io.markers import write_marker_ini
from ..io.png import write_png
from ..io.record import link_record_folder, write_poses_table
from ..io.registration import write_registration
from ..io.stl import read_stl, write_stl
from ..io.tables import write_table, write_yaml
from ..io.tracker import write_tracker_stream
from ..layout import (
    bones_folder,
    specimen_folder,
    sweep_folder,
    true_calibration,
    truth_of,
)
from ..transforms import (
    apply_rigid,
    invert_rigid,
    matrix_from_params,
    params_from_matrix,
    rotation_angle_deg,
)
from .anatomy import BONES, Anatomy, make_anatomy, sphere_surface
from .geometry import (
    ImageGrid,
    bone_scene,
    cast_columns,
    cast_slab,
    full_label,
    visible_label,
)
from .motion import (
    ERROR_MODELS,
    IMAGE_PERIOD_MS,
    TRACKER_HZ,
    ErrorModel,
    Segment,
    calibration_error,
    depth_scale,
    draw_drift,
    draw_path,
    estimate_registration,
    stream_at,
    tracker_streams,
)
from .presets import (
    Preset,
    ProbeTruth,
    Sources,
    get_preset,
    rng_for,
    true_probe,
    write_true_calibration,
)
from .render import draw_tissue, elevation_offsets_mm, make_bank, render_frame
from .segmentation import segment_bone

__all__ = [
    "GAMMA_MM",
    "SweepId",
    "SweepScene",
    "ct_bones",
    "misalignment_3d_mm",
    "frame_misalignment",
    "misalignment_mm",
    "simulate_cohort",
    "simulate_specimen",
    "simulate_sweep",
    "write_sweep",
    "sweep_plans",
    "unmodelled_at",
]

log = logging.getLogger(__name__)
GAMMA_MM = 0.3
#: Sources that make the record err; ``--errors none`` (the record is the truth)
#: switches them off with the error model.
_RECORD_ERRORS = ("ct_segmentation", "sos_depth_scale", "bone_drift")


def _check(preset, specimen=None, sweep=None, frames=None, errors="paper") -> Preset:
    preset = get_preset(preset) if isinstance(preset, str) else preset
    if specimen is not None and specimen not in preset.specimens:
        raise ConfigError(
            f"unknown specimen {specimen!r} for preset {preset.name!r}; expected one "
            f"of {', '.join(preset.specimens)}"
        )
    if sweep is not None and sweep not in preset.sweeps:
        raise ConfigError(
            f"unknown sweep {sweep!r} for preset {preset.name!r}; expected one of "
            f"{', '.join(preset.sweeps)}"
        )
    if frames is not None and int(frames) < 1:
        raise ConfigError(f"frames must be a positive count, got {frames}")
    if errors not in ERROR_MODELS:
        raise ConfigError(
            f"unknown errors {errors!r}; expected one of {', '.join(ERROR_MODELS)}"
        )
    return preset


def _sources(preset: Preset, model: ErrorModel) -> Sources:
    """Return the preset's sources, less the record's errors when it is exact."""
    if not model.exact:
        return preset.sources
    return replace(preset.sources, **dict.fromkeys(_RECORD_ERRORS, False))


def ct_bones(anatomy: Anatomy, *, seed: int, specimen: str, sources: Sources) -> dict:
    """Return the bone models the pipeline receives (``ct/bones``), CT frame.

    With ``sources.ct_segmentation`` the true surfaces' CT segmentation
    (`segment_bone`: displaced 0.2-0.5 mm RMS along the normal, decimated), else
    the true surfaces.
    """
    if not sources.ct_segmentation:
        return anatomy.bones
    return {
        name: segment_bone(v, f, rng=rng_for(seed, specimen, "ct-segmentation", name))
        for name, (v, f) in anatomy.bones.items()
    }


@dataclass(frozen=True)
class SweepScene:
    """A specimen's raycasting scenes, split by which surface answers which query.

    Rays (``cast_rays``, what the probe images) meet the true surfaces of every bone,
    the ones without a CT model too; distances and closest points (the truth labels)
    only the modelled bones' true surfaces. It stands in for an open3d
    ``RaycastingScene`` wherever the renderer and the truth masks take one.

    Attributes
    ----------
    render : open3d.t.geometry.RaycastingScene
        True modelled and unmodelled bones.
    truth : open3d.t.geometry.RaycastingScene
        True modelled bones.
    ct : open3d.t.geometry.RaycastingScene or None
        The CT models of ``ct/bones`` (the record's labels); None where no truth is
        written.
    unmodelled : open3d.t.geometry.RaycastingScene or None
        The bones without a CT model (None when ``unmodelled_bone`` is off).
    """

    render: object
    truth: object
    ct: object
    unmodelled: object

    def cast_rays(self, rays, *args, **kwargs):
        """Cast ``rays`` into the imaged scene (``render``)."""
        return self.render.cast_rays(rays, *args, **kwargs)

    def compute_distance(self, points, *args, **kwargs):
        """Distance of ``points`` to the true modelled bones (``truth``)."""
        return self.truth.compute_distance(points, *args, **kwargs)

    def compute_closest_points(self, points, *args, **kwargs):
        """Closest points of the true modelled bones (``truth``)."""
        return self.truth.compute_closest_points(points, *args, **kwargs)


def sweep_scene(anatomy: Anatomy, ct: dict | None, sources: Sources) -> SweepScene:
    """Build a specimen's `SweepScene` from its anatomy and CT models ``ct``.

    ``ct`` None (no truth to score) leaves ``SweepScene.ct`` None.
    """
    truth = bone_scene(anatomy.bones)
    ct_scene = None if ct is None else bone_scene(ct)
    if not sources.unmodelled_bone:
        return SweepScene(truth, truth, ct_scene, None)
    render = bone_scene({**anatomy.bones, **anatomy.unmodelled})
    return SweepScene(render, truth, ct_scene, bone_scene(anatomy.unmodelled))


def _sphere_mesh(anatomy: Anatomy, seed: int, specimen: str, model: ErrorModel):
    centres = apply_rigid(anatomy.ct_from_specimen, anatomy.marker_mm)
    return sphere_surface(
        centres,
        rng=rng_for(seed, specimen, "spheres"),
        noise_mm=model.sphere_noise_mm,
        voxel_mm=model.voxel_mm,
        shift_mm=model.sphere_shift_mm,
    )


def _record_calibration(preset, seed, specimen, model: ErrorModel) -> Calibration:
    """Return the error-carrying calibration a lab would have used for this specimen."""
    truth = true_probe(preset, seed)
    rng = rng_for(seed, specimen, "calibration-error")
    return Calibration(
        truth.probe_from_image @ calibration_error(rng, model),
        truth.pixel_spacing_mm,
        truth.image_size_px,
        truth.probe_marker_fiducials_mm,
    )


def simulate_specimen(
    out: str | Path, *, preset, seed: int, specimen: str, errors: str = "paper"
) -> Path:
    """Write a specimen's CT bones, segmented spheres, markers, truth registration.

    The bones written are the CT segmentation (`ct_bones`), not the imaged surfaces;
    bones without a CT model are not written.
    """
    preset = _check(preset, specimen, errors=errors)
    model = ERROR_MODELS[errors]
    anatomy = make_anatomy(rng_for(seed, specimen, "anatomy"))
    root = specimen_folder(out, specimen)
    bones_folder(root).mkdir(parents=True, exist_ok=True)
    (root / "markers").mkdir(exist_ok=True)
    bones = ct_bones(
        anatomy, seed=seed, specimen=specimen, sources=_sources(preset, model)
    )
    for name, (v, f) in bones.items():
        write_stl(bones_folder(root) / f"{name}.stl", v, f)
    write_stl(
        root / "ct" / "marker_spheres.stl",
        *_sphere_mesh(anatomy, seed, specimen, model),
    )
    write_marker_ini(root / "markers" / "specimen.ini", 2000, anatomy.marker_mm)
    probe = true_probe(preset, seed)
    write_marker_ini(
        root / "markers" / "probe.ini", 1000, probe.probe_marker_fiducials_mm
    )
    truth = truth_of(root, "specimen")
    truth.mkdir(parents=True, exist_ok=True)
    write_registration(truth / "ct_from_specimen.json", anatomy.ct_from_specimen, {})
    _write_cohort_files(Path(out), preset, seed)
    return root


def _write_cohort_files(out: Path, preset: Preset, seed: int) -> None:
    doc = {
        "preset": preset.name,
        "seed": int(seed),
        "calibration_recordings": ["zcal"],
        "specimens": {
            s: {"bones": list(BONES), "sweeps": list(preset.sweeps)}
            for s in preset.specimens
        },
    }
    write_yaml(out / "cohort.yaml", doc)
    if not true_calibration(out).exists():
        write_true_calibration(out, true_probe(preset, seed))


def _segment(anatomy: Anatomy, bone: str, rng) -> Segment:
    """Return the scanned bone segment (leg frame) and beam direction of a sweep."""
    if bone == "foot":
        b = np.deg2rad(180 + rng.uniform(-20, 20))
        return Segment(
            np.array([10.0, -8.0, -28.0]),
            np.array([10.0, 38.0, -28.0]),
            np.array([np.cos(b), 0.0, np.sin(b)]),
        )
    axis = anatomy.axes["Tibia" if bone == "tibia" else "Fibula"]
    lo, hi = axis[int(0.15 * len(axis))], axis[int(0.85 * len(axis))]
    centre = (
        90 + rng.uniform(-40, 15) if bone == "tibia" else 180 + rng.uniform(-25, 25)
    )
    b = np.deg2rad(centre)
    return Segment(lo, hi, np.array([np.cos(b), np.sin(b), 0.0]))


@dataclass(frozen=True)
class _Sweep:
    """Everything a sweep's frame loop needs.

    ``grid`` is the image grid the record states (the scanner's assumed speed of
    sound); ``render_grid`` is where the pixels truly lie (depths scaled by
    ``depth_scale``), which the renderer and the truth masks use. The true poses are
    relative to the bones, so they carry the bones' drift (``bone_drift_mm``: how far
    the bone point at the image centre has moved, per frame); the record's poses,
    from the tracker, do not.
    """

    grid: ImageGrid
    render_grid: ImageGrid
    stamps: np.ndarray
    ct_from_image_true: np.ndarray
    ct_from_image_est: np.ndarray
    ct_from_probe_true: np.ndarray
    ct_from_probe_est: np.ndarray
    lag_error_ms: np.ndarray
    depth_scale: float
    bone_drift_mm: np.ndarray


def _render_grid(grid: ImageGrid, rng, sources: Sources) -> tuple[ImageGrid, float]:
    """Return the true pixel grid, depths scaled by ``c_tissue / c_assumed``."""
    if not sources.sos_depth_scale:
        return grid, 1.0
    s = depth_scale(rng)
    return ImageGrid(grid.shape, (grid.spacing_mm[0], grid.spacing_mm[1] * s)), s


def _drift(rng, world_image, t_ms, *, centre_ct, duration_ms, sources, grid):
    """Bone-relative image poses and the drift (mm) at the image centre per frame."""
    if not sources.bone_drift:
        return world_image, np.zeros(len(world_image))
    ct_from_bone = draw_drift(rng, centre_ct=centre_ct, duration_ms=duration_ms).at(
        t_ms
    )
    middle = grid.points_image(grid.shape[0] // 2, grid.shape[1] // 2)[0]
    p = world_image[:, :3, :3] @ middle + world_image[:, :3, 3]
    moved = np.einsum("nij,nj->ni", ct_from_bone[:, :3, :3], p) + ct_from_bone[:, :3, 3]
    drift_mm = np.linalg.norm(moved - p, axis=1)
    return invert_rigid(ct_from_bone) @ world_image, drift_mm


@dataclass(frozen=True)
class SweepId:
    """One sweep of one cohort: names the random streams its draws come from."""

    seed: int
    specimen: str
    sweep: str

    def rng(self, stream: str):
        """Return the sweep's random generator for ``stream``."""
        return rng_for(self.seed, self.specimen, self.sweep, stream)


@dataclass(frozen=True)
class _Clock:
    """Image stamps (ms) and the span of the probe path (``origin`` + duration)."""

    stamps: np.ndarray
    origin: int
    duration_ms: float


def _image_clock(rng, frames: int) -> _Clock:
    """Draw the image stamps, jittered around the image period.

    The path starts 450 ms before the first image and ends 300 ms after the last,
    so the lag-shifted tracker queries stay on it.
    """
    steps = IMAGE_PERIOD_MS + rng.integers(-3, 4, frames)
    t0 = int(rng.integers(100_000, 200_000))
    stamps = t0 + np.cumsum(steps)
    origin = t0 - 450
    return _Clock(stamps, origin, float(stamps[-1] - origin + 300))


def _tracker_from_specimen(rng) -> np.ndarray:
    """Draw the specimen marker's pose in the tracker, about 1.5 m away."""
    return matrix_from_params(
        np.r_[
            rng.uniform(-100, 100, 2),
            rng.uniform(-1600, -1300),
            rng.uniform(-180, 180, 3),
        ]
    )


@dataclass(frozen=True)
class _Setting:
    """What a sweep's draws depend on besides its random streams.

    ``grid`` is the record's image grid of the cohort's true ``probe``.
    """

    anatomy: Anatomy
    scene: SweepScene
    model: ErrorModel
    sources: Sources
    probe: ProbeTruth
    grid: ImageGrid


def _probe_path(ident: SweepId, frames: int, setting: _Setting) -> tuple:
    """Draw the segment, image clock, probe path and specimen marker pose of a sweep.

    All four come from the sweep's "path" stream, in this order, which fixes the bytes.
    """
    rng = ident.rng("path")
    segment = _segment(setting.anatomy, ident.sweep.split("-")[0], rng)
    clock = _image_clock(rng, frames)
    path = draw_path(
        rng,
        scene=setting.scene,
        ct_from_leg=setting.anatomy.ct_from_leg,
        segment=segment,
        duration_ms=clock.duration_ms,
        width_mm=setting.grid.shape[1] * setting.grid.spacing_mm[0],
        recorded=setting.sources.recorded_motion,
    )
    return segment, clock, path, _tracker_from_specimen(rng)


def _streams(
    ident: SweepId, setting: _Setting, clock: _Clock, path, tracker_from_specimen
):
    """Tracker streams of the probe and specimen markers over the whole path."""
    tracker_t = np.round(
        clock.origin + np.arange(0, clock.duration_ms, 1000.0 / TRACKER_HZ)
    ).astype(np.int64)
    tracker_from_ct = tracker_from_specimen @ invert_rigid(
        setting.anatomy.ct_from_specimen
    )
    return tracker_streams(
        ident.rng("tracker"),
        stamps=tracker_t,
        tracker_from_probe=tracker_from_ct
        @ path.at(tracker_t - clock.origin)
        @ invert_rigid(setting.probe.probe_from_image),
        tracker_from_specimen=np.broadcast_to(
            tracker_from_specimen, (tracker_t.size, 4, 4)
        ),
        model=setting.model,
    )


def _true_poses(ident: SweepId, setting: _Setting, clock: _Clock, path, segment):
    """World and bone-relative CT<-image poses per frame, and the bones' drift (mm).

    The image is taken ``dt_ms`` after its stamp (the true lag).
    """
    image_t = clock.stamps + setting.probe.dt_ms - clock.origin
    world_image = path.at(image_t)
    mid_leg = (segment.start_leg + segment.end_leg)[None] / 2
    true_image, drift_mm = _drift(
        ident.rng("drift"),
        world_image,
        image_t,
        centre_ct=apply_rigid(setting.anatomy.ct_from_leg, mid_leg)[0],
        duration_ms=clock.duration_ms,
        sources=setting.sources,
        grid=setting.grid,
    )
    return world_image, true_image, drift_mm


def _recorded_probe(ident: SweepId, setting: _Setting, streams, world_image, q_ms):
    """Return the record's CT<-probe poses per frame.

    Exact errors give the true world poses; otherwise the tracker streams at the
    lag-erred stamps ``q_ms`` under a CT<-specimen registration estimated from the CT's
    (noisy) marker spheres, as the pipeline does.
    """
    if setting.model.exact:
        return world_image @ invert_rigid(setting.probe.probe_from_image)
    spheres = _sphere_mesh(setting.anatomy, ident.seed, ident.specimen, setting.model)
    ct_from_specimen = estimate_registration(
        setting.anatomy.marker_mm, spheres[0].reshape(4, -1, 3)
    )
    return (
        ct_from_specimen
        @ invert_rigid(stream_at(streams["specimen"], q_ms))
        @ stream_at(streams["probe"], q_ms)
    )


def _plan(preset, ident: SweepId, frames, model, anatomy, scene):
    """Draw the probe path, tracker streams and the record's error-carrying poses."""
    probe = true_probe(preset, ident.seed)
    setting = _Setting(
        anatomy,
        scene,
        model,
        _sources(preset, model),
        probe,
        ImageGrid(probe.image_size_px[::-1], probe.pixel_spacing_mm),
    )
    segment, clock, path, tracker_from_specimen = _probe_path(ident, frames, setting)
    streams = _streams(ident, setting, clock, path, tracker_from_specimen)
    world_image, true_image, drift_mm = _true_poses(
        ident, setting, clock, path, segment
    )
    render_grid, scale = _render_grid(setting.grid, ident.rng("sos"), setting.sources)
    lag = _lag_error(ident.rng("lag"), clock.stamps, model)
    cal = _record_calibration(preset, ident.seed, ident.specimen, model)
    est_probe = _recorded_probe(
        ident, setting, streams, world_image, clock.stamps + probe.dt_ms + lag
    )
    return (
        streams,
        cal,
        _Sweep(
            setting.grid,
            render_grid,
            clock.stamps,
            true_image,
            est_probe @ cal.probe_from_image,
            true_image @ invert_rigid(probe.probe_from_image),
            est_probe,
            lag,
            scale,
            drift_mm,
        ),
    )


def _lag_error(rng, stamps, model: ErrorModel) -> np.ndarray:
    """Slowly varying error of the lag estimate (ms) per frame."""
    offset = rng.normal(0, model.lag_offset_ms)
    period = rng.uniform(20_000, 60_000)
    phase = rng.uniform(0, 2 * np.pi)
    return offset + model.lag_drift_ms * np.sin(2 * np.pi * stamps / period + phase)


def misalignment_3d_mm(
    mask, grid: ImageGrid, ct_from_image_true, ct_from_image_est, *, grid_est=None
) -> float:
    """Mean 3D distance (mm) between a label's CT points under true and erroneous pose.

    The label's pixels truly lie on ``grid`` and are placed by the record on
    ``grid_est`` (default ``grid``; they differ by the speed-of-sound depth scale).
    NaN for an empty mask.
    """
    r, c = np.nonzero(mask)
    if r.size == 0:
        return float("nan")
    est = (grid_est or grid).points_image(r, c)
    return float(
        np.linalg.norm(
            apply_rigid(ct_from_image_true, grid.points_image(r, c))
            - apply_rigid(ct_from_image_est, est),
            axis=1,
        ).mean()
    )


def misalignment_mm(scene, full_true, grid: ImageGrid, ct_from_image_est) -> float:
    """In-plane label error (mm) of the record's pose, as the label engine is judged.

    The symmetric mean distance between the pixel centres of the full label under the
    record's pose (``ct_from_image_est``) and of the true full label ``full_true``
    (``ultrabones.evaluate.metrics.label_error_mm``, the same function the engine's
    benchmark scores with). NaN when either label is empty.
    """
    from ..evaluate.metrics import label_error_mm

    est = full_label(scene, ct_from_image_est, grid, gamma_mm=GAMMA_MM)
    return label_error_mm(est, full_true, spacing_mm=grid.spacing_mm)


def frame_misalignment(scene: SweepScene, grid, plan: _Sweep, k: int, full) -> tuple:
    """(label error, 3D distance) of frame ``k`` whose true full label is ``full``.

    ``full`` lies on ``plan.render_grid``; the record's label is that of the CT
    models (``scene.ct``) under the record's pose on the record's ``grid``.
    """
    true, est = plan.ct_from_image_true[k], plan.ct_from_image_est[k]
    return (
        misalignment_mm(scene.ct, full, grid, est),
        misalignment_3d_mm(full, plan.render_grid, true, est, grid_est=grid),
    )


def unmodelled_at(scene: SweepScene, plan: _Sweep, k: int) -> bool:
    """Return whether a bone without a CT model is a column's first interface.

    Per column of frame ``k``.
    """
    if scene.unmodelled is None:
        return False
    ct_from_image = plan.ct_from_image_true[k]
    first = cast_columns(scene.render, ct_from_image, plan.render_grid).depth_mm
    own = cast_columns(scene.unmodelled, ct_from_image, plan.render_grid).depth_mm
    return bool(np.any(np.isfinite(own) & (own <= first + 1e-3)))


def _unmodelled_in_view(scene: SweepScene, plan: _Sweep) -> np.ndarray:
    """`unmodelled_at` for every frame of a sweep."""
    return np.array([unmodelled_at(scene, plan, k) for k in range(plan.stamps.size)])


def simulate_sweep(
    out: str | Path,
    *,
    preset,
    seed: int,
    specimen: str,
    sweep: str,
    frames: int | None = None,
    errors: str = "paper",
) -> Path:
    """Simulate a sweep and its truth (its specimen files too, if missing) in ``out``.

    Parameters
    ----------
    out : str or Path
        Cohort folder.
    preset : Preset or str
    seed : int
    specimen, sweep : str
    frames : int, optional
        Frames to simulate (default: the preset's).
    errors : {"paper", "none"}

    Returns
    -------
    sweep_dir : Path

    See Also
    --------
    write_sweep : the same by the sweep's ID, and optionally without the truth.
    """
    ident = SweepId(seed, specimen, sweep)
    return write_sweep(out, ident, preset=preset, frames=frames, errors=errors)


def write_sweep(
    out: str | Path,
    ident: SweepId,
    *,
    preset,
    frames: int | None = None,
    errors: str = "paper",
    truth: bool = True,
) -> Path:
    """Simulate sweep ``ident`` (its specimen files first if missing) into ``out``.

    Parameters
    ----------
    out : str or Path
        Cohort folder.
    ident : SweepId
        Cohort seed, specimen and sweep.
    preset, frames, errors
        As :func:`simulate_sweep`'s.
    truth : bool
        Write the truth masks and poses (the benchmark may skip them).

    Returns
    -------
    sweep_dir : Path
    """
    seed, specimen, sweep = ident.seed, ident.specimen, ident.sweep
    preset = _check(preset, specimen, sweep, frames, errors)
    model = ERROR_MODELS[errors]
    frames = int(frames or preset.frames_per_sweep)
    out = Path(out)
    root = specimen_folder(out, specimen)
    if not (root / "ct" / "marker_spheres.stl").is_file():
        simulate_specimen(
            out, preset=preset, seed=seed, specimen=specimen, errors=errors
        )
    anatomy = make_anatomy(rng_for(seed, specimen, "anatomy"))
    # The record's labels (truth only) use the CT models as written, float32 and all.
    ct = {name: read_stl(p) for name, p in _ct_paths(root).items()} if truth else None
    scene = sweep_scene(anatomy, ct, _sources(preset, model))
    streams, cal, plan = _plan(preset, ident, frames, model, anatomy, scene)
    sweep_dir = sweep_folder(out, specimen, sweep)
    truth_dir = truth_of(sweep_dir, "sweep")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_tracker_stream(sweep_dir / "tracker.csv", streams)
    rows = _frames(
        sweep_dir,
        truth_dir,
        plan,
        scene,
        rng_for(seed, specimen, sweep, "image"),
        truth=truth,
        sources=preset.sources,
    )
    _write_record(sweep_dir, plan, cal, root)
    if truth:
        _write_truth_poses(
            truth_dir,
            plan,
            rows,
            _unmodelled_in_view(scene, plan),
        )
    log.info("%s: %d frames", sweep_dir, frames)
    return sweep_dir


def _ct_paths(root: Path) -> dict[str, Path]:
    """Return the specimen's CT bone models, by bone name."""
    return {name: bones_folder(root) / f"{name}.stl" for name in BONES}


def _frames(
    sweep_dir: Path, truth_dir: Path, plan: _Sweep, scene, rng, *, truth: bool, sources
):
    images = sweep_dir / "UltrasoundImages"
    images.mkdir(exist_ok=True)
    if truth:
        for name in ("label_full", "label_visible"):
            (truth_dir / name).mkdir(parents=True, exist_ok=True)
    grid = plan.render_grid
    tissue = draw_tissue(rng, sources)
    bank = make_bank(rng, grid, tissue)
    offsets = elevation_offsets_mm(tissue)
    rows = []
    for k, stamp in enumerate(plan.stamps):
        ct_from_image = plan.ct_from_image_true[k]
        slab = cast_slab(scene, ct_from_image, grid, offsets)
        lateral = float(ct_from_image[:3, 3] @ ct_from_image[:3, 0])
        image = render_frame(
            slab, grid, tissue=tissue, bank=bank, rng=rng, lateral_mm=lateral
        )
        write_png(images / f"{stamp}.png", image)
        if truth:
            rows.append(_truth_frame(truth_dir, stamp, scene, slab, plan, k))
    return rows


def _truth_frame(truth_dir: Path, stamp, scene, slab, plan: _Sweep, k: int) -> tuple:
    """Write frame ``k``'s true full and visible labels; return its truth numbers.

    The truth is the image plane alone, whatever the beam integrates.
    """
    grid, ct_from_image = plan.render_grid, plan.ct_from_image_true[k]
    hits = slab.central()
    full = full_label(scene, ct_from_image, grid, gamma_mm=GAMMA_MM)
    vis = visible_label(
        full, hits, grid, scene=scene, ct_from_image=ct_from_image, gamma_mm=GAMMA_MM
    )
    write_png(truth_dir / "label_full" / f"{stamp}.png", full.astype(np.uint8) * 255)
    write_png(truth_dir / "label_visible" / f"{stamp}.png", vis.astype(np.uint8) * 255)
    return (
        *frame_misalignment(scene, plan.grid, plan, k, full),
        int(full.sum()),
        int(vis.sum()),
    )


def _poses_frame(stamps, spacing, ct_from_probe) -> pd.DataFrame:
    df = pd.DataFrame(
        params_from_matrix(ct_from_probe),
        columns=["x", "y", "z", "euler_x", "euler_y", "euler_z"],
    )
    df.insert(0, "space_factor", spacing)
    df.insert(0, "timestamp", stamps.astype(np.int64))
    return df


def _write_record(sweep_dir: Path, plan: _Sweep, cal: Calibration, root: Path) -> None:
    write_poses_table(
        sweep_dir / "sweep_initial.csv",
        _poses_frame(plan.stamps, cal.pixel_spacing_mm[0], plan.ct_from_probe_est),
    )
    write_calibration(
        sweep_dir / "calibration.yaml",
        cal,
        comment="Simulated record: error-carrying calibration.",
    )
    link_record_folder(sweep_dir, "CT_models", bones_folder(root))


def _write_truth_poses(folder: Path, plan: _Sweep, rows, unmodelled) -> None:
    df = _poses_frame(plan.stamps, plan.grid.spacing_mm[0], plan.ct_from_probe_true)
    err = plan.ct_from_image_est @ invert_rigid(plan.ct_from_image_true)
    df["lag_error_ms"] = plan.lag_error_ms
    df["error_translation_mm"] = np.linalg.norm(
        plan.ct_from_probe_est[:, :3, 3] - plan.ct_from_probe_true[:, :3, 3], axis=1
    )
    df["error_rotation_deg"] = rotation_angle_deg(err)
    df["misalignment_mm"] = [r[0] for r in rows]
    df["misalignment_3d_mm"] = [r[1] for r in rows]
    df["label_full_px"] = [r[2] for r in rows]
    df["label_visible_px"] = [r[3] for r in rows]
    df["unmodelled_in_view"] = unmodelled.astype(np.int64)
    df["depth_scale"] = plan.depth_scale
    df["bone_drift_mm"] = plan.bone_drift_mm
    folder.mkdir(parents=True, exist_ok=True)
    write_table(folder / "poses.csv", df)


def simulate_cohort(
    out: str | Path,
    *,
    preset,
    seed: int,
    errors: str = "paper",
    frames: int | None = None,
    recording: bool = True,
) -> Path:
    """Simulate every specimen and sweep of a preset, plus the zcal recording.

    ``recording=False`` leaves the Z-phantom recording out (tests).
    """
    preset = _check(preset, frames=frames, errors=errors)
    out = Path(out)
    for specimen in preset.specimens:
        simulate_specimen(
            out, preset=preset, seed=seed, specimen=specimen, errors=errors
        )
        for sweep in preset.sweeps:
            simulate_sweep(
                out,
                preset=preset,
                seed=seed,
                specimen=specimen,
                sweep=sweep,
                frames=frames,
                errors=errors,
            )
    if recording:
        simulate_recording_or_warn(out, preset=preset, seed=seed, errors=errors)
    return out


def simulate_recording_or_warn(
    out, *, preset, seed: int, errors: str, recording="zcal"
):
    """Call the calibration engineer's Z-phantom simulator; warn when it is missing."""
    try:
        from .phantom import simulate_recording
    except ImportError as err:
        log.warning("Z-phantom recording %s skipped: %s", recording, err)
        return None
    return simulate_recording(
        out, preset=preset, seed=seed, errors=errors, recording=recording
    )


def sweep_plans(preset, *, seed: int, errors: str = "paper", frames: int | None = None):
    """Yield the geometry of every sweep of a preset, as `simulate_sweep` draws it.

    No image is rendered or written; the CT models stay as `ct_bones` returns them
    (`simulate_sweep` reads them back from their float32 STL files).

    Yields
    ------
    specimen, sweep : str
    scene : SweepScene
    plan : _Sweep
        The sweep's grids, stamps, true and recorded poses, lag error, depth scale
        and bone drift.
    """
    preset = _check(preset, frames=frames, errors=errors)
    model = ERROR_MODELS[errors]
    sources = _sources(preset, model)
    frames = int(frames or preset.frames_per_sweep)
    for specimen in preset.specimens:
        anatomy = make_anatomy(rng_for(seed, specimen, "anatomy"))
        ct = ct_bones(anatomy, seed=seed, specimen=specimen, sources=sources)
        scene = sweep_scene(anatomy, ct, sources)
        for sweep in preset.sweeps:
            _, _, plan = _plan(
                preset, SweepId(seed, specimen, sweep), frames, model, anatomy, scene
            )
            yield specimen, sweep, scene, plan
