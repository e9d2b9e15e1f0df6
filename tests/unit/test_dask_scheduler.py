"""label-sweep on an external Dask scheduler whose worker runs in another directory."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_label_sweep import label_sweep, write_record

from ultrabones.cli.label_sweep import _client
from ultrabones.io.store import open_store

DASK = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which(
    "dask"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scheduler(tmp_path):
    """Yield the address of a scheduler and its one worker, both in ``elsewhere/``."""
    from dask.distributed import Client

    if DASK is None:
        pytest.skip("the dask command line (distributed) is not installed")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    address = f"tcp://127.0.0.1:{free_port()}"
    port = address.rsplit(":")[-1]
    commands = [
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", port],
        # no nanny: one process, so terminating it leaves no orphan behind
        [DASK, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-nanny"],
    ]
    procs = []
    try:
        for command in commands:
            procs.append(
                subprocess.Popen(
                    [*command, "--dashboard-address", "127.0.0.1:0"],
                    cwd=elsewhere,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        with Client(address, timeout="20s") as client:
            client.wait_for_workers(1, timeout=20)
        yield address
    finally:
        for proc in reversed(procs):  # the worker first: no nanny, so kill is clean
            proc.kill()
            proc.wait(timeout=10)


def test_external_scheduler_writes_the_local_clusters_store(
    tmp_path, monkeypatch, scheduler, caplog
):
    caplog.set_level(logging.INFO, logger="ultrabones")
    monkeypatch.chdir(tmp_path)  # relative paths, as the workflow passes them
    record, model = (p.relative_to(tmp_path) for p in write_record(tmp_path))
    assert label_sweep(record, model, "local.zarr") == 0
    assert label_sweep(record, model, "remote.zarr", "--scheduler", scheduler) == 0
    assert caplog.text.count("Dask dashboard: http://127.0.0.1:") == 2
    local, remote = open_store("local.zarr"), open_store("remote.zarr")
    assert set(local.variables) == set(remote.variables)
    for name in local.variables:
        a, b = local[name].values, remote[name].values
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name


def _environ(*names: str) -> dict:
    return {k: os.environ.get(k) for k in names}


def test_local_workers_keep_glibcs_dynamic_mmap_threshold(monkeypatch):
    """The local cluster's workers get dask's pre-spawn variables but the trim one."""
    import dask

    trim = "MALLOC_TRIM_THRESHOLD_"
    # the nannies copy their variables into this process: start clean, undo after
    for name in (trim, "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    with _client(1, "") as client:
        env = client.run(_environ, trim, "OMP_NUM_THREADS")
        cluster = client.cluster
    assert list(env.values()) == [{trim: None, "OMP_NUM_THREADS": "1"}]
    # the local cluster ends with the client: no worker process outlives the sweep
    assert cluster.status.name == "closed" and not cluster.workers
    # only the local cluster: an external scheduler's workers keep dask's default
    assert dask.config.get(f"distributed.nanny.pre-spawn-environ.{trim}") == 65536
