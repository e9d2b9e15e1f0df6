"""``ultrabones bench``: run the label engine on frames and report speed and outcome."""

from __future__ import annotations

import argparse

from ..layout import truth_of
from .options import add_engine_options, engine_kwargs

__all__ = ["add_parser", "run"]

#: ``EngineParams`` fields with a bench option of their own: ``--seed`` seeds the
#: simulation and the frame sample, ``--reject-at-bound`` is a flag.
OWN_OPTIONS = ("seed", "reject_at_bound")


def add_parser(sub) -> None:
    """Register ``bench``."""
    p = sub.add_parser("bench", help="benchmark the label engine on frames")
    _add_inputs(p)
    _add_outputs(p)
    _add_variants(p)
    add_engine_options(p, exclude=OWN_OPTIONS)
    p.set_defaults(run=run)


def _add_inputs(p) -> None:
    """Add the options choosing the frames: a record or a simulation, and which."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--record", help="record folder (public layout)")
    src.add_argument("--preset", choices=("tiny", "paper"), help="simulate frames")
    p.add_argument("--seed", type=int, default=0, help="simulation/sampling seed")
    p.add_argument(
        "--cohorts",
        type=int,
        default=1,
        help="with --preset: simulate this many cohorts (seeds SEED, SEED+1, ...) "
        "and report over all of them",
    )
    p.add_argument(
        "--sweep",
        help="with --preset: the sweep of the first specimen to simulate "
        "(default: its first fibula sweep)",
    )
    pick = p.add_mutually_exclusive_group()
    pick.add_argument("--frames", type=int, help="number of frames (random sample)")
    pick.add_argument("--timestamps", type=int, nargs="+", help="frames by timestamp")


def _add_outputs(p) -> None:
    """Add the options naming what the bench writes besides its summary."""
    p.add_argument("--table", help="per-frame table (.csv or .parquet)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--figure", help="PNG of initial vs refined contours (12 frames)")
    p.add_argument(
        "--review",
        help="folder for corrections.png (correction and confidence along the sweep) "
        "and lowest_confidence.png (the 12 refined frames of least confidence)",
    )


def _add_variants(p) -> None:
    """Add the options varying the engine or the simulation from their defaults."""
    p.add_argument(
        "--reject-at-bound",
        action="store_true",
        help="also reject corrections that end on the search box's edge",
    )
    p.add_argument(
        "--without",
        nargs="+",
        default=[],
        metavar="SOURCE",
        help="with --preset: switch these simulator sources off "
        "(ultrabones.simulate.presets.SOURCE_NAMES)",
    )
    p.add_argument(
        "--ablation",
        action="store_true",
        help="with --preset: run the preset, then once per source switched off; "
        "print one row each",
    )


def _pick_rows(poses, args, rng):
    import numpy as np

    from ..errors import ConfigError

    if args.timestamps:
        stamps = poses["timestamp"].to_numpy()
        missing = sorted(set(args.timestamps) - set(stamps.tolist()))
        if missing:
            raise ConfigError(f"--timestamps not in the record: {missing[:10]}")
        return np.flatnonzero(np.isin(stamps, args.timestamps))
    with_image = np.flatnonzero(poses["image"].to_numpy() != "")
    if args.frames and args.frames < with_image.size:
        return np.sort(rng.choice(with_image, args.frames, replace=False))
    return with_image


def _frames(record, rows):
    from ..errors import InputDataError
    from ..io.png import read_png

    T = record.ct_from_probe()
    for i in rows:
        stamp = int(record.poses["timestamp"].iat[i])
        try:
            image = read_png(record.image_path(stamp))
        except InputDataError:
            image = None
        yield stamp, image, T[i]


def _figure(path, record, rows, results) -> None:
    from ..engine.figures import contour_grid
    from ..io.png import read_png

    picked = [(i, r) for i, r in zip(rows, results, strict=True) if r.masks]
    picked = picked[:: max(1, len(picked) // 12)][:12]
    stamps = [int(record.poses["timestamp"].iat[i]) for i, _ in picked]
    images = [read_png(record.image_path(s)) for s in stamps]
    contour_grid(images, [r for _, r in picked], stamps).savefig(path, dpi=110)


#: Columns of the ``--ablation`` rows (besides ``without`` and ``frames``).
ABLATION_KEYS = (
    "label_error_mm_median_initial",
    "label_error_mm_median_refined",
    "pose_error_mm_median_initial",
    "pose_error_mm_median_refined",
    "curve_offset_abs_mm_median_refined",
    "worse_fraction",
    "discarded_fraction",
    "fiducial_correction_mm_mean_kept",
    "bound_hit_fraction",
)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; print the summary (JSON with ``--json``)."""
    import json

    import pandas as pd

    from ..errors import ConfigError
    from ..io.tables import write_table

    if args.cohorts < 1 or (args.cohorts > 1 and not args.preset):
        raise ConfigError("--cohorts takes a count >= 1, and only with --preset")
    if (args.without or args.ablation) and not args.preset:
        raise ConfigError("--without and --ablation need --preset")
    preset = _preset(args)
    if not args.ablation:
        summary, table = _cohorts(args, preset)
        if args.table:
            write_table(args.table, table, precision="measured")
        print(json.dumps(summary, indent=None if args.json else 1))
        return 0
    rows, tables = _ablation(args, preset)
    if args.table:
        write_table(
            args.table, pd.concat(tables, ignore_index=True), precision="measured"
        )
    if args.json:
        print(json.dumps({"ablation": rows}))
    else:
        print(pd.DataFrame(rows).to_string(index=False, float_format="%.4f"))
    return 0


