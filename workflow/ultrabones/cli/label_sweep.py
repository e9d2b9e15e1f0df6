"""``ultrabones label-sweep RECORD``: refine and label every frame into a Zarr store.

Frames run on Dask (a local cluster of ``--threads`` single-threaded worker processes,
or an existing scheduler by ``--scheduler``), chunk by chunk into a resumable
work-in-progress store that is published to ``--out`` by an atomic rename.

The record, model and output paths are resolved on the submitting host: workers of an
external scheduler must see the same file system at the same absolute paths.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import logging
import os
import sys

from .options import add_engine_options, engine_kwargs

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    """Register the ``label-sweep`` subcommand."""
    p = sub.add_parser("label-sweep", help="label every frame of a record into a store")
    p.add_argument("record", help="record folder in the public layout")
    p.add_argument("--model", required=True, help="prepared specimen model folder")
    p.add_argument("--out", required=True, help="output store (.zarr)")
    p.add_argument("--specimen", required=True, help="specimen ID")
    p.add_argument("--sweep", required=True, help="sweep ID")
    p.add_argument("--threads", type=int, default=1, help="local Dask workers")
    p.add_argument("--scheduler", default="", help="address of a running scheduler")
    p.add_argument(
        "--chunk-frames",
        type=int,
        help="frames per chunk (default: store.DEFAULT_CHUNK_FRAMES)",
    )
    p.add_argument("--seed", type=int, default=0, help="refinement seed")
    p.add_argument("--config-hash", default="", help="workflow config hash")
    p.add_argument(
        "--max-failed-fraction",
        type=float,
        default=0.05,
        help="fail when more frames than this end in engine_error",
    )
    add_engine_options(p)
    p.set_defaults(run=run)


def _client(threads: int, scheduler: str):
    from dask.distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)

    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(
            n_workers=max(threads, 1),
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port: several sweeps run side by side
        )
        client = Client(cluster)
    log.info("%s", _dashboard_message(client, bokeh=_has_bokeh()))
    return client


def _has_bokeh() -> bool:
    return importlib.util.find_spec("bokeh") is not None


def _dashboard_message(client, *, bokeh: bool) -> str:
    """Return the log line giving the Dask dashboard's link, or why there is none."""
    if "dashboard" in client.scheduler_info().get("services", {}):
        return f"Dask dashboard: {client.dashboard_link}"
    if not bokeh:
        return "Dask dashboard off: bokeh is not installed (the workflow extra has it)"
    return f"Dask dashboard off: the scheduler {client.scheduler.address} runs none"


def _absolute(args) -> argparse.Namespace:
    """Return ``args`` with the record, model and output paths made absolute.

    Tasks and writers carry these paths to the workers, which may run in another
    directory (an external scheduler's), so they are resolved here, on the submitting
    host. Symlinks are kept (no ``resolve``): a linked record stays itself.
    """
    paths = {k: os.path.abspath(getattr(args, k)) for k in ("record", "model", "out")}
    return argparse.Namespace(**{**vars(args), **paths})


def _progress(total: int, initial: int):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="frame",
        file=sys.stderr,
        mininterval=2.0,
        desc="label-sweep",
    )


