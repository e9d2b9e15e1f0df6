"""Check a finished release folder: manifest, stores, splits and exports.

Each check returns a list of problems (empty when sound), every one naming the file;
:func:`release_problems` runs them all.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputDataError
from ..layout import release_paths
from .checksum import list_files, sha256_file
from .release import read_manifest
from .tables import read_table

__all__ = [
    "check_exports",
    "check_manifest",
    "check_splits",
    "check_stores",
    "release_problems",
]

MANIFEST = "manifest.sha256"


def release_problems(root: str | Path) -> list[str]:
    """Return every problem found in the release at ``root``."""
    root = Path(root)
    if not root.is_dir():
        return [f"{root}: release folder not found"]
    kept, problems = check_stores(root)
    problems += check_manifest(root)
    problems += check_splits(root, {s for s, _ in kept})
    return problems + check_exports(root, kept)


def check_manifest(root: Path) -> list[str]:
    """Check that stores and top-level files are listed and listed files match."""
    try:
        listed = read_manifest(root / MANIFEST)
    except InputDataError as err:
        return [str(err)]
    present = {p.relative_to(root).as_posix() for p in list_files(root)} - {MANIFEST}
    # the stores and top-level files must be listed; other folders (figures, pages
    # added beside the release) are checked where the manifest lists them
    core = {p for p in present if "/" not in p or p.startswith("labels/")}
    problems = [f"{root / p}: not in {MANIFEST}" for p in sorted(core - set(listed))]
    for name, digest in sorted(listed.items()):
        if name not in present:
            problems.append(f"{root / name}: listed in {MANIFEST} but missing")
        elif sha256_file(root / name) != digest:
            problems.append(f"{root / name}: does not match {MANIFEST}")
    return problems


def check_stores(root: Path) -> tuple[dict, list[str]]:
    """Verify each store's chunks and schema; return kept frames per (S, W) too."""
    from ..release import kept_mask
    from ..store import validate_store
    from .store import open_store, verify_store

    labels = release_paths(root)["labels"]
    stores = sorted(labels.glob("*/*.zarr"))
    if not stores:
        return {}, [f"{labels}: no label stores"]
    kept, problems = {}, []
    for store in stores:
        try:
            verify_store(store)
        except InputDataError as err:
            problems.append(str(err))
        # counted even when a chunk is corrupted, so the exports are still checked
        try:
            ds = open_store(store)
            validate_store(ds)
        except (InputDataError, OSError, ValueError, RuntimeError) as err:
            problems.append(f"{store}: {err}")
            continue
        key = (str(ds["specimen"].values), str(ds["sweep"].values))
        kept[key] = int(kept_mask(ds).sum())
    return kept, problems


def check_splits(root: Path, specimens: set) -> list[str]:
    """``splits.csv`` gives each store's specimen exactly one known split."""
    from ..release import SPLITS

    path = release_paths(root)["splits"]
    if not path.is_file():
        return [f"{path}: not found"]
    table = read_table(path)
    if list(table.columns) != ["specimen", "split"]:
        return [f"{path}: columns must be specimen, split; got {list(table.columns)}"]
    problems = [
        f"{path}: unknown split {s!r}" for s in set(table["split"]) - set(SPLITS)
    ]
    dup = sorted(table.loc[table["specimen"].duplicated(), "specimen"])
    problems += [f"{path}: specimen {s} in several rows" for s in dup]
    missing = sorted(specimens - set(table["specimen"]))
    return problems + [f"{path}: specimen {s} has no split" for s in missing]


def check_exports(root: Path, kept: dict) -> list[str]:
    """Each present export holds the kept frames of every store, consistently."""
    problems = []
    for (specimen, sweep), n in sorted(kept.items()):
        public = root / "public" / specimen / sweep
        if (root / "public").is_dir():
            problems += _count(public / "sweepProcessedAndOptimized.csv", n, rows=True)
            problems += _count(public / "Label_partial_gradient", n)
    problems += _check_published(root / "published", kept)
    for dataset in sorted((root / "nnunet").glob("Dataset*")):
        problems += _check_nnunet(dataset)
    return problems


def _count(path: Path, n: int, *, rows: bool = False) -> list[str]:
    """``path`` (a folder of PNGs, or a table) holds ``n`` frames."""
    if not path.exists():
        return [f"{path}: missing"]
    got = len(read_table(path)) if rows else len(list(path.glob("*.png")))
    return [] if got == n else [f"{path}: {got} frames, expected {n} kept frames"]


def _check_published(layout: Path, kept: dict) -> list[str]:
    """One record per sweep, each with as many images and labels as tracking rows."""
    if not layout.is_dir():
        return []
    tracking = sorted(layout.glob("*/ultrasound_records/*/*/tracking.csv"))
    problems = []
    if len(tracking) != len(kept):
        problems.append(f"{layout}: {len(tracking)} records, expected {len(kept)}")
    rows = 0
    for table in tracking:
        n = len(read_table(table))
        rows += n
        problems += _count(table.parent / "UltrasoundImages", n)
        problems += _count(table.parent / "Labels", n)
        if not (table.parent / "calibration.yaml").is_file():
            problems.append(f"{table.parent / 'calibration.yaml'}: missing")
    if rows != sum(kept.values()):
        problems.append(f"{layout}: {rows} frames, expected {sum(kept.values())} kept")
    return problems


def _check_nnunet(dataset: Path) -> list[str]:
    """dataset.json counts the cases; every image has its label; folds by specimen."""
    try:
        meta = json.loads((dataset / "dataset.json").read_text())
        folds = json.loads((dataset / "splits_final.json").read_text())
    except (OSError, ValueError) as err:
        return [f"{dataset}: cannot read dataset.json/splits_final.json ({err})"]
    images = {p.name.removesuffix("_0000.png") for p in dataset.glob("imagesTr/*.png")}
    labels = {p.name.removesuffix(".png") for p in dataset.glob("labelsTr/*.png")}
    problems = [
        f"{dataset}/labelsTr: no label for case {c}" for c in sorted(images - labels)
    ]
    problems += [
        f"{dataset}/imagesTr: no image for case {c}" for c in sorted(labels - images)
    ]
    if meta.get("numTraining") != len(images):
        problems.append(
            f"{dataset}/dataset.json: numTraining {meta.get('numTraining')}, "
            f"imagesTr holds {len(images)}"
        )
    return problems + _fold_problems(dataset / "splits_final.json", folds, images)


def _fold_problems(path: Path, folds: list, cases: set) -> list[str]:
    """Folds cover the cases and never split a specimen (a sweep, with one specimen).

    Case IDs are ``<specimen>_<sweep>_<ts>`` (IDs hold no ``_``).
    """
    one = len({c.split("_")[0] for c in cases}) < 2
    group = (lambda c: c.rsplit("_", 1)[0]) if one else (lambda c: c.split("_")[0])
    problems = []
    for i, fold in enumerate(folds):
        both = {group(c) for c in fold["train"]} & {group(c) for c in fold["val"]}
        if both:
            problems.append(f"{path} fold {i}: {sorted(both)} in both train and val")
        if set(fold["train"]) | set(fold["val"]) != cases:
            problems.append(f"{path} fold {i}: does not cover imagesTr")
    return problems
