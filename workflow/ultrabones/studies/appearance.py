"""Honesty numbers: how simulated B-mode frames compare with real ones.

The statistics below, accumulated over a set of frames (`FrameSet`, `accumulate`),
summarised (`summary`) and compared (`compare`); the frame sources (`measure_real`:
a record, labelled at its initial poses, or a plain image folder; `measure_sim`: a
simulated cohort with its true ``label_full``) and the two figures (`grid_figure`,
`curves_figure`). Example frames come back as ``(image, spacing_mm, title)``.

Frames are 8-bit log-compressed grey images; every statistic is computed on the grey
levels as stored (the compression law of the real scanner is unknown, so nothing is
de-logged). Two groups:

Bone profiles (frames with a label). For every column holding label pixels, the
topmost label row marks the bone; the echo peak is the brightest pixel within
+-1.5 mm of it, which tolerates the ~1 mm misalignment of the real initial labels.
Around the peak: tissue above (mean 2 to 6 mm above) and shadow (mean 3 to 8 mm
below).

- ``ridge_contrast``: peak/tissue ratio, mean peak / mean tissue above;
- ``shadow_ratio``: shadow/tissue ratio, mean shadow / mean tissue above;
- ``echo_fwhm_mm``: median over columns of the echo's full width at half maximum
  along the column, half maximum taken above the column's tissue-above mean.

Tissue (label-free; with a label, bone and shadow are excluded). Tissue starts 2 mm
below the gel (the last dark row in the top 10 mm of a column) and keeps 1.5 mm from
the side edges; with a label, columns within 2 mm of a labelled column lose every row
from 1.5 mm above the bone down.

- ``attenuation_per_cm`` (labelled frames only, whole columns free of bone): slope of
  the mean tissue grey level against depth over 15 to 40 mm (past the near-field
  brightening, which peaks at ~13 mm in the real sample), grey levels per cm
  (negative: darker with depth). Log compression makes exponential attenuation a
  straight line in grey levels;
- ``speckle_snr`` and ``speckle_sd``: medians over 2 mm tiles of mean / SD and of SD
  (SNR is 1.91 for Rayleigh amplitude; on log-compressed grey levels the SD is the
  steadier number, the mean follows the gain);
- ``nakagami_m``: median over the same tiles of the moment estimate
  m = E[x^2]^2 / Var(x^2) (1 for Rayleigh amplitude; on log-compressed grey levels a
  shape number, not the envelope's physical m);
- ``spectral_centroid_per_mm`` and ``rolloff_20db_per_mm``: centroid of the radially
  averaged power spectrum of 128 px tissue tiles (mean removed, Hann windowed), and
  the first frequency above its peak where it is 20 dB down, cycles/mm. The -6 dB
  width would sit inside the first two rings, set by the tile window.

And of all pixels: ``mean_intensity``, ``std_intensity`` and the 64-bin histogram;
``histogram_distance`` is the Jensen-Shannon distance (base 2, 0..1) between two
sets' histograms.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from scipy.ndimage import median_filter, minimum_filter1d, uniform_filter1d
from scipy.spatial.distance import jensenshannon

from ..io.appearance import SAMPLE_SPACING_MM, cohort_frames, folder_images, is_record
from ..io.png import read_png
from ..io.record import IMAGES_DIR, open_record
from ..io.stl import read_stl
from ..io.tables import save_figure
from ..simulate.geometry import ImageGrid, bone_scene, full_label

__all__ = [
    "STATISTICS",
    "FrameSet",
    "accumulate",
    "compare",
    "curves",
    "curves_figure",
    "echo_fwhm",
    "grid_figure",
    "measure_real",
    "measure_sim",
    "merge",
    "radial_spectrum",
    "speckle_tiles",
    "summary",
    "tissue_mask",
]

STATISTICS = {
    "mean_intensity": "mean grey level of all pixels",
    "std_intensity": "SD of the grey levels of all pixels",
    "ridge_contrast": "echo peak / tissue above (peak/tissue ratio)",
    "shadow_ratio": "shadow 3-8 mm below the peak / tissue above",
    "echo_fwhm_mm": "FWHM of the bone echo along the column, mm",
    "attenuation_per_cm": "slope of mean tissue grey level vs depth, grey/cm",
    "speckle_snr": "median mean/SD of 2 mm tissue tiles",
    "speckle_sd": "median grey-level SD of 2 mm tissue tiles",
    "nakagami_m": "median Nakagami m (moments) of 2 mm tissue tiles",
    "spectral_centroid_per_mm": "centroid of the tissue power spectrum, cycles/mm",
    "rolloff_20db_per_mm": "frequency 20 dB down the tissue spectrum, cycles/mm",
}

_BINS = 64  # grey-level histogram bins (4 grey levels each)
_PEAK_HALF_MM = 1.5  # peak search +-; real initial labels are ~1 mm off (README)
_ABOVE_MM = (2.0, 6.0)  # above the peak; the sample's echo rises within 1 mm of it
_SHADOW_MM = (3.0, 8.0)  # below the peak, past most of the sample's echo tail
_FWHM_HALF_MM = 3.0  # crossings searched within +-3 mm, 5x the sample's 0.6 mm
_GEL_SEARCH_MM = 10.0  # gel plus skin lie in the top 10 mm (sample and references)
_GEL_SMOOTH_MM = 0.5  # axial smoothing before the gel test, beyond speckle grain
_GEL_LEVEL = 0.3  # gel: below 0.3 x median grey at 5-15 mm (measured, both sets)
_GEL_REF_MM = (5.0, 15.0)  # depth band whose median sets the gel level
_GEL_LATERAL_MM = 3.0  # lateral median of the gel bottom, drops dark-vessel spikes
_SKIN_MM = 2.0  # skin line and reverberation below the gel (sample, by eye)
_BONE_MARGIN_MM = 2.0  # lateral margin around labelled columns: shadow edges, labels
_EDGE_MM = 1.5  # side margin: the real scanner's depth marker sits ~0.7 mm in
_TILE_MM = 2.0  # speckle tiles: ~4 x 10 speckle grains of the sample, by eye
_SPECTRUM_PX = 128  # 6.9 mm at 0.05392 mm/px: window bias on the roll-off < 3 %
_MAX_CLIPPED = 0.01  # more black (0) pixels: a clipped real shadow, not speckle
_DEPTH_BIN_MM = 1.0  # attenuation profile bins, ~19 rows at the sample's spacing
_DEPTH_BINS = 100  # up to 100 mm deep
_FREQ_STEP = 0.25  # radial spectrum bins, cycles/mm
_FREQ_BINS = 80  # up to 20 cycles/mm (Nyquist at 0.05 mm/px is 10)
_PROFILE_MM = np.arange(-4.0, 8.0001, 0.1)  # mean bone profile for the figure
_ROLLOFF = 10 ** (-2.0)  # -20 dB in power: past the window-limited low-pass peak
_FIT_MM = (15.0, 40.0)  # attenuation fit: past the real near-field peak (~13 mm)


@dataclass
class FrameSet:
    """Running sums over the frames of one set (real or simulated)."""

    histogram: np.ndarray = field(default_factory=lambda: np.zeros(_BINS))
    ridge: list = field(default_factory=list)
    above: list = field(default_factory=list)
    shadow: list = field(default_factory=list)
    width: list = field(default_factory=list)
    snr: list = field(default_factory=list)
    speckle_sd: list = field(default_factory=list)
    nakagami: list = field(default_factory=list)
    profile: np.ndarray = field(default_factory=lambda: np.zeros(_PROFILE_MM.size))
    depth_sum: np.ndarray = field(default_factory=lambda: np.zeros(_DEPTH_BINS))
    depth_n: np.ndarray = field(default_factory=lambda: np.zeros(_DEPTH_BINS))
    power_sum: np.ndarray = field(default_factory=lambda: np.zeros(_FREQ_BINS))
    power_n: np.ndarray = field(default_factory=lambda: np.zeros(_FREQ_BINS))
    nyquist: float = np.inf
    frames: int = 0
    labelled: int = 0
    attenuation_frames: int = 0
    spectrum_tiles: int = 0


def merge(sets: list[FrameSet]) -> FrameSet:
    """Pool several sets' sums into one new set."""
    out = FrameSet()
    for acc in sets:
        for f in fields(FrameSet):
            a, b = getattr(out, f.name), getattr(acc, f.name)
            value = min(a, b) if f.name == "nyquist" else a + b
            setattr(out, f.name, value)
    return out