def run(args) -> int:
    """Label the record's frames and publish the store."""
    import numpy as np

    from ..engine import EngineParams, SpecimenModel, process_frame
    from ..errors import ConfigError
    from ..io.record import open_record
    from ..io.store import open_work
    from ..provenance import provenance
    from ..store import DEFAULT_CHUNK_FRAMES, chunk_slices, encoding, template_dataset
    from ..sweep import label_chunks, plan_tasks
    from ..transforms import params_from_matrix

    chunk = DEFAULT_CHUNK_FRAMES if args.chunk_frames is None else args.chunk_frames
    if chunk < 1:
        raise ConfigError(f"--chunk-frames must be >= 1, got {chunk}")
    args = _absolute(args)
    log.info("SLURM_JOB_ID=%s", os.environ.get("SLURM_JOB_ID", "none"))
    record = open_record(args.record)
    engine = engine_kwargs(args)
    params = EngineParams(**engine, seed=args.seed)
    engine = params.to_dict()
    prov = provenance([args.record, args.model], config_hash=args.config_hash)
    plan = {**prov, "engine": engine, "seed": args.seed, "chunk": chunk}
    plan.pop("git_sha")
    work = open_work(args.out, plan)
    cal = record.calibration
    tasks = plan_tasks(record, seed=args.seed, specimen=args.specimen, sweep=args.sweep)
    _check_any_processed([t.status for t in tasks], args.record)  # before any cluster
    slices = chunk_slices(len(tasks), chunk)
    attrs = {
        **prov,
        "specimen": args.specimen,
        "sweep": args.sweep,
        "pixel_spacing_mm": list(cal.pixel_spacing_mm),
        "probe_from_image": [
            float(v) for v in params_from_matrix(cal.probe_from_image)
        ],
        "gamma_mm": float(params.gamma_mm),
        "engine_params": json.dumps(engine, sort_keys=True),
        "seed": args.seed,
        "chunk_frames": chunk,
    }
    if not work.created:
        template = template_dataset(
            record.poses["timestamp"].to_numpy(),
            shape=cal.shape,
            spacing_mm=cal.pixel_spacing_mm,
            specimen=args.specimen,
            sweep=args.sweep,
            chunk_frames=chunk,
            attrs=attrs,
        )
        work.create(template, encoding(template, chunk))
    done = work.completed()
    pending = [i for i in range(len(slices)) if i not in done]
    finished = sum(s.stop - s.start for i, s in enumerate(slices) if i in done)
    log.info(
        "%s: %d frames, %d of %d chunks to do",
        args.out,
        len(tasks),
        len(pending),
        len(slices),
    )
    model = SpecimenModel.load(args.model)

    kernel = dict(shape=cal.shape, model=model, calibration=cal, params=params)
    with (
        _client(args.threads, args.scheduler) as client,
        _progress(len(tasks), finished) as bar,
    ):
        warm = _warm_start(work, client, tasks, kernel)
        attrs["warm_start"] = json.dumps(
            {k: warm[k] for k in ("eps", "pilots")}, sort_keys=True
        )
        prior = None if warm["eps"] is None else np.asarray(warm["eps"])
        label_chunks(
            client,
            tasks,
            slices=slices,
            pending=pending,
            write=functools.partial(_write, store=str(work.store), slices=slices),
            mark=functools.partial(_mark, work=work, slices=slices),
            progress=bar,
            frame_fn=functools.partial(process_frame, prior=prior),
            **kernel,
        )
        if params.refinement == "sweep":
            _sweep_refit(work, client, tasks, kernel)
    # read once: the confidence check changes no frame's image or engine_error
    reasons = _reasons(work)
    _check_any_processed(reasons, args.record)
    _confidence_check(work, params, cal.probe_marker_fiducials_mm)
    _check_failures(reasons, work.out, args.max_failed_fraction)
    work.publish(attrs)
    return 0


def _warm_start(work, client, tasks, kernel) -> dict:
    """Return the sweep's warm start, saved before any chunk for a resumed run."""
    from ..engine import process_frame
    from ..sweep import pilot_prior

    saved = work.load_sweep()
    if saved is not None:
        log.info("%s: warm start from the saved sweep results", work.out)
        return saved
    n = kernel["params"].warm_start_frames
    prior, pilots = (None, [])
    if n:
        prior, pilots = pilot_prior(
            client, tasks, n=n, frame_fn=process_frame, **kernel
        )
    doc = {
        "eps": None if prior is None else [float(v) for v in prior],
        "pilots": pilots,
    }
    log.info(
        "%s: warm start %s from %d pilot frames", work.out, doc["eps"], len(pilots)
    )
    work.save_sweep(doc)
    return doc


