"""Honesty numbers: how simulated frames compare with real ones.

For every image column that holds label pixels, the first (topmost) label row marks
the bone. Around it we read the ridge (the brightest pixel within +-1.5 mm, which
tolerates the ~1 mm misalignment of real initial labels), the tissue above (2 to 6 mm
above) and the shadow (3 to 8 mm below). Per frame set:

- ``ridge_contrast`` = mean ridge / mean tissue above;
- ``shadow_ratio`` = mean shadow / mean tissue above (darkness: lower is darker);
- ``mean_intensity``, ``std_intensity`` and the 64-bin grey-level histogram of all
  pixels; ``histogram_distance`` is the Jensen-Shannon distance (base 2, 0..1) between
  two sets' histograms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.distance import jensenshannon

__all__ = ["FrameSet", "accumulate", "compare", "summary"]

_BINS = 64


@dataclass
class FrameSet:
    """Running sums over the frames of one set (real or simulated)."""

    histogram: np.ndarray = field(default_factory=lambda: np.zeros(_BINS))
    ridge: list = field(default_factory=list)
    above: list = field(default_factory=list)
    shadow: list = field(default_factory=list)
    frames: int = 0
    labelled: int = 0


def _windows(image, label, spacing_mm):
    """Per labelled column: ridge max, mean above, mean shadow (grey levels)."""
    sy = spacing_mm[1]
    rows = image.shape[0]
    has = label.any(axis=0)
    cols = np.flatnonzero(has)
    top = np.argmax(label[:, cols], axis=0)
    b, a0, a1, s0, s1 = (int(round(v / sy)) for v in (1.5, 6.0, 2.0, 3.0, 8.0))
    ok = (top - a0 >= 0) & (top + s1 < rows)
    cols, top = cols[ok], top[ok]
    img = image.astype(np.float64)

    def band(lo, hi):
        idx = top[None, :] + np.arange(lo, hi)[:, None]
        return img[idx, cols[None, :]]

    return (
        band(-b, b + 1).max(axis=0),
        band(-a0, -a1).mean(axis=0),
        band(s0, s1).mean(axis=0),
    )


def accumulate(
    acc: FrameSet, image, label=None, *, spacing_mm=(0.05392, 0.05392)
) -> None:
    """Add one frame (and its label, if any) to a set's sums."""
    acc.histogram += np.bincount(
        (image.ravel() // (256 // _BINS)).astype(np.int64), minlength=_BINS
    )
    acc.frames += 1
    if label is None or not label.any():
        return
    ridge, above, shadow = _windows(image, label, spacing_mm)
    if ridge.size:
        acc.labelled += 1
        acc.ridge.append(ridge)
        acc.above.append(above)
        acc.shadow.append(shadow)


def summary(acc: FrameSet) -> dict:
    """Scalar appearance numbers of a set."""
    h = acc.histogram / max(acc.histogram.sum(), 1)
    centres = (np.arange(_BINS) + 0.5) * (256 / _BINS)
    mean = float((h * centres).sum())
    out = {
        "frames": acc.frames,
        "labelled_frames": acc.labelled,
        "mean_intensity": mean,
        "std_intensity": float(np.sqrt((h * (centres - mean) ** 2).sum())),
    }
    if acc.labelled:
        above = np.concatenate(acc.above).mean()
        out["ridge_contrast"] = float(np.concatenate(acc.ridge).mean() / above)
        out["shadow_ratio"] = float(np.concatenate(acc.shadow).mean() / above)
        out["tissue_above"] = float(above)
    return out


def compare(sim: FrameSet, real: FrameSet, *, tolerance: float = 0.25) -> dict:
    """Relative differences sim vs real and the histogram distance."""
    s, r = summary(sim), summary(real)
    rel = {
        k: (s[k] - r[k]) / r[k]
        for k in ("mean_intensity", "std_intensity", "ridge_contrast", "shadow_ratio")
        if k in s and k in r
    }
    return {
        "histogram_distance": float(
            jensenshannon(sim.histogram, real.histogram, base=2)
        ),
        "relative_difference": rel,
        "within_tolerance": bool(all(abs(v) <= tolerance for v in rel.values())),
        "tolerance": tolerance,
    }
