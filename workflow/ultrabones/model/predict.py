"""Prediction: bone probability of whole frames, thresholded to full-resolution masks.

A frame is scaled as in training (:mod:`ultrabones.model.data`), zero-padded to a
multiple of 32, passed through the network, cut back, and each scaled pixel's
probability is repeated over its ``scale`` x ``scale`` block, so the mask has the
store's shape and scores against its labels directly.
"""

from __future__ import annotations

import numpy as np

from .data import MULTIPLE, DataParams, pad_to, split_stores, upsample

__all__ = ["PROBABILITY_THRESHOLD", "load_model", "predict_frame", "predict_split"]

#: Probability above which a pixel is bone. Source: the usual 0.5 of a sigmoid output.
PROBABILITY_THRESHOLD = 0.5


def load_model(state: dict, device):
    """Return the network of a checkpoint in eval mode, and its parameters."""
    from .net import build_unet
    from .train import TrainParams

    plan = dict(state["plan"])
    data = DataParams(**plan.pop("data"))
    fields = TrainParams.__dataclass_fields__
    params = TrainParams(data=data, **{k: v for k, v in plan.items() if k in fields})
    model = build_unet(params.encoder)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), params


def predict_frame(model, image: np.ndarray, *, scale: int, device) -> np.ndarray:
    """Return the bone probability of a uint8 frame at full resolution.

    Parameters
    ----------
    model : torch.nn.Module
        In eval mode.
    image : ndarray of uint8, shape (rows, cols)
    scale : int
        The model's training scale.
    device : torch.device

    Returns
    -------
    probability : ndarray of float32, shape (rows, cols)
    """
    import torch

    from .data import downsample

    small = downsample(image.astype(np.float32) / 255.0, scale)
    rows, cols = (-(-n // MULTIPLE) * MULTIPLE for n in small.shape)
    x = torch.from_numpy(pad_to(small, rows, cols))[None, None].to(device)
    with torch.no_grad():
        p = torch.sigmoid(model(x))[0, 0].cpu().numpy()
    return upsample(p[: small.shape[0], : small.shape[1]], scale, image.shape)


def predict_split(model, release, split: str, *, scale: int, device, threshold):
    """Yield ``(specimen, sweep, timestamp, mask)`` for the kept frames of a split.

    Only kept frames are predicted: they are the release's labelled frames, the ones
    a score can use.
    """
    from ..io.masks import iter_store_frames, open_label_store

    for path in split_stores(release, split):
        ds = open_label_store(path, require=("image", "status"))
        specimen, sweep = str(ds["specimen"].values), str(ds["sweep"].values)
        for _, stamp, data in iter_store_frames(ds, ("image",)):
            p = predict_frame(model, data["image"], scale=scale, device=device)
            yield specimen, sweep, stamp, p > threshold
