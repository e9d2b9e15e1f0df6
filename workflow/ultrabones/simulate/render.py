"""B-mode image formation from scan-line hits on several elevational planes.

The echo map of a frame is the sum of

- soft tissue: gel, skin line, fat and muscle, times a muscle texture (streaky
  hyperechoic perimysium on bundle-sized patches) and, new in every frame, muscle
  fascicle bundles (long, mostly lateral bright streaks), with fascia lines across
  the image;
- a fascia line 0-1 mm above part of the bone, as bright as oblique bone;
- the cortical echo: per elevational plane, a thin line (axial PSF and sub-voxel
  surface relief around the surface, the cortex's backscatter decaying with bone
  attenuation after it) of strength ``gain * cos(incidence)^p``, weighted by the
  elevational beam profile;
- a reverberation tail decaying below the first interface;

with the tissue below each plane's interface multiplied by what reaches it (what the
bone lets through, interface losses and attenuation along the chord, plus the late
multipath return of oblique surfaces), blurred across columns by the lateral beam,
above a clutter floor. The map is multiplied by correlated speckle cropped from a
per-sweep bank, which also carries the depth gain (round-trip attenuation minus the
time-gain compensation), and log-compressed to 8 bits. Physical bases and sources of
every parameter are in ``docs/simulator.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import (
    gaussian_filter,
    gaussian_filter1d,
    map_coordinates,
    uniform_filter1d,
    zoom,
)

from .geometry import ImageGrid, ScanHits, SlabHits
from .presets import Sources

__all__ = [
    "SpeckleBank",
    "Tissue",
    "beam_weights",
    "depth_gain_db",
    "draw_tissue",
    "elevation_offsets_mm",
    "make_bank",
    "render_frame",
]

_PAD = 64
_BANK = 6
_FWHM = 2 * np.sqrt(2 * np.log(2))  # Gaussian FWHM / sigma
# Effective centre frequency of a 4-15 MHz linear array (issue 16): below the band's
# middle because soft tissue attenuates the upper band first.
_F_MHZ = 7.5
# Speed of sound assumed by the scanner, mm/us (ICRU 61 soft-tissue value).
_C_MM_US = 1.54
# Intensity transmitted across one soft tissue/cortical bone interface at normal
# incidence, 1 - ((Z_b - Z_s) / (Z_b + Z_s))^2 with Z_b = 7.8 and Z_s = 1.63 MRayl
# (Duck 1990, Physical Properties of Tissue); crossed twice on the way and back.
_BONE_TRANSMISSION = 1 - ((7.8 - 1.63) / (7.8 + 1.63)) ** 2
# Elevational planes, in units of the slab's FWHM: +-1 FWHM holds 98 % of the beam.
_SLAB_UNITS = (-1.0, -0.5, 0.0, 0.5, 1.0)
# Displayed speckle is the envelope to this power: below fully developed speckle, as
# after the scanner's compounding and smoothing. Fitted to the tiles' speckle SD of the
# appearance set with the fibre bundles on (docs/results/appearance.md; 0.6 without).
_SPECKLE_POWER = 0.5
# Depth where the operator's overall gain leaves the echo unchanged: the superficial
# muscle, where the sample's frames are brightest (12-16 mm, measured).
_GAIN_REF_MM = 14.0
# Lateral spread (SD) of the late multipath echoes: they return from tissue beside the
# bone, a few mm away (assumed).
_MULTIPATH_SPREAD_MM = 2.0
# Backscatter from just inside the cortex relative to its specular echo (0.5).
_CORTEX_BACKSCATTER = 0.5
# Perimysium septa brightness in the muscle texture, times their mean: fitted to the
# appearance set (docs/results/appearance.md); 0.6 left the tiles too regular.
_SEPTA_CONTRAST = 0.3
# Spread of single fascicle bundles around the sweep's draw (source
# ``muscle_fibres``): length log-SD and tilt SD, as in the appearance set's frames
# (looked at, assumed).
_FIBRE_LENGTH_LOG_SD = 0.5
_FIBRE_TILT_SD_DEG = 4.0
# Muscle echo between fascicle bundles, before renormalising to the muscle's mean
# echo (fitted to the appearance set, docs/results/appearance.md).
_FIBRE_FLOOR = 0.5
# Bundle thickness along the beam, SD in mm (0.3-0.7 mm FWHM): fitted to the tissue
# spectrum of the appearance set (docs/results/appearance.md); thinner bundles left
# its centroid 25-45 % high.
_FIBRE_SIGMA_MM = (0.12, 0.3)


@dataclass(frozen=True)
class Tissue:
    """Per-sweep tissue, beam and echo parameters (drawn by :func:`draw_tissue`).

    Lengths in mm, attenuations in dB/mm unless named otherwise.
    """

    skin_mm: float
    skin_curvature: float
    fat_mm: float
    fascia: np.ndarray  # (k, 5): depth, slope, wave amplitude, brightness, sigma
    bone_fascia: tuple[float, float, float, float]  # offset, incidence deg, start, span
    bone_gain: float
    incidence_power: float
    shadow_floor: float
    soft_db_cm_mhz: float
    tgc_fraction: float
    bone_db_mm: float
    axial_fwhm_mm: float
    lateral_fwhm_mm: float
    elevation_fwhm_mm: float
    relief_mm: float
    multipath: float
    reverb: tuple[float, float]  # tail amplitude / cortical echo, decay length
    # bundles per mm^2 of muscle, median length mm, tilt deg, median brightness
    # (times the muscle echo), brightness log-SD
    fibres: tuple[float, float, float, float, float]
    sources: Sources


@dataclass(frozen=True)
class SpeckleBank:
    """Per-sweep precomputed maps.

    Attributes
    ----------
    speckle : ndarray of shape (k, rows, cols + pad), float32
        Correlated Rayleigh-like speckle fields times the depth gain.
    texture : ndarray of shape (rows, 2 cols), float32
        Muscle texture (mean 1), cropped by the probe's lateral position.
    layers : ndarray of shape (rows, cols), float32
        Layered tissue echogenicity.
    clutter : ndarray of shape (rows, cols), float32
        What a full shadow leaves: ``shadow_floor`` times the layers, no texture.
    """

    speckle: np.ndarray
    texture: np.ndarray
    layers: np.ndarray
    clutter: np.ndarray


def draw_tissue(rng: np.random.Generator, sources: Sources) -> Tissue:
    """Draw the tissue of one sweep, with the image physics ``sources`` switched on."""
    k = int(rng.integers(3, 6))
    fascia = np.c_[
        rng.uniform(3, 30, k),  # depth below the image top (muscle layers)
        rng.normal(0, 0.06, k),  # slope across the image
        rng.uniform(0, 1.5, k),  # waviness
        rng.uniform(0.6, 1.6, k),  # brightness, in muscle echo units
        rng.uniform(0.08, 0.2, k),  # sigma: fascia 0.2-0.5 mm thick, blurred by PSF
    ]
    return Tissue(
        skin_mm=float(rng.uniform(1.0, 3.0)),  # gel and stand-off, as in the sample
        skin_curvature=float(rng.uniform(0.0, 0.006)),  # leg curvature under the probe
        fat_mm=float(rng.uniform(2.0, 5.0)),  # subcutaneous fat over the lower leg
        fascia=fascia,
        # offset 0-1 mm above the bone, as bright as bone at 40-65 deg (issue 16),
        # over a contiguous part of the bone's width
        bone_fascia=(
            float(rng.uniform(0.0, 1.0)),
            float(rng.uniform(40.0, 65.0)),
            float(rng.uniform(0.0, 0.5)),
            float(rng.uniform(0.3, 0.7)),
        ),
        bone_gain=float(rng.uniform(12.0, 18.0)),  # sample's ridge contrast (measured)
        incidence_power=float(rng.uniform(2.0, 3.0)),  # cos^p (Burger et al. 2013)
        shadow_floor=float(rng.uniform(0.05, 0.09)),  # clutter; sample's shadow ratio
        soft_db_cm_mhz=float(rng.uniform(0.5, 1.0)),  # soft tissue/muscle (Duck 1990)
        tgc_fraction=float(rng.uniform(0.2, 0.5)),  # of it undone by the TGC (sample)
        bone_db_mm=float(rng.uniform(10.0, 20.0)),  # ~20 dB/cm/MHz (Duck 1990) at 7.5
        axial_fwhm_mm=float(rng.uniform(0.2, 0.3)),  # 4-15 MHz linear probe
        lateral_fwhm_mm=float(rng.uniform(0.4, 0.6)),  # same probe, dynamic focus
        elevation_fwhm_mm=float(rng.uniform(0.5, 2.0)),  # slice thickness
        relief_mm=float(rng.uniform(0.15, 0.3)),  # relief below CT voxels (assumed)
        multipath=float(rng.uniform(0.15, 0.35)),  # oblique echo back late (assumed)
        # tail 3-10 % of the cortical echo, decaying over 0.5-1.5 mm (assumed)
        reverb=(float(rng.uniform(0.03, 0.1)), float(rng.uniform(0.5, 1.5))),
        fibres=_draw_fibre_settings(rng),
        sources=sources,
    )


def _draw_fibre_settings(rng: np.random.Generator) -> tuple[float, ...]:
    """Draw a sweep's fascicle bundles: density, length, tilt, brightness, log-SD.

    Density (per mm^2), median length (mm) and brightness are fitted to the
    appearance set (docs/results/appearance.md); the tilt (deg: pennation seen in a
    transverse plane within ~10 deg of lateral) and the brightness log-SD were looked
    at there.
    """
    return (
        float(rng.uniform(0.1, 0.3)),
        float(rng.uniform(3.0, 8.0)),
        float(rng.normal(0.0, 6.0)),
        float(rng.uniform(1.0, 2.0)),
        float(rng.uniform(0.35, 0.55)),
    )


def elevation_offsets_mm(tissue: Tissue) -> np.ndarray:
    """Elevational offsets (mm) of the planes to cast: 0 alone if the slab is off."""
    if not tissue.sources.elevational_slab:
        return np.zeros(1)
    return tissue.elevation_fwhm_mm * np.asarray(_SLAB_UNITS)


def beam_weights(offsets_mm: np.ndarray, fwhm_mm: float) -> np.ndarray:
    """Gaussian elevational beam profile at ``offsets_mm``, normalised to sum 1."""
    w = np.exp(-0.5 * (np.asarray(offsets_mm) * _FWHM / fwhm_mm) ** 2)
    return w / w.sum()


def depth_gain_db(tissue: Tissue, depth_mm: np.ndarray) -> np.ndarray:
    """Round-trip attenuation left after the time-gain compensation, dB.

    ``2 alpha f z`` with alpha in dB/(cm MHz), of which the TGC ramp undoes the
    fraction ``tgc_fraction``. The overall gain is set on the superficial muscle
    (0 dB at ``_GAIN_REF_MM``) and the near-field TGC is turned down by as much
    (against skin and near-field clutter), so the echo peaks there and falls both
    ways. 0 everywhere when ``attenuation_tgc`` is off.
    """
    if not tissue.sources.attenuation_tgc:
        return np.zeros_like(depth_mm)
    slope = 2 * tissue.soft_db_cm_mhz * _F_MHZ / 10 * (1 - tissue.tgc_fraction)
    return -slope * np.abs(depth_mm - _GAIN_REF_MM)


def make_bank(rng: np.random.Generator, grid: ImageGrid, tissue: Tissue) -> SpeckleBank:
    """Precompute the sweep's layered tissue, speckle fields and muscle texture.

    The depth gain is folded into the speckle fields and the layers into one base
    map, so a frame costs a handful of full-image operations.
    """
    rows, cols = grid.shape
    sx, sy = grid.spacing_mm
    sigma = (tissue.axial_fwhm_mm / _FWHM / sy, tissue.lateral_fwhm_mm / _FWHM / sx)
    depth = (np.arange(rows) + 0.5) * sy
    gain = 10 ** (depth_gain_db(tissue, depth) / 10)
    fields = np.empty((_BANK, rows, cols + _PAD), dtype=np.float32)
    for k in range(_BANK):
        re = gaussian_filter(
            rng.standard_normal((rows, cols + _PAD), np.float32), sigma
        )
        im = gaussian_filter(
            rng.standard_normal((rows, cols + _PAD), np.float32), sigma
        )
        amp = np.hypot(re, im) ** _SPECKLE_POWER
        fields[k] = amp / amp.mean() * gain[:, None]
    if tissue.sources.tissue_texture:
        tex = _muscle_texture(rng, (rows, 2 * cols), grid.spacing_mm)
    else:
        tex = np.ones((rows, 2 * cols), dtype=np.float32)
    layers = _layers(tissue, grid)
    clutter = np.float32(tissue.shadow_floor) * layers
    return SpeckleBank(fields, tex, layers, clutter)


def _muscle_texture(rng, shape, spacing_mm) -> np.ndarray:
    """Streaky muscle texture (mean 1) on bundle-sized brighter and darker patches.

    Perimysium septa seen across the fibres give short bright streaks, 2-7 mm long
    and thin along the beam; they bend with the bundles (a smooth vertical shear).
    """
    sx, sy = spacing_mm
    area_mm2 = shape[0] * shape[1] * sx * sy
    streak = np.zeros(shape)
    # short septa (~2.5 mm) and fewer long ones (~7 mm), lognormal brightness
    for density, length_mm in ((0.25, 1.0), (0.05, 3.0)):
        n = rng.poisson(density * area_mm2)
        impulses = np.zeros(shape)
        r, c = rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)
        np.add.at(impulses, (r, c), rng.lognormal(0.0, 0.6, n))
        impulses = gaussian_filter1d(impulses, 0.1 / sy, axis=0)
        streak += _wide_blur(impulses, length_mm / sx)
    bend = _smooth_noise(rng, shape, spacing_mm, 4.0) * (1.0 / sy)
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    streak = map_coordinates(streak, [rr + bend, cc], order=1, mode="reflect")
    patches = 0.45 * _smooth_noise(rng, shape, spacing_mm, 2.5)
    # septa up to ~6 dB above the fibres
    tex = np.exp(patches) * (
        1 + _SEPTA_CONTRAST * np.minimum(streak / streak.mean(), 10.0)
    )
    # unit geometric mean: the texture leaves the mean grey level (a log) in place
    return (tex / np.exp(np.log(tex).mean())).astype(np.float32)


def _smooth_noise(rng, shape, spacing_mm, sigma_mm: float) -> np.ndarray:
    """Unit-SD Gaussian noise smoothed over ``sigma_mm``, made on a coarse grid."""
    step = max(1, int(sigma_mm / (2 * spacing_mm[1])))
    coarse = (-(-shape[0] // step), -(-shape[1] // step))
    sig = (sigma_mm / spacing_mm[1] / step, sigma_mm / spacing_mm[0] / step)
    field = gaussian_filter(rng.normal(size=coarse), sig, mode="wrap")
    fine = zoom(field / field.std(), step, order=1)
    return fine[: shape[0], : shape[1]]


def _skin_mm(tissue: Tissue, grid: ImageGrid) -> np.ndarray:
    """Depth (mm) of the skin line under each column."""
    x = (np.arange(grid.shape[1]) + 0.5) * grid.spacing_mm[0]
    return tissue.skin_mm + tissue.skin_curvature * (x - x.mean()) ** 2


def _muscle_top_px(tissue: Tissue, grid: ImageGrid) -> np.ndarray:
    """Row (px, fractional) where the muscle starts under each column."""
    return (_skin_mm(tissue, grid) + tissue.fat_mm) / grid.spacing_mm[1]


def _layers(tissue: Tissue, grid: ImageGrid) -> np.ndarray:
    """Echogenicity map (rows, cols): gel, skin line, fat, muscle."""
    rows = grid.shape[0]
    sy = grid.spacing_mm[1]
    skin = _skin_mm(tissue, grid)
    rel = (np.arange(rows) + 0.5)[:, None] * sy - skin[None, :]
    echo = np.where(rel < 0, 0.01, np.where(rel < tissue.fat_mm, 0.35, 0.75))
    echo = echo + 2.5 * np.exp(-0.5 * (rel / 0.2) ** 2)
    if tissue.sources.tissue_texture:
        # superficial fascia between fat and muscle
        echo = echo + 1.2 * np.exp(-0.5 * ((rel - tissue.fat_mm) / 0.15) ** 2)
    return echo.astype(np.float32)


def _add_band(image, centre_px, weight, profile, offs) -> None:
    """Add ``weight * profile(offset)`` along each column around ``centre_px``."""
    ok = np.isfinite(centre_px) & (weight > 0)
    cols = np.flatnonzero(ok)
    if cols.size == 0:
        return
    base = np.round(centre_px[cols]).astype(np.int64)
    r = base[None, :] + offs[:, None]
    frac = (r - centre_px[cols][None, :]).astype(np.float32)
    inside = (r >= 0) & (r < image.shape[0])
    c = np.broadcast_to(cols, r.shape)
    image[r[inside], c[inside]] += (weight[cols][None, :] * profile(frac))[inside]


def render_frame(
    slab: SlabHits,
    grid: ImageGrid,
    *,
    tissue: Tissue,
    bank: SpeckleBank,
    rng: np.random.Generator,
    lateral_mm: float = 0.0,
) -> np.ndarray:
    """Render one B-mode frame from the scan-line hits of its elevational planes.

    Parameters
    ----------
    slab : SlabHits
        Hits of the planes at :func:`elevation_offsets_mm` (must include offset 0).
    grid : ImageGrid
        Pixel grid the frame's pixels truly lie on.
    tissue : Tissue
    bank : SpeckleBank
        From :func:`make_bank` with the same grid and tissue.
    rng : numpy.random.Generator
        Per-frame draws (cortex roughness, speckle field and crop, fibre bundles).
    lateral_mm : float
        Probe position across the image, mm; shifts the muscle texture with it.

    Returns
    -------
    image : ndarray of shape (rows, cols), uint8
    """
    cols = grid.shape[1]
    rough = 0.75 + 0.5 * gaussian_filter1d(rng.random(cols), 6.0)
    k, q0 = int(rng.integers(_BANK)), int(rng.integers(_PAD))
    c0 = int(np.round(lateral_mm / grid.spacing_mm[0])) % (bank.texture.shape[1] - cols)
    echo = bank.layers * bank.texture[:, c0 : c0 + cols]
    if tissue.sources.muscle_fibres:
        fibres = _draw_fibres(_fibre_bundles(rng, tissue, grid), grid.shape)
        echo *= _fibre_gain(fibres, _muscle_top_px(tissue, grid))
    if tissue.sources.tissue_texture:
        _draw_fascia(echo, tissue, grid, lateral_mm)
    if tissue.sources.near_bone_fascia:
        _draw_bone_fascia(echo, tissue, grid, slab.central())
    echo -= bank.clutter
    echo *= _transmission(slab, grid, tissue)
    echo += bank.clutter
    _draw_bone(echo, slab, grid, tissue, rough)
    echo *= bank.speckle[k, :, q0 : q0 + cols]
    return _compress(echo)


def _gauss(sigma_px):
    return lambda f: np.exp(-0.5 * (f / sigma_px) ** 2)


def _fibre_bundles(rng, tissue: Tissue, grid: ImageGrid) -> np.ndarray:
    """Draw one frame's muscle fascicle bundles from the sweep's ``tissue.fibres``.

    The elevational sweep crosses new fascicles every few frames, so the bundles
    are drawn afresh per frame (unlike the texture, which is fixed in the tissue).
    Centres lie uniformly in the muscle, below skin and fat.

    Returns
    -------
    bundles : ndarray of shape (n, 6)
        Centre row and column (px), length (px), slope (rows per column), SD along
        the beam (px), brightness.
    """
    rows, cols = grid.shape
    sx, sy = grid.spacing_mm
    density, length_mm, tilt_deg, bright, log_sd = tissue.fibres
    top = _muscle_top_px(tissue, grid)
    area_mm2 = np.clip(rows - top, 0, None).sum() * sx * sy
    n = int(rng.poisson(density * area_mm2))
    c = rng.uniform(0, cols, n)
    top_c = top[np.minimum(c.astype(np.int64), cols - 1)]
    r = top_c + rng.random(n) * np.clip(rows - top_c, 0, None)
    length = rng.lognormal(np.log(length_mm / sx), _FIBRE_LENGTH_LOG_SD, n)
    tilt = np.deg2rad(rng.normal(tilt_deg, _FIBRE_TILT_SD_DEG, n))
    sigma = rng.uniform(*_FIBRE_SIGMA_MM, n) / sy
    amp = bright * rng.lognormal(0.0, log_sd, n)
    return np.c_[r, c, length, np.tan(tilt) * sx / sy, sigma, amp]


def _draw_fibres(bundles: np.ndarray, shape) -> np.ndarray:
    """Rasterise fascicle bundles (from :func:`_fibre_bundles`) into a map, float32.

    Each bundle is a straight streak, Gaussian across (its SD, cut at 3 SD) and
    fading in and out along its length (sin^2), so no bundle ends in a hard edge;
    overlaps add. Bundles are drawn in groups of one cut width, so thin ones do not
    pay for the thickest.
    """
    half = np.ceil(3 * bundles[:, 4]).astype(np.int64)
    parts = [_streaks(bundles[half == h], h, shape) for h in np.unique(half)]
    flat = np.concatenate([np.zeros(0, np.int64), *(p[0] for p in parts)])
    weight = np.concatenate([np.zeros(0, np.float32), *(p[1] for p in parts)])
    out = np.bincount(flat, weight, shape[0] * shape[1])
    return out.reshape(shape).astype(np.float32)


def _streaks(bundles: np.ndarray, half: int, shape):
    """Flat pixel indices and weights of bundles drawn over +-``half`` rows."""
    rows, cols = shape
    r, c, length, slope, sigma, amp = bundles.T
    n_px = np.maximum(1, np.round(length)).astype(np.int64)
    which = np.repeat(np.arange(n_px.size), n_px)
    along = np.arange(which.size) - np.repeat(np.cumsum(n_px) - n_px, n_px)
    u = (along + 0.5) / n_px[which]
    col = np.round(c[which] + (u - 0.5) * n_px[which]).astype(np.int64)
    row = r[which] + slope[which] * (col - c[which])
    a = (amp[which] * np.sin(np.pi * u) ** 2).astype(np.float32)
    base = np.round(row).astype(np.int64)
    rr = base[:, None] + np.arange(-half, half + 1)[None, :]
    frac = ((base - row) / sigma[which]).astype(np.float32)[:, None]
    step = (1 / sigma[which]).astype(np.float32)[:, None]
    offs = np.arange(-half, half + 1, dtype=np.float32)[None, :]
    w = a[:, None] * np.exp(np.float32(-0.5) * (frac + offs * step) ** 2)
    ok = (rr >= 0) & (rr < rows) & ((col >= 0) & (col < cols))[:, None]
    return (rr * cols + col[:, None])[ok], w[ok]


def _fibre_gain(fibres: np.ndarray, top_px: np.ndarray) -> np.ndarray:
    """Echo gain (rows, cols) of a bundle map: 1 above the muscle (``top_px``).

    Bundles gather the muscle's backscatter rather than add to it: between them
    the muscle sits at ``_FIBRE_FLOOR`` and the gain has mean 1 over the muscle,
    so the muscle's mean echo stays where the layers put it.
    """
    muscle = np.arange(fibres.shape[0])[:, None] >= top_px[None, :]
    if not muscle.any():
        return np.ones_like(fibres)
    gain = np.where(muscle, _FIBRE_FLOOR + fibres, np.float32(1.0))
    gain[muscle] /= np.float32(_FIBRE_FLOOR + fibres[muscle].mean())
    return gain


def _draw_fascia(echo, tissue: Tissue, grid: ImageGrid, lateral_mm: float) -> None:
    """Add the sweep's fascia lines, fixed in the tissue as the probe moves."""
    sx, sy = grid.spacing_mm
    cols = grid.shape[1]
    x = (np.arange(cols) + 0.5) * sx
    xt = x + lateral_mm
    for depth, slope, wave, bright, sigma in tissue.fascia:
        centre = (depth + slope * (x - x.mean()) + wave * np.sin(xt / 9.0 + depth)) / sy
        # lines fade in and out along their length
        weight = bright * np.clip(0.5 + np.sin(xt / 13.0 + 2 * depth), 0, 1)
        offs = np.arange(-int(4 * sigma / sy) - 1, int(4 * sigma / sy) + 2)
        _add_band(echo, centre, weight.astype(np.float32), _gauss(sigma / sy), offs)


