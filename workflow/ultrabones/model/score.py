"""Scores of predicted masks against a release's labels, pooled and per specimen.

The metrics are :func:`ultrabones.evaluate.evaluate_label_sets`'s (Acc, Com, F1 within
eps mm; all pixels and high/low intensity by the Otsu threshold). This module only
joins the sweeps of a split into one :class:`~ultrabones.io.masks.MaskSource` (frame
names ``<specimen>/<sweep>/<timestamp>``), so frames are averaged over the whole split
or over one specimen exactly as the evaluation averages over a sweep.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputDataError
from ..evaluate import evaluate_label_sets, resolve_spacing
from ..io.masks import MaskSource, open_mask_source

__all__ = [
    "METRICS",
    "combine_sources",
    "release_pairs",
    "score_pairs",
    "summary",
]

METRICS = ("accuracy", "completeness", "f1")


def combine_sources(sources: dict[str, MaskSource], *, path) -> MaskSource:
    """Return one mask source over several, names prefixed ``<key>/``.

    Images are read from each source's own reader (None unless all have one); the
    spacing is the one all sources that carry one agree on (None when none does).
    """
    owner, status = {}, []
    for key, src in sources.items():
        owner.update({f"{key}/{name}": (src, name) for name in src.names})
        status += src.status
    given = [s.spacing_mm for s in sources.values()]
    spacing = (
        resolve_spacing(*given, names=list(sources))
        if any(g is not None for g in given)
        else None
    )
    has_images = all(s.read_image is not None for s in sources.values())
    return MaskSource(
        path=Path(path),
        names=tuple(owner),
        status=tuple(status),
        spacing_mm=spacing,
        read_mask=lambda name: owner[name][0].read_mask(owner[name][1]),
        read_image=(
            (lambda name: owner[name][0].read_image(owner[name][1]))
            if has_images
            else None
        ),
    )


def release_pairs(pred_dir, stores, *, truth_variable: str = "label") -> dict:
    """Pair each store's predicted PNG folder ``<pred_dir>/<specimen>/<sweep>``.

    Returns
    -------
    pairs : dict
        ``"<specimen>/<sweep>"`` -> ``(pred, truth, images)`` mask sources (the
        store gives the truth and the images).

    Raises
    ------
    InputDataError
        If a sweep has no prediction folder (naming it).
    """
    pairs = {}
    for store in stores:
        store = Path(store)
        key = f"{store.parent.name}/{store.name.removesuffix('.zarr')}"
        folder = Path(pred_dir) / key
        if not folder.is_dir():
            raise InputDataError(f"{folder}: no predictions for {store}")
        truth = open_mask_source(store, variable=truth_variable)
        pairs[key] = (open_mask_source(folder), truth, truth)
    return pairs


def _score(pairs: dict, *, eps_mm, threshold, name: str) -> dict:
    pred = combine_sources({k: v[0] for k, v in pairs.items()}, path=name)
    truth = combine_sources({k: v[1] for k, v in pairs.items()}, path=name)
    images = combine_sources({k: v[2] for k, v in pairs.items()}, path=name)
    spacing = resolve_spacing(
        pred.spacing_mm,
        truth.spacing_mm,
        images.spacing_mm,
        names=(f"{name} pred", f"{name} truth", f"{name} images"),
    )
    return evaluate_label_sets(
        pred,
        truth,
        spacing_mm=spacing,
        eps_mm=eps_mm,
        read_image=images.read_image,
        threshold=threshold,
    )


def summary(result: dict) -> dict:
    """Return the JSON summary of a result: all pixels, ``high``, ``low``, counts."""
    out = {k: result[k] for k in ("eps_mm", *METRICS, "frames", "frame_counts")}
    for region in ("high", "low"):
        values = result["regions"].get(region, {})
        out[region] = {
            m: values.get(m, [None] * len(result["eps_mm"])) for m in METRICS
        }
    out["otsu_threshold"] = result["otsu_threshold"]
    out["otsu_source"] = result["otsu_source"]
    out["spacing_mm"] = result["spacing_mm"]
    return out


def score_pairs(
    pairs: dict, *, eps_mm, threshold: float | None, per_specimen: bool = True
) -> tuple[dict, list]:
    """Score pooled over all pairs and per specimen.

    Parameters
    ----------
    pairs : dict
        ``"<specimen>/<sweep>"`` -> ``(pred, truth, images)`` mask sources;
        ``images`` gives the intensities of the high/low split.
    eps_mm : sequence of float
    threshold : float or None
        Otsu threshold; None: Otsu of the truth labels' intensities of all frames,
        then used for every specimen too.
    per_specimen : bool
        Also score each specimen alone (``per_specimen`` stays empty without).

    Returns
    -------
    scores : dict
        :func:`summary` of the pooled result, with ``regions`` (for the figure) and
        ``per_specimen`` (a summary per specimen).
    per_frame : list of dict
        Rows with ``specimen``, ``sweep``, ``timestamp``, ``region``, ``eps_mm`` and
        the three metrics.
    """
    pooled = _score(pairs, eps_mm=eps_mm, threshold=threshold, name="all")
    scores = {**summary(pooled), "regions": pooled["regions"], "per_specimen": {}}
    for specimen in sorted({k.split("/")[0] for k in pairs} if per_specimen else ()):
        mine = {k: v for k, v in pairs.items() if k.split("/")[0] == specimen}
        result = _score(
            mine, eps_mm=eps_mm, threshold=pooled["otsu_threshold"], name=specimen
        )
        scores["per_specimen"][specimen] = summary(result)
    rows = []
    for row in pooled["per_frame"]:
        specimen, sweep, stamp = row["frame"].split("/")
        rest = {k: v for k, v in row.items() if k != "frame"}
        rows.append({"specimen": specimen, "sweep": sweep, "timestamp": stamp, **rest})
    return scores, rows
