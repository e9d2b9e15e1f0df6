"""``ultrabones honesty``: the engine on simulated frames beside real ones."""

from __future__ import annotations

import argparse
import logging

from .options import add_without_option

__all__ = ["add_parser", "run"]

log = logging.getLogger(__name__)

#: Bones whose first sweep of the preset is simulated, in this order (issue 16).
BONES = ("tibia", "fibula", "foot")


def add_parser(sub) -> None:
    """Register ``honesty``."""
    p = sub.add_parser(
        "honesty", help="engine behaviour on simulated vs real frames, with targets"
    )
    _add_inputs(p)
    _add_options(p)
    p.set_defaults(run=run)


def _add_inputs(p) -> None:
    """Add the real record and the simulated cohorts' arguments."""
    p.add_argument("--real", required=True, help="real record folder (public layout)")
    p.add_argument("--preset", choices=("tiny", "paper"), default="paper")
    p.add_argument("--seed", type=int, default=0, help="cohort seed of cohort 1")
    p.add_argument(
        "--cohorts",
        type=int,
        default=1,
        help="simulated cohorts (seeds SEED, SEED+1, ...), one specimen each",
    )
    p.add_argument(
        "--frames",
        type=int,
        default=4,
        help="frames per simulated sweep; the real side gets as many in all",
    )
    p.add_argument(
        "--eq3-frames",
        type=int,
        default=1,
        help="frames per side for Eq. 3 (CPU per frame and lambda: about 15 s real, "
        "3 min simulated)",
    )


def _add_options(p) -> None:
    """Add the simulator switches, extra real frames and output arguments."""
    add_without_option(p)
    p.add_argument(
        "--appearance-real",
        nargs="+",
        default=[],
        metavar="FOLDER",
        help="more real frames for the appearance side (image folders or records)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", help="folder for the CSV tables, JSON and figure")


def run(args: argparse.Namespace) -> int:
    """Run the engine on real and simulated frames; print the honesty tables."""
    import json
    import tempfile
    import time
    from pathlib import Path

    from ..engine import EngineParams
    from ..errors import ConfigError
    from ..simulate.presets import get_preset, without
    from ..studies.honesty import targets

    if min(args.cohorts, args.frames) < 1 or args.eq3_frames < 0:
        raise ConfigError("--cohorts and --frames take counts >= 1, --eq3-frames >= 0")
    t0 = time.perf_counter()
    preset = without(get_preset(args.preset), *args.without)
    params = EngineParams()
    with tempfile.TemporaryDirectory(prefix="ultrabones-honesty-") as tmp:
        sim, cohorts, names = _simulated(args, preset, params, Path(tmp))
        appearance = _appearance(args, cohorts)
    real = _real(args, params, frames=int((sim["robust"]["lam"] == params.lam).sum()))
    robust, eq3 = _tables(sim, real)
    doc = {
        "settings": _settings(args, params, names),
        "robust": robust.to_dict("records"),
        "eq3": eq3.to_dict("records"),
        "appearance": appearance,
        "targets": targets(robust, eq3, appearance).to_dict("records"),
    }
    doc["passed"] = sum(r["passed"] for r in doc["targets"])
    if args.out:
        _write(Path(args.out), doc, robust)
    print(json.dumps(doc) if args.json else _text(doc))
    log.info("honesty: %.0f s wall", time.perf_counter() - t0)
    return 0


def _lambdas(params) -> list[float]:
    """Return the paper's lambda grid plus the engine's default lambda."""
    from ..sweep.lam import LAMBDAS

    return sorted({*LAMBDAS, params.lam})


def _settings(args, params, sweeps) -> dict:
    return {
        "real": str(args.real),
        "preset": args.preset,
        "seed": args.seed,
        "cohorts": args.cohorts,
        "frames": args.frames,
        "eq3_frames": args.eq3_frames,
        "without": list(args.without),
        "default_lam": params.lam,
        "sim_sweeps": sweeps,
    }


def _sweeps(preset) -> list[str]:
    """Return the first sweep of each of ``BONES`` in the preset (those it has)."""
    return [
        next(w for w in preset.sweeps if w.split("-")[0] == bone)
        for bone in BONES
        if any(w.split("-")[0] == bone for w in preset.sweeps)
    ]


def _sweep_frames(record, rows):
    """Return the tasks of the record rows ``rows``, seeded as ``label-sweep`` seeds.

    The run seed is the engine's default (the study's ``EngineParams()``).
    """
    from ..engine import EngineParams
    from ..sweep.local import record_tasks

    tasks = record_tasks(record, EngineParams())
    return [tasks[int(i)] for i in rows]


def _model(record, params):
    from ..engine import prepare_specimen
    from ..io.stl import read_stl

    meshes = {k: read_stl(p) for k, p in record.bone_paths.items()}
    return prepare_specimen(meshes, params=params)


def _simulated(args, preset, params, tmp):
    """Simulate each cohort's sweeps and run the engine on them, cohort by cohort.

    One specimen model lives at a time (a three-bone model takes about 1 GB).
    Returns the engine runs (``robust``, ``eq3``), the cohort folders and the
    ``seed/specimen/sweep`` names.
    """
    import pandas as pd

    from ..studies.honesty import EQ3_LAMBDAS, engine_runs, spread

    sweeps = _sweeps(preset)
    eq3_counts = iter(spread(args.eq3_frames, args.cohorts * len(sweeps)))
    eq3_params = _replace(params, objective="eq3")
    robust, eq3, cohorts, names = [], [], [], []
    for k in range(args.cohorts):
        cohorts.append(tmp / str(k))
        sources, record = _cohort(args, preset, k, sweeps, cohorts[-1])
        names += [name for name, _, _ in sources]
        # The sweeps of a specimen share its CT models: one model serves them all.
        model = _model(record, params)
        robust.append(engine_runs(_with(sources, model), params, _lambdas(params)))
        picked = [(n, f[: next(eq3_counts)], c) for n, f, c in sources]
        if eq3_with := [s for s in _with(picked, model) if s[1]]:
            eq3.append(engine_runs(eq3_with, eq3_params, EQ3_LAMBDAS))
        log.info("honesty: cohort %d of %d done", k + 1, args.cohorts)
    runs = {"robust": pd.concat(robust, ignore_index=True)}
    runs["eq3"] = pd.concat(eq3, ignore_index=True) if eq3 else None
    return runs, cohorts, names


