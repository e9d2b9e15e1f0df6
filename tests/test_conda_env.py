"""The conda deployment: `--sdm conda` creates the jobs' environment and it runs them.

Where conda or conda-forge is not at hand (this project's CI reaches PyPI and Debian
only), the test skips and names what is missing; the Snakefile's parse without the
package, which that deployment also needs, is tested in test_workflow.py.
"""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from workflow_helpers import REPO, copy_workflow, snakemake

pytestmark = pytest.mark.slow

#: Where `channels: conda-forge` resolves.
CONDA_FORGE = ("conda.anaconda.org", 443)


def _missing() -> str | None:
    """Why the environment cannot be created here, or None."""
    if shutil.which("conda") is None:
        return "conda not on PATH (Snakemake's conda front end)"
    try:
        socket.create_connection(CONDA_FORGE, timeout=5).close()
    except OSError as err:
        return f"conda-forge unreachable ({CONDA_FORGE[0]}: {err})"
    return None


def test_conda_environment_runs_the_cli(tmp_path):
    reason = _missing()
    if reason:
        pytest.skip(f"cannot create envs/ultrabones.yaml here: {reason}")
    workdir = copy_workflow(tmp_path / "repo")
    # the environment installs the package from the repository (`-e ../`)
    shutil.copy2(REPO / "pyproject.toml", workdir / "pyproject.toml")
    shutil.copytree(REPO / "workflow", workdir / "workflow", dirs_exist_ok=True)
    prefix = tmp_path / "envs"
    proc = snakemake(
        workdir,
        "--sdm",
        "conda",
        "--conda-create-envs-only",
        "--conda-prefix",
        str(prefix),
        "--cores",
        "1",
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    (env,) = [p for p in prefix.iterdir() if (p / "bin" / "ultrabones").exists()]
    run = subprocess.run(
        [str(env / "bin" / "ultrabones"), "--help"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "label-sweep" in run.stdout
