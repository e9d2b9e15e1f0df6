"""Baseline model study (issue 11): the U-Net against trivial segmenters and truths.

On the held-out (test) specimens of a release, on the same frames (the release's kept
frames), five label sets are scored with :func:`ultrabones.model.score.score_pairs`:

* the model trained on the release's refined labels (``label``),
* the model trained on the initial, unrefined labels (``full_initial``),
* the release's labels themselves (what the models learn from; 1 against themselves),
* the initial labels themselves (the workflow before pose refinement),
* a trivial intensity-threshold segmenter (bone where intensity > the release's Otsu
  threshold of label intensities),

each against two references: the release's labels and the simulator's truth
(``label_visible``). ``docs/results/model_baseline.md`` holds the numbers.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..io.masks import MaskSource, open_mask_source
from ..model.score import score_pairs

__all__ = ["bench_rows", "markdown_table", "sim_truth_folder", "threshold_source"]


def threshold_source(images: MaskSource, threshold: float) -> MaskSource:
    """Return the trivial segmenter's masks: pixels brighter than ``threshold``."""
    return replace(
        images,
        read_mask=lambda name: images.read_image(name) > threshold,
    )


def sim_truth_folder(truth_root, key: str) -> Path:
    """Return the simulator's ``label_visible`` folder of ``<specimen>/<sweep>``.

    ``truth_root`` is the workflow's ``results/simulate/sweep`` (one simulated sweep
    per folder, as ``rules/common.smk``'s ``truth_folder`` lays it out).
    """
    specimen, sweep = key.split("/")
    return (
        Path(truth_root)
        / specimen
        / sweep
        / "truth"
        / "specimens"
        / specimen
        / "sweeps"
        / sweep
        / "label_visible"
    )


def _methods(stores, preds: dict, threshold: float) -> dict:
    """Return method name -> {key: (pred source, image source)} over the stores."""
    names = (*preds, "release labels", "initial labels", "intensity threshold")
    methods = {name: {} for name in names}
    for store in map(Path, stores):
        key = f"{store.parent.name}/{store.name.removesuffix('.zarr')}"
        images = open_mask_source(store, variable="label")
        for name, folder in preds.items():
            methods[name][key] = (open_mask_source(Path(folder) / key), images)
        methods["release labels"][key] = (images, images)
        methods["initial labels"][key] = (
            open_mask_source(store, variable="full_initial"),
            images,
        )
        methods["intensity threshold"][key] = (
            threshold_source(images, threshold),
            images,
        )
    return methods


def _at(scores: dict, eps_mm: float) -> dict:
    i = int(np.argmin(np.abs(np.asarray(scores["eps_mm"]) - eps_mm)))
    row = {"frames": scores["frames"]}
    for region, values in (("all", scores), ("low", scores["low"])):
        for metric in ("accuracy", "completeness", "f1"):
            row[f"{region}_{metric}"] = values[metric][i]
    return row


def bench_rows(stores, preds: dict, *, truth_root, threshold: float, eps_mm=0.5):
    """Score every method against the release labels and the simulator truth.

    Parameters
    ----------
    stores : sequence of path
        Test-split label stores of the release.
    preds : dict
        Method name -> prediction folder of ``ultrabones predict``.
    truth_root : path
        The workflow's ``results/simulate/sweep``.
    threshold : float
        The release's Otsu threshold (regions and the trivial segmenter).
    eps_mm : float
        Reported threshold (mm); the scores use it alone.

    Returns
    -------
    rows : list of dict
        ``reference``, ``method``, ``frames`` and all/low Acc, Com, F1 at eps.
    """
    rows = []
    for method, items in _methods(stores, preds, threshold).items():
        for reference in ("release labels", "simulator truth"):
            pairs = {}
            for key, (pred, images) in items.items():
                truth = (
                    images
                    if reference == "release labels"
                    else open_mask_source(sim_truth_folder(truth_root, key))
                )
                pairs[key] = (pred, truth, images)
            scores, _ = score_pairs(
                pairs, eps_mm=[eps_mm], threshold=threshold, per_specimen=False
            )
            rows.append(
                {"reference": reference, "method": method, **_at(scores, eps_mm)}
            )
    return sorted(rows, key=lambda r: r["reference"])


def markdown_table(rows: list[dict], *, eps_mm: float) -> str:
    """Return the rows as a Markdown table (values to three decimals)."""

    def cell(v):
        return "-" if v is None else f"{v:.3f}"

    metrics = [
        f"{r}_{m}" for r in ("all", "low") for m in ("accuracy", "completeness", "f1")
    ]
    head = ["reference", "method", "frames", *(f"{m} @{eps_mm:g} mm" for m in metrics)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        values = [r["reference"], r["method"], str(r["frames"])]
        lines.append("| " + " | ".join(values + [cell(r[m]) for m in metrics]) + " |")
    return "\n".join(lines) + "\n"
