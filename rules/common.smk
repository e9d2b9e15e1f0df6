# Python only: config and sheet validation, path checks, input functions. No rules.
import hashlib
import json
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
from snakemake.utils import validate

validate(config, schema="../config/schema.yaml")


#: Specimen and sweep IDs become wildcards and path parts: the whole value must match.
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def _read_sweeps(path):
    if not Path(path).is_file():
        raise ValueError(f"input.sweeps: sheet {path} not found")
    # No pandas comment= here: it would cut a record path at a '#'. Whole-line
    # comments only.
    sheet = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    sheet = sheet[~sheet.iloc[:, 0].str.startswith("#")] if len(sheet) else sheet
    if sheet.empty:
        raise ValueError(f"input.sweeps: sheet {path} has no sweep rows")
    validate(sheet, schema="../config/sweeps.schema.yaml")
    _check_names(sheet, path)
    dup = sheet.duplicated(["specimen", "sweep"])
    if dup.any():
        row = sheet[dup].iloc[0]
        raise ValueError(
            f"{path}: duplicate sweep {row.specimen}/{row.sweep} (rows must be unique)"
        )
    return sheet.set_index(["specimen", "sweep"], drop=False).sort_index()


def _check_names(sheet, path):
    """Reject IDs that only match up to a trailing newline, and control characters."""
    for index, row in sheet.iterrows():
        where = f"{path} line {index + 2}"
        for key in ("specimen", "sweep"):
            if not ID.fullmatch(row[key]):
                raise ValueError(
                    f"{where}: {key} {row[key]!r} must match {ID.pattern} (whole value)"
                )
        if any(ord(ch) < 32 for ch in row.get("record", "")):
            raise ValueError(
                f"{where}: record {row['record']!r} holds a control character"
            )


SWEEPS = _read_sweeps(config["input"]["sweeps"])
MODE = config["input"]["mode"]
SIMULATED = MODE == "simulate"


def _check_records(sheet):
    for i, row in enumerate(sheet.itertuples(), start=2):
        where = f"{config['input']['sweeps']} line {i} ({row.specimen}/{row.sweep})"
        if not row.record:
            raise ValueError(f"{where}: input.mode records needs a record folder")
        if not (Path(row.record) / "sweep_initial.csv").is_file():
            raise ValueError(
                f"{where}: record folder {row.record} not found "
                "(expected sweep_initial.csv in it)"
            )


def _check_preset(sheet):
    try:
        from ultrabones.simulate.presets import PRESETS
    except ImportError:
        # Deployed with --sdm conda, the package lives only in the jobs' environment:
        # the simulate jobs then check the IDs and fail naming them.
        return
    preset = PRESETS[config["input"]["simulate"]["preset"]]
    for row in sheet.itertuples():
        if row.specimen not in preset.specimens or row.sweep not in preset.sweeps:
            raise ValueError(
                f"input.sweeps: {row.specimen}/{row.sweep} is not in simulator preset "
                f"{preset.name} (specimens {preset.specimens}, sweeps {preset.sweeps})"
            )


if SIMULATED:
    _check_preset(SWEEPS)
else:
    _check_records(SWEEPS)

SPECIMENS = sorted(SWEEPS["specimen"].unique())


def _check_splits(n):
    """Check release.splits against the sheet's specimens now, not at build_release."""
    try:
        from ultrabones.errors import ConfigError
        from ultrabones.release import split_counts
    except ImportError:
        return  # --sdm conda: the package is in the jobs' env; build_release checks
    splits = config["release"]["splits"]
    try:
        split_counts(n, mode=splits["mode"], sizes=splits)
    except ConfigError as err:
        raise ValueError(f"{err} ({config['input']['sweeps']})") from err


_check_splits(len(SPECIMENS))

#: Wildcard patterns built from the sheet's IDs (used by the Snakefile).
SPECIMEN_PATTERN = "|".join(SPECIMENS)
SWEEP_PATTERN = "|".join(sorted(SWEEPS["sweep"].unique()))


def config_hash(*sections):
    """SHA-256 of the named config sections (all when none): store provenance."""
    keys = sections or sorted(config)
    doc = {k: config[k] for k in keys}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def is_activated(path):
    """True when the config section at ``path`` (a/b) has ``activate: true``."""
    section = config
    for key in path.split("/"):
        section = section[key]
    return bool(section["activate"])


def sweep_ids():
    """(specimen, sweep) pairs of the sheet, for expand(zip)."""
    return {"specimen": list(SWEEPS["specimen"]), "sweep": list(SWEEPS["sweep"])}


def per_sweep(pattern):
    """Expand a path pattern over every sweep of the sheet."""
    return expand(pattern, zip, **sweep_ids())


def get_record(wildcards):
    """The record folder of a sweep (mode records)."""
    return SWEEPS.loc[(wildcards.specimen, wildcards.sweep), "record"]


