"""The workflow's shape: dry-run fan-out and misconfiguration caught before any job."""

from __future__ import annotations

import pytest
import yaml

from workflow_helpers import copy_workflow, env_without_package, job_counts, snakemake


@pytest.fixture
def workdir(tmp_path):
    return copy_workflow(tmp_path)


def write_config(workdir, doc) -> str:
    path = workdir / "config" / "extra.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path.relative_to(workdir))


def test_dry_run_fans_out_per_specimen_and_sweep(workdir):
    proc = snakemake(workdir, "-n", "--cores", "2")
    assert proc.returncode == 0, proc.stderr
    counts = job_counts(proc.stdout)
    per_specimen = ("simulate_specimen", "register_specimen", "prepare_specimen")
    per_sweep = ("simulate_sweep", "compute_poses", "label_sweep", "plot_sweep_qa")
    assert {r: counts[r] for r in per_specimen} == dict.fromkeys(per_specimen, 2)
    assert {r: counts[r] for r in per_sweep} == dict.fromkeys(per_sweep, 4)
    assert counts["calibrate_probe"] == 1 and counts["build_release"] == 1


def test_export_public_can_be_turned_off(workdir):
    extra = write_config(workdir, {"release": {"export_public": {"activate": False}}})
    proc = snakemake(workdir, "-n", "--cores", "2", "--configfile", extra)
    assert proc.returncode == 0, proc.stderr
    assert "export_public" not in job_counts(proc.stdout)


def test_real_sample_config_skips_simulation(workdir, real_sample):
    sheet = workdir / "config" / "real-sweeps.tsv"
    sheet.write_text(f"specimen\tsweep\trecord\nR01\tfibula-1\t{real_sample}\n")
    proc = snakemake(
        workdir, "-n", "--cores", "2", "--configfile", "config/real-sample.yaml"
    )
    assert proc.returncode == 0, proc.stderr
    counts = job_counts(proc.stdout)
    assert counts["ingest_record"] == 1 and "simulate_sweep" not in counts


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"engine": {"gamma": 0.3}}, "'gamma' was unexpected"),
        ({"label": {"threads": "two"}}, "'two' is not of type 'integer'"),
        ({"engine": {"objective": "fast"}}, "'fast' is not one of"),
        ({"input": {"mode": "records"}}, "needs a record folder"),
        (
            {
                "release": {
                    "splits": {"mode": "counts", "train": 10, "val": 1, "test": 3}
                }
            },
            "release.splits: counts must be integers summing to 2 specimens",
        ),
        (
            {"engine": {"sample_spacing_mm": 0.02}},
            "0.02 is less than the minimum of 0.1",
        ),
    ],
)
def test_misconfiguration_fails_before_any_job(workdir, doc, message):
    extra = write_config(workdir, doc)
    proc = snakemake(workdir, "-n", "--cores", "2", "--configfile", extra)
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    assert not (workdir / "results").exists()


def test_missing_record_folder_is_named(workdir):
    sheet = workdir / "config" / "missing.tsv"
    sheet.write_text("specimen\tsweep\trecord\nR01\tfibula-1\tno/such/record\n")
    extra = write_config(
        workdir, {"input": {"mode": "records", "sweeps": "config/missing.tsv"}}
    )
    proc = snakemake(workdir, "-n", "--cores", "2", "--configfile", extra)
    assert proc.returncode != 0
    assert "record folder no/such/record not found" in proc.stderr + proc.stdout


def test_sweep_outside_the_preset_is_named(workdir):
    sheet = workdir / "config" / "sweeps.tsv"
    sheet.write_text("specimen\tsweep\trecord\nS09\ttibia-1\t\n")
    proc = snakemake(workdir, "-n", "--cores", "2")
    assert proc.returncode != 0
    assert "S09/tibia-1 is not in simulator preset tiny" in proc.stderr + proc.stdout


def _records_config(workdir, rows: str) -> str:
    sheet = workdir / "config" / "hostile.tsv"
    sheet.write_text("specimen\tsweep\trecord\n" + rows)
    return write_config(
        workdir, {"input": {"mode": "records", "sweeps": "config/hostile.tsv"}}
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("", "has no sweep rows"),
        ('"R01\n"\tfibula-1\tsome/record\n', "must match"),
        ('R01\tfibula-1\t"rec\tx"\n', "control character"),
    ],
)
def test_hostile_sheet_rows_are_named(workdir, rows, message):
    extra = _records_config(workdir, rows)
    proc = snakemake(workdir, "-n", "--cores", "2", "--configfile", extra)
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    assert "hostile.tsv" in proc.stderr + proc.stdout