def _draw_bone_fascia(echo, tissue: Tissue, grid: ImageGrid, hits: ScanHits) -> None:
    """Add a fascia line 0-1 mm above part of the bone, as bright as oblique bone."""
    sx, sy = grid.spacing_mm
    hit = np.flatnonzero(np.isfinite(hits.depth_mm))
    if hit.size < 3:
        return
    offset, angle, start, span = tissue.bone_fascia
    cols = np.arange(grid.shape[1])
    depth = np.interp(cols, hit, hits.depth_mm[hit])
    depth = gaussian_filter1d(depth, 2.0 / sx) - offset
    lo = hit[0] + start * (hit[-1] - hit[0])
    on = (cols >= lo) & (cols <= lo + span * (hit[-1] - hit[0]))
    bright = tissue.bone_gain * np.cos(np.deg2rad(angle)) ** tissue.incidence_power
    sigma = tissue.axial_fwhm_mm / _FWHM / sy
    offs = np.arange(-int(4 * sigma) - 1, int(4 * sigma) + 2)
    weight = np.where(on, bright, 0.0).astype(np.float32)
    _add_band(echo, depth / sy - 0.5, weight, _gauss(sigma), offs)


def _bone_transmission(slab: SlabHits, tissue: Tissue) -> np.ndarray:
    """Fraction (k, cols) of a plane's energy that crosses its bone and comes back.

    Two interface crossings each way and the round trip along the chord, so only
    thin bone (short chords) lets much through. 0 when ``cortical_echo`` is off:
    every hit shadows fully.
    """
    if not tissue.sources.cortical_echo:
        return np.zeros_like(slab.chord_mm)
    loss_db = 2 * tissue.bone_db_mm * np.minimum(slab.chord_mm, 50.0)
    return _BONE_TRANSMISSION**2 * 10 ** (-loss_db / 10)