def _preset(args):
    """Return the preset with ``--without`` sources off (None for a record)."""
    from ..simulate.presets import get_preset, without

    return without(get_preset(args.preset), *args.without) if args.preset else None


def _ablation(args, preset):
    """Run the preset, then each of its sources off in turn: one row each."""
    from ..simulate.presets import SOURCE_NAMES, without

    on = [n for n in SOURCE_NAMES if getattr(preset.sources, n)]
    rows, tables = [], []
    for name in ("baseline", *on):
        base = name == "baseline"
        summary, table = _cohorts(
            args, preset if base else without(preset, name), figure=base
        )
        row = {"without": name, "frames": summary["frames"]}
        rows.append(row | {k: summary.get(k, float("nan")) for k in ABLATION_KEYS})
        tables.append(table.assign(without=name))
    return rows, tables


def _cohorts(args, preset, *, figure=True):
    """Bench the record or ``--cohorts`` simulated cohorts: summary and table.

    ``figure``: write ``--figure`` (from the first cohort) on this run.
    """
    import tempfile
    from pathlib import Path

    import pandas as pd

    from ..engine.bench import summarise, summarise_truth

    runs = []
    with tempfile.TemporaryDirectory(prefix="ultrabones-bench-") as tmp:
        for k in range(args.cohorts):
            seed = args.seed + k
            root = _simulate(args, Path(tmp) / str(k), seed, preset) if preset else None
            first = figure and k == 0
            runs.append(_bench(args, root or args.record, seed, first=first))
    table = pd.concat([r["table"] for r in runs], ignore_index=True)
    summary = dict(runs[0]["summary"])
    if len(runs) > 1:
        summary |= summarise(table)
        if "label_error_mm_refined" in table:
            summary |= summarise_truth(table)
            summary["confidence_auroc"] = _auroc(table)
        summary["cohorts"] = [r["summary"] for r in runs]
    if preset is not None:
        from ..simulate.presets import SOURCE_NAMES

        off = [n for n in SOURCE_NAMES if not getattr(preset.sources, n)]
        summary["sources_off"] = off
    return summary, table


def _simulate(args, tmp, seed, preset):
    from ..simulate.cohort import simulate_sweep

    specimen = preset.specimens[0]
    sweep = args.sweep or next(
        (w for w in preset.sweeps if w.startswith("fibula")), preset.sweeps[0]
    )
    return simulate_sweep(
        tmp,
        preset=preset,
        seed=seed,
        specimen=specimen,
        sweep=sweep,
        frames=args.frames,
    )


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _truth_dir(root):
    from pathlib import Path

    truth = truth_of(Path(root).resolve(), "sweep")
    return truth if truth and (truth / "label_full").is_dir() else None


def _true_placement(truth) -> dict:
    """Return the true ``ct_from_image`` per timestamp of a simulated sweep."""
    from ..io.calibration import read_calibration
    from ..io.record import read_poses_table
    from ..transforms import POSE_COLUMNS, matrix_from_params

    poses = read_poses_table(truth / "poses.csv")
    calibration = read_calibration(truth.parents[3] / "calibration.yaml")
    T = matrix_from_params(poses[list(POSE_COLUMNS)].to_numpy(float))
    placed = T @ calibration.probe_from_image
    return dict(zip(poses["timestamp"].astype(int).tolist(), placed, strict=True))


