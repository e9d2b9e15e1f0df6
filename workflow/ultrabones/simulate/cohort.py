"""Whole cohorts, single specimens and single sweeps, written in the raw layout.

Every random draw comes from ``rng_for(seed, specimen, ...)`` or
``rng_for(seed, specimen, sweep, ...)``, so a sweep generated alone is byte-identical
to the same sweep of a whole-cohort run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..io.calibration import Calibration, write_calibration
from ..io.markers import write_marker_ini
from ..io.phantom import link_record_folder, write_registration
from ..io.png import write_png
from ..io.record import write_poses_table
from ..io.stl import write_stl
from ..io.tables import write_table, write_yaml
from ..io.tracker import write_tracker_stream
from ..transforms import (
    apply_rigid,
    invert_rigid,
    matrix_from_params,
    params_from_matrix,
    rotation_angle_deg,
)
from .anatomy import BONES, Anatomy, make_anatomy, sphere_surface
from .geometry import ImageGrid, bone_scene, cast_columns, full_label, visible_label
from .motion import (
    ERROR_MODELS,
    IMAGE_PERIOD_MS,
    TRACKER_HZ,
    ErrorModel,
    calibration_error,
    draw_path,
    estimate_registration,
    stream_at,
    tracker_streams,
)
from .presets import Preset, get_preset, rng_for, true_probe
from .render import draw_tissue, make_bank, render_frame

__all__ = [
    "GAMMA_MM",
    "misalignment_3d_mm",
    "misalignment_mm",
    "misalignment_table",
    "simulate_cohort",
    "simulate_specimen",
    "simulate_sweep",
]

log = logging.getLogger(__name__)
GAMMA_MM = 0.3


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
    """The error-carrying calibration a lab would have used for this specimen."""
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
    """Write a specimen's CT bones, segmented spheres, markers, truth registration."""
    preset = _check(preset, specimen, errors=errors)
    model = ERROR_MODELS[errors]
    anatomy = make_anatomy(rng_for(seed, specimen, "anatomy"))
    root = Path(out) / "specimens" / specimen
    (root / "ct" / "bones").mkdir(parents=True, exist_ok=True)
    (root / "markers").mkdir(exist_ok=True)
    for name, (v, f) in anatomy.bones.items():
        write_stl(root / "ct" / "bones" / f"{name}.stl", v, f)
    write_stl(
        root / "ct" / "marker_spheres.stl",
        *_sphere_mesh(anatomy, seed, specimen, model),
    )
    write_marker_ini(root / "markers" / "specimen.ini", 2000, anatomy.marker_mm)
    probe = true_probe(preset, seed)
    write_marker_ini(
        root / "markers" / "probe.ini", 1000, probe.probe_marker_fiducials_mm
    )
    truth = Path(out) / "truth" / "specimens" / specimen
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
    truth = true_probe(preset, seed)
    path = out / "truth" / "calibration.yaml"
    if not path.exists():
        cal = Calibration(
            truth.probe_from_image,
            truth.pixel_spacing_mm,
            truth.image_size_px,
            truth.probe_marker_fiducials_mm,
            {"dt_ms": truth.dt_ms},
        )
        write_calibration(
            path, cal, comment="True probe calibration and lag of the simulated cohort."
        )


