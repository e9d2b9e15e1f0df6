# Python only: config and sheet validation, path checks, input functions. No rules.
import hashlib
import importlib.util
import json
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
from snakemake.utils import validate

validate(config, schema="../config/schema.yaml")


def _load_layout():
    """The package's path recipes, loaded by file: the Snakefile parses without it."""
    path = Path(workflow.basedir) / "workflow" / "ultrabones" / "layout.py"
    spec = importlib.util.spec_from_file_location("ultrabones_layout", path)
    recipes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipes)
    return recipes


#: ``ultrabones.layout``: where a cohort keeps recordings, specimens, sweeps and truth,
#: and the names of the release's files.
layout = _load_layout()

#: The release's files, by their ``ultrabones release`` option (``layout.RELEASE_FILES``).
RELEASE = {key: str(p) for key, p in layout.release_paths("results/release").items()}


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
    # Sorted by ID below: keep each row's line in the file for the error messages.
    sheet = sheet.assign(line=sheet.index + 2)
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


def is_activated(path):
    """True when the config section at ``path`` (a/b) has ``activate: true``."""
    section = config
    for key in path.split("/"):
        section = section[key]
    return bool(section["activate"])


SWEEPS = _read_sweeps(config["input"]["sweeps"])
MODE = config["input"]["mode"]
SIMULATED = MODE == "simulate"
#: The label sweeps take engine.lam from select_lambda's choice file.
LAMBDA_SELECTED = is_activated("label/select_lambda")
LAMBDA_CHOICE = "results/release/qa/lambda/lambda.json"
#: Simulate and raw modes read the raw acquisition layout (docs/data-layout.md,
#: section 2), so both calibrate, register and compose the poses.
RAW_LAYOUT = MODE in ("simulate", "raw")
RAW = config["input"]["raw"]


def _check_records(sheet):
    path = config["input"]["sweeps"]
    for row in sheet.itertuples():
        where = f"{path} line {row.line} ({row.specimen}/{row.sweep})"
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


#: What calibrate, register and poses read in each raw-layout folder (a trailing /
#: marks a folder), checked before any job so a wrong path fails naming it.
RAW_SWEEP_FILES = ("tracker.csv", "UltrasoundImages/")
RAW_SPECIMEN_FILES = ("ct/bones/", "ct/marker_spheres.stl", "markers/specimen.ini")
RAW_RECORDING_FILES = (
    "device.yaml",
    "phantom.yaml",
    "markers/probe.ini",
    "tracker.csv",
    "images/",
)


def _missing(folder, names):
    """The first of ``names`` absent from ``folder`` (None when all are there)."""
    for name in names:
        path = Path(folder) / name
        if not (path.is_dir() if name.endswith("/") else path.is_file()):
            return name
    return None


def _check_raw_folder(folder, names, what):
    if not Path(folder).is_dir():
        raise ValueError(f"{what} {folder} not found")
    missing = _missing(folder, names)
    if missing:
        raise ValueError(
            f"{what} {folder} has no {missing} (raw acquisition layout, "
            "docs/data-layout.md section 2)"
        )


def _check_raw_sweeps(sheet):
    own_calibration = () if is_activated("calibrate") else ("calibration.yaml",)
    path = config["input"]["sweeps"]
    for row in sheet.itertuples():
        where = f"{path} line {row.line} ({row.specimen}/{row.sweep})"
        if not row.record:
            raise ValueError(f"{where}: input.mode raw needs a sweep folder (record)")
        _check_raw_folder(
            row.record, RAW_SWEEP_FILES + own_calibration, f"{where}: sweep folder"
        )


def _check_raw_specimens(specimens):
    if "{specimen}" not in RAW["specimens"]:
        raise ValueError(
            "input.raw.specimens must be a folder pattern with {specimen}, "
            f"got {RAW['specimens']!r}"
        )
    for specimen in specimens:
        _check_raw_folder(
            raw_specimen(specimen),
            RAW_SPECIMEN_FILES,
            f"input.raw.specimens: specimen {specimen}'s folder",
        )


