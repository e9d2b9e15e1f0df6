"""Appearance numbers: known answers on hand-built frames, and the CLI end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ultrabones.cli import main
from ultrabones.simulate.appearance import FrameSet, accumulate, compare, summary
from ultrabones.simulate.cohort import simulate_sweep

SPACING = (0.1, 0.1)


def _frame(ridge=200, above=100, shadow=20):
    image = np.full((300, 80), above, dtype=np.uint8)
    image[150:] = shadow
    image[148:151] = ridge
    label = np.zeros(image.shape, dtype=bool)
    label[149:151, 10:70] = True
    return image, label


def test_summary_gives_known_contrast_and_shadow_ratio():
    acc = FrameSet()
    accumulate(acc, *_frame(), spacing_mm=SPACING)
    out = summary(acc)
    assert out["ridge_contrast"] == 2.0
    assert out["shadow_ratio"] == 0.2
    assert out["labelled_frames"] == 1


def test_compare_flags_differences_beyond_tolerance():
    a, b, c = FrameSet(), FrameSet(), FrameSet()
    accumulate(a, *_frame(), spacing_mm=SPACING)
    accumulate(b, *_frame(ridge=210), spacing_mm=SPACING)
    accumulate(c, *_frame(shadow=60), spacing_mm=SPACING)
    assert compare(b, a)["within_tolerance"]
    result = compare(c, a)
    assert not result["within_tolerance"]
    assert result["relative_difference"]["shadow_ratio"] == pytest.approx(2.0)


def test_unlabelled_frames_count_for_the_histogram_only():
    acc = FrameSet()
    accumulate(acc, np.zeros((50, 50), np.uint8))
    out = summary(acc)
    assert out["frames"] == 1
    assert "ridge_contrast" not in out


def test_cli_writes_json_and_figure(tmp_path, capsys):
    sim = tmp_path / "sim"
    simulate_sweep(
        sim, preset="tiny", seed=2, specimen="S01", sweep="tibia-1", frames=3
    )
    real = sim / "specimens" / "S01" / "sweeps" / "tibia-1" / "UltrasoundImages"
    code = main(
        [
            "appearance",
            "--real",
            str(real),
            "--sim",
            str(sim),
            "--out",
            str(tmp_path / "out"),
            "--json",
        ]
    )
    assert code == 0
    doc = json.loads((tmp_path / "out" / "appearance.json").read_text())
    # the same images on both sides: identical histograms
    assert doc["histogram_distance"] == 0.0
    assert (tmp_path / "out" / "appearance.png").stat().st_size > 1000
    assert json.loads(capsys.readouterr().out)["sim"]["frames"] == 3
