"""The network: segmentation_models_pytorch's U-Net, and the device it runs on."""

from __future__ import annotations

from ..errors import ConfigError

__all__ = ["build_unet", "resolve_device"]

#: Default encoder. Source: issue 11 (smp's resnet34, as in smp's examples).
DEFAULT_ENCODER = "resnet34"


def build_unet(encoder: str = DEFAULT_ENCODER):
    """Return an untrained U-Net: one grey input channel, one logit channel.

    ``encoder_weights=None``: no pretrained weights, since none can be fetched here
    and a release's labels should stand on their own.

    Raises
    ------
    ConfigError
        If smp does not know the encoder.
    """
    import segmentation_models_pytorch as smp

    try:
        return smp.Unet(
            encoder_name=encoder, encoder_weights=None, in_channels=1, classes=1
        )
    except (KeyError, ValueError) as err:
        raise ConfigError(f"--encoder: unknown smp encoder {encoder!r}") from err


def resolve_device(name: str):
    """Return the torch device for ``auto``, ``cpu`` or ``cuda``.

    ``auto`` takes CUDA when torch sees a GPU, else the CPU.

    Raises
    ------
    ConfigError
        If ``cuda`` is asked for without a GPU, or the name is unknown.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: torch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)
