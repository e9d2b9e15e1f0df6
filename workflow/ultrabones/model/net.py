"""The network: a U-Net with a ResNet encoder, and the device it runs on.

The architecture is segmentation_models_pytorch's ``Unet`` (ResNet encoder of depth 5,
decoder channels 256-128-64-32-16, nearest-neighbour upsampling, 3x3 head), written in
plain torch: that library pulls torchvision and timm, a CUDA build of several GB, for
about a hundred lines of modules, and the model extra must install on a small CI disk
(torch's CPU build alone). No pretrained weights: none can be fetched here and a
release's labels should stand on their own.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError

__all__ = ["ENCODERS", "build_unet", "resolve_device"]

#: Residual blocks per encoder stage, by name (He et al. 2016, table 1).
ENCODERS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}

#: Default encoder. Source: issue 11 (resnet34, as in smp's examples).
DEFAULT_ENCODER = "resnet34"

#: Encoder stage widths (ResNet basic blocks) and decoder widths (smp's Unet defaults).
_STAGE_WIDTHS = (64, 128, 256, 512)
_DECODER_WIDTHS = (256, 128, 64, 32, 16)


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class _BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions and a (projected) identity."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                nn.BatchNorm2d(c_out),
            )
        )

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


class UNet(nn.Module):
    """U-Net: ResNet encoder (strides 2-32), five upsampling decoder blocks, one logit.

    The input side must be a multiple of 32 (:data:`ultrabones.model.data.MULTIPLE`).
    """

    def __init__(self, blocks: tuple[int, ...], in_channels: int = 1, classes: int = 1):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        stages, c_in = [], 64
        for i, (n, c_out) in enumerate(zip(blocks, _STAGE_WIDTHS, strict=True)):
            stride = 1 if i == 0 else 2
            layers = [_BasicBlock(c_in, c_out, stride)]
            layers += [_BasicBlock(c_out, c_out, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        # Skips from deep to shallow: stages 3, 2, 1, the stem, and none at full size.
        skips = (*_STAGE_WIDTHS[2::-1], 64, 0)
        decoders, c_in = [], _STAGE_WIDTHS[-1]
        for c_skip, c_out in zip(skips, _DECODER_WIDTHS, strict=True):
            decoders.append(
                nn.Sequential(
                    _conv_bn_relu(c_in + c_skip, c_out), _conv_bn_relu(c_out, c_out)
                )
            )
            c_in = c_out
        self.decoders = nn.ModuleList(decoders)
        self.head = nn.Conv2d(_DECODER_WIDTHS[-1], classes, 3, padding=1)

    def forward(self, x):
        features = [self.stem(x)]
        x = self.pool(features[0])
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        skips = [*features[-2::-1], None]
        for decoder, skip in zip(self.decoders, skips, strict=True):
            x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
            if skip is not None:
                x = torch.cat([x, skip], dim=1)
            x = decoder(x)
        return self.head(x)


def build_unet(encoder: str = DEFAULT_ENCODER) -> UNet:
    """Return an untrained U-Net: one grey input channel, one logit channel.

    Raises
    ------
    ConfigError
        If the encoder is not one of :data:`ENCODERS`.
    """
    if encoder not in ENCODERS:
        raise ConfigError(
            f"--encoder: unknown encoder {encoder!r}; known: {', '.join(ENCODERS)}"
        )
    return UNet(ENCODERS[encoder])


def resolve_device(name: str):
    """Return the torch device for ``auto``, ``cpu`` or ``cuda``.

    ``auto`` takes CUDA when torch sees a GPU, else the CPU.

    Raises
    ------
    ConfigError
        If ``cuda`` is asked for without a GPU, or the name is unknown.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: torch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)
