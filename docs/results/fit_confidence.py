"""Fit the confidence model on tables of ``measure_confidence.py``; score a model.

    .venv/bin/python docs/results/fit_confidence.py --fit /tmp/conf_sim.csv
    .venv/bin/python docs/results/fit_confidence.py --score /tmp/conf_sim_test.csv \
        --model -1.785 8.461 2.68 0.0 -1.602

Frames kept by the engine's other rules count, each seed's table one sweep (its
evidence standardised against that sweep's, as ``label-sweep`` does); a frame is
bad when its refined label's error against the true full label exceeds 0.5 mm (on
a record without truth only the confidence distribution is printed).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from ultrabones.engine.confidence import (
    FEATURES,
    confidence_auroc,
    evidence_reference,
    fit_confidence_model,
    sweep_confidence,
)


def standardised(k: pd.DataFrame) -> np.ndarray:
    """Features with the evidence standardised per sweep (one sweep per seed)."""
    f = k[list(FEATURES)].to_numpy(dtype=float)
    for seed in k["seed"].unique():
        sel = (k["seed"] == seed).to_numpy()
        median, scale = evidence_reference(f[sel, 0])
        f[sel, 0] = (f[sel, 0] - median) / scale
    return f


def scores(k: pd.DataFrame, b) -> np.ndarray:
    """Sweep-level confidences, one sweep per seed (as ``label-sweep`` scores)."""
    c = np.zeros(len(k))
    for seed in k["seed"].unique():
        sel = (k["seed"] == seed).to_numpy()
        f = k.loc[sel, list(FEATURES)].to_numpy(dtype=float)
        c[sel] = sweep_confidence(f, np.ones(sel.sum(), bool), b)
    return c


def report(k: pd.DataFrame, b, threshold: float) -> None:
    c = scores(k, b)
    q = np.percentile(c, [0, 5, 25, 50, 75, 95, 100]).round(3).tolist()
    low = c < threshold
    print(f"frames {len(k)}, confidence percentiles 0/5/25/50/75/95/100: {q}")
    print(f"discarded (confidence < {threshold}): {low.sum()} ({low.mean():.1%})")
    if "label_error_mm_refined" not in k:
        return
    err = k["label_error_mm_refined"].to_numpy()
    print(f"AUROC (error > 0.5 mm): {confidence_auroc(c, err):.3f}")
    for name, sel in (("kept", ~low), ("discarded", low)):
        e = err[sel]
        if e.size:
            print(
                f"{name}: label error median {np.median(e):.3f} mm, max {e.max():.3f}"
                f" mm, > 0.5 mm: {(e > 0.5).sum()} of {e.size}"
            )
    by = pd.Series(low).groupby(k["inject"].to_numpy()).agg(["sum", "size"])
    print("discarded by injection:", by.to_dict("index"))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--fit", nargs="+", default=[])
    p.add_argument("--score", nargs="+", default=[])
    p.add_argument("--model", type=float, nargs=5)
    p.add_argument("--threshold", type=float, default=0.5)
    args = p.parse_args()
    b = args.model
    if args.fit:
        k = pd.concat([pd.read_csv(f) for f in args.fit], ignore_index=True)
        k = k[k["reason"] == "ok"]
        good = k["label_error_mm_refined"].to_numpy() <= 0.5
        b = fit_confidence_model(standardised(k), good)
        print("model:", " ".join(f"{v:.3f}" for v in b))
        report(k, b, args.threshold)
    if args.score:
        k = pd.concat([pd.read_csv(f) for f in args.score], ignore_index=True)
        report(k[k["reason"] == "ok"], b, args.threshold)


if __name__ == "__main__":
    main()
