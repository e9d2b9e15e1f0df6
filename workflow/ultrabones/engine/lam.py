"""Choice of the fiducial penalty weight lambda without ground truth."""

from __future__ import annotations

import pandas as pd

from .bench import bound_hits, run_frames

__all__ = ["LAMBDAS", "choose_lambda", "lambda_table"]

#: Candidate weights (per mm of mean fiducial displacement), as in the paper.
LAMBDAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
#: Largest acceptable fraction of frames hitting the bounds.
MAX_BOUND_HITS = 0.1


def lambda_table(frames, model, calibration, params, lambdas=LAMBDAS) -> pd.DataFrame:
    """Run the engine for each lambda on the same frames; one summary row each."""
    from dataclasses import replace

    frames = list(frames)
    rows = []
    for lam in lambdas:
        p = replace(params, lam=float(lam))
        table, _ = run_frames(frames, model, calibration, p)
        worked = table[table["evaluations"] > 0]
        rows.append(
            {
                "lam": float(lam),
                "frames": len(worked),
                "correction_mm_median": float(
                    worked["fiducial_correction_mm"].median()
                ),
                "bound_hit_fraction": float(
                    bound_hits(worked, bounds=(p.bounds_mm, p.bounds_deg)).mean()
                ),
                "discarded_fraction": float((table["status"] != "kept").mean()),
                "objective_gain_median": float(
                    (worked["objective_refined"] - worked["objective_initial"]).median()
                ),
            }
        )
    return pd.DataFrame(rows)


def choose_lambda(table: pd.DataFrame) -> float:
    """Return the smallest lambda whose refinements stay inside the search box.

    A small lambda lets the image decide; when it is too small the search runs to
    the box's edge on many frames, the sign that noise, not bone, drives it. The
    rule keeps the smallest lambda with at most ``MAX_BOUND_HITS`` of frames at a
    bound; if none qualifies, the one with the fewest bound hits.
    """
    ok = table[table["bound_hit_fraction"] <= MAX_BOUND_HITS]
    if len(ok):
        return float(ok["lam"].min())
    return float(table.loc[table["bound_hit_fraction"].idxmin(), "lam"])
