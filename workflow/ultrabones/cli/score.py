"""``ultrabones score PRED_DIR RELEASE``: Acc/Com/F1 of predictions against labels."""

from __future__ import annotations

import logging

from .evaluate import DEFAULT_EPS_MM
from .options import release_folder

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    """Register the ``score`` subcommand."""
    p = sub.add_parser(
        "score",
        help="score predicted masks against a release split's labels (Acc, Com, F1)",
        description="Pooled over the split's kept frames and per specimen, for all "
        "pixels and high/low intensity by the release's Otsu threshold "
        "(--otsu, else RELEASE/../qc/otsu.json, else the Otsu of the scored labels).",
    )
    p.add_argument("pred", help="prediction folder written by `ultrabones predict`")
    p.add_argument(
        "release", type=release_folder, help="release folder or its manifest.sha256"
    )
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument(
        "--eps", nargs="+", type=float, default=list(DEFAULT_EPS_MM), help="mm"
    )
    p.add_argument("--otsu", help="Otsu threshold JSON from `ultrabones otsu`")
    p.add_argument("--out", help="folder for scores.json, per_frame.csv, scores.png")
    p.add_argument("--summary", help="also write the printed JSON to this file")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    """Pair predictions with the split's stores, score, write and print."""
    import json

    from ..model.data import split_stores
    from ..model.score import release_pairs, score_pairs

    pairs = release_pairs(args.pred, split_stores(args.release, args.split))
    scores, rows = score_pairs(pairs, eps_mm=args.eps, threshold=_threshold(args))
    if args.out:
        _write(args.out, scores, rows)
    from .evaluate import _table

    brief = {k: v for k, v in scores.items() if k != "regions"}
    if args.summary:
        from ..io.tables import write_json

        write_json(args.summary, brief, indent=2)
    print(json.dumps(brief, indent=2) if args.json else _table(scores))
    return 0


def release_otsu(release, given=None):
    """Return the Otsu JSON to use: ``given``, or the workflow's beside the release."""
    from pathlib import Path

    if given:
        return Path(given)
    beside = Path(release).resolve().parent / "qc" / "otsu.json"
    return beside if beside.is_file() else None


def _threshold(args) -> float | None:
    from .evaluate import read_threshold

    path = release_otsu(args.release, args.otsu)
    if path is None:
        log.warning("no otsu.json: Otsu of the scored labels' intensities")
        return None
    return read_threshold(path)


def _write(out, scores: dict, rows: list) -> None:
    from pathlib import Path

    from ..evaluate.figures import metric_curves_figure
    from ..io.tables import save_figure, write_json, write_rows

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / "scores.json",
        {k: v for k, v in scores.items() if k != "regions"},
        indent=2,
    )
    write_rows(out / "per_frame.csv", rows)
    title = f"model vs release labels, {scores['frames']} frames"
    save_figure(metric_curves_figure(scores, title=title), out / "scores.png")