def get_bones(wildcards):
    """The bone models of a specimen: its first record's CT_models (mode records)."""
    first = SWEEPS.loc[wildcards.specimen].iloc[0]
    return str(Path(first["record"]) / "CT_models")


def sweep_folder(wildcards):
    """A simulated sweep's folder inside its cohort output (mode simulate)."""
    return (
        f"results/simulate/sweep/{wildcards.specimen}/{wildcards.sweep}/specimens/"
        f"{wildcards.specimen}/sweeps/{wildcards.sweep}"
    )


def get_calibration(wildcards):
    """The calibration file a sweep's poses use: ours, or the sweep's own."""
    if is_activated("calibrate"):
        recording = config["input"]["simulate"]["recording"]
        return f"results/calibrate/{recording}/calibration.yaml"
    return f"{sweep_folder(wildcards)}/calibration.yaml"


def get_calibration_input(wildcards):
    """The job output that holds the calibration file of a sweep."""
    if is_activated("calibrate"):
        return get_calibration(wildcards)
    return f"results/simulate/sweep/{wildcards.specimen}/{wildcards.sweep}"


def get_specimen_bones(wildcards):
    """The folder of a specimen's bone models."""
    if SIMULATED:
        return f"results/simulate/specimen/{wildcards.specimen}"
    return get_bones(wildcards)


def truth_folder(wildcards):
    """The simulator's truth of a sweep, inside its cohort output (mode simulate)."""
    return (
        f"results/simulate/sweep/{wildcards.specimen}/{wildcards.sweep}/truth/"
        f"specimens/{wildcards.specimen}/sweeps/{wildcards.sweep}"
    )


def bones_folder(wildcards, input):
    """The folder of a specimen's bone STLs, given the job's ``input.bones``."""
    if SIMULATED:
        return f"{input.bones}/specimens/{wildcards.specimen}/ct/bones"
    return input.bones


def engine_options():
    """The engine section as ``--key value ...`` options, each value shell-quoted."""
    words = []
    for key, value in config["engine"].items():
        values = value if isinstance(value, list) else [value]
        words += [f"--{key.replace('_', '-')}", *(shlex.quote(str(v)) for v in values)]
    return " ".join(words)


def scheduler_option():
    """``--scheduler ADDRESS`` (quoted) when a running Dask scheduler is configured."""
    address = config["label"]["scheduler"]
    return f"--scheduler {shlex.quote(address)}" if address else ""


def first_sweep():
    """Wildcards of the sheet's first sweep (the lambda selection samples it)."""
    return SimpleNamespace(**SWEEPS.iloc[0][["specimen", "sweep"]].to_dict())


def get_lambda_inputs(wildcards):
    """Inputs of the lambda selection: the first sweep's record, model (and truth)."""
    first = first_sweep()
    inputs = {
        "record": f"results/poses/{first.specimen}/{first.sweep}",
        "model": f"results/model/{first.specimen}",
    }
    if SIMULATED:
        inputs["sweep"] = f"results/simulate/sweep/{first.specimen}/{first.sweep}"
    return inputs


def lambda_truth_arg():
    """``--truth`` for the lambda selection in simulate mode (score by label error)."""
    return f"--truth {shlex.quote(truth_folder(first_sweep()))}" if SIMULATED else ""


def release_files():
    """Every file or folder of the release, as the manifest covers them."""
    files = [
        "results/release/labels",
        "results/release/splits.csv",
        "results/release/reject_statistics.csv",
        "results/release/README.md",
        "results/release/croissant.json",
        "results/release/CITATION.cff",
        "results/release/qa/discard_rate.png",
    ]
    files += per_sweep("results/release/qa/{specimen}/{sweep}/overlays.png")
    files += per_sweep("results/release/qa/{specimen}/{sweep}/corrections.png")
    if is_activated("qc/select_lambda"):
        files += [
            f"results/release/qa/lambda/lambda.{e}" for e in ("csv", "json", "png")
        ]
    if is_activated("release/export_public"):
        files += per_sweep("results/release/public/{specimen}/{sweep}")
    if is_activated("release/export_published"):
        files.append("results/release/published")
    if is_activated("release/export_nnunet"):
        files.append("results/release/nnunet")
    return files


def get_final_output():
    """Targets of the default rule: the release, its manifest and audit pages, QC."""
    targets = ["results/release/manifest.sha256", "results/qc/otsu.json"]
    targets.append("results/release/audit/index.html")
    targets += per_sweep("results/qc/audit/{specimen}/{sweep}")
    if SIMULATED:
        targets += per_sweep("results/qc/evaluate/{specimen}/{sweep}")
    if is_activated("model"):
        targets.append("results/release/model/scores.json")
    return targets