def _warm_start(record, model, params):
    """Return the sweep's warm start from pilot frames spread over the whole record."""
    import numpy as np

    from ..engine.bench import run_frames
    from ..engine.warm import pilot_indices, sweep_prior
    from ..transforms import POSE_COLUMNS

    if not params.warm_start_frames:
        return None
    with_image = np.flatnonzero(record.poses["image"].to_numpy() != "")
    pilots = pilot_indices(with_image, params.warm_start_frames)
    table, _ = run_frames(_frames(record, pilots), model, record.calibration, params)
    kept = table[table["status"] == "kept"]
    refined = [f"{c}_refined" for c in POSE_COLUMNS]
    return sweep_prior(kept[refined].to_numpy() - kept[list(POSE_COLUMNS)].to_numpy())


def _sweep_confidence(table, params, calibration):
    """Rescore the benched frames together as ``label-sweep`` scores a sweep.

    The neighbour feature compares each frame with the benched frames next to it in
    time (every frame of a record unless ``--frames`` samples them).
    """
    from ..engine.confidence import FEATURES
    from ..sweep import confidence_check
    from ..transforms import POSE_COLUMNS

    checked = confidence_check(
        table[list(POSE_COLUMNS)].to_numpy(float),
        table[[f"{c}_refined" for c in POSE_COLUMNS]].to_numpy(float),
        table[list(FEATURES)].to_numpy(float),
        table["reason"].to_numpy(str),
        params=params,
        fiducials=calibration.probe_marker_fiducials_mm,
    )
    table = table.copy()
    table["confidence"] = checked["confidence"]
    table[list(FEATURES)] = checked["confidence_features"]
    table["reason"] = checked["reason"]
    table["status"] = checked["status"]
    return table


def _auroc(table) -> float:
    """AUROC of the confidence for a refined label error over 0.5 mm."""
    from ..engine.confidence import confidence_auroc

    if "label_error_mm_refined" not in table:
        return float("nan")
    return float(confidence_auroc(table["confidence"], table["label_error_mm_refined"]))


def _bench(args, root, seed, *, first) -> dict:
    """Run the engine on one record: its summary and per-frame table."""
    import numpy as np

    from ..engine import EngineParams
    from ..io.record import open_record

    record = open_record(root)
    truth = _truth_dir(root)
    kw = engine_kwargs(args, exclude=OWN_OPTIONS)
    params = EngineParams(**kw, reject_at_bound=args.reject_at_bound)
    model, precompute_s = _timed(_prepare_model, record, params)
    rows = _pick_rows(record.poses, args, np.random.default_rng(seed))
    keep = _KeepMasks(record, truth)
    prior, pilot_s = _timed(_warm_start, record, model, params)
    table, results = _label(record, rows, model, params, prior, keep)
    table = _sweep_confidence(table, params, record.calibration)
    summary, table = _summarise(table, keep)
    summary |= {
        "precompute_s": precompute_s,
        "pilot_s": pilot_s,
        "warm_start_eps": None if prior is None else prior.tolist(),
        "peak_rss_mb": _peak_rss_mb(),
        "objective": params.objective,
        "lam": params.lam,
        "seed": seed,
        "bones": sorted(record.bone_paths),
    }
    if args.figure and first:
        _figure(args.figure, record, rows, results)
    if args.review and first:
        _review(args.review, record, model, params, prior, table)
    return {"summary": summary, "table": table.assign(seed=seed)}


def _timed(fn, *args):
    """Return ``fn(*args)`` and its wall time (s)."""
    import time

    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def _prepare_model(record, params):
    """Prepare the record's specimen model, its triangles included."""
    from ..engine import prepare_specimen
    from ..io.stl import read_stl

    model = prepare_specimen(
        {k: read_stl(p) for k, p in record.bone_paths.items()}, params=params
    )
    model.triangles()
    return model


