"""B-mode image formation from scan-line hits.

Echogenicity is a layered tissue map (gel, skin line, fat, muscle with striations),
plus bright fascia lines (some following the bone at 1.5 to 4 mm above it, the
distractors of a pose refinement), plus the bone echo: a thin bright layer whose
amplitude falls with incidence angle as cos^p (nothing past 90 deg). Below the first
interface of each column the signal drops to a near-black acoustic shadow. All of this
is multiplied by correlated Rayleigh speckle cropped from a per-sweep bank (no FFT per
frame), attenuated with depth, gain-compensated and log-compressed to 8 bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, gaussian_filter1d

from .geometry import ImageGrid, ScanHits
from .presets import Sources

__all__ = ["Tissue", "SpeckleBank", "draw_tissue", "make_bank", "render_frame"]

_PAD = 64
_BANK = 6


@dataclass(frozen=True)
class Tissue:
    """Per-sweep tissue and echo parameters (drawn by :func:`draw_tissue`)."""

    skin_mm: float
    skin_curvature: float
    fat_mm: float
    fascia: np.ndarray  # (k, 4): depth mm, slope, wave amplitude mm, brightness
    bone_fascia: tuple[float, float]  # offset above the bone (mm), brightness
    bone_gain: float
    incidence_power: float
    shadow_floor: float
    attenuation_db_mm: float
    sources: Sources


@dataclass(frozen=True)
class SpeckleBank:
    """Per-sweep precomputed maps.

    Attributes
    ----------
    speckle : ndarray of shape (k, rows, cols + pad), float32
        Correlated Rayleigh-like speckle fields times the depth gain.
    texture : ndarray of shape (rows, 2 cols), float32
        Muscle striation texture, cropped by the probe's lateral position.
    layers : ndarray of shape (rows, cols), float32
        Layered tissue echogenicity.
    """

    speckle: np.ndarray
    texture: np.ndarray
    layers: np.ndarray


def draw_tissue(rng: np.random.Generator, sources: Sources) -> Tissue:
    """Draw the tissue of one sweep, with the image physics ``sources`` switched on."""
    k = int(rng.integers(3, 6))
    fascia = np.c_[
        rng.uniform(3, 30, k),
        rng.normal(0, 0.06, k),
        rng.uniform(0, 1.5, k),
        rng.uniform(0.6, 1.6, k),
    ]
    return Tissue(
        skin_mm=float(rng.uniform(1.0, 3.0)),
        skin_curvature=float(rng.uniform(0.0, 0.006)),
        fat_mm=float(rng.uniform(2.0, 5.0)),
        fascia=fascia,
        bone_fascia=(float(rng.uniform(1.5, 4.0)), float(rng.uniform(0.8, 1.6))),
        bone_gain=float(rng.uniform(9.0, 13.0)),
        incidence_power=float(rng.uniform(2.0, 3.0)),
        shadow_floor=float(rng.uniform(0.08, 0.14)),
        attenuation_db_mm=float(rng.uniform(0.25, 0.35)),
        sources=sources,
    )


def make_bank(rng: np.random.Generator, grid: ImageGrid, tissue: Tissue) -> SpeckleBank:
    """Precompute the sweep's layered tissue, speckle fields and striation texture.

    The depth gain (attenuation left after gain compensation) is folded into the
    speckle fields and the layers into one base map, so a frame costs a handful of
    full-image operations.
    """
    rows, cols = grid.shape
    sx, sy = grid.spacing_mm
    sigma = (0.1 / sy, 0.3 / sx)
    depth = (np.arange(rows) + 0.5) * sy
    gain = 10 ** (-(tissue.attenuation_db_mm * depth) / 10)
    fields = np.empty((_BANK, rows, cols + _PAD), dtype=np.float32)
    for k in range(_BANK):
        re = gaussian_filter(rng.normal(size=(rows, cols + _PAD)), sigma)
        im = gaussian_filter(rng.normal(size=(rows, cols + _PAD)), sigma)
        amp = np.hypot(re, im)
        fields[k] = (amp / amp.mean()) ** 0.7 * gain[:, None]
    tex = gaussian_filter(rng.normal(size=(rows, 2 * cols)), (0.5 / sy, 4.0 / sx))
    tex = np.clip(1 + 0.45 * tex / tex.std(), 0.2, None).astype(np.float32)
    return SpeckleBank(fields, tex, _layers(tissue, grid))


def _layers(tissue: Tissue, grid: ImageGrid) -> np.ndarray:
    """Echogenicity map (rows, cols): gel, skin line, fat, muscle."""
    rows, cols = grid.shape
    sx, sy = grid.spacing_mm
    x = (np.arange(cols) + 0.5) * sx
    skin = tissue.skin_mm + tissue.skin_curvature * (x - x.mean()) ** 2
    rel = (np.arange(rows) + 0.5)[:, None] * sy - skin[None, :]
    echo = np.where(rel < 0, 0.01, np.where(rel < tissue.fat_mm, 0.35, 0.75))
    return (echo + 2.5 * np.exp(-0.5 * (rel / 0.2) ** 2)).astype(np.float32)


def _add_band(image, centre_px, weight, profile) -> None:
    """Add ``weight * profile(offset)`` along each column around ``centre_px``."""
    ok = np.isfinite(centre_px) & (weight > 0)
    cols = np.flatnonzero(ok)
    if cols.size == 0:
        return
    offs = np.arange(-12, 40)
    base = np.round(centre_px[cols]).astype(np.int64)
    r = base[None, :] + offs[:, None]
    frac = (r - centre_px[cols][None, :]).astype(np.float32)
    inside = (r >= 0) & (r < image.shape[0])
    c = np.broadcast_to(cols, r.shape)
    image[r[inside], c[inside]] += (weight[cols][None, :] * profile(frac))[inside]


def render_frame(
    hits: ScanHits,
    grid: ImageGrid,
    *,
    tissue: Tissue,
    bank: SpeckleBank,
    rng: np.random.Generator,
    lateral_mm: float = 0.0,
) -> np.ndarray:
    """Render one B-mode frame (rows, cols) uint8 from its scan-line hits."""
    rows, cols = grid.shape
    sx, sy = grid.spacing_mm
    c0 = int(np.round(lateral_mm / sx)) % (bank.texture.shape[1] - cols)
    echo = bank.layers * bank.texture[:, c0 : c0 + cols]
    depth_px = hits.depth_mm / sy - 0.5
    _draw_fascia(echo, tissue, grid, depth_px)
    bone = tissue.bone_gain * hits.cos_incidence**tissue.incidence_power
    bone = bone * (0.75 + 0.5 * gaussian_filter1d(rng.random(cols), 6.0))
    sig_up, decay = 0.12 / sy, 0.35 / sy
    _add_band(
        echo,
        depth_px,
        bone,
        lambda f: np.where(f < 0, np.exp(-0.5 * (f / sig_up) ** 2), np.exp(-f / decay)),
    )
    k, q0 = int(rng.integers(_BANK)), int(rng.integers(_PAD))
    echo *= bank.speckle[k, :, q0 : q0 + cols]
    _apply_shadow(echo, hits, grid, tissue)
    return _compress(echo)


def _draw_fascia(echo, tissue: Tissue, grid: ImageGrid, depth_px) -> None:
    sx, sy = grid.spacing_mm
    cols = grid.shape[1]
    x = (np.arange(cols) + 0.5) * sx
    width = 0.18 / sy
    for depth, slope, wave, bright in tissue.fascia:
        centre = (depth + slope * (x - x.mean()) + wave * np.sin(x / 9.0 + depth)) / sy
        _add_band(
            echo,
            centre,
            np.full(cols, bright, np.float32),
            lambda f: np.exp(-0.5 * (f / width) ** 2),
        )
    offset, bright = tissue.bone_fascia
    hit = np.isfinite(depth_px)
    if hit.sum() > 2:
        smooth = np.interp(np.arange(cols), np.flatnonzero(hit), depth_px[hit])
        smooth = gaussian_filter1d(smooth, 2.0 / sx) - offset / sy
        weight = np.where(gaussian_filter1d(hit * 1.0, 1.0 / sx) > 0.5, bright, 0.0)
        _add_band(
            echo,
            smooth,
            weight.astype(np.float32),
            lambda f: np.exp(-0.5 * (f / width) ** 2),
        )


def _apply_shadow(echo, hits: ScanHits, grid: ImageGrid, tissue: Tissue) -> None:
    """Darken below the first interface: to ``shadow_floor`` over ~1.5 mm of depth.

    The shadow edge is blurred across columns (beam width, partial occlusion).
    """
    rows, cols = grid.shape
    sx, sy = grid.spacing_mm
    hit = np.isfinite(hits.depth_mm)
    if not hit.any():
        return
    start = np.interp(np.arange(cols), np.flatnonzero(hit), hits.depth_mm[hit]) / sy
    strength = gaussian_filter1d(hit * 1.0, 1.2 / sx) * (1 - tissue.shadow_floor)
    below = np.arange(-rows, rows) * (sy / 1.5)
    dim = (1 - np.exp(-np.clip(below, 0, None))).astype(np.float32)
    idx = (
        np.arange(rows, dtype=np.int32)[:, None]
        - np.round(start).astype(np.int32)
        + rows
    )
    echo *= 1 - strength.astype(np.float32)[None, :] * dim[idx]


def _compress(echo) -> np.ndarray:
    """Log-compress to uint8 (40 dB shown)."""
    np.log10(echo + np.float32(1e-3), out=echo)
    echo += np.float32(2.4)
    echo *= np.float32(255.0 / 4.0)
    return np.clip(echo, 0, 255, out=echo).astype(np.uint8)
