"""Raw mode (issue 15): acquisitions in the raw layout, checked, then labelled.

The end-to-end test runs simulate mode on one 6-frame sweep, then raw mode on the
cohort folders that run wrote (``results/simulate/...``), and compares the releases.
They are the same, byte for byte, except for provenance:

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
import pytest
import yaml

from workflow_helpers import (
    REPO,
    copy_workflow,
    env_without_package,
    job_counts,
    snakemake,
)

CASE = REPO / "tests" / "workflow" / "raw"
RELEASE = "results/release/manifest.sha256"
SIMULATE_ARGS = ("--cores", "2", "--configfile", "config/case.yaml")
RAW_ARGS = (*SIMULATE_ARGS, "config/raw.yaml")
#: Root attrs of a store that record where its inputs came from.
PROVENANCE_ATTRS = ("config_hash", "inputs")
#: The lambda table's column that only a simulated sweep's truth can fill.
TRUTH_COLUMN = "label_error_mm_median"


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


@pytest.mark.slow
def test_raw_mode_on_a_simulated_cohort_gives_the_simulated_release(tmp_path):
    simulated = prepare(tmp_path / "simulate")
    proc = snakemake(simulated, RELEASE, *SIMULATE_ARGS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    raw = prepare(tmp_path / "raw")  # raw.yaml reads ../simulate/results/simulate
    dry = snakemake(raw, "-n", *RAW_ARGS)
    assert dry.returncode == 0, dry.stderr[-3000:]
    counts = job_counts(dry.stdout)
    assert {"calibrate_probe", "register_specimen", "compute_poses"} <= set(counts)
    assert not any(r.startswith("simulate_") or r == "evaluate_sweep" for r in counts)
    proc = snakemake(raw, RELEASE, *RAW_ARGS)
    assert proc.returncode == 0, proc.stderr[-3000:]

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
    assert sorted(raw_bytes) == [
        "README.md",
        "labels/S01/tibia-1.zarr/zarr.json",
        "manifest.sha256",
        "published/specimen01/ultrasound_records/tibia/tibia-1/calibration.yaml",
        "qa/lambda/lambda.csv",
        "qa/lambda/lambda.png",
    ]


# Parse-time checks, on a cohort of empty files: a dry run only looks for them.
RAW_FILES = (
    "calibration/zcal/device.yaml",
    "calibration/zcal/phantom.yaml",
    "calibration/zcal/markers/probe.ini",
    "calibration/zcal/tracker.csv",
    "calibration/zcal/images/",
    "specimens/S01/ct/bones/",
    "specimens/S01/ct/marker_spheres.stl",
    "specimens/S01/markers/specimen.ini",
    "specimens/S01/sweeps/tibia-1/tracker.csv",
    "specimens/S01/sweeps/tibia-1/UltrasoundImages/",
)


@pytest.fixture
def cohort(tmp_path):
    """A workflow copy beside an empty-file raw cohort ``cohort/``; returns workdir."""
    (tmp_path / "work").mkdir()
    workdir = copy_workflow(tmp_path / "work")
    for name in RAW_FILES:
        path = workdir / "cohort" / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    (workdir / "config" / "raw-sweeps.tsv").write_text(
        "specimen\tsweep\trecord\nS01\ttibia-1\tcohort/specimens/S01/sweeps/tibia-1\n"
    )
    return workdir


def raw_config(workdir: Path, **raw) -> str:
    doc = {
        "input": {
            "mode": "raw",
            "sweeps": "config/raw-sweeps.tsv",
            "raw": {
                "calibration": "cohort/calibration/zcal",
                "specimens": "cohort/specimens/{specimen}",
                **raw,
            },
        },
    }
    (workdir / "config" / "extra.yaml").write_text(yaml.safe_dump(doc))
    return "config/extra.yaml"


def test_raw_dry_run_parses_without_the_package(cohort, tmp_path):
    env = env_without_package(tmp_path / "block")
    extra = raw_config(cohort)
    proc = snakemake(cohort, "-n", "--cores", "2", "--configfile", extra, env=env)
    assert proc.returncode == 0, proc.stderr
    counts = job_counts(proc.stdout)
    assert counts["calibrate_probe"] == counts["compute_poses"] == 1


@pytest.mark.parametrize(
    ("remove", "raw", "message"),
    [
        (
            "specimens/S01/sweeps/tibia-1/tracker.csv",
            {},
            "raw-sweeps.tsv line 2 (S01/tibia-1): sweep folder "
            "cohort/specimens/S01/sweeps/tibia-1 has no tracker.csv",
        ),
        (
            "specimens/S01/ct/marker_spheres.stl",
            {},
            "input.raw.specimens: specimen S01's folder cohort/specimens/S01 has no "
            "ct/marker_spheres.stl",
        ),
        ("", {"specimens": "cohort/specimens"}, "must be a folder pattern with"),
        (
            "",
            {"calibration": "cohort/calibration/zcal2"},
            "input.raw.calibration: folder cohort/calibration/zcal2 not found",
        ),
        ("", {"calibration": ""}, "calibrate.activate needs the Z-phantom recording"),
    ],
)
def test_raw_input_problems_are_named_before_any_job(cohort, remove, raw, message):
    if remove:
        (cohort / "cohort" / remove).unlink()
    extra = raw_config(cohort, **raw)
    proc = snakemake(cohort, "-n", "--cores", "2", "--configfile", extra)
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    assert not (cohort / "results").exists()


def test_raw_mode_chooses_lambda_by_the_evidence_and_refuses_the_truth(cohort):
    extra = raw_config(cohort)
    proc = snakemake(cohort, "-n", "-p", "--cores", "1", "--configfile", extra)
    assert proc.returncode == 0, proc.stderr
    (line,) = [s for s in proc.stdout.splitlines() if "ultrabones select-lambda" in s]
    assert " --choose-by evidence " in line and "--truth" not in line, line
    path = cohort / extra
    doc = yaml.safe_load(path.read_text())
    path.write_text(
        yaml.safe_dump({**doc, "label": {"select_lambda": {"choose_by": "truth"}}})
    )
    proc = snakemake(cohort, "-n", "--cores", "1", "--configfile", extra)
    assert proc.returncode != 0
    assert "label.select_lambda.choose_by: truth needs input.mode simulate" in (
        proc.stderr + proc.stdout
    )


def test_raw_paths_reach_the_shell_quoted(cohort):
    hostile = cohort / "cohort" / "specimens" / "S01 $(touch PWNED)"
    (cohort / "cohort" / "specimens" / "S01").rename(hostile)
    sheet = cohort / "config" / "raw-sweeps.tsv"
    sheet.write_text(sheet.read_text().replace("/S01/", "/S01 $(touch PWNED)/"))
    extra = raw_config(cohort, specimens="cohort/specimens/{specimen} $(touch PWNED)")
    target = "results/poses/S01/tibia-1"
    proc = snakemake(cohort, "-n", "-p", target, "--cores", "1", "--configfile", extra)
    assert proc.returncode == 0, proc.stderr
    assert "--models 'cohort/specimens/S01 $(touch PWNED)/ct/bones'" in proc.stdout
    assert "ultrabones register 'cohort/specimens/S01 $(touch PWNED)'" in proc.stdout
