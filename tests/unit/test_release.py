"""Splits, reject statistics, the public export table and the manifest."""

from __future__ import annotations

import numpy as np
import pytest

from ultrabones.engine.reasons import DISCARD_REASONS
from ultrabones.errors import ConfigError
from ultrabones.release import (
    dataset_card,
    manifest_text,
    public_table,
    reject_statistics,
    split_counts,
    split_specimens,
    sweep_statistics,
)
from ultrabones.store import status_of, template_dataset

PAPER = {"train": 10, "val": 1, "test": 3}


def make_ds(reasons, corrections, *, specimen="S01", sweep="tibia-1"):
    ds = template_dataset(
        np.arange(len(reasons)) * 10,
        shape=(3, 4),
        spacing_mm=(0.1, 0.1),
        specimen=specimen,
        sweep=sweep,
        chunk_frames=2,
        attrs={"pixel_spacing_mm": [0.1, 0.1]},
    ).load()
    ds["reason"][:] = np.array(reasons, dtype=ds["reason"].dtype)
    ds["status"][:] = np.array(
        [status_of(r) for r in reasons], dtype=ds["status"].dtype
    )
    ds["fiducial_correction_mm"][:] = corrections
    ds["pose_initial"][:] = np.arange(len(reasons))[:, None] + np.zeros(6)
    ds["pose_refined"][:] = ds["pose_initial"].values + 0.5
    return ds


def test_paper_counts_split_fourteen_specimens():
    ids = [f"S{i:02d}" for i in range(1, 15)]
    splits = split_specimens(ids, mode="counts", sizes=PAPER, seed=0)
    assert splits["split"].value_counts().to_dict() == {
        "train": 10,
        "test": 3,
        "val": 1,
    }


def test_proportions_split_two_specimens():
    assert split_counts(2, mode="proportions", sizes=PAPER) == {
        "train": 1,
        "val": 0,
        "test": 1,
    }


def test_split_is_seeded():
    ids = [f"S{i:02d}" for i in range(1, 15)]
    a = split_specimens(ids, mode="counts", sizes=PAPER, seed=1)
    b = split_specimens(ids, mode="counts", sizes=PAPER, seed=1)
    assert a.equals(b)


def test_counts_must_sum_to_specimens():
    with pytest.raises(ConfigError, match="summing to 2 specimens"):
        split_counts(2, mode="counts", sizes=PAPER)


def test_reject_statistics_counts_reasons():
    ds = make_ds(
        ["ok", "ok", "no_image", "correction_too_large", "ok"],
        [0.2, 0.4, np.nan, 1.5, 0.9],
    )
    row = sweep_statistics(ds)
    assert (row["rows"], row["frames"], row["kept"]) == (5, 4, 3)
    assert row["discarded_correction_too_large"] == 1
    assert row["discard_rate"] == pytest.approx(0.25)
    assert row["correction_mean_kept_mm"] == pytest.approx(0.5)
    assert row["correction_median_kept_mm"] == pytest.approx(0.4)


def test_reject_statistics_count_low_confidence_and_kept_confidence():
    ds = make_ds(["ok", "low_confidence", "ok"], [0.2, 0.3, 0.4])
    ds["confidence"][:] = [0.9, 0.2, 0.7]
    row = sweep_statistics(ds)
    assert row["discarded_low_confidence"] == 1
    assert row["discard_rate"] == pytest.approx(1 / 3)
    assert row["confidence_median_kept"] == pytest.approx(0.8)


def test_reject_statistics_has_a_column_per_reason():
    table = reject_statistics([sweep_statistics(make_ds(["ok"], [0.1]))])
    assert all(f"discarded_{r}" in table.columns for r in DISCARD_REASONS)


def test_public_table_keeps_kept_frames_only():
    ds = make_ds(["ok", "no_bone_in_view", "ok"], [0.1, np.nan, 0.2])
    table = public_table(ds)
    assert table["timestamp"].tolist() == [0, 20]
    assert table["x_optimized"].tolist() == [0.5, 2.5]
    assert table.columns[:3].tolist() == ["timestamp", "space_factor", "x"]


def test_manifest_is_sha256sum_format():
    assert manifest_text({"b": "2" * 64, "a": "1" * 64}) == (
        f"{'1' * 64}  a\n{'2' * 64}  b\n"
    )


def test_dataset_card_states_counts():
    stats = reject_statistics([sweep_statistics(make_ds(["ok", "ok"], [0.1, 0.2]))])
    splits = split_specimens(["S01"], mode="proportions", sizes=PAPER, seed=0)
    card = dataset_card(stats, splits, attrs={"gamma_mm": 0.3})
    assert "kept: 2" in card and "gamma_mm: 0.3" in card
