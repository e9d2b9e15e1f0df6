"""The release: splits by specimen, reject statistics, dataset card, public export.

Pure functions over label-store datasets and tables; the ``release``,
``export-public`` and ``manifest`` commands do the file work through ``io``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .errors import ConfigError
from .layout import RELEASE_FILES
from .store import FLAGS, as_str, status_of
from .transforms import POSE_COLUMNS, matrix_from_params
from .vocabulary import DISCARD_REASONS, MASKS, Reason

__all__ = [
    "SPLITS",
    "anatomy_of",
    "case_ids",
    "citation_cff",
    "croissant_metadata",
    "dataset_card",
    "grouped_folds",
    "kept_mask",
    "nnunet_dataset_json",
    "published_folders",
    "reason_descriptions",
    "tracking_table",
    "manifest_text",
    "public_table",
    "reject_statistics",
    "split_counts",
    "split_specimens",
    "sweep_statistics",
]

SPLITS = ("train", "val", "test")


def split_counts(n: int, *, mode: str, sizes: dict) -> dict:
    """Return the number of specimens per split.

    Parameters
    ----------
    n : int
        Number of specimens.
    mode : {"counts", "proportions"}
        ``counts``: ``sizes`` are specimen counts summing to ``n``; ``proportions``:
        ``sizes`` are weights (e.g. the paper's 10/1/3), rounded by largest remainder.
    sizes : dict
        ``train``, ``val``, ``test`` -> count or weight.

    >>> split_counts(2, mode="proportions", sizes={"train": 10, "val": 1, "test": 3})
    {'train': 1, 'val': 0, 'test': 1}
    """
    values = np.array([float(sizes[k]) for k in SPLITS])
    if mode == "counts":
        if values.sum() != n or np.any(values != np.round(values)):
            raise ConfigError(
                f"release.splits: counts must be integers summing to {n} specimens, "
                f"got {dict(zip(SPLITS, values.tolist(), strict=True))}"
            )
        return {k: int(v) for k, v in zip(SPLITS, values, strict=True)}
    if mode != "proportions" or values.sum() <= 0 or np.any(values < 0):
        raise ConfigError(f"release.splits: bad mode {mode!r} or weights {sizes}")
    exact = values / values.sum() * n
    counts = np.floor(exact).astype(int)
    # ties go to the split with fewer specimens, so 2 specimens give 1 train, 1 test
    order = np.lexsort((counts, -np.round(exact - counts, 9)))
    counts[order[: n - counts.sum()]] += 1
    return {k: int(v) for k, v in zip(SPLITS, counts, strict=True)}


def split_specimens(specimens, *, mode: str, sizes: dict, seed: int) -> pd.DataFrame:
    """Assign each specimen to train/val/test (a seeded shuffle of the sorted IDs)."""
    ids = sorted(specimens)
    counts = split_counts(len(ids), mode=mode, sizes=sizes)
    order = np.random.default_rng(seed).permutation(len(ids))
    labels = np.repeat(list(SPLITS), [counts[k] for k in SPLITS])
    split = dict(zip([ids[i] for i in order], labels, strict=True))
    return pd.DataFrame({"specimen": ids, "split": [split[s] for s in ids]})


def sweep_statistics(ds: xr.Dataset) -> dict:
    """Return one row of the reject statistics for a sweep's store."""
    reason = as_str(ds["reason"].values)
    correction = ds["fiducial_correction_mm"].values
    confidence = ds["confidence"].values.astype(np.float64)
    kept = reason == "ok"
    frames = int(np.sum(reason != "no_image"))
    row = {
        "specimen": str(ds["specimen"].values),
        "sweep": str(ds["sweep"].values),
        "rows": int(reason.size),
        "frames": frames,
        "kept": int(kept.sum()),
    }
    discarded = {f"discarded_{r}": int(np.sum(reason == r)) for r in DISCARD_REASONS}
    total = sum(discarded.values())
    row.update(discarded)
    row["discarded"] = total
    row["discard_rate"] = total / frames if frames else float("nan")
    row["correction_mean_kept_mm"] = _stat(np.mean, correction[kept])
    row["correction_median_kept_mm"] = _stat(np.median, correction[kept])
    row["confidence_median_kept"] = _stat(np.median, confidence[kept])
    return row


def _stat(fn, values: np.ndarray) -> float:
    return float(fn(values)) if values.size else float("nan")


def reject_statistics(rows) -> pd.DataFrame:
    """Return the reject statistics table, one row per sweep, sorted by ID."""
    return pd.DataFrame(list(rows)).sort_values(
        ["specimen", "sweep"], ignore_index=True
    )


def public_table(ds: xr.Dataset) -> pd.DataFrame:
    """Return ``sweepProcessedAndOptimized.csv`` of a store: kept frames only.

    Columns: ``timestamp``, ``space_factor``, the initial pose and the refined pose
    with suffix ``_optimized``, as the public UltraBones100k loader reads them.
    """
    kept = kept_mask(ds)
    table = pd.DataFrame({"timestamp": ds["timestamp"].values[kept]})
    table["space_factor"] = float(ds.attrs["pixel_spacing_mm"][0])
    initial = ds["pose_initial"].values[kept]
    refined = ds["pose_refined"].values[kept]
    for i, name in enumerate(POSE_COLUMNS):
        table[name] = initial[:, i]
    for i, name in enumerate(POSE_COLUMNS):
        table[f"{name}_optimized"] = refined[:, i]
    return table


def manifest_text(checksums: dict) -> str:
    """Return ``sha256sum`` lines (``<hex>  <path>``) sorted by path."""
    return "".join(f"{checksums[p]}  {p}\n" for p in sorted(checksums))


def dataset_card(stats: pd.DataFrame, splits: pd.DataFrame, *, attrs: dict) -> str:
    """Return the release's ``README.md``: counts, parameters, versions, method."""
    total = stats[["rows", "frames", "kept", "discarded"]].sum()
    per_split = splits.groupby("split")["specimen"].apply(", ".join).to_dict()
    lines = [
        "# ultrabones label release",
        "",
        "Bone labels for tracked ultrasound sweeps, made by the ultrabones workflow",
        "(the UltraBones100k method: calibrated, registered poses; per-frame pose",
        "refinement; discard of frames whose mean fiducial correction exceeds the",
        "bound or whose confidence (the estimated probability that the label is",
        "right) is below the threshold; acoustic-shadow and incidence-angle",
        "filtering of the label).",
        "",
        "## Counts",
        f"- specimens: {splits['specimen'].nunique()}, sweeps: {len(stats)}",
        f"- rows: {total['rows']}, frames with an image: {total['frames']}",
        f"- kept: {total['kept']}, discarded: {total['discarded']} "
        f"({total['discarded'] / max(total['frames'], 1):.1%})",
        *(f"- {k}: {per_split.get(k, '')}" for k in SPLITS),
        "",
        "## Parameters and versions",
        *(f"- {k}: {attrs[k]}" for k in sorted(attrs)),
        "",
        *_CARD_LABELS,
        "",
        "## Reason codes",
        "Stored in `reason` as uint8 codes (CF `flag_values`/`flag_meanings`; 0 is "
        "`unset`), read as strings by `ultrabones.io.store.open_store`.",
        "",
        "| code | value | status | meaning |",
        "| --- | --- | --- | --- |",
        *_reason_rows(),
        "",
        *_CARD_USE,
    ]
    return "\n".join(lines) + "\n"


def _reason_rows() -> list[str]:
    described = reason_descriptions()
    return [
        f"| `{r}` | {i} | {status_of(r)} | {described[r]} |"
        for i, r in enumerate(FLAGS["reason"], start=1)
    ]


_CARD_LABELS = (
    "## Label semantics",
    "Masks are uint8 0/1 images of the frame (CF `flag_values`/`flag_meanings`):",
    "- `full_initial`: the CT bone surface cut by the image plane at the tracked pose "
    "(band of half-width `gamma_mm`).",
    "- `full_refined`: the same cut at the refined pose, before any filtering.",
    f"- `{MASKS[3]}`, `{MASKS[4]}`: the pixels of `full_refined` dropped as in the "
    "acoustic shadow of bone nearer the probe, or seen at an incidence angle above "
    "the bound.",
    "- `label`: the final label, `full_refined` without `shadow` and `oblique`; use "
    "it on kept frames (`status` kept) only.",
)

_CARD_USE = (
    "## Loading",
    "```python",
    "from ultrabones.io.store import open_store  # decodes status/reason",
    'ds = open_store("labels/S01/tibia-1.zarr")',
    "import xarray as xr  # without ultrabones: reason holds the codes above",
    'ds = xr.open_zarr("labels/S01/tibia-1.zarr", consolidated=False)',
    'kept = ds["label"][ds["reason"] == 1]',
    "```",
    "PNG layouts (kept frames only): `public/<S>/<W>/UltrasoundImages/<ts>.png` with "
    "`Label_partial_gradient/<ts>_label_partial_gradient.png` (0/255); "
    "`published/specimenNN/ultrasound_records/<anatomy>/<W>/UltrasoundImages/<ts>.png`"
    " with `Labels/<ts>_label.png` (0/255) and `tracking.csv`; "
    "`nnunet/Dataset*/imagesTr/<case>_0000.png` with `labelsTr/<case>.png` (0/1):",
    "```python",
    "from PIL import Image; import numpy as np",
    "label = np.asarray(Image.open(path)) > 0",
    "```",
    "",
    "## Intended use",
    "Training and evaluating bone-surface segmentation of tracked ultrasound; split "
    "by specimen (never train and test on one specimen). Labels are automatic: "
    "`confidence` estimates the chance that a kept frame's label is right. Not for "
    "clinical use.",
    "",
    "## Files",
    "- `labels/<specimen>/<sweep>.zarr`: label stores (xarray.open_zarr, "
    "consolidated=False); `chunks.sha256` in each holds its chunks' digests",
    "- `splits.csv`, `reject_statistics.csv`, `qa/`, `public/` (the public loader's "
    "layout), `published/` (the authors' layout), `nnunet/` (nnU-Net v2 raw dataset), "
    "`croissant.json` (Croissant 1.0), `CITATION.cff`, `manifest.sha256` "
    "(sha256sum -c); `ultrabones validate .` checks all of it",
)


def kept_mask(ds: xr.Dataset) -> np.ndarray:
    """Return the boolean mask of a store's kept frames (reason ``ok``)."""
    return as_str(ds["reason"].values) == Reason.OK


def case_ids(ds: xr.Dataset) -> list[str]:
    """Return the nnU-Net case IDs of a store's kept frames: ``<S>_<W>_<ts>``."""
    prefix = f"{ds['specimen'].values}_{ds['sweep'].values}"
    return [f"{prefix}_{int(t)}" for t in ds["timestamp"].values[kept_mask(ds)]]


def nnunet_dataset_json(n_training: int, *, fold_groups: str) -> dict:
    """Return nnU-Net v2's ``dataset.json`` for grey PNG frames and bone labels.

    ``fold_groups`` (``specimen`` or ``sweep``) is stated in the description.
    """
    return {
        "channel_names": {"0": "ultrasound"},
        "labels": {"background": 0, "bone": 1},
        "numTraining": int(n_training),
        "file_ending": ".png",
        "overwrite_image_reader_writer": "NaturalImage2DIO",
        "name": "ultrabones",
        "description": "Bone labels of tracked ultrasound frames (kept frames of the "
        "ultrabones release); imagesTs is the release's test split; splits_final.json "
        f"folds group frames by {fold_groups}.",
    }


def grouped_folds(groups: pd.DataFrame, *, n_folds: int = 5) -> tuple[list[dict], str]:
    """Return nnU-Net folds that never split a group, and the grouping used.

    Parameters
    ----------
    groups : DataFrame
        One row per training case: ``case``, ``specimen``, ``sweep``.
    n_folds : int
        Folds wanted; fewer when there are fewer groups.

    Returns
    -------
    folds : list of dict
        ``{"train": [...], "val": [...]}`` per fold, case IDs sorted.
    grouping : str
        ``specimen``; ``sweep`` when only one specimen is in train and val, so that
        neighbouring frames of one sweep still never fall on both sides; ``block``
        when only one sweep is (the real sample): contiguous blocks of its frames in
        order, so only the frames at a block's ends neighbour the other side.

    Raises
    ------
    ValueError
        If there are fewer than two training cases.
    """
    key = "specimen" if groups["specimen"].nunique() >= 2 else "sweep"
    labels = (
        groups["specimen"] + "/" + groups["sweep"] if key == "sweep" else groups[key]
    )
    if labels.nunique() < 2:
        key, k = "block", min(n_folds, len(groups))
        blocks = np.arange(len(groups)) * k // max(len(groups), 1)
        labels = pd.Series(blocks, index=groups.index).astype(str)
    names = sorted(labels.unique())
    if len(names) < 2:
        raise ValueError(f"folds need at least two training cases, got {len(groups)}")
    k = min(n_folds, len(names))
    fold_of = {name: i % k for i, name in enumerate(names)}
    fold = labels.map(fold_of).to_numpy()
    cases = groups["case"].to_numpy()
    folds = [
        {
            "train": sorted(cases[fold != i].tolist()),
            "val": sorted(cases[fold == i].tolist()),
        }
        for i in range(k)
    ]
    return folds, key


def tracking_table(ds: xr.Dataset, *, euler: str) -> pd.DataFrame:
    """Return ``tracking.csv`` of the published layout: kept frames' poses.

    Columns ``timestamp``, ``x y z euler_x euler_y euler_z`` (initial T_CT<-US) and
    the same six with suffix ``_optimized`` (refined), angles as Euler ``euler``
    (SciPy's convention: lower case extrinsic) in degrees, lengths in mm.
    """
    kept = kept_mask(ds)
    table = pd.DataFrame({"timestamp": ds["timestamp"].values[kept]})
    for suffix, name in (("", "pose_initial"), ("_optimized", "pose_refined")):
        params = _euler_params(ds[name].values[kept], euler)
        for i, col in enumerate(POSE_COLUMNS):
            table[f"{col}{suffix}"] = params[:, i]
    return table


def _euler_params(params: np.ndarray, euler: str) -> np.ndarray:
    """Re-express our pose parameters (extrinsic xyz, deg) with Euler ``euler``."""
    from scipy.spatial.transform import Rotation

    if not len(params):
        return params.reshape(0, 6)
    rotation = Rotation.from_matrix(matrix_from_params(params)[:, :3, :3])
    return np.column_stack([params[:, :3], rotation.as_euler(euler, degrees=True)])


def published_folders(specimens) -> dict:
    """Return specimen ID -> ``specimenNN`` folder, numbered in sorted ID order.

    >>> published_folders(["S02", "S01"])
    {'S01': 'specimen01', 'S02': 'specimen02'}
    """
    return {s: f"specimen{i:02d}" for i, s in enumerate(sorted(specimens), start=1)}


def anatomy_of(sweep: str) -> str:
    """Return the anatomy of a sweep ID: its name without a ``-<n>`` suffix.

    >>> anatomy_of("tibia-1"), anatomy_of("femur")
    ('tibia', 'femur')
    """
    head, _, tail = sweep.rpartition("-")
    return head if head and tail.isdigit() else sweep


def reason_descriptions() -> dict:
    """Return reason code -> its ``#:`` comment in ``vocabulary.Reason`` (one line).

    The comments are the codes' documentation; reading them keeps the dataset card
    and the code from drifting apart.
    """
    import inspect
    import re

    found, comment = {}, []
    for line in inspect.getsource(Reason).splitlines():
        text = line.strip()
        if text.startswith("#:"):
            comment.append(text[2:].strip())
        elif match := re.fullmatch(r'[A-Z_]+ = "([a-z_]+)"', text):
            found[match.group(1)] = " ".join(comment) or "the frame is kept"
            comment = []
    return {r.value: found.get(r.value, "") for r in Reason}


#: The paper whose method the release reproduces (CITATION.cff ``references``).
PAPER = {
    "type": "article",
    "title": "UltraBones100k: A reliable automated labeling method and large-scale "
    "dataset for ultrasound-based bone surface extraction",
    "authors": [{"family-names": "Wu", "given-names": "Luohong"}, {"name": "et al."}],
    "year": 2025,
}


def citation_cff(*, title: str, authors, licence: str, version: str, url: str) -> str:
    """Return ``CITATION.cff`` (CFF 1.2.0) of the release; ``authors`` are names."""
    import yaml

    doc = {
        "cff-version": "1.2.0",
        "message": "If you use this dataset, please cite it as below.",
        "type": "dataset",
        "title": title,
        "authors": [{"name": a} for a in authors],
        "license": licence,
        "version": version,
        **({"url": url} if url else {}),
        "references": [PAPER],
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def croissant_metadata(
    *, title: str, licence: str, url: str, version: str, files: dict
) -> dict:
    """Return the release's Croissant 1.0 JSON-LD description.

    Parameters
    ----------
    title, licence, url, version : str
        Dataset name, SPDX licence, home page ("" for none) and version (the
        package's).
    files : dict
        Relative path -> SHA-256 of ``splits.csv`` and ``reject_statistics.csv``
        (their names in :data:`~ultrabones.layout.RELEASE_FILES`).

    Notes
    -----
    Record sets: ``splits`` (specimen -> split) and ``sweeps`` (the reject statistics,
    one row per sweep). The stores and PNG layouts are described as file sets.
    """
    return {
        "@context": _CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": title,
        "description": "Bone labels of tracked ultrasound frames made by the "
        "ultrabones workflow (see README.md).",
        "license": f"https://spdx.org/licenses/{licence}.html",
        **({"url": url} if url else {}),
        "version": version,
        "citeAs": "see CITATION.cff",
        "distribution": [
            *(_file_object(path, digest) for path, digest in sorted(files.items())),
            _file_set(
                "label-stores",
                f"{RELEASE_FILES['labels']}/*/*.zarr/**",
                "application/x-zarr",
            ),
            _file_set("png-frames", "published/**/*.png", "image/png"),
        ],
        "recordSet": [
            _record_set(
                "splits",
                RELEASE_FILES["splits"],
                {"specimen": "sc:Text", "split": "sc:Text"},
            ),
            _record_set(
                "sweeps",
                RELEASE_FILES["stats"],
                {
                    "specimen": "sc:Text",
                    "sweep": "sc:Text",
                    "rows": "sc:Integer",
                    "kept": "sc:Integer",
                    "discarded": "sc:Integer",
                },
            ),
        ],
    }


def _node(kind: str, name: str, **fields) -> dict:
    """Return a Croissant node of type ``cr:<kind>``, its ``@id`` and name ``name``."""
    return {"@type": f"cr:{kind}", "@id": name, "name": name, **fields}


def _file_object(path: str, digest: str) -> dict:
    return _node(
        "FileObject", path, contentUrl=path, encodingFormat="text/csv", sha256=digest
    )


def _file_set(name: str, includes: str, encoding: str) -> dict:
    return _node("FileSet", name, includes=includes, encodingFormat=encoding)


def _record_set(name: str, path: str, fields: dict) -> dict:
    return _node(
        "RecordSet",
        name,
        field=[
            {
                "@type": "cr:Field",
                "@id": f"{name}/{col}",
                "name": col,
                "dataType": kind,
                "source": {"fileObject": {"@id": path}, "extract": {"column": col}},
            }
            for col, kind in fields.items()
        ],
    )


#: The Croissant 1.0 JSON-LD context (the specification's, unchanged).
_CROISSANT_CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
