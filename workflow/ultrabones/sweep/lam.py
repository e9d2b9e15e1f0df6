"""Choice of the fiducial penalty weight lambda, with or without ground truth.

Each candidate lambda labels the same frames as ``label-sweep`` would with it
(:mod:`.local`: the same seeds, warm start and sweep step, the other engine
parameters as configured); :func:`choose_lambda` reads the summary rows.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputDataError
from ..evaluate.metrics import label_error_mm
from ..io.tables import write_json
from ..vocabulary import Reason
from .local import kernel_of, label_tasks, record_tasks, warm_start
from .table import bound_hits, frame_table

__all__ = [
    "CHOOSE_BY",
    "DEFAULT_CHOOSE_BY",
    "LAMBDAS",
    "check_rule",
    "choose_lambda",
    "lambda_table",
    "read_choice",
    "write_choice",
]

#: Candidate weights (per mm of mean fiducial displacement), as in the paper.
LAMBDAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
#: Largest acceptable fraction of frames hitting the bounds.
MAX_BOUND_HITS = 0.1
#: Without truth: share of the weakest penalty's correction the choice must keep.
KEEP_CORRECTION = 0.5
#: With truth: largest acceptable discard fraction (the paper's 18.7 %), so a lambda
#: cannot win by discarding the hard frames.
MAX_DISCARDED = 0.187


def lambda_table(
    record, model, params, rows, lambdas=LAMBDAS, *, truth=None
) -> pd.DataFrame:
    """Label the same record rows at each lambda; one summary row each.

    Parameters
    ----------
    record : Record
        The opened record; the warm start's pilots are spread over all its rows.
    model : SpecimenModel
    params : EngineParams
        The engine's settings; ``lam`` is replaced by each of ``lambdas``.
    rows : sequence of int
        The poses table rows to label, in time order.
    lambdas : sequence of float
    truth : callable, optional
        ``truth(stamp)`` returns the true full label of a frame (bool mask); the
        table then also holds ``label_error_mm_median``, the median over kept
        frames of the label error of the refined full label against it.

    Returns
    -------
    table : DataFrame
        One row per lambda (see :func:`choose_lambda`).
    """
    rows_out = []
    for lam in lambdas:
        p = replace(params, lam=float(lam))
        kernel = kernel_of(record.calibration, model, p)
        tasks = record_tasks(record, p)
        prior, _ = warm_start(tasks, kernel)
        errors = {}
        keep = None if truth is None else _scorer(truth, errors, record.calibration)
        picked = [tasks[int(i)] for i in rows]
        table = frame_table(label_tasks(picked, kernel, prior=prior, keep=keep))
        row = _summary_row(table, p)
        if truth is not None:
            kept = [e for e in errors.values() if np.isfinite(e)]
            row["label_error_mm_median"] = (
                float(np.median(kept)) if kept else float("nan")
            )
        rows_out.append(row)
    return pd.DataFrame(rows_out)


def _scorer(truth, errors: dict, calibration):
    """Return a ``keep`` putting each frame's label error in ``errors`` (NaN: not kept).

    A frame refined again overwrites its first pass's error.
    """

    def score(fields: dict) -> None:
        stamp = int(fields["timestamp"])
        errors[stamp] = float("nan")
        if fields["reason"] == Reason.OK.value:
            errors[stamp] = label_error_mm(
                np.asarray(fields["full_refined"], bool),
                truth(stamp),
                spacing_mm=calibration.pixel_spacing_mm,
            )

    return score


def _summary_row(table: pd.DataFrame, params) -> dict:
    worked = table[table["evaluations"] > 0]
    return {
        "lam": params.lam,
        "frames": len(worked),
        "correction_mm_median": float(worked["fiducial_correction_mm"].median()),
        "bound_hit_fraction": float(bound_hits(worked).mean()),
        "discarded_fraction": float((table["status"] != "kept").mean()),
        "objective_gain_median": float(
            (worked["objective_refined"] - worked["objective_initial"]).median()
        ),
    }


#: The rules :func:`choose_lambda` knows: ``evidence`` needs nothing but the
#: refinements (a real sweep's only option), ``truth`` a simulated sweep's labels.
CHOOSE_BY = ("evidence", "truth")
#: The rule of the release: the one a real sweep can apply.
DEFAULT_CHOOSE_BY = "evidence"


def check_rule(*, with_truth: bool, choose_by: str = DEFAULT_CHOOSE_BY) -> None:
    """Raise ``ConfigError`` unless ``choose_by`` is a rule usable with(out) truth."""
    if choose_by not in CHOOSE_BY:
        known = ", ".join(CHOOSE_BY)
        raise ConfigError(f"unknown lambda rule {choose_by!r}; known: {known}")
    if choose_by == "truth" and not with_truth:
        raise ConfigError(
            "the lambda rule 'truth' needs the simulator's truth (--truth)"
        )


def choose_lambda(
    table: pd.DataFrame, choose_by: str = DEFAULT_CHOOSE_BY
) -> tuple[float, str]:
    """Return the chosen lambda and the rule that chose it.

    ``choose_by="evidence"``: the strongest penalty under which the image still
    moves the poses, i.e. the largest lambda whose median correction keeps at least
    ``KEEP_CORRECTION`` of the correction at the smallest lambda, among those with
    at most ``MAX_BOUND_HITS`` of refinements at a search bound. A weaker penalty
    lets noise pull the pose further for a small gain; a stronger one stops the
    image from correcting at all (the median correction collapses to zero). It is
    the default because it is the rule a real sweep can apply: a simulated release
    chosen by it is the release raw mode makes of the same frames.

    ``choose_by="truth"`` (needs a ``label_error_mm_median`` column): the lambda of
    least median label error among those discarding at most ``MAX_DISCARDED`` of the
    frames (else the one discarding least).
    """
    check_rule(choose_by=choose_by, with_truth="label_error_mm_median" in table)
    if choose_by == "truth":
        ok = table[table["discarded_fraction"] <= MAX_DISCARDED]
        rule = f"least median label error with <= {MAX_DISCARDED:.1%} discarded"
        if ok["label_error_mm_median"].notna().any():
            return float(ok.loc[ok["label_error_mm_median"].idxmin(), "lam"]), rule
        return float(table.loc[table["discarded_fraction"].idxmin(), "lam"]), rule
    rule = (
        f"largest lambda keeping >= {KEEP_CORRECTION:.0%} of the smallest lambda's "
        f"median correction, <= {MAX_BOUND_HITS:.0%} bound hits"
    )
    table = table.sort_values("lam")
    ok = table[table["bound_hit_fraction"] <= MAX_BOUND_HITS]
    if not len(ok):
        return float(table.loc[table["bound_hit_fraction"].idxmin(), "lam"]), rule
    reference = ok["correction_mm_median"].iloc[0]
    moving = ok[ok["correction_mm_median"] >= KEEP_CORRECTION * reference]
    return float(moving["lam"].max() if len(moving) else ok["lam"].min()), rule


def write_choice(path, lam: float, rule: str) -> None:
    """Write the choice file (``lambda.json``) that ``label-sweep --lam-from`` reads."""
    write_json(path, {"lam": float(lam), "rule": rule})


def read_choice(path) -> tuple[float, str]:
    """Return the lambda and rule of a choice file written by :func:`write_choice`.

    Raises
    ------
    InputDataError
        If the file is missing, not JSON, or has no non-negative number ``lam``.
    """
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        message = f"{path}: no lambda choice file (select-lambda writes it)"
        raise InputDataError(message) from None
    except json.JSONDecodeError as err:
        raise InputDataError(f"{path}: not JSON ({err})") from err
    lam = doc.get("lam") if isinstance(doc, dict) else None
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam >= 0:
        raise InputDataError(f"{path}: 'lam' must be a number >= 0, got {lam!r}")
    return float(lam), str(doc.get("rule", ""))