def _check_raw_recording():
    if not is_activated("calibrate"):
        return  # each sweep's own calibration.yaml, checked with the sweeps
    folder = RAW["calibration"]
    if not folder:
        raise ValueError(
            "input.raw.calibration: calibrate.activate needs the Z-phantom recording "
            "folder (or set calibrate.activate: false to use each sweep's "
            "calibration.yaml)"
        )
    if not ID.fullmatch(Path(folder).name):
        raise ValueError(
            f"input.raw.calibration: folder name {Path(folder).name!r} must match "
            f"{ID.pattern} (it names results/calibrate/<recording>)"
        )
    _check_raw_folder(folder, RAW_RECORDING_FILES, "input.raw.calibration: folder")


def _check_raw(sheet):
    _check_raw_sweeps(sheet)
    _check_raw_specimens(sorted(sheet["specimen"].unique()))
    _check_raw_recording()


def raw_specimen(specimen):
    """A specimen's folder in the raw layout, from input.raw.specimens (mode raw)."""
    return RAW["specimens"].replace("{specimen}", specimen)


if SIMULATED:
    _check_preset(SWEEPS)
elif MODE == "raw":
    _check_raw(SWEEPS)
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


# Raw mode parses without importing the package (issue 15): there the release job
# checks the splits.
if MODE != "raw":
    _check_splits(len(SPECIMENS))

#: Wildcard patterns built from the sheet's IDs (used by the Snakefile).
SPECIMEN_PATTERN = "|".join(SPECIMENS)
SWEEP_PATTERN = "|".join(sorted(SWEEPS["sweep"].unique()))


def config_hash(*sections):
    """SHA-256 of the named config sections (all when none): store provenance."""
    keys = sections or sorted(config)
    doc = {k: config[k] for k in keys}
    if MODE != "raw" and "input" in doc:
        # input.raw changes nothing in the other modes: left out, their hashes (and
        # so their stores and release card) stay what they were before raw mode.
        doc["input"] = {k: v for k, v in doc["input"].items() if k != "raw"}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def sweep_ids():
    """(specimen, sweep) pairs of the sheet, for expand(zip)."""
    return {"specimen": list(SWEEPS["specimen"]), "sweep": list(SWEEPS["sweep"])}


def per_sweep(pattern):
    """Expand a path pattern over every sweep of the sheet."""
    return expand(pattern, zip, **sweep_ids())


def get_record(wildcards):
    """The sheet's folder of a sweep: its record (records) or raw sweep folder (raw)."""
    return SWEEPS.loc[(wildcards.specimen, wildcards.sweep), "record"]


def get_bones(wildcards):
    """The bone models of a specimen: its first record's CT_models (mode records)."""
    first = SWEEPS.loc[wildcards.specimen].iloc[0]
    return str(Path(first["record"]) / "CT_models")


def get_sweep(wildcards):
    """The input holding a sweep's raw-layout folder: a simulate job's, or the sheet's."""
    if SIMULATED:
        return f"results/simulate/sweep/{wildcards.specimen}/{wildcards.sweep}"
    return get_record(wildcards)


def sweep_folder(wildcards):
    """A sweep's raw-layout folder: inside its cohort output, or the sheet's (raw)."""
    if SIMULATED:
        cohort = get_sweep(wildcards)
        return str(layout.sweep_folder(cohort, wildcards.specimen, wildcards.sweep))
    return get_record(wildcards)


def models_option(wildcards):
    """``--models`` for the poses of a raw sweep: its specimen's bones (quoted)."""
    if SIMULATED:
        return ""  # the simulated sweep's own CT_models link
    return f"--models {shlex.quote(get_specimen_bones(wildcards))}"


def get_specimen(wildcards):
    """The input holding a specimen's raw-layout folder (simulate or raw mode)."""
    if SIMULATED:
        return f"results/simulate/specimen/{wildcards.specimen}"
    return raw_specimen(wildcards.specimen)


def specimen_folder(wildcards, input):
    """A specimen's raw-layout folder, given the job's ``input.specimen``."""
    if SIMULATED:
        return str(layout.specimen_folder(input.specimen, wildcards.specimen))
    return input.specimen


def recording_id():
    """The Z-phantom recording's ID: the simulator's, or the raw folder's name."""
    if SIMULATED:
        return config["input"]["simulate"]["recording"]
    return Path(RAW["calibration"]).name


