"""The tiny workflow through the SLURM executor on a throwaway single-node cluster."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from slurm.cluster import ClusterUnavailable, ThrowawaySlurm, unavailable_reason
from workflow_helpers import REPO, copy_workflow, snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster():
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    try:
        # The node claims twice the machine's cores (slurmd takes the configured count:
        # SlurmdParameters=config_overrides): a sweep's group job reserves two CPUs for
        # its parallel checks but runs its jobs one at a time, so with the true count
        # the two sweeps' group jobs would queue one behind the other.
        with ThrowawaySlurm(cpus=2 * (os.cpu_count() or 2)) as running:
            yield running
    except ClusterUnavailable as err:
        pytest.fail(f"throwaway SLURM cluster did not start: {err}")


def test_tiny_workflow_runs_through_sbatch(cluster, tmp_path):
    workdir = copy_workflow(tmp_path)
    case = REPO / "tests" / "workflow" / "slurm"
    shutil.copy(case / "config.yaml", workdir / "config" / "case.yaml")
    shutil.copy(case / "sweeps.tsv", workdir / "config" / "case-sweeps.tsv")
    proc = snakemake(
        workdir,
        # the profile users get; the throwaway cluster has no accounts and no
        # accounting daemon (job states from squeue)
        "--profile",
        str(REPO / "profiles" / "slurm"),
        "--slurm-no-account",
        "--slurm-status-command",
        "squeue",
        "--configfile",
        "config/case.yaml",
        "--jobs",
        "4",
        "--slurm-init-seconds-before-status-checks",
        "2",
        # the release alone: its jobs are the cluster's; the QC scores and audit
        # pages add no new kind of job (test_workflow_run builds them)
        "results/release/manifest.sha256",
        timeout=1200,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    job_ids = set(re.findall(r"SLURM jobid (\d+)", output))
    label_log = (workdir / "logs" / "label_sweep" / "S01" / "tibia-1.log").read_text()
    inside = re.search(r"SLURM_JOB_ID=(\d+)", label_log)
    assert inside and inside.group(1) in job_ids
    assert (workdir / "results" / "release" / "manifest.sha256").is_file()
    slurm_logs = workdir / ".snakemake" / "slurm_logs"
    submitted = {p.name: len(list(p.rglob("*.log"))) for p in slurm_logs.iterdir()}
    # One sbatch per sweep for its poses, labels and per-sweep checks (the
    # profile's group "sweep"), none of those rules alone.
    groups = [name for name in submitted if name.startswith("group_sweep")]
    assert sum(submitted[name] for name in groups) == 2, submitted
    for rule in ("compute_poses", "label_sweep", "verify_store", "plot_sweep_qa"):
        assert f"rule_{rule}" not in submitted, submitted
    # The local rules ran on the submitting node: no sbatch log of theirs.
    assert "rule_write_manifest" not in submitted, submitted
    assert len(job_ids) == sum(submitted.values()), (job_ids, submitted)
