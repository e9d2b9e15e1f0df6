"""``ultrabones model-bench RELEASE``: the baseline model study's table (issue 11)."""

from __future__ import annotations

from .options import release_folder


def add_parser(sub) -> None:
    """Register the ``model-bench`` subcommand."""
    p = sub.add_parser(
        "model-bench",
        help="baseline model vs initial labels and an intensity threshold (study)",
        description="Scores the predictions of models trained on refined and on "
        "initial labels, the initial labels and an intensity-threshold segmenter on "
        "the test split, against the release labels and the simulator truth "
        "(docs/results/model_baseline.md).",
    )
    p.add_argument(
        "release", type=release_folder, help="release folder or its manifest.sha256"
    )
    p.add_argument("--refined", required=True, help="predictions, refined-label model")
    p.add_argument("--initial", required=True, help="predictions, initial-label model")
    p.add_argument("--truth-root", required=True, help="results/simulate/sweep")
    p.add_argument("--otsu", help="Otsu JSON (default: RELEASE/../qc/otsu.json)")
    p.add_argument("--eps", type=float, default=0.5, help="threshold (mm)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--out", required=True, help="folder for model_baseline.json/.md")
    p.set_defaults(run=run)


def run(args) -> int:
    """Score every method, write the JSON rows and the Markdown table, print it."""
    from pathlib import Path

    from ..errors import InputDataError
    from ..io.tables import write_json, write_text
    from ..model.data import split_stores
    from ..studies.model_baseline import bench_rows, markdown_table
    from .evaluate import read_threshold
    from .score import release_otsu

    otsu = release_otsu(args.release, args.otsu)
    if otsu is None:
        raise InputDataError(f"{args.release}: no ../qc/otsu.json; give --otsu")
    preds = {
        "model (refined labels)": args.refined,
        "model (initial labels)": args.initial,
    }
    rows = bench_rows(
        split_stores(args.release, args.split),
        preds,
        truth_root=args.truth_root,
        threshold=read_threshold(otsu),
        eps_mm=args.eps,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows, eps_mm=args.eps)
    write_json(
        out / "model_baseline.json", {"eps_mm": args.eps, "rows": rows}, indent=2
    )
    write_text(out / "model_baseline.md", table)
    print(table)
    return 0
