"""Training data from a release: kept frames by split, scaling, crops, augmentation.

Frames come from the release's label stores (``labels/<specimen>/<sweep>.zarr``),
split by specimen as ``splits.csv`` says; only ``kept`` frames carry a label. Each
frame is reduced by an integer factor ``scale`` before the network sees it: images by
block mean, masks by block maximum (a block with any label pixel is label), so the
~0.6 mm wide labels of the paper's 0.054 mm pixels stay at least two pixels wide at
``scale`` 4 (0.216 mm pixels). Training uses square random crops of ``crop_px``
pixels of the scaled frame (frames smaller than a crop are zero-padded);
prediction uses whole scaled frames, zero-padded to a multiple of 32 (the U-Net's
five halvings) and cut back. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputDataError
from ..layout import release_paths
from ..release import SPLITS

__all__ = [
    "DataParams",
    "Frame",
    "augment",
    "batches",
    "downsample",
    "load_split",
    "pad_to",
    "random_crop",
    "split_stores",
    "upsample",
]

#: The U-Net's input side must be a multiple of this (2**5, the encoder's depth 5).
MULTIPLE = 32


@dataclass(frozen=True)
class DataParams:
    """How frames become network inputs.

    Attributes
    ----------
    target : str
        Store mask trained on: ``label`` (final, refined) or ``full_initial``
        (unrefined; the benchmark's ablation). Source: store schema (vocabulary.MASKS).
    scale : int
        Reduction factor per axis. Source: paper preset pixel 0.054 mm (public
        sample) -> 0.216 mm, keeping ~0.6 mm labels >= 2 px.
    crop_px : int
        Side of the square training crops (scaled pixels), a multiple of 32.
        Source: ultrabones default; 256 covers a whole scaled paper frame's width.
    flip_p : float
        Probability of a left-right flip. Source: probes are held either way round,
        so a mirrored frame is a plausible frame.
    gain : float
        Half-width of the uniform intensity-gain jitter. Source: ultrabones
        default, +-20 % for gain/TGC settings that differ between sweeps.
    """

    target: str = "label"
    scale: int = 4
    crop_px: int = 256
    flip_p: float = 0.5
    gain: float = 0.2

    def __post_init__(self):
        """Check the values (ValueError naming the field)."""
        if self.scale < 1 or self.crop_px < MULTIPLE or self.crop_px % MULTIPLE:
            raise ValueError(
                f"scale must be >= 1 and crop_px a multiple of {MULTIPLE}, got "
                f"scale={self.scale}, crop_px={self.crop_px}"
            )
        if not (0 <= self.flip_p <= 1 and 0 <= self.gain < 1):
            raise ValueError(
                f"flip_p must be in [0, 1] and gain in [0, 1), got {self.flip_p}, "
                f"{self.gain}"
            )


@dataclass(frozen=True)
class Frame:
    """One scaled frame of the release.

    Attributes
    ----------
    specimen, sweep : str
    timestamp : int
        Milliseconds (names the frame, as in the stores).
    shape : tuple of int
        Full-resolution ``(rows, cols)``.
    image : ndarray of float32, shape (rows / scale, cols / scale)
        Intensities in [0, 1].
    mask : ndarray of uint8, same shape
        Target label (0/1).
    """

    specimen: str
    sweep: str
    timestamp: int
    shape: tuple[int, int]
    image: np.ndarray
    mask: np.ndarray


def downsample(array: np.ndarray, scale: int, *, reduce=np.mean) -> np.ndarray:
    """Reduce a 2-D array by ``scale`` per axis, zero-padding the last block.

    >>> downsample(np.arange(16.0).reshape(4, 4), 2)
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    rows, cols = array.shape
    r, c = -(-rows // scale), -(-cols // scale)
    padded = np.zeros((r * scale, c * scale), dtype=array.dtype)
    padded[:rows, :cols] = array
    return reduce(padded.reshape(r, scale, c, scale), axis=(1, 3))


def upsample(array: np.ndarray, scale: int, shape: tuple[int, int]) -> np.ndarray:
    """Repeat each pixel ``scale`` times per axis and cut to the full ``shape``."""
    full = np.repeat(np.repeat(array, scale, axis=0), scale, axis=1)
    return full[: shape[0], : shape[1]]


def pad_to(array: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Zero-pad a 2-D array at the bottom and right to at least ``(rows, cols)``."""
    out = np.zeros((max(rows, array.shape[0]), max(cols, array.shape[1])), array.dtype)
    out[: array.shape[0], : array.shape[1]] = array
    return out


def random_crop(image, mask, *, size: int, rng: np.random.Generator):
    """Cut one ``size`` x ``size`` window at a random place of a (padded) frame."""
    image, mask = pad_to(image, size, size), pad_to(mask, size, size)
    r = int(rng.integers(0, image.shape[0] - size + 1))
    c = int(rng.integers(0, image.shape[1] - size + 1))
    return image[r : r + size, c : c + size], mask[r : r + size, c : c + size]


def augment(image, mask, *, params: DataParams, rng: np.random.Generator):
    """Flip left-right with ``flip_p`` and scale intensities by a random gain."""
    if rng.random() < params.flip_p:
        image, mask = image[:, ::-1], mask[:, ::-1]
    gain = 1.0 + rng.uniform(-params.gain, params.gain)
    return np.clip(image * gain, 0.0, 1.0).astype(np.float32), mask


def batches(frames, *, batch_size: int, params: DataParams, rng, max_steps: int = 0):
    """Yield shuffled, cropped, augmented ``(images, masks)`` batches of one epoch.

    Parameters
    ----------
    frames : sequence of Frame
    batch_size : int
    params : DataParams
    rng : numpy.random.Generator
        Seeded per epoch by the caller, so a resumed run draws the same batches.
    max_steps : int
        At most this many batches (0: one pass over the frames).

    Yields
    ------
    images, masks : ndarray of float32, shape (batch, 1, crop_px, crop_px)
    """
    order = rng.permutation(len(frames))
    steps = -(-len(order) // batch_size)
    for step in range(min(steps, max_steps) if max_steps else steps):
        crops = [
            augment(
                *random_crop(
                    frames[i].image, frames[i].mask, size=params.crop_px, rng=rng
                ),
                params=params,
                rng=rng,
            )
            for i in order[step * batch_size : (step + 1) * batch_size]
        ]
        images = np.stack([c[0] for c in crops])[:, None]
        yield images, np.stack([c[1] for c in crops])[:, None].astype(np.float32)


def split_stores(release: str | Path, split: str) -> list[Path]:
    """Return the label stores of the specimens of ``split``, sorted.

    Raises
    ------
    InputDataError
        If ``splits.csv`` is missing or malformed, the split is unknown, or a
        specimen of the split has no store (each naming the file).
    """
    from ..io.tables import read_table

    files = release_paths(release)
    path = files["splits"]
    if split not in SPLITS:
        raise InputDataError(f"split must be one of {SPLITS}, got {split!r}")
    try:
        table = read_table(path)
        specimens = sorted(table.loc[table["split"] == split, "specimen"].astype(str))
    except (OSError, KeyError, ValueError) as err:
        raise InputDataError(f"{path}: cannot read the release splits ({err})") from err
    stores = []
    for specimen in specimens:
        found = sorted((files["labels"] / specimen).glob("*.zarr"))
        if not found:
            raise InputDataError(
                f"{path}: specimen {specimen} has no store in "
                f"{files['labels'] / specimen}"
            )
        stores += found
    return stores


def load_split(release: str | Path, split: str, *, params: DataParams) -> list[Frame]:
    """Read and scale the kept frames (image and target mask) of one split."""
    from ..io.masks import iter_store_frames, open_label_store

    frames = []
    for path in split_stores(release, split):
        ds = open_label_store(path, require=("image", params.target, "status"))
        specimen, sweep = str(ds["specimen"].values), str(ds["sweep"].values)
        for _, stamp, data in iter_store_frames(ds, ("image", params.target)):
            image = data["image"].astype(np.float32) / 255.0
            frames.append(
                Frame(
                    specimen,
                    sweep,
                    stamp,
                    image.shape,
                    downsample(image, params.scale),
                    downsample(data[params.target], params.scale, reduce=np.max),
                )
            )
    return frames
