"""Training: Dice + BCE loss, Adam with step decay, per-epoch checkpoints and resume.

The schedule is the paper's: Adam at learning rate 1e-5, multiplied by 0.9 every 10
epochs. On the CPU a seed fixes everything (initial weights from ``torch.manual_seed``,
batches from a NumPy generator seeded by ``(seed, epoch)``, deterministic kernels), so
two runs with one seed give equal weights, and a run killed after epoch k and resumed
from its checkpoint gives the weights of an uninterrupted run.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np

from .data import MULTIPLE, DataParams, batches, pad_to
from .files import load_checkpoint, save_checkpoint
from .net import DEFAULT_ENCODER, build_unet

__all__ = [
    "TrainParams",
    "dice_bce_loss",
    "eval_loss",
    "fit",
    "loss_curves_figure",
    "model_card",
    "setup",
    "train_epoch",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainParams:
    """Training parameters.

    Attributes
    ----------
    encoder : str
        U-Net encoder, a key of :data:`ultrabones.model.net.ENCODERS`. Source:
        issue 11 (resnet34).
    epochs : int
        Epochs in all (a resumed run counts the ones done). Source: ultrabones
        default, not from the paper.
    max_steps : int
        At most this many batches per epoch, 0 = a whole pass. Source: ultrabones
        (smoke tests and CPU benchmarks).
    batch_size : int
        Crops per batch. Source: ultrabones default sized for a 2-core CPU.
    lr : float
        Adam learning rate. Source: paper (1e-5).
    lr_decay : float
        Factor applied every ``decay_epochs``. Source: paper (0.9).
    decay_epochs : int
        Source: paper (every 10 epochs).
    seed : int
        Weights and batch order.
    data : DataParams
    """

    encoder: str = DEFAULT_ENCODER
    epochs: int = 50
    max_steps: int = 0
    batch_size: int = 8
    lr: float = 1e-5
    lr_decay: float = 0.9
    decay_epochs: int = 10
    seed: int = 0
    data: DataParams = field(default_factory=DataParams)

    def plan(self) -> dict:
        """Return what a checkpoint must match to be resumed (all but ``epochs``)."""
        doc = asdict(self)
        doc.pop("epochs")
        return doc


def dice_bce_loss(logits, target, *, smooth: float = 1.0):
    """Return binary cross-entropy plus soft Dice loss over the whole batch.

    Dice counters the imbalance of thin bone curves against background; ``smooth``
    keeps a crop without bone finite.
    """
    import torch
    import torch.nn.functional as F

    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    overlap = (p * target).sum()
    dice = 1.0 - (2.0 * overlap + smooth) / (p.sum() + target.sum() + smooth)
    return bce + dice


def setup(params: TrainParams, device):
    """Return the seeded model, its Adam optimizer and the step-decay schedule."""
    import torch

    torch.manual_seed(params.seed)
    model = build_unet(params.encoder).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=params.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=params.decay_epochs, gamma=params.lr_decay
    )
    return model, optimizer, scheduler


def train_epoch(model, optimizer, frames, *, params: TrainParams, epoch, device):
    """Run one epoch of optimisation steps; return the mean training loss."""
    import torch

    model.train()
    rng = np.random.default_rng([params.seed, epoch])
    losses = []
    for images, masks in batches(
        frames,
        batch_size=params.batch_size,
        params=params.data,
        rng=rng,
        max_steps=params.max_steps,
    ):
        optimizer.zero_grad()
        logits = model(torch.from_numpy(images).to(device))
        loss = dice_bce_loss(logits, torch.from_numpy(masks).to(device))
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses))


def eval_loss(model, frames, *, device) -> float | None:
    """Return the mean loss over whole frames (None without frames)."""
    import torch

    if not frames:
        return None
    model.eval()
    losses = []
    with torch.no_grad():
        for f in frames:
            rows, cols = (-(-n // MULTIPLE) * MULTIPLE for n in f.image.shape)
            image = torch.from_numpy(pad_to(f.image, rows, cols))[None, None]
            mask = torch.from_numpy(pad_to(f.mask, rows, cols).astype(np.float32))[
                None, None
            ]
            losses.append(
                float(dice_bce_loss(model(image.to(device)), mask.to(device)))
            )
    return float(np.mean(losses))


def _resume(model, optimizer, scheduler, work, plan: dict) -> list[dict]:
    state = load_checkpoint(work)
    if state is None:
        return []
    if state["plan"] != plan:
        log.info("%s: checkpoint of another plan; training afresh", work)
        return []
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    log.info("%s: resuming after epoch %d", work, len(state["history"]))
    return state["history"]


def fit(train_frames, val_frames, params: TrainParams, *, work, device, meta: dict):
    """Train, checkpointing into ``work`` after every epoch; resume from it.

    Parameters
    ----------
    train_frames, val_frames : sequence of Frame
    params : TrainParams
    work : Path
        Work folder holding ``checkpoint.pt``.
    device : torch.device
    meta : dict
        Stored in the checkpoint's plan beside the parameters (e.g. the release
        hash), so a checkpoint of other data is not resumed.

    Returns
    -------
    model : torch.nn.Module
    history : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``lr``.
    """
    import torch

    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    model, optimizer, scheduler = setup(params, device)
    plan = {**params.plan(), **meta}
    history = _resume(model, optimizer, scheduler, work, plan)
    for epoch in range(len(history), params.epochs):
        lr = optimizer.param_groups[0]["lr"]
        loss = train_epoch(
            model, optimizer, train_frames, params=params, epoch=epoch, device=device
        )
        scheduler.step()
        val = eval_loss(model, val_frames, device=device)
        history.append(
            {"epoch": epoch + 1, "train_loss": loss, "val_loss": val, "lr": lr}
        )
        log.info("epoch %d: train loss %.4f, val loss %s", epoch + 1, loss, val)
        save_checkpoint(work, _state(model, optimizer, scheduler, plan, history))
    return model, history


def _state(model, optimizer, scheduler, plan, history) -> dict:
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "plan": plan,
        "history": history,
    }


def loss_curves_figure(history: list[dict], *, title: str = ""):
    """Plot training and validation loss against epoch."""
    from ..evaluate.figures import _figure

    fig = _figure(5.0, 3.2)
    ax = fig.subplots()
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    val = [np.nan if h["val_loss"] is None else h["val_loss"] for h in history]
    if not np.all(np.isnan(val)):
        ax.plot(epochs, val, "s--", label="val")
    ax.set_xlabel("epoch")
    ax.set_ylabel("Dice + BCE loss")
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(title or f"{len(history)} epochs")
    fig.tight_layout()
    return fig


def model_card(card: dict) -> str:
    """Return the model folder's ``README.md`` from the card's fields."""
    last = card["history"][-1] if card["history"] else {}
    lines = [
        "# ultrabones baseline segmentation model",
        "",
        "U-Net (ResNet-34 encoder by default) trained from scratch on a label release",
        "(issue 11): Dice + BCE loss, Adam, learning rate decayed every few epochs.",
        "",
        "## Data",
        f"- release: {card['release']}",
        f"- release hash (sha256 of manifest.sha256): {card['release_hash']}",
        *(f"- {k} frames: {v}" for k, v in card["frames"].items()),
        *(f"- {k} specimens: {', '.join(v)}" for k, v in card["specimens"].items()),
        "",
        "## Parameters and versions",
        *(f"- {k}: {card['parameters'][k]}" for k in sorted(card["parameters"])),
        *(f"- {k}: {card['versions'][k]}" for k in sorted(card["versions"])),
        f"- device: {card['device']}",
        "",
        "## Training",
        f"- epochs: {len(card['history'])}, last train loss: "
        f"{last.get('train_loss')}, last val loss: {last.get('val_loss')}",
        "- `loss_curves.json`, `loss_curves.png`: loss per epoch",
        "- `checkpoint.pt`: weights, optimizer and schedule (`ultrabones predict`)",
    ]
    return "\n".join(lines) + "\n"