def _px(mm: float, step: float) -> int:
    return int(round(mm / step))


def _gel_bottom(img: np.ndarray, sy: float) -> np.ndarray:
    """Per column: last row of the dark gel layer in the top 10 mm (-1 if none)."""
    n = min(_px(_GEL_SEARCH_MM, sy), img.shape[0])
    smooth = uniform_filter1d(img[:n], max(_px(_GEL_SMOOTH_MM, sy), 1), axis=0)
    lo, hi = (_px(v, sy) for v in _GEL_REF_MM)
    dark = smooth < _GEL_LEVEL * np.median(img[lo:hi])
    last = np.where(dark.any(axis=0), n - 1 - np.argmax(dark[::-1], axis=0), -1)
    return median_filter(last, size=2 * (_px(_GEL_LATERAL_MM, sy) // 2) + 1)


def _bone_top(label: np.ndarray, sx: float) -> np.ndarray:
    """Per column: topmost label row of any column within the bone margin (or rows)."""
    top = np.where(label.any(axis=0), np.argmax(label, axis=0), label.shape[0])
    return minimum_filter1d(top, 2 * _px(_BONE_MARGIN_MM, sx) + 1, mode="nearest")


def tissue_mask(image, label=None, *, spacing_mm=(0.05392, 0.05392)) -> np.ndarray:
    """Mask the tissue pixels: below gel and skin, off the edges, clear of bone.

    Parameters
    ----------
    image : ndarray of shape (rows, cols)
        B-mode frame, grey levels.
    label : ndarray of shape (rows, cols), bool, optional
        Bone label; without one no bone or shadow is excluded.
    spacing_mm : tuple of float
        Pixel spacing (s_x, s_y), mm.

    Returns
    -------
    mask : ndarray of shape (rows, cols), bool
    """
    sx, sy = spacing_mm
    rows, cols = image.shape
    r = np.arange(rows)[:, None]
    start = _gel_bottom(image.astype(np.float64), sy) + 1 + _px(_SKIN_MM, sy)
    mask = r >= start[None, :]
    if label is not None:
        top = _bone_top(label, sx)
        top = np.where(top < rows, top - _px(_PEAK_HALF_MM, sy), rows)
        mask &= r < top[None, :]
    edge = _px(_EDGE_MM, sx)
    mask[:, :edge] = mask[:, cols - edge :] = False
    return mask


def _peaks(image, label, sy):
    """Columns with a label, and the echo peak row near each column's label top."""
    rows = image.shape[0]
    cols = np.flatnonzero(label.any(axis=0))
    top = np.argmax(label[:, cols], axis=0)
    b = _px(_PEAK_HALF_MM, sy)
    reach = max(_px(_ABOVE_MM[1], sy), _px(_FWHM_HALF_MM, sy)) + b
    deep = max(_px(_SHADOW_MM[1], sy), _px(_FWHM_HALF_MM, sy)) + b
    ok = (top - reach >= 0) & (top + deep < rows)
    cols, top = cols[ok], top[ok]
    window = top[None, :] + np.arange(-b, b + 1)[:, None]
    peak = top - b + np.argmax(image[window, cols[None, :]], axis=0)
    return cols, peak


def _band(img, cols, peak, lo, hi):
    idx = peak[None, :] + np.arange(lo, hi)[:, None]
    return img[idx, cols[None, :]]


def _bands(img, cols, peak, sy):
    """Per column: peak value, mean tissue above, mean shadow (grey levels)."""
    a0, a1, s0, s1 = (_px(v, sy) for v in (*_ABOVE_MM, *_SHADOW_MM))
    return (
        img[peak, cols],
        _band(img, cols, peak, -a1, -a0).mean(axis=0),
        _band(img, cols, peak, s0, s1).mean(axis=0),
    )


def _windows(image, label, spacing_mm):
    """Per labelled column: ridge max, mean above, mean shadow (grey levels)."""
    img = image.astype(np.float64)
    return _bands(img, *_peaks(img, label, spacing_mm[1]), spacing_mm[1])


def _crossing(profile, half, step):
    """Fractional offset (samples) of the first fall below ``half``, NaN if none."""
    below = profile[:, 1:] < half[:, None]
    j = np.argmax(below, axis=1) + 1
    n = np.arange(profile.shape[0])
    inside, outside = profile[n, j - 1], profile[n, j]
    frac = (inside - half) / np.where(inside > outside, inside - outside, 1.0)
    return np.where(below.any(axis=1), (j - 1 + frac) * step, np.nan)


def echo_fwhm(profiles, background, *, step_mm: float) -> np.ndarray:
    """Full width at half maximum of echo profiles peaking at their centre sample.

    Parameters
    ----------
    profiles : ndarray of shape (n, 2 k + 1)
        Grey levels along the scan line, the echo peak at index k.
    background : ndarray of shape (n,)
        Local background level; half maximum is halfway from it to the peak.
    step_mm : float
        Sample spacing along the profile, mm.

    Returns
    -------
    width_mm : ndarray of shape (n,)
        NaN where the profile does not fall below half maximum on both sides.

    Examples
    --------
    >>> x = np.arange(-30, 31) * 0.1
    >>> w = echo_fwhm(np.exp(-0.5 * x**2)[None], np.zeros(1), step_mm=0.1)
    >>> bool(abs(w[0] - 2.3548) < 0.01)
    True
    """
    k = profiles.shape[1] // 2
    half = 0.5 * (profiles[:, k] + background)
    up = _crossing(profiles[:, k::-1], half, step_mm)
    down = _crossing(profiles[:, k:], half, step_mm)
    return np.where(profiles[:, k] > background, up + down, np.nan)


def _tiles(a: np.ndarray, t: int) -> np.ndarray:
    """Non-overlapping t x t tiles of ``a`` as shape (n_rows, n_cols, t, t)."""
    r, c = (a.shape[0] // t) * t, (a.shape[1] // t) * t
    return a[:r, :c].reshape(r // t, t, c // t, t).swapaxes(1, 2)


def _tissue_tiles(image, mask, t):
    """Tiles of ``image`` wholly inside ``mask`` and not clipped to black, (n, t, t)."""
    tiles = _tiles(image, t)
    ok = _tiles(mask, t).all(axis=(2, 3))
    ok &= (tiles == 0).mean(axis=(2, 3)) <= _MAX_CLIPPED
    return tiles[ok].astype(np.float64)


def speckle_tiles(image, mask, *, tile_px: int) -> tuple[np.ndarray, ...]:
    """Per tissue tile: speckle SNR (mean / SD), SD and Nakagami m (moments).

    Parameters
    ----------
    image : ndarray of shape (rows, cols)
        Frame (grey levels or envelope amplitudes).
    mask : ndarray of shape (rows, cols), bool
        Tissue pixels; only tiles wholly inside count.
    tile_px : int
        Tile side, pixels.

    Returns
    -------
    snr, sd, m : ndarray of shape (n_tiles,)

    Notes
    -----
    For Rayleigh amplitudes SNR = sqrt(pi / (4 - pi)) = 1.91 and m = 1.
    """
    x = _tissue_tiles(image, mask, tile_px).reshape(-1, tile_px * tile_px)
    sd = x.std(axis=1)
    x, sd = x[sd > 0], sd[sd > 0]
    p = x**2
    return x.mean(axis=1) / sd, sd, p.mean(axis=1) ** 2 / p.var(axis=1)


def radial_spectrum(image, mask, *, spacing_mm, tile_px: int = _SPECTRUM_PX):
    """Return the radially binned power of tissue tiles (mean removed, Hann).

    Returns
    -------
    power_sum, count : ndarray of shape (80,)
        Summed power and number of spectral samples per 0.25 cycles/mm ring.
    n_tiles : int
    """
    x = _tissue_tiles(image, mask, tile_px)
    x -= x.mean(axis=(1, 2), keepdims=True)
    w = np.hanning(tile_px)
    power = (np.abs(np.fft.fft2(x * np.outer(w, w))) ** 2).sum(axis=0)
    fy = np.fft.fftfreq(tile_px, d=spacing_mm[1])[:, None]
    fx = np.fft.fftfreq(tile_px, d=spacing_mm[0])[None, :]
    ring = np.minimum(np.hypot(fy, fx) / _FREQ_STEP, _FREQ_BINS - 1).astype(int)
    count = np.bincount(ring.ravel(), minlength=_FREQ_BINS) * x.shape[0]
    return np.bincount(ring.ravel(), power.ravel(), _FREQ_BINS), count, x.shape[0]


def _depth_profile(image, mask, label, spacing_mm):
    """Tissue grey sums and pixel counts per 1 mm depth bin, bone-free columns."""
    sx, sy = spacing_mm
    mask = mask & (_bone_top(label, sx) == image.shape[0])[None, :]
    depth = (np.arange(image.shape[0]) + 0.5) * sy
    b = np.minimum(depth / _DEPTH_BIN_MM, _DEPTH_BINS - 1).astype(int)
    rows_sum = np.where(mask, image, 0).sum(axis=1, dtype=np.float64)
    return (
        np.bincount(b, rows_sum, _DEPTH_BINS),
        np.bincount(b, mask.sum(axis=1), _DEPTH_BINS),
    )


def _aligned_profile(img, cols, peak, sy):
    """Mean column profile around the peak, on the figure's mm grid."""
    pos = peak[None, :] + _PROFILE_MM[:, None] / sy
    pos = np.clip(pos, 0, img.shape[0] - 1.001)
    i, f = pos.astype(int), pos % 1
    col = cols[None, :]
    return ((1 - f) * img[i, col] + f * img[i + 1, col]).mean(axis=1)


def _add_bone(acc: FrameSet, img, label, sy) -> None:
    """Add the bone profile numbers of one labelled frame."""
    cols, peak = _peaks(img, label, sy)
    if not cols.size:
        return
    ridge, above, shadow = _bands(img, cols, peak, sy)
    k = _px(_FWHM_HALF_MM, sy)
    profiles = _band(img, cols, peak, -k, k + 1).T
    acc.labelled += 1
    acc.ridge.append(ridge)
    acc.above.append(above)
    acc.shadow.append(shadow)
    acc.width.append(echo_fwhm(profiles, above, step_mm=sy))
    acc.profile += _aligned_profile(img, cols, peak, sy)


def _add_tissue(acc: FrameSet, image, label, spacing_mm) -> None:
    """Add the speckle, spectrum and (labelled frames) attenuation sums."""
    mask = tissue_mask(image, label, spacing_mm=spacing_mm)
    snr, sd, m = speckle_tiles(image, mask, tile_px=_px(_TILE_MM, spacing_mm[1]))
    acc.snr.append(snr)
    acc.speckle_sd.append(sd)
    acc.nakagami.append(m)
    power, count, n = radial_spectrum(image, mask, spacing_mm=spacing_mm)
    acc.power_sum += power
    acc.power_n += count
    acc.spectrum_tiles += n
    acc.nyquist = min(acc.nyquist, 0.5 / max(spacing_mm))
    if label is not None:
        depth_sum, depth_n = _depth_profile(image, mask, label, spacing_mm)
        acc.depth_sum += depth_sum
        acc.depth_n += depth_n
        acc.attenuation_frames += 1


def accumulate(
    acc: FrameSet, image, label=None, *, spacing_mm=(0.05392, 0.05392)
) -> None:
    """Add one frame (and its label, if any) to a set's sums.

    Parameters
    ----------
    acc : FrameSet
        The set's running sums, updated in place.
    image : ndarray of shape (rows, cols), uint8
        B-mode frame.
    label : ndarray of shape (rows, cols), bool, optional
        Bone label (real: at the initial pose; simulated: true ``label_full``).
        Without one, only the histogram, speckle and spectrum numbers count.
    spacing_mm : tuple of float
        Pixel spacing (s_x, s_y), mm; the default is the real sample's.
    """
    acc.histogram += np.bincount(
        (image.ravel() // (256 // _BINS)).astype(np.int64), minlength=_BINS
    )
    acc.frames += 1
    _add_tissue(acc, image, label, spacing_mm)
    if label is not None and label.any():
        _add_bone(acc, image.astype(np.float64), label, spacing_mm[1])


def _spectrum(acc: FrameSet):
    """Ring centres (cycles/mm) and mean power of the rings inside the Nyquist."""
    f = (np.arange(_FREQ_BINS) + 0.5) * _FREQ_STEP
    keep = (acc.power_n > 0) & (f + 0.5 * _FREQ_STEP <= acc.nyquist)
    return f[keep], acc.power_sum[keep] / acc.power_n[keep]


def _rolloff(f, p) -> float:
    """First frequency above the peak where the power is 20 dB down, cycles/mm."""
    k = int(np.argmax(p))
    level = _ROLLOFF * p[k]
    below = np.flatnonzero(p[k:] < level)
    if not below.size:
        return float(f[-1])
    j = k + below[0]
    return float(f[j - 1] + (f[j] - f[j - 1]) * (p[j - 1] - level) / (p[j - 1] - p[j]))


def _tissue_summary(acc: FrameSet) -> dict:
    out = {"tissue_tiles": int(sum(s.size for s in acc.snr))}
    if out["tissue_tiles"]:
        out["speckle_snr"] = float(np.median(np.concatenate(acc.snr)))
        out["speckle_sd"] = float(np.median(np.concatenate(acc.speckle_sd)))
        out["nakagami_m"] = float(np.median(np.concatenate(acc.nakagami)))
    f, p = _spectrum(acc)
    if acc.spectrum_tiles and f.size > 1:
        out["spectral_centroid_per_mm"] = float((f * p).sum() / p.sum())
        out["rolloff_20db_per_mm"] = _rolloff(f, p)
    depth = (np.arange(_DEPTH_BINS) + 0.5) * _DEPTH_BIN_MM
    keep = (acc.depth_n > 0) & (depth >= _FIT_MM[0]) & (depth <= _FIT_MM[1])
    if keep.sum() > 1:
        depth = depth[keep]
        mean = acc.depth_sum[keep] / acc.depth_n[keep]
        slope = np.polyfit(depth, mean, 1, w=np.sqrt(acc.depth_n[keep]))[0]
        out["attenuation_per_cm"] = float(10.0 * slope)
    return out


def _bone_summary(acc: FrameSet) -> dict:
    above = np.concatenate(acc.above).mean()
    width = np.concatenate(acc.width)
    out = {
        "ridge_contrast": float(np.concatenate(acc.ridge).mean() / above),
        "shadow_ratio": float(np.concatenate(acc.shadow).mean() / above),
        "tissue_above": float(above),
        "bone_columns": int(width.size),
    }
    if np.isfinite(width).any():
        out["echo_fwhm_mm"] = float(np.nanmedian(width))
    return out


def summary(acc: FrameSet) -> dict:
    """Scalar appearance numbers of a set (keys absent where not measurable)."""
    h = acc.histogram / max(acc.histogram.sum(), 1)
    centres = (np.arange(_BINS) + 0.5) * (256 / _BINS)
    mean = float((h * centres).sum())
    out = {
        "frames": acc.frames,
        "labelled_frames": acc.labelled,
        "attenuation_frames": acc.attenuation_frames,
        "spectrum_tiles": acc.spectrum_tiles,
        "mean_intensity": mean,
        "std_intensity": float(np.sqrt((h * (centres - mean) ** 2).sum())),
        **_tissue_summary(acc),
    }
    if acc.labelled:
        out.update(_bone_summary(acc))
    return out


def curves(acc: FrameSet) -> dict:
    """Curves for the figure: depth profile (and its fit range), spectrum, bone profile.

    The mean bone profile is aligned on each column's echo peak, so its top also
    holds the speckle maximum the peak search picked.
    """
    keep = acc.depth_n > 0
    f, p = _spectrum(acc)
    return {
        "fit_mm": list(_FIT_MM),
        "depth_mm": ((np.flatnonzero(keep) + 0.5) * _DEPTH_BIN_MM).tolist(),
        "tissue_mean": (acc.depth_sum[keep] / acc.depth_n[keep]).tolist(),
        "frequency_per_mm": f.tolist(),
        "power_db": (10 * np.log10(p / p.max())).tolist() if p.size else [],
        "profile_mm": _PROFILE_MM.tolist(),
        "bone_profile": (acc.profile / max(acc.labelled, 1)).tolist(),
    }


def _relative(s: float, r: float) -> float:
    if r == 0:
        return 0.0 if s == 0 else float("inf")
    return (s - r) / abs(r)


def compare(sim: FrameSet, real: FrameSet, *, tolerance: float = 0.25) -> dict:
    """Per statistic: real, sim, relative difference and pass within ``tolerance``.

    Returns
    -------
    result : dict
        ``statistics`` maps each statistic both sets have (see ``STATISTICS``) to
        ``{"real", "sim", "relative_difference", "pass"}``, where the relative
        difference is (sim - real) / |real| and pass means its size is at most
        ``tolerance``. Also ``relative_difference`` (name to value), ``failed``
        (names), ``within_tolerance`` (all pass), ``tolerance`` and the
        ``histogram_distance``.
    """
    s, r = summary(sim), summary(real)
    stats = {}
    for key in STATISTICS:
        if key in s and key in r:
            rel = _relative(s[key], r[key])
            stats[key] = {
                "real": r[key],
                "sim": s[key],
                "relative_difference": rel,
                "pass": bool(abs(rel) <= tolerance),
            }
    return {
        "statistics": stats,
        "relative_difference": {k: v["relative_difference"] for k, v in stats.items()},
        "failed": [k for k, v in stats.items() if not v["pass"]],
        "within_tolerance": all(v["pass"] for v in stats.values()),
        "tolerance": tolerance,
        "histogram_distance": float(
            jensenshannon(sim.histogram, real.histogram, base=2)
        ),
    }


# Frame sources: real records, image folders and simulated cohorts.


def _picks(n: int, k: int) -> set:
    """Return ``k`` frame indices spread evenly over ``n`` (part midpoints)."""
    return set(((np.arange(k) + 0.5) * n / k).astype(int).tolist()) if n else set()


def _measure_folder(folder: Path, acc: FrameSet, examples: int) -> list:
    paths = folder_images(folder)
    picks, out = _picks(len(paths), examples), []
    for i, path in enumerate(paths):
        image = read_png(path)
        accumulate(acc, image, spacing_mm=SAMPLE_SPACING_MM)
        if i in picks:
            out.append((image, SAMPLE_SPACING_MM, f"real {path.stem}"))
    return out


def measure_real(folder: Path, acc: FrameSet, *, examples: int = 2) -> list:
    """Add a real record (labels at its initial poses) or an image folder to ``acc``.

    A folder without ``sweep_initial.csv`` is a plain image folder: its frames count
    for the label-free statistics only, at the sample's pixel spacing.

    Returns
    -------
    examples : list of (image, spacing_mm, title)
        ``examples`` frames spread evenly over the folder, for the picture grid.
    """
    if not is_record(folder):
        return _measure_folder(folder, acc, examples)
    record = open_record(folder)
    cal = record.calibration
    grid = ImageGrid(cal.shape, cal.pixel_spacing_mm)
    scene = bone_scene({k: read_stl(p) for k, p in record.bone_paths.items()})
    poses = record.ct_from_probe()
    rows = record.image_rows()
    picks, out = _picks(rows.size, examples), []
    for n, i in enumerate(rows):
        name = record.poses["image"].iloc[i]
        image = read_png(record.root / IMAGES_DIR / name)
        label = full_label(scene, poses[i] @ cal.probe_from_image, grid)
        accumulate(acc, image, label, spacing_mm=cal.pixel_spacing_mm)
        if n in picks:
            out.append((image, cal.pixel_spacing_mm, f"real {Path(name).stem}"))
    return out


def measure_sim(
    cohort: Path, acc: FrameSet, *, max_frames: int, examples: int = 4
) -> list:
    """Add simulated frames with their true full labels to ``acc``.

    Reads the first ``max_frames`` frames of every sweep; returns ``examples``
    frames spread evenly over all of them as ``(image, spacing_mm, title)``.
    """
    items = cohort_frames(cohort, max_frames=max_frames)
    picks, out = _picks(len(items), examples), []
    for i, (path, truth, spacing, sweep) in enumerate(items):
        image = read_png(path)
        accumulate(acc, image, read_png(truth) > 0, spacing_mm=spacing)
        if i in picks:
            title = f"sim {sweep.parent.parent.name} {sweep.name} {path.stem}"
            out.append((image, spacing, title))
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def grid_figure(path: Path, real: list, sim: list) -> None:
    """Write real (top row) and simulated (bottom row) frames at one mm scale."""
    plt = _pyplot()
    n = max(1, len(real), len(sim))
    fig, axes = plt.subplots(
        2, n, figsize=(4 * n, 7.5), squeeze=False, sharex=True, sharey=True
    )
    for r, items in enumerate((real, sim)):
        for c, ax in enumerate(axes[r]):
            if c >= len(items):
                ax.set_visible(False)
                continue
            image, (sx, sy), title = items[c]
            extent = (0, image.shape[1] * sx, image.shape[0] * sy, 0)
            ax.imshow(image, cmap="gray", vmin=0, vmax=255, extent=extent)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("lateral (mm)")
        axes[r, 0].set_ylabel("depth (mm)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def curves_figure(path: Path, sets: dict) -> None:
    """Write the depth profile, tissue spectrum and mean bone profile of each set.

    ``sets`` maps a set's name to its `curves` dict.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = (
        ("depth_mm", "tissue_mean", "depth (mm)", "mean tissue grey level"),
        ("frequency_per_mm", "power_db", "frequency (cycles/mm)", "power (dB)"),
        ("profile_mm", "bone_profile", "from echo peak (mm)", "mean grey level"),
    )
    for ax, (x, y, xlabel, ylabel) in zip(axes, panels, strict=True):
        for name, c in sets.items():
            if c[x] and c[y] and (y != "bone_profile" or any(c[y])):
                ax.plot(c[x], c[y], label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ax.lines:
            ax.legend(fontsize=8)
    fit = next(iter(sets.values()))["fit_mm"] if sets else None
    if fit:
        axes[0].axvspan(*fit, color="0.9", zorder=0)  # the attenuation fit range
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
