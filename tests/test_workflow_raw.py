"""Raw mode (issue 15): acquisitions in the raw layout, checked before any job.

The end-to-end run, raw mode on a simulated cohort against simulate mode's release of
it, is ``test_raw_mode_on_a_simulated_cohort_gives_the_simulated_release`` in
``tests/test_workflow_run.py``: it starts from the shared tiny run's recording and
specimen (the case and comparison: ``tests/raw_release.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from workflow_helpers import (
    copy_workflow,
    env_without_package,
    job_counts,
    snakemake,
)

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
