"""Appearance numbers: known answers on hand-built frames, and the CLI end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from ultrabones.cli import main
from ultrabones.simulate.cohort import simulate_sweep
from ultrabones.studies.appearance import (
    STATISTICS,
    FrameSet,
    accumulate,
    compare,
    echo_fwhm,
    merge,
    speckle_tiles,
    summary,
    tissue_mask,
)

SPACING = (0.1, 0.1)
FINE = (0.05, 0.05)


def _frame(ridge=200, above=100, shadow=20):
    image = np.full((300, 80), above, dtype=np.uint8)
    image[150:] = shadow
    image[148:151] = ridge
    label = np.zeros(image.shape, dtype=bool)
    label[149:151, 10:70] = True
    return image, label


def _gaussian_ridge(sigma_mm, *, label_offset_mm=0.0, background=60.0):
    """Frame with a Gaussian echo at 15 mm depth, a dark shadow and a label."""
    depth = (np.arange(600) + 0.5) * FINE[1]
    column = background + 120.0 * np.exp(-0.5 * ((depth - 15.0) / sigma_mm) ** 2)
    column[depth > 15.0 + 4 * sigma_mm] = 10.0
    image = np.repeat(np.round(column)[:, None], 500, axis=1).astype(np.uint8)
    label = np.zeros(image.shape, dtype=bool)
    top = int(round((15.0 + label_offset_mm) / FINE[1]))
    label[top : top + 6, 40:160] = True
    return image, label


def _rayleigh(shape, seed=1234, scale=40.0):
    rng = np.random.default_rng(seed)
    return np.clip(np.round(rng.rayleigh(scale, shape)), 0, 255).astype(np.uint8)


def test_summary_gives_known_contrast_and_shadow_ratio():
    acc = FrameSet()
    accumulate(acc, *_frame(), spacing_mm=SPACING)
    out = summary(acc)
    assert out["ridge_contrast"] == 2.0
    assert out["shadow_ratio"] == 0.2
    assert out["labelled_frames"] == 1


def test_echo_fwhm_of_a_gaussian_peak_above_background():
    x = np.arange(-60, 61) * 0.05
    sigma = 0.3
    profiles = 50.0 + 100.0 * np.exp(-0.5 * (x / sigma) ** 2)
    width = echo_fwhm(profiles[None], np.array([50.0]), step_mm=0.05)
    assert width[0] == pytest.approx(2 * np.sqrt(2 * np.log(2)) * sigma, rel=0.01)


def test_echo_fwhm_is_nan_without_a_peak():
    flat = np.full((1, 41), 80.0)
    assert np.isnan(echo_fwhm(flat, np.array([80.0]), step_mm=0.1)[0])


@pytest.mark.parametrize("offset_mm", [-1.0, 0.0, 1.0])
def test_echo_width_found_with_a_label_up_to_1_mm_off(offset_mm):
    acc = FrameSet()
    image, label = _gaussian_ridge(0.25, label_offset_mm=offset_mm)
    accumulate(acc, image, label, spacing_mm=FINE)
    out = summary(acc)
    # the shadow starts at 4 sigma below the peak, where the Gaussian is ~0
    assert out["echo_fwhm_mm"] == pytest.approx(2.3548 * 0.25, rel=0.05)
    assert out["ridge_contrast"] == pytest.approx(180.0 / 60.0, rel=0.01)


def test_attenuation_slope_of_log_compressed_exponential_decay():
    # amplitude exp(-alpha z), 2 grey levels per dB: grey falls linearly with depth
    alpha_np_per_mm, grey_per_db = 0.02, 2.0
    depth = (np.arange(900) + 0.5) * FINE[1]
    grey = 220.0 + grey_per_db * 20 * np.log10(np.exp(-alpha_np_per_mm * depth))
    image = np.repeat(grey[:, None], 300, axis=1)
    label = np.zeros(image.shape, dtype=bool)
    label[300:306, 100:150] = True
    image[306:, 100:150] = 5.0  # a bone shadow, which the slope must ignore
    acc = FrameSet()
    accumulate(acc, image, label, spacing_mm=FINE)
    expected = -grey_per_db * 20 * alpha_np_per_mm * np.log10(np.e) * 10
    assert summary(acc)["attenuation_per_cm"] == pytest.approx(expected, rel=0.02)


def test_rayleigh_speckle_has_snr_1_91_and_nakagami_m_1():
    image = _rayleigh((370, 370))
    snr, sd, m = speckle_tiles(image, np.ones(image.shape, bool), tile_px=37)
    assert snr.size == 100
    assert np.median(snr) == pytest.approx(np.sqrt(np.pi / (4 - np.pi)), rel=0.03)
    assert np.median(m) == pytest.approx(1.0, rel=0.05)
    assert np.median(sd) == pytest.approx(40.0 * np.sqrt(2 - np.pi / 2), rel=0.05)


def test_log_compression_makes_speckle_look_smoother():
    amplitude = _rayleigh((370, 370)).astype(np.float64) + 1.0
    grey = np.clip(40.0 * np.log(amplitude), 0, 255)
    mask = np.ones(grey.shape, bool)
    assert np.median(speckle_tiles(grey, mask, tile_px=37)[0]) > 3.0


def test_spectrum_of_gaussian_filtered_noise_has_the_known_rolloff():
    rng = np.random.default_rng(1234)
    sigma_mm = 2 * FINE[0]
    noise = gaussian_filter(rng.standard_normal((640, 640)), 2.0)
    image = np.clip(np.round(128 + 30 * noise / noise.std()), 0, 255)
    acc = FrameSet()
    accumulate(acc, image.astype(np.uint8), spacing_mm=FINE)
    out = summary(acc)
    # power exp(-4 pi^2 sigma^2 f^2): 20 dB down at sqrt(ln 100) / (2 pi sigma)
    rolloff = np.sqrt(np.log(100)) / (2 * np.pi * sigma_mm)
    centroid = np.sqrt(2 / np.pi) / (2 * np.pi * sigma_mm * np.sqrt(2))
    assert out["rolloff_20db_per_mm"] == pytest.approx(rolloff, rel=0.04)
    assert out["spectral_centroid_per_mm"] == pytest.approx(centroid, rel=0.05)


def test_tissue_mask_drops_gel_skin_edges_and_bone():
    image = np.full((400, 200), 100, dtype=np.uint8)
    image[:40] = 0  # gel
    label = np.zeros(image.shape, dtype=bool)
    label[200:204, 80:120] = True
    mask = tissue_mask(image, label, spacing_mm=SPACING)
    # gel + 2 mm skin, give or take the 0.5 mm smoothing of the gel test
    assert not mask[:57].any() and mask[63:, 50].all()
    assert not mask[:, :15].any() and not mask[:, -15:].any()  # 1.5 mm edges
    assert mask[184, 100] and not mask[185:, 60:140].any()  # bone + 2 mm margin
    assert mask[300, 59] and mask[300, 140]


def test_compare_gives_real_sim_difference_and_verdict_per_statistic():
    a, b, c = FrameSet(), FrameSet(), FrameSet()
    accumulate(a, *_frame(), spacing_mm=SPACING)
    accumulate(b, *_frame(ridge=210), spacing_mm=SPACING)
    accumulate(c, *_frame(shadow=60), spacing_mm=SPACING)
    assert compare(b, a)["statistics"]["ridge_contrast"]["pass"]
    result = compare(c, a)
    shadow = result["statistics"]["shadow_ratio"]
    assert (shadow["real"], shadow["sim"]) == (0.2, 0.6)
    assert shadow["relative_difference"] == pytest.approx(2.0)
    assert not shadow["pass"] and "shadow_ratio" in result["failed"]
    assert not result["within_tolerance"]
    assert set(result["statistics"]) <= set(STATISTICS)


def test_compare_covers_every_statistic_both_sets_have():
    acc = FrameSet()
    image, label = _gaussian_ridge(0.25)
    speckle = _rayleigh(image.shape).astype(np.int64)
    accumulate(acc, np.clip(image + speckle // 4, 0, 255).astype(np.uint8), label)
    result = compare(acc, acc)
    assert set(result["statistics"]) == set(STATISTICS)
    assert result["within_tolerance"] and result["histogram_distance"] == 0.0


def test_merge_pools_the_sums_of_several_sets():
    a, b, both = FrameSet(), FrameSet(), FrameSet()
    for acc, frame in ((a, _frame()), (b, _frame(shadow=60))):
        accumulate(acc, *frame, spacing_mm=SPACING)
        accumulate(both, *frame, spacing_mm=SPACING)
    assert summary(merge([a, b])) == summary(both)


def test_unlabelled_frames_count_for_label_free_statistics_only():
    acc = FrameSet()
    accumulate(acc, _rayleigh((400, 400)), spacing_mm=FINE)
    out = summary(acc)
    assert out["frames"] == 1 and out["tissue_tiles"] > 0
    assert "speckle_snr" in out and "rolloff_20db_per_mm" in out
    assert "ridge_contrast" not in out and "attenuation_per_cm" not in out


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    sim = tmp_path_factory.mktemp("cohort")
    simulate_sweep(
        sim, preset="tiny", seed=2, specimen="S01", sweep="tibia-1", frames=3
    )
    return sim


def _run(cohort, out, *extra):
    real = cohort / "specimens" / "S01" / "sweeps" / "tibia-1" / "UltrasoundImages"
    args = ["appearance", "--real", str(real), "--sim", str(cohort), "--out", str(out)]
    return main([*args, *extra])


def test_cli_writes_json_grid_and_curves(cohort, tmp_path, capsys):
    grid = tmp_path / "grid.png"
    assert _run(cohort, tmp_path / "out", "--json", "--grid", str(grid)) == 0
    doc = json.loads((tmp_path / "out" / "appearance.json").read_text())
    # the same images on both sides: identical histograms
    assert doc["histogram_distance"] == 0.0
    # an image folder has no labels: no bone numbers to compare
    assert "ridge_contrast" not in doc["real"] and "ridge_contrast" in doc["sim"]
    assert "speckle_snr" in doc["statistics"]
    assert "ridge_contrast" not in doc["statistics"]
    for entry in doc["statistics"].values():
        assert set(entry) == {"real", "sim", "relative_difference", "pass"}
    for name in ("appearance_grid.png", "appearance_curves.png"):
        assert (tmp_path / "out" / name).stat().st_size > 1000
    assert grid.read_bytes() == (tmp_path / "out" / "appearance_grid.png").read_bytes()
    assert json.loads(capsys.readouterr().out)["sim"]["frames"] == 3


def test_cli_prints_a_pass_fail_table(cohort, tmp_path, capsys):
    assert _run(cohort, tmp_path / "out") == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.split()[0] in STATISTICS]
    assert rows and all(line.endswith(("pass", "FAIL")) for line in rows)