def _segment(anatomy: Anatomy, bone: str, rng):
    """Scanned bone segment (leg frame) and beam direction for a sweep's bone."""
    if bone == "foot":
        b = np.deg2rad(180 + rng.uniform(-20, 20))
        return (
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
    return lo, hi, np.array([np.cos(b), np.sin(b), 0.0])


@dataclass(frozen=True)
class _Sweep:
    """Everything a sweep's frame loop needs.

    ``grid`` is the image grid the record states (the scanner's assumed speed of
    sound); ``render_grid`` is where the pixels truly lie, which the renderer and the
    truth masks use.
    """

    grid: ImageGrid
    render_grid: ImageGrid
    stamps: np.ndarray
    ct_from_image_true: np.ndarray
    ct_from_image_est: np.ndarray
    ct_from_probe_true: np.ndarray
    ct_from_probe_est: np.ndarray
    lag_error_ms: np.ndarray


def _plan(preset, seed, specimen, sweep, frames, model, anatomy, scene):
    """Draw the probe path, tracker streams and the record's error-carrying poses."""
    probe = true_probe(preset, seed)
    grid = ImageGrid(probe.image_size_px[::-1], probe.pixel_spacing_mm)
    rng = rng_for(seed, specimen, sweep, "path")
    start, end, look = _segment(anatomy, sweep.split("-")[0], rng)
    steps = IMAGE_PERIOD_MS + rng.integers(-3, 4, frames)
    t0 = int(rng.integers(100_000, 200_000))
    stamps = t0 + np.cumsum(steps)
    origin = t0 - 450
    duration = float(stamps[-1] - origin + 300)
    path = draw_path(
        rng,
        scene=scene,
        ct_from_leg=anatomy.ct_from_leg,
        start_leg=start,
        end_leg=end,
        look_leg=look,
        duration_ms=duration,
        width_mm=grid.shape[1] * grid.spacing_mm[0],
    )
    tracker_t = np.round(origin + np.arange(0, duration, 1000.0 / TRACKER_HZ)).astype(
        np.int64
    )
    tracker_from_specimen = matrix_from_params(
        np.r_[
            rng.uniform(-100, 100, 2),
            rng.uniform(-1600, -1300),
            rng.uniform(-180, 180, 3),
        ]
    )
    image_from_probe = invert_rigid(probe.probe_from_image)
    tracker_from_ct = tracker_from_specimen @ invert_rigid(anatomy.ct_from_specimen)
    streams = tracker_streams(
        rng_for(seed, specimen, sweep, "tracker"),
        stamps=tracker_t,
        tracker_from_probe=tracker_from_ct
        @ path.at(tracker_t - origin)
        @ image_from_probe,
        tracker_from_specimen=np.broadcast_to(
            tracker_from_specimen, (tracker_t.size, 4, 4)
        ),
        model=model,
    )
    true_image = path.at(stamps + probe.dt_ms - origin)
    lag = _lag_error(rng_for(seed, specimen, sweep, "lag"), stamps, model)
    cal = _record_calibration(preset, seed, specimen, model)
    if model.exact:
        est_probe = true_image @ image_from_probe
    else:
        spheres = _sphere_mesh(anatomy, seed, specimen, model)[0].reshape(4, -1, 3)
        ct_from_specimen = estimate_registration(anatomy.marker_mm, spheres)
        q = stamps + probe.dt_ms + lag
        est_probe = (
            ct_from_specimen
            @ invert_rigid(stream_at(streams["specimen"], q))
            @ stream_at(streams["probe"], q)
        )
    return (
        streams,
        cal,
        _Sweep(
            grid,
            grid,
            stamps,
            true_image,
            est_probe @ cal.probe_from_image,
            true_image @ image_from_probe,
            est_probe,
            lag,
        ),
    )


def _lag_error(rng, stamps, model: ErrorModel) -> np.ndarray:
    """Slowly varying error of the lag estimate (ms) per frame."""
    offset = rng.normal(0, model.lag_offset_ms)
    period = rng.uniform(20_000, 60_000)
    phase = rng.uniform(0, 2 * np.pi)
    return offset + model.lag_drift_ms * np.sin(2 * np.pi * stamps / period + phase)


def misalignment_3d_mm(
    mask, grid: ImageGrid, ct_from_image_true, ct_from_image_est
) -> float:
    """Mean 3D distance (mm) between a label's CT points under true and erroneous pose.

    NaN for an empty mask.
    """
    r, c = np.nonzero(mask)
    if r.size == 0:
        return float("nan")
    p = grid.points_image(r, c)
    return float(
        np.linalg.norm(
            apply_rigid(ct_from_image_true, p) - apply_rigid(ct_from_image_est, p),
            axis=1,
        ).mean()
    )


def misalignment_mm(scene, full_true, grid: ImageGrid, ct_from_image_est) -> float:
    """In-plane label error (mm) of the record's pose, as the label engine is judged.

    The symmetric mean distance between the pixel centres of the full label under the
    record's pose (``ct_from_image_est``) and of the true full label ``full_true``
    (``ultrabones.engine.bench.label_error_mm``, the same function the engine's
    benchmark scores with). NaN when either label is empty.
    """
    from ..engine.bench import label_error_mm

    est = full_label(scene, ct_from_image_est, grid, gamma_mm=GAMMA_MM)
    return label_error_mm(est, full_true, spacing_mm=grid.spacing_mm)


def _frame_misalignment(scene, grid, plan: _Sweep, k: int, full) -> tuple:
    """(label error, 3D distance) of frame ``k`` whose true full label is ``full``."""
    T = plan.ct_from_image_true[k]
    est = plan.ct_from_image_est[k]
    return (
        misalignment_mm(scene, full, grid, est),
        misalignment_3d_mm(full, grid, T, est),
    )


def simulate_sweep(
    out: str | Path,
    *,
    preset,
    seed: int,
    specimen: str,
    sweep: str,
    frames: int | None = None,
    errors: str = "paper",
    truth: bool = True,
) -> Path:
    """Simulate one sweep (and its specimen files if missing) into cohort ``out``.

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
    truth : bool
        Write the truth masks and poses (the benchmark may skip them).

    Returns
    -------
    sweep_dir : Path
    """
    preset = _check(preset, specimen, sweep, frames, errors)
    model = ERROR_MODELS[errors]
    frames = int(frames or preset.frames_per_sweep)
    out = Path(out)
    root = out / "specimens" / specimen
    if not (root / "ct" / "marker_spheres.stl").is_file():
        simulate_specimen(
            out, preset=preset, seed=seed, specimen=specimen, errors=errors
        )
    anatomy = make_anatomy(rng_for(seed, specimen, "anatomy"))
    scene = bone_scene(anatomy.bones)
    streams, cal, plan = _plan(
        preset, seed, specimen, sweep, frames, model, anatomy, scene
    )
    sweep_dir = root / "sweeps" / sweep
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_tracker_stream(sweep_dir / "tracker.csv", streams)
    rows = _frames(
        sweep_dir,
        out / "truth" / "specimens" / specimen / "sweeps" / sweep,
        plan,
        scene,
        rng_for(seed, specimen, sweep, "image"),
        truth=truth,
        sources=preset.sources,
    )
    _write_record(sweep_dir, plan, cal, root)
    if truth:
        _write_truth_poses(
            out / "truth" / "specimens" / specimen / "sweeps" / sweep, plan, rows
        )
    log.info("%s: %d frames", sweep_dir, frames)
    return sweep_dir


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
    rows = []
    for k, stamp in enumerate(plan.stamps):
        T = plan.ct_from_image_true[k]
        hits = cast_columns(scene, T, grid)
        lateral = float(T[:3, 3] @ T[:3, 0])
        image = render_frame(
            hits, grid, tissue=tissue, bank=bank, rng=rng, lateral_mm=lateral
        )
        write_png(images / f"{stamp}.png", image)
        if truth:
            full = full_label(scene, T, grid, gamma_mm=GAMMA_MM)
            vis = visible_label(
                full, hits, grid, scene=scene, ct_from_image=T, gamma_mm=GAMMA_MM
            )
            write_png(
                truth_dir / "label_full" / f"{stamp}.png", full.astype(np.uint8) * 255
            )
            write_png(
                truth_dir / "label_visible" / f"{stamp}.png", vis.astype(np.uint8) * 255
            )
            rows.append(
                (
                    *_frame_misalignment(scene, plan.grid, plan, k, full),
                    int(full.sum()),
                    int(vis.sum()),
                )
            )
    return rows


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
    link_record_folder(sweep_dir, "CT_models", root / "ct" / "bones")


def _write_truth_poses(folder: Path, plan: _Sweep, rows) -> None:
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


def misalignment_table(
    preset,
    *,
    seed: int,
    errors: str = "paper",
    step: int = 10,
    frames: int | None = None,
) -> pd.DataFrame:
    """Realised label misalignment of every ``step``-th frame of a whole preset.

    Geometry only (no images are rendered or written).

    Returns
    -------
    table : DataFrame
        Columns specimen, sweep, timestamp, misalignment_mm (in-plane label error,
        see `misalignment_mm`), misalignment_3d_mm (see `misalignment_3d_mm`).
    """
    preset = _check(preset, frames=frames, errors=errors)
    model = ERROR_MODELS[errors]
    frames = int(frames or preset.frames_per_sweep)
    rows = []
    for specimen in preset.specimens:
        anatomy = make_anatomy(rng_for(seed, specimen, "anatomy"))
        scene = bone_scene(anatomy.bones)
        for sweep in preset.sweeps:
            _, _, plan = _plan(
                preset, seed, specimen, sweep, frames, model, anatomy, scene
            )
            for k in range(0, frames, step):
                T = plan.ct_from_image_true[k]
                full = full_label(scene, T, plan.grid, gamma_mm=GAMMA_MM)
                rows.append(
                    (
                        specimen,
                        sweep,
                        int(plan.stamps[k]),
                        *_frame_misalignment(scene, plan.grid, plan, k, full),
                    )
                )
    return pd.DataFrame(
        rows,
        columns=[
            "specimen",
            "sweep",
            "timestamp",
            "misalignment_mm",
            "misalignment_3d_mm",
        ],
    )
