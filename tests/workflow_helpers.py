"""Run the workflow in a scratch copy of the repository's workflow files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: What a workflow run needs beside the installed package (the rules load the path
#: recipes of ``layout.py`` by file).
WORKFLOW_FILES = (
    "Snakefile",
    "rules",
    "config",
    "report",
    "envs",
    "profiles",
    "workflow/ultrabones/layout.py",
)


def copy_workflow(dest: Path, source: Path = REPO) -> Path:
    """Copy :data:`WORKFLOW_FILES` of ``source`` (the repository) into ``dest``."""
    for name in WORKFLOW_FILES:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, timeout: float = 900, env=None, **kwargs):
    """Run snakemake in ``workdir`` with the venv on PATH; return the process."""
    env = dict(os.environ if env is None else env)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        [str(BIN / "snakemake"), *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def job_counts(stdout: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run into rule -> count."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Job stats"))
    counts = {}
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def env_without_package(folder: Path) -> dict:
    """Return an environment in which Python cannot import ``ultrabones``.

    As with ``--sdm conda``, where only the jobs' environment holds the package: a
    ``sitecustomize`` in ``folder`` refuses the import. Checked before it is returned.
    """
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'ultrabones':\n"
        "            raise ImportError('ultrabones hidden by the test')\n"
        "sys.meta_path.insert(0, _Block())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(folder)}
    hidden = subprocess.run([sys.executable, "-c", "import ultrabones"], env=env)
    assert hidden.returncode != 0
    return env