def test_shell_characters_in_record_path_stay_a_folder_name(workdir, real_sample):
    # A record folder named with a command substitution, backticks, spaces and '#':
    # the ingest job must read that folder and run nothing.
    name = "rec $(touch PWNED) `touch PWNED2` #1"
    (workdir / name).symlink_to(real_sample, target_is_directory=True)
    extra = _records_config(workdir, f"R01\tfibula-1\t{name}\n")
    proc = snakemake(
        workdir, "results/poses/R01/fibula-1", "--cores", "1", "--configfile", extra
    )
    assert proc.returncode == 0, proc.stderr
    assert not (workdir / "PWNED").exists() and not (workdir / "PWNED2").exists()
    assert (workdir / "results" / "poses" / "R01" / "fibula-1").is_dir()


def test_snakefile_parses_without_the_package(workdir, tmp_path):
    # As with --sdm conda, where only the jobs' environment holds the package.
    env = env_without_package(tmp_path / "block")
    proc = snakemake(workdir, "-n", "--cores", "2", env=env)
    assert proc.returncode == 0, proc.stderr
    assert job_counts(proc.stdout)["label_sweep"] == 4


def test_scheduler_address_reaches_the_shell_quoted(workdir):
    extra = write_config(workdir, {"label": {"scheduler": "tcp://h:8786;touch PWNED"}})
    target = "results/label/S01/tibia-1.zarr"
    proc = snakemake(workdir, "-n", "-p", target, "--cores", "1", "--configfile", extra)
    assert proc.returncode == 0, proc.stderr
    assert "--scheduler 'tcp://h:8786;touch PWNED'" in proc.stdout


#: select-lambda's outputs: option and extension.
LAMBDA = (("table", "csv"), ("choice", "json"), ("figure", "png"))


def test_select_lambda_passes_its_outputs_and_the_labelling_search(workdir):
    target = "results/release/qa/lambda/lambda.json"
    proc = snakemake(workdir, "-n", "-p", target, "--cores", "1")
    assert proc.returncode == 0, proc.stderr
    (line,) = [s for s in proc.stdout.splitlines() if "ultrabones select-lambda" in s]
    outputs = {f"--{k} results/release/qa/lambda/lambda.{e}" for k, e in LAMBDA}
    assert all(o in line for o in outputs), line
    engine = yaml.safe_load((workdir / "config" / "config.yaml").read_text())["engine"]
    for key in set(engine) - {"lam", "seed"}:
        assert f" --{key.replace('_', '-')} " in line, key
    assert " --lam " not in line and line.count(" --seed ") == 1  # the frame sample's
    # simulate mode: each lambda scored against the truth, which chooses (auto)
    assert " --truth results/simulate/" in line and " --choose-by truth " in line
    extra = write_config(
        workdir, {"label": {"select_lambda": {"choose_by": "evidence"}}}
    )
    proc = snakemake(workdir, "-n", "-p", target, "--cores", "1", "--configfile", extra)
    (line,) = [s for s in proc.stdout.splitlines() if "ultrabones select-lambda" in s]
    assert " --truth results/simulate/" in line and " --choose-by evidence " in line


def label_sweep_lines(workdir, *args):
    proc = snakemake(workdir, "-n", "-p", "--cores", "1", *args)
    assert proc.returncode == 0, proc.stderr
    return [s for s in proc.stdout.splitlines() if "ultrabones label-sweep" in s]


def test_label_sweeps_take_lambda_from_the_selection_by_default(workdir):
    lines = label_sweep_lines(workdir)
    assert len(lines) == 4
    for line in lines:
        assert " --lam-from results/release/qa/lambda/lambda.json " in line, line
        assert " --lam " not in line, line


def test_label_sweeps_take_engine_lam_with_the_selection_off(workdir):
    off = write_config(workdir, {"label": {"select_lambda": {"activate": False}}})
    lines = label_sweep_lines(workdir, "--configfile", off)
    assert lines and all(" --lam 3.0 " in s and "--lam-from" not in s for s in lines)


def test_no_rule_hands_a_command_an_outputs_folder(workdir):
    # each rule passes the paths it declares (the commands check fixed layouts)
    for path in sorted((workdir / "rules").glob("*.smk")):
        assert "wildcards, output" not in path.read_text(), path.name
