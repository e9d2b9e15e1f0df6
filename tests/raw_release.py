"""Raw mode against simulate mode: the case ``tests/workflow/raw`` and its comparison.

The end-to-end test (``tests/test_workflow_run.py``, beside the shared tiny run whose
recording, specimen S01 and the jobs made of them alone it starts from) runs simulate
mode on one 6-frame sweep, then raw mode on the cohort folders that run holds
(``results/simulate/...``), and compares the releases. They are the same, byte for
byte, except for provenance:

- ``README.md``: its ``config_hash`` line (the input section differs by mode);
- ``labels/<S>/<W>.zarr/zarr.json``: the root attrs ``config_hash`` and ``inputs``
  (the digest of the poses record, whose ``calibration.yaml`` first line and
  ``CT_models`` link name the folders as each run reached them);
- ``published/.../calibration.yaml``: that same first comment line,
  ``# ultrabones calibrate <recording folder as given>``;
- ``qa/lambda/lambda.csv`` and ``lambda.png``: simulate mode also scores each lambda
  against the truth (a ``label_error_mm_median`` column and panel); both modes choose
  by the evidence alone (``label.select_lambda.choose_by``), so ``lambda.json`` and
  every label are equal;
- ``manifest.sha256``: the digests of these files.

Everything else (chunks, masks, poses, splits, statistics, figures, exports) is equal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from workflow_helpers import REPO, copy_workflow

CASE = REPO / "tests" / "workflow" / "raw"
RELEASE = "results/release/manifest.sha256"
SIMULATE_ARGS = ("--cores", "2", "--configfile", "config/case.yaml")
RAW_ARGS = (*SIMULATE_ARGS, "config/raw.yaml")
#: Root attrs of a store that record where its inputs came from.
PROVENANCE_ATTRS = ("config_hash", "inputs")
#: The lambda table's column that only a simulated sweep's truth can fill.
TRUTH_COLUMN = "label_error_mm_median"
#: The files that differ in bytes (module docstring), relative to the release.
PROVENANCE_FILES = [
    "README.md",
    "labels/S01/tibia-1.zarr/zarr.json",
    "manifest.sha256",
    "published/specimen01/ultrasound_records/tibia/tibia-1/calibration.yaml",
    "qa/lambda/lambda.csv",
    "qa/lambda/lambda.png",
]


def prepare(workdir: Path) -> Path:
    """Copy the workflow and both runs' config files and sheets into ``workdir``."""
    workdir.mkdir()
    copy_workflow(workdir)
    config = workdir / "config"
    (config / "case.yaml").write_text((CASE / "config.yaml").read_text())
    (config / "case-sweeps.tsv").write_text((CASE / "sweeps.tsv").read_text())
    (config / "raw.yaml").write_text((CASE / "raw.yaml").read_text())
    (config / "raw-sweeps.tsv").write_text((CASE / "raw-sweeps.tsv").read_text())
    return workdir


def release_files(workdir: Path) -> dict[str, Path]:
    root = workdir / "results" / "release"
    return {
        p.relative_to(root).as_posix(): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".snakemake_timestamp"
    }


def without_provenance(name: str, path: Path):
    """The file's content with its provenance left out (module docstring)."""
    if name in ("manifest.sha256", "qa/lambda/lambda.png"):
        return None  # digests of files compared here; a plot of lambda.csv
    if name == "qa/lambda/lambda.csv":
        return pd.read_csv(path).drop(columns=TRUTH_COLUMN, errors="ignore").to_dict()
    if name.endswith(".zarr/zarr.json"):
        doc = json.loads(path.read_text())
        for key in PROVENANCE_ATTRS:
            doc["attributes"].pop(key)
        return doc
    if name == "README.md":
        lines = path.read_text().splitlines()
        return [line for line in lines if not line.startswith("- config_hash: ")]
    if name.endswith("calibration.yaml"):
        return path.read_text().split("\n", 1)[1]
    return path.read_bytes()


def compare_releases(simulated: Path, raw: Path) -> None:
    """Assert that the two runs' releases differ in their provenance alone."""
    expected, got = release_files(simulated), release_files(raw)
    assert list(got) == list(expected)
    differing = [
        name
        for name in expected
        if without_provenance(name, got[name])
        != without_provenance(name, expected[name])
    ]
    assert differing == []
    raw_bytes = [n for n in expected if got[n].read_bytes() != expected[n].read_bytes()]
    assert sorted(raw_bytes) == PROVENANCE_FILES