def get_recording(wildcards):
    """The input holding the Z-phantom recording (simulate or raw mode)."""
    if SIMULATED:
        return f"results/simulate/recording/{wildcards.recording}"
    return RAW["calibration"]


def recording_folder(wildcards, input):
    """The recording's raw-layout folder, given the job's ``input.recording``."""
    if SIMULATED:
        return str(layout.recording_folder(input.recording, wildcards.recording))
    return input.recording


def get_calibration(wildcards):
    """The calibration file a sweep's poses use: ours, or the sweep's own."""
    if is_activated("calibrate"):
        return f"results/calibrate/{recording_id()}/calibration.yaml"
    return f"{sweep_folder(wildcards)}/calibration.yaml"


def get_calibration_input(wildcards):
    """The job output or folder that holds the calibration file of a sweep."""
    if is_activated("calibrate"):
        return get_calibration(wildcards)
    return get_sweep(wildcards)


def get_specimen_bones(wildcards):
    """The folder of a specimen's bone models."""
    if SIMULATED:
        return f"results/simulate/specimen/{wildcards.specimen}"
    if MODE == "raw":
        return str(layout.bones_folder(raw_specimen(wildcards.specimen)))
    return get_bones(wildcards)


def truth_folder(wildcards):
    """The simulator's truth of a sweep, inside its cohort output (mode simulate)."""
    return str(layout.truth_of(sweep_folder(wildcards), "sweep"))


def bones_folder(wildcards, input):
    """The folder of a specimen's bone STLs, given the job's ``input.bones``."""
    if SIMULATED:
        specimen = layout.specimen_folder(input.bones, wildcards.specimen)
        return str(layout.bones_folder(specimen))
    return input.bones


def engine_options(exclude=()):
    """The engine section as ``--key value ...`` options, each value shell-quoted.

    ``exclude``: keys left out (a command's own options, as select-lambda's lam, seed).
    """
    words = []
    for key, value in config["engine"].items():
        if key in exclude:
            continue
        values = value if isinstance(value, list) else [value]
        words += [f"--{key.replace('_', '-')}", *(shlex.quote(str(v)) for v in values)]
    return " ".join(words)


def label_engine_options():
    """label_sweep's engine options: with the lambda selection on, its choice file
    (``--lam-from``) gives lam instead of the config."""
    if not LAMBDA_SELECTED:
        return engine_options()
    return f"{engine_options(exclude=('lam',))} --lam-from {shlex.quote(LAMBDA_CHOICE)}"


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


def lambda_rule_args():
    """``--truth`` (simulate mode: each lambda's label error) and ``--choose-by``.

    ``label.select_lambda.choose_by: auto`` chooses by the truth where the simulator
    has one and by the evidence alone on recorded sweeps.
    """
    choose_by = config["label"]["select_lambda"]["choose_by"]
    if choose_by == "auto":
        choose_by = "truth" if SIMULATED else "evidence"
    if choose_by == "truth" and not SIMULATED:
        raise ValueError(
            f"label.select_lambda.choose_by: truth needs input.mode simulate (mode {MODE})"
        )
    truth = f"--truth {shlex.quote(truth_folder(first_sweep()))} " if SIMULATED else ""
    return f"{truth}--choose-by {choose_by}"


def release_files():
    """Every file or folder of the release, as the manifest covers them."""
    files = [*RELEASE.values(), "results/release/qa/discard_rate.png"]
    files += per_sweep("results/release/qa/{specimen}/{sweep}/overlays.png")
    files += per_sweep("results/release/qa/{specimen}/{sweep}/corrections.png")
    if LAMBDA_SELECTED:
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
    """Targets of the default rule: the release, its manifest and audit pages, QC.

    The label stores are targets too: the release links their files, and a store
    deleted after its release was built is rebuilt with what depends on it (Snakemake
    leaves a missing intermediate alone while its consumers are up to date).
    """
    targets = ["results/release/manifest.sha256", "results/qc/otsu.json"]
    targets += per_sweep("results/label/{specimen}/{sweep}.zarr")
    targets.append("results/release/audit/index.html")
    targets += per_sweep("results/qc/audit/{specimen}/{sweep}")
    if SIMULATED:
        targets += per_sweep("results/qc/evaluate/{specimen}/{sweep}")
    if is_activated("model"):
        targets.append("results/release/model/scores.json")
    return targets