class _KeepMasks:
    """The bench's ``keep_masks``: truth scores and the masks of frames to show.

    A frame with truth and an initial label is scored against the simulator's masks
    (``scored``, by timestamp); the full labels of the first 48 kept frames are kept
    for the figures (``shown``), every other mask is dropped.
    """

    def __init__(self, record, truth):
        self.record, self.truth = record, truth
        self.placement = _true_placement(truth) if truth is not None else {}
        self.scored, self.shown = {}, {}

    def __call__(self, stamp, res) -> None:
        """Score and keep what the bench needs of one frame's result."""
        if self.truth is not None and res.masks["full_initial"].any():
            self.scored[stamp] = self._score(stamp, res)
        if res.kept and len(self.shown) < 48:
            full = {k: v for k, v in res.masks.items() if k.startswith("full")}
            self.shown[stamp] = full

    def _score(self, stamp, res) -> dict:
        import numpy as np

        from ..engine.bench import pose_errors, truth_row
        from ..io.png import read_png

        full = read_png(self.truth / "label_full" / f"{stamp}.png") > 0
        visible = read_png(self.truth / "label_visible" / f"{stamp}.png") > 0
        calibration = self.record.calibration
        return truth_row(
            res, full, visible, spacing_mm=calibration.pixel_spacing_mm
        ) | pose_errors(
            res,
            self.placement[stamp],
            calibration=calibration,
            label_rc=np.argwhere(full),
        )


def _label(record, rows, model, params, prior, keep):
    """Run the engine on the record rows ``rows`` as ``label-sweep`` runs a sweep.

    Both passes with ``refinement: sweep``; the results keep the masks ``keep``
    kept for the figures.
    """
    from ..engine.bench import refit_sweep, run_frames

    calibration = record.calibration
    table, results = run_frames(
        _frames(record, rows),
        model,
        calibration,
        params,
        keep_masks=keep,
        prior=prior,
    )
    if params.refinement == "sweep":
        table, results = refit_sweep(
            table,
            results,
            lambda picked: _frames(record, rows[picked]),
            model,
            calibration,
            params,
            keep_masks=keep,
        )
    for r, stamp in zip(results, table["timestamp"], strict=True):
        r.masks = keep.shown.get(int(stamp), {})
    return table, results


def _summarise(table, keep):
    """Return the summary and the table, joined by the truth scores ``keep`` made."""
    import pandas as pd

    from ..engine.bench import summarise, summarise_truth

    summary = summarise(table)
    if keep.truth is not None:
        scored = keep.scored
        extra = (
            table["timestamp"].map(lambda s: scored.get(int(s), {})).apply(pd.Series)
        )
        table = pd.concat([table, extra], axis=1)
        summary.update(summarise_truth(table))
        summary["confidence_auroc"] = _auroc(table)
    return summary, table


def _rerun(record, model, params, prior, table, rows):
    """Run the record rows ``rows`` again as the bench ran them (pass one or two)."""
    import pandas as pd

    from ..engine.bench import START_COLUMNS, run_frames
    from ..engine.consistency import residual_params

    by_stamp = table.set_index("timestamp")
    tables, results = [], []
    for i in rows:
        stamp = int(record.poses["timestamp"].iat[i])
        refit = "refit" in by_stamp and bool(by_stamp.at[stamp, "refit"])
        start = by_stamp.loc[stamp, START_COLUMNS].to_numpy(float) if refit else None
        kw = {"starts": {stamp: start}} if refit else {"prior": prior}
        run = residual_params(params) if refit else params
        t, r = run_frames(_frames(record, [i]), model, record.calibration, run, **kw)
        tables.append(t)
        results += r
    return pd.concat(tables, ignore_index=True), results


def _review(folder, record, model, params, prior, table) -> None:
    """Write the sweep timeline and the 12 least confident refined frames."""
    from pathlib import Path

    import numpy as np

    from ..engine.figures import contour_grid, sweep_timeline
    from ..io.png import read_png

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    sweep_timeline(table).savefig(out / "corrections.png", dpi=110)
    low = table[np.isfinite(table["confidence"])].nsmallest(12, "confidence")
    stamps = record.poses["timestamp"].to_numpy()
    rows = np.flatnonzero(np.isin(stamps, low["timestamp"].to_numpy()))
    # Refined again as in the bench (prior, seeds, starts): the same results, now
    # with masks.
    again, results = _rerun(record, model, params, prior, table, rows)
    by_stamp = low.set_index("timestamp")
    titles = [
        f"{s} {by_stamp.at[s, 'reason']} conf {by_stamp.at[s, 'confidence']:.2f} "
        f"{by_stamp.at[s, 'fiducial_correction_mm']:.2f} mm"
        for s in again["timestamp"]
    ]
    images = [read_png(record.image_path(s)) for s in again["timestamp"]]
    fig = contour_grid(images, results, list(again["timestamp"]), titles=titles)
    fig.savefig(out / "lowest_confidence.png", dpi=90)