def _cohort(args, preset, k, sweeps, folder):
    """Simulate cohort ``k``'s sweeps into ``folder``.

    Returns ``(name, frames, calibration)`` per sweep and the last sweep's record.
    """
    from ..io.record import open_record
    from ..simulate.cohort import simulate_sweep

    seed, specimen = args.seed + k, preset.specimens[k % len(preset.specimens)]
    sources = []
    for sweep in sweeps:
        root = simulate_sweep(
            folder,
            preset=preset,
            seed=seed,
            specimen=specimen,
            sweep=sweep,
            frames=args.frames,
        )
        record = open_record(root)
        rows = record.image_rows()
        name = f"{seed}/{specimen}/{sweep}"
        sources.append((name, _sweep_frames(record, rows), record.calibration))
    return sources, record


def _with(sources, model):
    """Insert the specimen model into ``(name, frames, calibration)`` sources."""
    return [(name, frames, model, cal) for name, frames, cal in sources]


def _replace(params, **changes):
    from dataclasses import replace

    return replace(params, **changes)


def _real(args, params, *, frames):
    """Run the engine on ``frames`` random frames of the real record."""
    import numpy as np

    from ..io.record import open_record
    from ..simulate.presets import rng_for
    from ..studies.honesty import EQ3_LAMBDAS, engine_runs

    record = open_record(args.real)
    with_image = record.image_rows()
    rng = rng_for(args.seed, "honesty", "real")
    rows = np.sort(rng.choice(with_image, min(frames, with_image.size), replace=False))
    picked = _sweep_frames(record, rows)
    model, cal = _model(record, params), record.calibration
    runs = {
        "robust": engine_runs([("real", picked, model, cal)], params, _lambdas(params))
    }
    step = max(1, len(picked) // max(args.eq3_frames, 1))
    eq3 = picked[::step][: args.eq3_frames]
    eq3_params = _replace(params, objective="eq3")
    runs["eq3"] = (
        engine_runs([("real", eq3, model, cal)], eq3_params, EQ3_LAMBDAS)
        if eq3
        else None
    )
    return runs


def _tables(sim, real):
    """Side-by-side summaries of the robust grid and of Eq. 3."""
    import pandas as pd

    from ..studies.honesty import EQ3_LAMBDAS, lambda_summary, side_by_side

    def summary(runs):
        if runs is None:
            return pd.DataFrame({"lam": list(EQ3_LAMBDAS)})
        return lambda_summary(runs)

    robust = side_by_side(summary(sim["robust"]), summary(real["robust"]))
    return robust, side_by_side(summary(sim["eq3"]), summary(real["eq3"]))


def _appearance(args, cohorts) -> dict:
    """Compare appearance with ``studies.appearance``, as ``appearance`` does."""
    from pathlib import Path

    from ..studies.appearance import (
        FrameSet,
        compare,
        measure_real,
        measure_sim,
        summary,
    )

    real, sim = FrameSet(), FrameSet()
    for folder in (args.real, *args.appearance_real):
        measure_real(Path(folder), real)
    for cohort in cohorts:
        measure_sim(cohort, sim, max_frames=args.frames)
    return {"real": summary(real), "sim": summary(sim), **compare(sim, real)}


def _table(rows, columns=None) -> str:
    """Return ``rows`` as a text table, only ``columns`` (those present) if given."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame = frame[[c for c in columns if c in frame]] if columns else frame
    return frame.to_string(index=False, float_format=lambda v: f"{v:.3f}")


def _side_columns(names) -> list[str]:
    """Return ``lam`` and each name's simulated and real column, side by side."""
    return ["lam", *(f"{name}_{side}" for name in names for side in ("sim", "real"))]


def _text(doc) -> str:
    """Return the readable report: the three tables and the targets."""
    robust_cols = _side_columns(
        (
            "correction_mm_median",
            "lateral_mm_median_abs",
            "axial_mm_median_abs",
            "bound_hit_fraction",
            "discarded_fraction",
            "cpu_s_median",
        )
    )
    eq3_cols = _side_columns(
        ("frames", "bound_hit_fraction", "discarded_fraction", "cpu_s_median")
    )
    n = len(doc["targets"])
    return "\n\n".join(
        [
            "robust objective, each frame alone (median over refined frames):",
            _table(doc["robust"], robust_cols),
            "Eq. 3 as printed:",
            _table(doc["eq3"], eq3_cols),
            f"targets ({doc['passed']} of {n} passed):",
            _table(doc["targets"]),
        ]
    )


def _write(out, doc, robust) -> None:
    """Write the tables as CSV, the report as JSON and the lambda figure."""
    from ..io.tables import save_figure, write_json, write_rows
    from ..studies.honesty import lambda_figure

    out.mkdir(parents=True, exist_ok=True)
    for name in ("robust", "eq3", "targets"):
        write_rows(out / f"{name}.csv", doc[name])
    write_json(out / "honesty.json", doc, indent=2)
    save_figure(lambda_figure(robust), out / "honesty_lambda.png")