def _multipath(slab: SlabHits, tissue: Tissue) -> np.ndarray:
    """Fraction (k, cols) of a plane's energy reflected off-axis that comes back late.

    The specular reflection an oblique surface sends past the probe scatters in the
    tissue beside the bone; part of it returns after the bone echo and fills the
    shadow. 0 when ``cortical_echo`` is off.
    """
    if not tissue.sources.cortical_echo:
        return np.zeros_like(slab.cos_incidence)
    missed = np.where(
        np.isfinite(slab.depth_mm), 1 - slab.cos_incidence**tissue.incidence_power, 0.0
    )
    return tissue.multipath * missed


def _transmission(slab: SlabHits, grid: ImageGrid, tissue: Tissue) -> np.ndarray:
    """Fraction (rows, cols) of the beam's energy that reaches each pixel, float32.

    Computed on rows coarsened to ~0.2 mm (the shadow varies slowly along the beam):
    each plane's blocked energy, weighted by the beam profile, is added from its hit
    row down (a cumulative sum) and blurred across columns by the lateral beam; the
    multipath fill is taken off it, spread over a few mm across.
    """
    rows, cols = grid.shape
    sx, sy = grid.spacing_mm
    q = max(1, int(round(0.2 / sy)))
    n = -(-rows // q)
    w = beam_weights(slab.offsets_mm, tissue.elevation_fwhm_mm)
    through = _bone_transmission(slab, tissue)
    blocked = w[:, None] * (1 - through)
    fill = w[:, None] * np.minimum(_multipath(slab, tissue), 1 - through)
    start = np.ceil(np.minimum(slab.depth_mm / (q * sy) - 0.5, n)).astype(np.int64)
    step = np.zeros((2, n + 1, cols), dtype=np.float32)
    for k in range(start.shape[0]):
        step[0, start[k], np.arange(cols)] += blocked[k]
        step[1, start[k], np.arange(cols)] += fill[k]
    hard, late = np.cumsum(step[:, :n], axis=1)
    block = gaussian_filter1d(hard, tissue.lateral_fwhm_mm / _FWHM / sx, axis=1)
    block -= _wide_blur(late, _MULTIPATH_SPREAD_MM / sx)
    return np.repeat(1 - block, q, axis=0)[:rows]


def _wide_blur(a: np.ndarray, sigma_px: float) -> np.ndarray:
    """Blur across columns by about a Gaussian of ``sigma_px``: two box filters.

    Each box costs the same whatever its width (running sums), unlike a long kernel.
    """
    width = max(1, int(round(sigma_px * np.sqrt(6.0))))
    a = uniform_filter1d(a, width, axis=1, mode="nearest")
    return uniform_filter1d(a, width, axis=1, mode="nearest")


def _cortex_profile(tissue: Tissue, sy: float):
    """Cortical echo along the beam (px from the surface), peak 1 at the surface.

    Specular reflection blurred by the axial PSF and by the surface's relief within
    the beam footprint (SD ``relief_mm``), plus backscatter from inside the cortex
    decaying with the round-trip bone attenuation (e-fold 0.1-0.2 mm).
    """
    sigma = np.hypot(tissue.axial_fwhm_mm / _FWHM, tissue.relief_mm) / sy
    efold = 10 / (2 * tissue.bone_db_mm * np.log(10)) / sy

    def profile(f):
        inside = np.exp(-np.maximum(f, 0) / efold) * (f > 0)
        return np.exp(-0.5 * (f / sigma) ** 2) + _CORTEX_BACKSCATTER * inside

    return profile


def _draw_bone(echo, slab: SlabHits, grid: ImageGrid, tissue: Tissue, rough) -> None:
    """Add each plane's cortical echo and the reverberation tail.

    The echo is beam-weighted and times the per-column cortex roughness ``rough``.
    """
    sy = grid.spacing_mm[1]
    w = beam_weights(slab.offsets_mm, tissue.elevation_fwhm_mm)
    if tissue.sources.cortical_echo:
        cos = slab.cos_incidence**tissue.incidence_power
    else:
        cos = np.where(np.isfinite(slab.depth_mm), 1.0, 0.0)
    amp = (tissue.bone_gain * w[:, None] * cos * rough[None, :]).astype(np.float32)
    profile = _cortex_profile(tissue, sy)
    offs = np.arange(-int(1.0 / sy), int(1.0 / sy) + 1)
    for k in range(slab.depth_mm.shape[0]):
        _add_band(echo, slab.depth_mm[k] / sy - 0.5, amp[k], profile, offs)
    if tissue.sources.reverberation:
        _draw_reverb(echo, slab, amp.sum(axis=0), tissue, sy)


def _draw_reverb(echo, slab: SlabHits, amp, tissue: Tissue, sy: float) -> None:
    """Add a decaying tail below the first interface of each column.

    Multiple reflections between the rough periosteum and nearby scatterers arrive
    late and so are drawn deeper, inside the shadow.
    """
    ratio, decay = tissue.reverb
    first = slab.depth_mm.min(axis=0) / sy - 0.5
    offs = np.arange(0, int(4 * decay / sy) + 1)

    def tail(f):
        return np.exp(-np.maximum(f, 0) / (decay / sy))

    _add_band(echo, first, (ratio * amp).astype(np.float32), tail, offs)


def _compress(echo) -> np.ndarray:
    """Log-compress to uint8 (40 dB shown)."""
    np.log10(echo + np.float32(1e-3), out=echo)
    echo += np.float32(2.4)
    echo *= np.float32(255.0 / 4.0)
    return np.clip(echo, 0, 255, out=echo).astype(np.uint8)
