"""Splits, reject statistics, the public export table and the manifest."""

from __future__ import annotations

import numpy as np
import pytest

from ultrabones.errors import ConfigError
from ultrabones.release import (
    anatomy_of,
    citation_cff,
    dataset_card,
    grouped_folds,
    manifest_text,
    nnunet_dataset_json,
    public_table,
    published_folders,
    reason_descriptions,
    reject_statistics,
    split_counts,
    split_specimens,
    sweep_statistics,
    tracking_table,
)
from ultrabones.store import status_of, template_dataset
from ultrabones.transforms import POSE_COLUMNS
from ultrabones.vocabulary import DISCARD_REASONS, Reason

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


def cases(specimens, sweeps=("tibia-1",)):
    import pandas as pd

    rows = [(f"{s}_{w}_{t}", s, w) for s in specimens for w in sweeps for t in range(3)]
    return pd.DataFrame(rows, columns=["case", "specimen", "sweep"])


def test_folds_never_split_a_specimen():
    folds, grouping = grouped_folds(cases(["S01", "S02", "S03"], ("a-1", "b-1")))
    assert grouping == "specimen" and len(folds) == 3
    for fold in folds:
        train = {c.split("_")[0] for c in fold["train"]}
        assert not train & {c.split("_")[0] for c in fold["val"]}
        assert len(fold["train"]) + len(fold["val"]) == 18


def test_folds_are_five_at_most():
    folds, _ = grouped_folds(cases([f"S{i:02d}" for i in range(1, 9)]))
    assert len(folds) == 5


def test_folds_group_by_sweep_when_one_specimen():
    folds, grouping = grouped_folds(cases(["S01"], ("tibia-1", "fibula-1")))
    assert grouping == "sweep" and len(folds) == 2
    assert {c.rsplit("_", 1)[0] for c in folds[0]["val"]} == {"S01_fibula-1"}


def test_folds_of_one_sweep_are_contiguous_blocks_of_it():
    import pandas as pd

    ids = [f"R01_fibula-1_{t}" for t in range(100, 110)]
    one = pd.DataFrame({"case": ids, "specimen": "R01", "sweep": "fibula-1"})
    folds, grouping = grouped_folds(one, n_folds=5)
    assert grouping == "block" and len(folds) == 5
    assert [f["val"] for f in folds] == [ids[i : i + 2] for i in range(0, 10, 2)]
    with pytest.raises(ValueError, match="two training cases"):
        grouped_folds(one.iloc[:1], n_folds=5)


def test_nnunet_dataset_json_names_the_png_format():
    doc = nnunet_dataset_json(7, fold_groups="specimen")
    assert doc["file_ending"] == ".png" and doc["numTraining"] == 7
    assert doc["labels"] == {"background": 0, "bone": 1}
    assert doc["channel_names"] == {"0": "ultrasound"}


def test_tracking_table_has_initial_and_optimized_poses():
    ds = make_ds(["ok", "no_bone_in_view", "ok"], [0.1, np.nan, 0.2])
    table = tracking_table(ds, euler="xyz")
    assert table.columns.tolist() == [
        "timestamp",
        *POSE_COLUMNS,
        *(f"{c}_optimized" for c in POSE_COLUMNS),
    ]
    assert table["timestamp"].tolist() == [0, 20]
    np.testing.assert_allclose(table["euler_z_optimized"], [0.5, 2.5])


def test_tracking_table_re_expresses_angles_in_another_sequence():
    from ultrabones.transforms import matrix_from_params

    ds = make_ds(["ok"], [0.1])
    ds["pose_initial"][:] = [[1, 2, 3, 10.0, 20.0, 30.0]]
    table = tracking_table(ds, euler="ZYX")
    from scipy.spatial.transform import Rotation

    angles = table[["euler_x", "euler_y", "euler_z"]].to_numpy()
    rebuilt = Rotation.from_euler("ZYX", angles, degrees=True).as_matrix()
    np.testing.assert_allclose(
        rebuilt[0], matrix_from_params([1, 2, 3, 10.0, 20.0, 30.0])[:3, :3], atol=1e-12
    )


def test_published_names():
    assert published_folders(["S10", "S02"]) == {
        "S02": "specimen01",
        "S10": "specimen02",
    }
    assert [anatomy_of(s) for s in ("fibula-2", "tibia", "a-b")] == [
        "fibula",
        "tibia",
        "a-b",
    ]


def test_every_reason_is_described_in_the_card():
    described = reason_descriptions()
    assert set(described) == {r.value for r in Reason}
    assert all(described.values())
    stats = reject_statistics([sweep_statistics(make_ds(["ok"], [0.1]))])
    splits = split_specimens(["S01"], mode="proportions", sizes=PAPER, seed=0)
    card = dataset_card(stats, splits, attrs={})
    assert "| `low_confidence` | 4 | discarded |" in card
    assert "## Label semantics" in card and "## Intended use" in card


def test_citation_cff_is_yaml_with_the_paper():
    import yaml

    doc = yaml.safe_load(
        citation_cff(
            title="T", authors=["A B"], licence="CC-BY-4.0", version="1", url=""
        )
    )
    assert doc["cff-version"] == "1.2.0" and doc["license"] == "CC-BY-4.0"
    assert doc["authors"] == [{"name": "A B"}] and "url" not in doc
    assert doc["references"][0]["title"].startswith("UltraBones100k")


def test_croissant_names_the_release_files_of_the_layout():
    # the release command writes layout.RELEASE_FILES; croissant.json points at them
    from ultrabones.layout import RELEASE_FILES
    from ultrabones.release import croissant_metadata

    doc = croissant_metadata(title="t", licence="X", url="", version="0", files={})
    sources = {
        field["source"]["fileObject"]["@id"]
        for records in doc["recordSet"]
        for field in records["field"]
    }
    assert sources == {RELEASE_FILES["splits"], RELEASE_FILES["stats"]}
    includes = [d["includes"] for d in doc["distribution"] if "includes" in d]
    assert f"{RELEASE_FILES['labels']}/*/*.zarr/**" in includes
