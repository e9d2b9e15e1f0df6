"""``ultrabones label-sweep RECORD``: refine and label every frame into a Zarr store.

Frames run on Dask (a local cluster of ``--threads`` single-threaded worker processes,
or an existing scheduler by ``--scheduler``), chunk by chunk into a resumable
work-in-progress store that is published to ``--out`` by an atomic rename
(:func:`ultrabones.sweep.label_sweep`).

Workers of an external scheduler must see the same file system at the same absolute
paths as the submitting host.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os

from .options import add_engine_options, engine_kwargs, given

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
    p.add_argument(
        "--lam-from",
        help="select-lambda's lambda.json: its lambda replaces --lam (provenance: "
        "the store's lam_rule)",
    )
    p.set_defaults(run=run)


#: Dask config of the local cluster's workers: without dask's default
#: ``MALLOC_TRIM_THRESHOLD_=65536``. Setting glibc's trim threshold at all also
#: fixes its mmap threshold at 128 kB (mallopt(3)), so every per-frame array (an
#: image is 770 kB) is a fresh mmap, page-faulted in and unmapped on free. A value
#: of None drops the variable (``distributed.nanny._get_env_variables``); a
#: variable the user exported still reaches the workers.
LOCAL_WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None
}


@contextlib.contextmanager
def _client(threads: int, scheduler: str):
    """Yield a Dask client: of ``scheduler``, or of a local cluster closed with it.

    ``Client(cluster)`` leaves a cluster it did not make running when it closes, so
    the local cluster is closed here: its worker processes end with the sweep.
    """
    import dask
    from dask.distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)
    with contextlib.ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(Client(scheduler))
        else:
            # the nannies read the config when the cluster makes them, here
            with dask.config.set(LOCAL_WORKER_CONFIG):
                cluster = stack.enter_context(
                    LocalCluster(
                        n_workers=max(threads, 1),
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=":0",  # any free port: sweeps side by side
                    )
                )
            client = stack.enter_context(Client(cluster))
        log.info("%s", _dashboard_message(client, bokeh=_has_bokeh()))
        yield client


def _has_bokeh() -> bool:
    return importlib.util.find_spec("bokeh") is not None


def _dashboard_message(client, *, bokeh: bool) -> str:
    """Return the log line giving the Dask dashboard's link, or why there is none."""
    if "dashboard" in client.scheduler_info().get("services", {}):
        return f"Dask dashboard: {client.dashboard_link}"
    if not bokeh:
        return "Dask dashboard off: bokeh is not installed (the workflow extra has it)"
    return f"Dask dashboard off: the scheduler {client.scheduler.address} runs none"


def run(args) -> int:
    """Label the record's frames and publish the store."""
    from ..engine import EngineParams
    from ..errors import ConfigError
    from ..sweep import SweepOptions, label_sweep
    from ..sweep.lam import read_choice

    engine = engine_kwargs(args)
    lam_rule = "fixed: --lam or its default"
    if args.lam_from:
        if "lam" in engine:
            raise ConfigError("--lam and --lam-from: give one of them")
        engine["lam"], rule = read_choice(args.lam_from)
        lam_rule = f"select-lambda ({args.lam_from}): {rule}"
    options = SweepOptions(
        specimen=args.specimen,
        sweep=args.sweep,
        config_hash=args.config_hash,
        max_failed_fraction=args.max_failed_fraction,
        lam_rule=lam_rule,
        **given(args, "chunk_frames"),
    )
    if options.chunk_frames < 1:
        raise ConfigError(f"--chunk-frames must be >= 1, got {options.chunk_frames}")
    log.info("SLURM_JOB_ID=%s", os.environ.get("SLURM_JOB_ID", "none"))
    label_sweep(
        args.record,
        args.model,
        EngineParams(**engine, seed=args.seed),
        args.out,
        options,
        connect=functools.partial(_client, args.threads, args.scheduler),
    )
    return 0