def _sweep_refit(work, client, tasks, kernel) -> None:
    """Refine again the frames that stray from the sweep's correction.

    The plan (frames and starts) is saved before any frame is rewritten, and a
    finished pass is marked, so a resumed run rewrites the same values or none.
    """
    import numpy as np

    from ..engine import process_frame
    from ..engine.consistency import refit_plan
    from ..io.store import open_store, write_region
    from ..store import as_str, chunk_dataset
    from ..sweep import refit_frames

    doc = work.load_sweep()
    if doc.get("refit", {}).get("done"):
        return
    if "refit" not in doc:
        ds = open_store(work.store)
        frames, starts = refit_plan(
            ds["timestamp"].values,
            ds["pose_initial"].values,
            ds["pose_refined"].values,
            as_str(ds["reason"].values),
            params=kernel["params"],
            fiducials=kernel["calibration"].probe_marker_fiducials_mm,
        )
        doc["refit"] = {"frames": frames.tolist(), "starts": starts.tolist()}
        work.save_sweep(doc)
    frames = doc["refit"]["frames"]
    starts = np.asarray(doc["refit"]["starts"], float).reshape(-1, 6)
    arrays = refit_frames(
        client, tasks, frames, starts, frame_fn=process_frame, **kernel
    )
    for i, frame in zip(frames, arrays, strict=True):
        write_region(work.store, slice(i, i + 1), chunk_dataset(frame))
    doc["refit"]["done"] = True
    work.save_sweep(doc)
    log.info(
        "%s: %d frame(s) refined again from the sweep's correction",
        work.out,
        len(frames),
    )


def _confidence_check(work, params, fiducials) -> None:
    """Apply the sweep-level confidence check to the finished frames.

    Its results are saved (``sweep.json``) before the store is changed, so a run
    killed while writing them re-applies the same values on resume.
    """
    import numpy as np

    from ..io.store import clear_frames, open_store, write_variables
    from ..store import as_str
    from ..sweep import confidence_check
    from ..vocabulary import MASKS

    doc = work.load_sweep()
    if "confidence_check" not in doc:
        ds = open_store(work.store)
        checked = confidence_check(
            ds["pose_initial"].values,
            ds["pose_refined"].values,
            ds["confidence_features"].values,
            as_str(ds["reason"].values),
            params=params,
            fiducials=fiducials,
        )
        doc["confidence_check"] = {k: v.tolist() for k, v in checked.items()}
        work.save_sweep(doc)
    done = doc["confidence_check"]
    text = np.dtypes.StringDType()
    write_variables(
        work.store,
        {
            "confidence": np.asarray(done["confidence"], np.float32),
            "confidence_features": np.asarray(done["confidence_features"], np.float32),
            "reason": np.asarray(done["reason"], dtype=text),
            "status": np.asarray(done["status"], dtype=text),
        },
    )
    clear_frames(work.store, done["discarded"], MASKS)
    log.info(
        "%s: confidence check discarded %d frame(s) as low_confidence",
        work.out,
        len(done["discarded"]),
    )


def _write(index: int, arrays: dict, *, store: str, slices) -> None:
    """Write one chunk (runs in a Dask worker)."""
    from ..io.store import write_region
    from ..store import chunk_dataset

    write_region(store, slices[index], chunk_dataset(arrays))


def _mark(index: int, *, work, slices) -> None:
    work.mark_done(index, slices[index])


def _check_failures(reason, out, max_fraction: float) -> None:
    """Fail when more frames with an image than ``max_fraction`` hit engine_error."""
    import numpy as np

    from ..errors import InputDataError

    has_image = reason != "no_image"
    failed = (
        float(np.mean(reason[has_image] == "engine_error")) if has_image.any() else 0
    )
    if failed > max_fraction:
        raise InputDataError(
            f"{out}: {failed:.1%} of frames ended in engine_error, more than "
            f"--max-failed-fraction {max_fraction:.1%} (see the log's tracebacks)"
        )


def _reasons(work):
    from ..io.store import open_store
    from ..store import as_str

    return as_str(open_store(work.store)["reason"].values)


def _check_any_processed(reasons, record: str) -> None:
    """Fail when no frame's image was read and refined (nothing to publish).

    ``reasons`` are the frames' codes: the poses table's before labelling (no row
    ``ok``: nothing can be), the store's after. A sweep whose frames were all refined
    and then discarded is a normal outcome; one where no frame reached the engine
    (images misnamed, probe never tracked) is bad input, and publishing it would give
    an empty release.
    """
    from collections import Counter

    from ..errors import InputDataError
    from ..vocabulary import UNPROCESSED_REASONS

    if any(r not in UNPROCESSED_REASONS for r in reasons):
        return
    counts = ", ".join(f"{k} {n}" for k, n in sorted(Counter(reasons).items()))
    raise InputDataError(
        f"{record}: no frame of the sweep has an image that was read and refined "
        f"({counts}); check the image names (UltrasoundImages/<timestamp>.png) and "
        "the poses"
    )
