"""``ultrabones predict MODEL_DIR RELEASE --out PRED_DIR``: masks of split frames."""

from __future__ import annotations

import logging

from .options import release_folder

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    """Register the ``predict`` subcommand."""
    p = sub.add_parser(
        "predict",
        help="predict bone masks of a release split with a trained model (model extra)",
        description="Writes <PRED_DIR>/<specimen>/<sweep>/<timestamp>.png (0/255) for "
        "the kept frames of the split, and provenance.json.",
    )
    p.add_argument("model", help="model folder written by `ultrabones train`")
    p.add_argument(
        "release", type=release_folder, help="release folder or its manifest.sha256"
    )
    p.add_argument("--out", required=True, help="prediction folder")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument(
        "--threshold", type=float, default=0.5, help="bone probability threshold"
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.set_defaults(run=run)


def run(args) -> int:
    """Load the model, predict every kept frame of the split, write PNGs."""
    from pathlib import Path

    import torch

    from ..io.tables import write_json
    from ..model.files import load_checkpoint, release_hash, write_mask_png
    from ..model.net import resolve_device
    from ..model.predict import load_model, predict_split

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    state = load_checkpoint(args.model, required=True)
    model, params = load_model(state, device)
    out, n = Path(args.out), 0
    out.mkdir(parents=True, exist_ok=True)
    for specimen, sweep, stamp, mask in predict_split(
        model,
        args.release,
        args.split,
        scale=params.data.scale,
        device=device,
        threshold=args.threshold,
    ):
        write_mask_png(out / specimen / sweep / f"{stamp}.png", mask)
        n += 1
    write_json(
        out / "provenance.json", _provenance(args, state, release_hash, n), indent=2
    )
    log.info("%d frames of split %s predicted into %s", n, args.split, out)
    return 0


def _provenance(args, state, release_hash, frames: int) -> dict:
    from pathlib import Path

    from ..io.checksum import sha256_file
    from ..provenance import provenance

    return {
        **provenance([]),
        "model": str(args.model),
        "model_checkpoint_sha256": sha256_file(Path(args.model) / "checkpoint.pt"),
        "trained_on_release_hash": state["plan"].get("release_hash"),
        "release": str(args.release),
        "release_hash": release_hash(args.release),
        "split": args.split,
        "threshold": args.threshold,
        "frames": frames,
    }
