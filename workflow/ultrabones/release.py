"""The release: splits by specimen, reject statistics, dataset card, public export.

Pure functions over label-store datasets and tables; the ``release``,
``export-public`` and ``manifest`` commands do the file work through ``io``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .engine.reasons import DISCARD_REASONS
from .errors import ConfigError
from .store import as_str
from .transforms import POSE_COLUMNS

__all__ = [
    "SPLITS",
    "dataset_card",
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
    kept = as_str(ds["reason"].values) == "ok"
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
        "## Files",
        "- `labels/<specimen>/<sweep>.zarr`: label stores (xarray.open_zarr, "
        "consolidated=False)",
        "- `splits.csv`, `reject_statistics.csv`, `qa/`, `public/` (the public "
        "loader's layout), `manifest.sha256` (sha256sum -c)",
    ]
    return "\n".join(lines) + "\n"
