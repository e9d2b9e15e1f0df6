"""The release commands end to end on small stores: exports, metadata, validate."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from test_store import ATTRS, SHAPE  # the store tests' minimal store

from ultrabones.cli import main
from ultrabones.io.checksum import list_files
from ultrabones.io.png import read_png
from ultrabones.io.store import open_store, open_work, write_variables
from ultrabones.layout import RELEASE_FILES, release_paths
from ultrabones.store import FRAME_VARIABLES, encoding, status_of, template_dataset

SWEEPS = (
    ("S01", "tibia-1"),
    ("S01", "fibula-1"),
    ("S02", "tibia-1"),
    ("S03", "tibia-1"),
)
REASONS = ("ok", "correction_too_large", "ok", "no_image", "ok")


def write_store(path, specimen, sweep, seed):
    """Publish a 5-frame store: frames 0, 2 and 4 kept, random images and labels."""
    rng = np.random.default_rng(seed)
    n = len(REASONS)
    ds = template_dataset(
        np.arange(n) * 40 + 1000,
        shape=SHAPE,
        spacing_mm=(0.1, 0.2),
        specimen=specimen,
        sweep=sweep,
        chunk_frames=2,
        attrs=ATTRS,
    )
    work = open_work(path, {"plan": seed})
    work.create(ds, encoding(ds, 2))
    kept = np.array(REASONS) == "ok"
    label = rng.integers(0, 2, (n, *SHAPE), dtype=np.uint8) * kept[:, None, None]
    # every variable is written, as label-sweep's chunks do: publish needs each chunk
    empty = {k: ds[k].values for k in FRAME_VARIABLES}
    write_variables(
        work.store,
        empty
        | {
            "image": rng.integers(0, 256, (n, *SHAPE), dtype=np.uint8),
            "label": label,
            "pose_initial": rng.normal(size=(n, 6)),
            "pose_refined": rng.normal(size=(n, 6)),
            "confidence": np.where(kept, 0.9, np.nan).astype(np.float32),
            "reason": np.array(REASONS),
            "status": np.array([status_of(r) for r in REASONS]),
        },
    )
    work.publish(ATTRS)


def write_inputs(root):
    """Stores, poses records (calibration.yaml) and bone models of SWEEPS."""
    from ultrabones.io.calibration import Calibration, write_calibration

    cal = Calibration(np.eye(4), (0.1, 0.2), (SHAPE[1], SHAPE[0]), np.zeros((3, 3)))
    for seed, (specimen, sweep) in enumerate(SWEEPS):
        write_store(root / "label" / specimen / f"{sweep}.zarr", specimen, sweep, seed)
        (root / "poses" / specimen / sweep).mkdir(parents=True)
        write_calibration(root / "poses" / specimen / sweep / "calibration.yaml", cal)
        (root / "bones" / specimen).mkdir(parents=True, exist_ok=True)
        (root / "bones" / specimen / "tibia.stl").write_bytes(
            b"solid " + specimen.encode()
        )


#: ``ultrabones release``'s options but its outputs, on the stores of SWEEPS.
RELEASE_ARGS = [
    "--split-mode=counts",
    "--train=2",
    "--val=0",
    "--test=1",
    "--licence=CC-BY-4.0",
    "--title=tiny",
    "--authors",
    "A",
    "--url=",
]


def stores_of(root) -> list[str]:
    return [str(root / "label" / s / f"{w}.zarr") for s, w in SWEEPS]


def build_release(root):
    """Run release, the three exports and the manifest as the rules do."""
    stores = stores_of(root)
    out = root / "release"
    # the rule passes each declared output (layout.RELEASE_FILES in one folder)
    paths = [f"--{k}={p}" for k, p in release_paths(out).items()]
    ok = main(["release", *stores, *RELEASE_ARGS, *paths])
    for store, (s, w) in zip(stores, SWEEPS, strict=True):
        ok += main(["export-public", store, f"--out={out}/public/{s}/{w}"])
    records = [str(root / "poses" / s / w) for s, w in SWEEPS]
    bones = [f"{s}={root / 'bones' / s}" for s in ("S01", "S02", "S03")]
    ok += main(
        ["export-published", *stores, "--records", *records, "--bones", *bones]
        + [f"--out={out}/published"]
    )
    ok += main(
        ["export-nnunet", *stores, f"--splits={out}/splits.csv", "--dataset-id=501"]
        + ["--name=UB", f"--out={out}/nnunet"]
    )
    files = [str(p) for p in sorted(out.iterdir())]
    ok += main(["manifest", *files, f"--root={out}", f"--out={out}/manifest.sha256"])
    assert ok == 0
    return out


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    write_inputs(root)
    return build_release(root)


@pytest.fixture
def broken(release, tmp_path):
    """A copy of the release (real copies, not links) to break."""
    return shutil.copytree(release, tmp_path / "release")


def validate(path, capsys) -> tuple[int, str]:
    code = main(["validate", str(path)])
    return code, capsys.readouterr().err


def test_release_validates(release, capsys):
    assert validate(release, capsys) == (0, "")


def test_release_stores_are_verified_copies(release):
    from ultrabones.io.store import verify_store

    for specimen, sweep in SWEEPS:
        verify_store(release / "labels" / specimen / f"{sweep}.zarr")


def test_release_writes_the_same_bytes_into_a_folder(release, tmp_path):
    # --out DIR names the same files the rule's declared paths do
    out = tmp_path / "by-folder"
    assert (
        main(["release", *stores_of(release.parent), *RELEASE_ARGS, f"--out={out}"])
        == 0
    )
    for key, path in release_paths(out).items():
        built = release / RELEASE_FILES[key]
        files = [f.relative_to(path) for f in list_files(path)]
        assert files == [f.relative_to(built) for f in list_files(built)], key
        for name in files:
            assert (path / name).read_bytes() == (built / name).read_bytes(), name


def test_release_refuses_paths_off_its_layout(tmp_path, capsys):
    write_store(tmp_path / "s.zarr", "S01", "tibia-1", 0)
    out, splits = tmp_path / "r", tmp_path / "elsewhere" / "splits.csv"
    args = ["release", str(tmp_path / "s.zarr"), *RELEASE_ARGS[:1], "--train=1"]
    args += ["--val=0", "--test=0", "--licence=X", "--title=t", "--authors", "A"]
    assert main([*args, f"--out={out}", f"--splits={splits}"]) == 1
    err = capsys.readouterr().err
    assert f"--splits {splits}: expected {out / 'splits.csv'}, beside --labels" in err
    assert "croissant.json names its tables relative to it" in err
    assert not out.exists() and not splits.parent.exists()


def test_release_refuses_a_corrupted_store(tmp_path, capsys):
    write_store(tmp_path / "s.zarr", "S01", "tibia-1", 0)
    (tmp_path / "s.zarr" / "image" / "c" / "0" / "0" / "0").unlink()
    args = ["release", str(tmp_path / "s.zarr"), "--split-mode=counts", "--train=1"]
    args += ["--val=0", "--test=0", "--licence=X", "--title=t", "--authors", "A"]
    assert main([*args, f"--out={tmp_path / 'r'}"]) == 1
    err = capsys.readouterr().err
    assert "s.zarr: store corrupted: image/c/0/0/0: missing" in err
    assert not (tmp_path / "r" / "labels").exists()


def test_nnunet_layout(release):
    dataset = release / "nnunet" / "Dataset501_UB"
    split = pd.read_csv(release / "splits.csv").set_index("specimen")["split"]
    (test,) = split.index[split == "test"]
    meta = json.loads((dataset / "dataset.json").read_text())
    train = sorted(p.name for p in (dataset / "imagesTr").iterdir())
    n_train = 3 * sum(split[s] != "test" for s, _ in SWEEPS)  # 3 kept frames a sweep
    assert meta["numTraining"] == len(train) == n_train
    assert train[0].endswith("_1000_0000.png")
    assert len(list((dataset / "labelsTr").iterdir())) == n_train
    assert {p.name[:3] for p in (dataset / "imagesTs").iterdir()} == {test}
    assert not list(dataset.glob(f"*Tr/{test}_*"))
    folds = json.loads((dataset / "splits_final.json").read_text())
    assert [sorted({c[:3] for c in f["val"]}) for f in folds] == [
        [s] for s in sorted(split.index[split == "train"])
    ]


def test_nnunet_case_matches_its_store(release):
    dataset = release / "nnunet" / "Dataset501_UB"
    case = sorted((dataset / "labelsTr").iterdir())[-1].stem  # <S>_<W>_<ts>
    specimen, sweep, stamp = case.split("_")
    ds = open_store(release / "labels" / specimen / f"{sweep}.zarr")
    frame = int(np.flatnonzero(ds["timestamp"].values == int(stamp))[0])
    image = read_png(dataset / "imagesTr" / f"{case}_0000.png")
    label = read_png(dataset / "labelsTr" / f"{case}.png")
    np.testing.assert_array_equal(image, ds["image"].values[frame])
    np.testing.assert_array_equal(label, ds["label"].values[frame])
    assert label.dtype == np.uint8 and set(np.unique(label)) <= {0, 1}


def test_published_layout(release):
    root = release / "published" / "specimen01"
    assert (root / "CT_bone_segmentations" / "tibia.stl").read_bytes() == b"solid S01"
    record = root / "ultrasound_records" / "fibula" / "fibula-1"
    table = pd.read_csv(record / "tracking.csv")
    assert table["timestamp"].tolist() == [1000, 1080, 1160]
    assert {"x", "euler_z", "x_optimized", "euler_z_optimized"} <= set(table.columns)
    ds = open_store(release / "labels" / "S01" / "fibula-1.zarr")
    np.testing.assert_allclose(
        table["x_optimized"], ds["pose_refined"].values[[0, 2, 4], 0]
    )
    label = read_png(record / "Labels" / "1080_label.png")
    np.testing.assert_array_equal(label, ds["label"].values[2] * 255)
    image = read_png(record / "UltrasoundImages" / "1080.png")
    np.testing.assert_array_equal(image, ds["image"].values[2])
    assert (record / "calibration.yaml").is_file()


def test_croissant_validates_and_iterates_records(release):
    import mlcroissant as mlc

    dataset = mlc.Dataset(jsonld=release / "croissant.json")
    splits = {
        r["splits/specimen"].decode(): r["splits/split"].decode()
        for r in dataset.records("splits")
    }
    assert (
        splits
        == pd.read_csv(release / "splits.csv").set_index("specimen")["split"].to_dict()
    )
    sweeps = list(dataset.records("sweeps"))
    assert len(sweeps) == 4 and sum(r["sweeps/kept"] for r in sweeps) == 12


def test_citation_and_card(release):
    import yaml

    cff = yaml.safe_load((release / "CITATION.cff").read_text())
    assert cff["title"] == "tiny" and cff["license"] == "CC-BY-4.0"
    card = (release / "README.md").read_text()
    assert "`no_bone_echo`" in card and "xr.open_zarr" in card


def test_release_bytes_are_deterministic(release, tmp_path):
    write_inputs(tmp_path)
    again = build_release(tmp_path)
    assert (again / "manifest.sha256").read_text() == (
        release / "manifest.sha256"
    ).read_text()


def test_validate_names_a_corrupted_chunk(broken, capsys):
    chunk = broken / "labels" / "S02" / "tibia-1.zarr" / "label" / "c" / "1" / "0" / "0"
    chunk.write_bytes(b"garbage")
    code, err = validate(broken, capsys)
    assert code == 1 and "S02/tibia-1.zarr: store corrupted: label/c/1/0/0" in err
    assert "published" not in err  # the frame counts still come from the store


def test_validate_names_a_file_changed_after_the_manifest(broken, capsys):
    (broken / "reject_statistics.csv").write_text("specimen\n")
    code, err = validate(broken, capsys)
    assert code == 1 and "reject_statistics.csv: does not match manifest.sha256" in err


def test_validate_names_a_missing_file(broken, capsys):
    (broken / "croissant.json").unlink()
    code, err = validate(broken, capsys)
    assert code == 1 and "croissant.json: listed in manifest.sha256 but missing" in err


def test_validate_names_a_specimen_without_split(broken, capsys):
    (broken / "splits.csv").write_text("specimen,split\nS01,train\nS02,train\n")
    code, err = validate(broken, capsys)
    assert code == 1 and "splits.csv: specimen S03 has no split" in err


def test_validate_names_an_export_missing_frames(broken, capsys):
    (
        broken
        / "public"
        / "S01"
        / "tibia-1"
        / "Label_partial_gradient"
        / "1080_label_partial_gradient.png"
    ).unlink()
    shutil.rmtree(broken / "published" / "specimen02")
    code, err = validate(broken, capsys)
    assert code == 1
    assert "S01/tibia-1/Label_partial_gradient: 2 frames, expected 3 kept frames" in err
    assert "published: 3 records, expected 4" in err


def test_validate_names_an_nnunet_case_without_label(broken, capsys):
    (broken / "nnunet" / "Dataset501_UB" / "labelsTr" / "S01_tibia-1_1000.png").unlink()
    code, err = validate(broken, capsys)
    assert code == 1 and "labelsTr: no label for case S01_tibia-1_1000" in err


def test_validate_names_a_fold_that_splits_a_specimen(broken, capsys):
    path = broken / "nnunet" / "Dataset501_UB" / "splits_final.json"
    folds = json.loads(path.read_text())
    folds[0]["train"], moved = folds[0]["train"][1:], folds[0]["train"][0]
    folds[0]["val"].append(moved)
    path.write_text(json.dumps(folds))
    code, err = validate(broken, capsys)
    assert code == 1 and "splits_final.json fold 0: ['S0" in err
    assert "in both train and val" in err


def test_published_record_reads_back_with_the_reader(release):
    from ultrabones.io.published import open_published_record, published_poses
    from ultrabones.transforms import matrix_from_params

    root = release / "published" / "specimen02" / "ultrasound_records"
    record = open_published_record(root / "tibia" / "tibia-1")
    ds = open_store(release / "labels" / "S02" / "tibia-1.zarr")
    kept = [0, 2, 4]
    assert record.specimen == "specimen02" and record.anatomy == "tibia"
    assert (
        record.tracking["timestamp"].tolist() == ds["timestamp"].values[kept].tolist()
    )
    np.testing.assert_allclose(
        published_poses(record.tracking, optimized=True),
        matrix_from_params(ds["pose_refined"].values[kept]),
        atol=1e-9,
    )
    np.testing.assert_array_equal(
        record.read_label(1160), ds["label"].values[4].astype(bool)
    )
