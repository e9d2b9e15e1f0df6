"""``ultrabones train RELEASE --out MODEL_DIR``: fit the baseline U-Net to a release."""

from __future__ import annotations

import logging

from .options import release_folder

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    """Register the ``train`` subcommand."""
    p = sub.add_parser(
        "train",
        help="train the baseline segmentation model on a release (model extra)",
        description="Trains on the train split, reports the loss on the val split, "
        "checkpoints every epoch in MODEL_DIR.wip and resumes from it after a kill.",
    )
    p.add_argument(
        "release",
        type=release_folder,
        help="release folder (labels/, splits.csv) or its manifest.sha256",
    )
    p.add_argument("--out", required=True, help="model folder")
    p.add_argument("--epochs", type=int, default=50, help="epochs in all")
    p.add_argument(
        "--max-steps", type=int, default=0, help="batches per epoch at most (0: all)"
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--seed", type=int, default=0, help="weights and batch order")
    p.add_argument("--encoder", default="resnet34", help="resnet18 or resnet34")
    p.add_argument("--lr", type=float, default=1e-5, help="Adam learning rate")
    p.add_argument("--batch-size", type=int, default=8, help="crops per batch")
    p.add_argument("--scale", type=int, default=4, help="image reduction factor")
    p.add_argument("--crop", type=int, default=256, help="crop side (scaled px)")
    p.add_argument(
        "--target", default="label", help="store mask to learn (label, full_initial)"
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.set_defaults(run=run)


def run(args) -> int:
    """Load the splits, train (resuming), write the model card and publish."""
    import torch

    from ..errors import InputDataError
    from ..model.data import DataParams, load_split
    from ..model.files import publish, release_hash, work_folder
    from ..model.net import resolve_device
    from ..model.train import TrainParams, fit

    torch.set_num_threads(args.threads)
    params = _params(args, TrainParams, DataParams)
    device = resolve_device(args.device)
    frames = {
        s: load_split(args.release, s, params=params.data) for s in ("train", "val")
    }
    if not frames["train"]:
        raise InputDataError(f"{args.release}/splits.csv: no kept train frames")
    digest = release_hash(args.release)
    work = work_folder(args.out)
    _, history = fit(
        frames["train"],
        frames["val"],
        params,
        work=work,
        device=device,
        meta={"release_hash": digest},
    )
    _write_card(work, _card(args, params, frames, digest, history, device))
    publish(work, args.out)
    log.info("model written to %s (%d epochs)", args.out, len(history))
    return 0


def _params(args, train_params, data_params):
    data = data_params(target=args.target, scale=args.scale, crop_px=args.crop)
    return train_params(
        encoder=args.encoder,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        data=data,
    )


def _card(args, params, frames, digest, history, device) -> dict:
    from dataclasses import asdict

    import torch

    from .. import __version__
    from ..provenance import git_sha

    return {
        "release": str(args.release),
        "release_hash": digest,
        "frames": {k: len(v) for k, v in frames.items()},
        "specimens": {k: sorted({f.specimen for f in v}) for k, v in frames.items()},
        "parameters": asdict(params),
        "versions": {
            "ultrabones": __version__,
            "git_sha": git_sha(),
            "torch": torch.__version__,
        },
        "device": str(device),
        "history": history,
    }


def _write_card(folder, card: dict) -> None:
    from ..io.tables import save_figure, write_json, write_text
    from ..model.train import loss_curves_figure, model_card

    write_json(folder / "card.json", card, indent=2)
    write_json(folder / "loss_curves.json", {"history": card["history"]}, indent=2)
    save_figure(loss_curves_figure(card["history"]), folder / "loss_curves.png")
    write_text(folder / "README.md", model_card(card))
