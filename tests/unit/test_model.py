"""Baseline segmentation model (issue 11): data, training, resume, predict, score."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the model extra: make setup-model")

from ultrabones.cli import main  # noqa: E402
from ultrabones.errors import ConfigError, InputDataError  # noqa: E402
from ultrabones.io.png import read_png  # noqa: E402
from ultrabones.model.data import (  # noqa: E402
    DataParams,
    batches,
    downsample,
    load_split,
    split_stores,
    upsample,
)
from ultrabones.model.net import ENCODERS, build_unet, resolve_device  # noqa: E402
from ultrabones.model.train import TrainParams, fit  # noqa: E402
from ultrabones.store import status_of, template_dataset  # noqa: E402

SIZE = 64
SPLITS = {"S01": "train", "S02": "val", "S03": "test"}
SMALL = {"encoder": "resnet18", "epochs": 2, "max_steps": 2, "batch_size": 2}


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def frame(rng):
    """A 64 x 64 frame with one bright curve (the bone) over speckle, and its label."""
    rows, cols = np.mgrid[:SIZE, :SIZE]
    depth = 20 + rng.integers(0, 20) + 5 * np.sin(cols / 9.0 + rng.uniform(0, 6))
    label = np.abs(rows - depth) < 1.5
    image = rng.integers(0, 60, (SIZE, SIZE)) + np.where(label, 180, 0)
    return image.astype(np.uint8), label.astype(np.uint8)


def write_store(path, specimen, rng, n=4):
    reasons = ["ok"] * (n - 1) + ["correction_too_large"]
    ds = template_dataset(
        np.arange(n) * 33 + 1000,
        shape=(SIZE, SIZE),
        spacing_mm=(0.1, 0.1),
        specimen=specimen,
        sweep="tibia-1",
        chunk_frames=2,
        attrs={"pixel_spacing_mm": [0.1, 0.1]},
    ).copy(deep=True)  # own memory per variable (the template broadcasts fills)
    pairs = [frame(rng) for _ in range(n)]
    ds["image"][:] = np.stack([p[0] for p in pairs])
    ds["label"][:] = np.stack([p[1] for p in pairs])
    ds["full_initial"][:] = np.roll(ds["label"].values, 8, axis=1)
    ds["reason"][:] = np.array(reasons, dtype=ds["reason"].dtype)
    ds["status"][:] = np.array([status_of(r) for r in reasons], ds["status"].dtype)
    ds.to_zarr(path, mode="w", consolidated=False, zarr_format=3)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A release of three specimens (train, val, test), one 4-frame sweep each."""
    root = tmp_path_factory.mktemp("model")
    rel = root / "release"
    rng = np.random.default_rng(1234)
    stores = []
    for specimen in SPLITS:
        stores.append(rel / "labels" / specimen / "tibia-1.zarr")
        write_store(stores[-1], specimen, rng)
    lines = ["specimen,split", *(f"{k},{v}" for k, v in SPLITS.items())]
    (rel / "splits.csv").write_text("\n".join(lines) + "\n")
    files = [str(rel / "labels"), str(rel / "splits.csv")]
    manifest = ["manifest", *files, "--out"]  # paths relative to the manifest's folder
    assert main([*manifest, str(rel / "manifest.sha256")]) == 0
    (root / "qc").mkdir()
    otsu = ["otsu", *map(str, stores), "--out", str(root / "qc" / "otsu.json")]
    assert main(otsu) == 0
    return rel


def small_params(**changes):
    data = DataParams(scale=1, crop_px=SIZE)
    return TrainParams(**{**SMALL, "data": data, **changes})


def train_frames(release):
    return load_split(release, "train", params=DataParams(scale=1, crop_px=SIZE))


def run_fit(release, work, **changes):
    work.mkdir(exist_ok=True)
    return fit(
        train_frames(release),
        [],
        small_params(**changes),
        work=work,
        device=torch.device("cpu"),
        meta={"release_hash": "test"},
    )


def weights_equal(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_downsample_then_upsample_keeps_the_frame_shape():
    mask = np.zeros((811, 950), np.uint8)
    mask[400, 3] = 1
    small = downsample(mask, 4, reduce=np.max)
    assert small.shape == (203, 238) and small[100, 0] == 1
    assert upsample(small, 4, mask.shape).shape == mask.shape


def test_load_split_reads_kept_frames_of_the_split(release):
    frames = train_frames(release)
    assert [f.specimen for f in frames] == ["S01"] * 3
    assert frames[0].image.dtype == np.float32 and frames[0].image.max() <= 1.0


def test_batches_are_seeded_crops(release):
    frames = train_frames(release)
    params = DataParams(scale=1, crop_px=32)

    def draw(seed):
        rng = np.random.default_rng(seed)
        return list(batches(frames, batch_size=2, params=params, rng=rng))

    first, again = draw(5), draw(5)
    assert first[0][0].shape == (2, 1, 32, 32) and len(first) == 2
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again, strict=True))


def test_split_stores_without_splits_names_the_file(tmp_path):
    with pytest.raises(InputDataError, match="splits.csv"):
        split_stores(tmp_path, "train")


def test_crop_must_be_a_multiple_of_32():
    with pytest.raises(ValueError, match="multiple of 32"):
        DataParams(crop_px=50)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_unet_gives_one_logit_per_pixel(encoder):
    net = build_unet(encoder).eval()
    with torch.no_grad():
        out = net(torch.zeros(2, 1, 64, 96))
    assert out.shape == (2, 1, 64, 96)


def test_unknown_encoder_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown encoder 'vgg11'; known: resnet18"):
        build_unet("vgg11")


def test_cuda_without_a_device_is_a_config_error():
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_same_seed_gives_equal_weights_other_seed_not(release, tmp_path):
    a, _ = run_fit(release, tmp_path / "a")
    b, _ = run_fit(release, tmp_path / "b")
    c, _ = run_fit(release, tmp_path / "c", seed=1)
    assert weights_equal(a, b)
    assert not weights_equal(a, c)


def test_resume_continues_from_the_checkpoint(release, tmp_path, monkeypatch):
    import ultrabones.model.train as train

    straight, _ = run_fit(release, tmp_path / "straight")
    run_fit(release, tmp_path / "killed", epochs=1)
    calls = []
    real = train.train_epoch
    monkeypatch.setattr(
        train, "train_epoch", lambda *a, **k: calls.append(k["epoch"]) or real(*a, **k)
    )
    resumed, history = run_fit(release, tmp_path / "killed")
    assert calls == [1]
    assert [h["epoch"] for h in history] == [1, 2]
    assert weights_equal(straight, resumed)


def test_checkpoint_of_another_plan_is_not_resumed(release, tmp_path, monkeypatch):
    import ultrabones.model.train as train

    run_fit(release, tmp_path / "w", epochs=1)
    calls = []
    real = train.train_epoch
    monkeypatch.setattr(
        train, "train_epoch", lambda *a, **k: calls.append(k["epoch"]) or real(*a, **k)
    )
    run_fit(release, tmp_path / "w", lr=1e-3)
    assert calls == [0, 1]


def test_train_predict_score_commands(release, tmp_path, capsys):
    model, pred = tmp_path / "m", tmp_path / "p"
    args = ["--encoder", "resnet18", "--epochs", "2", "--max-steps", "2"]
    args += ["--scale", "1", "--crop", str(SIZE), "--batch-size", "2"]
    train_cmd = ["train", str(release), "--out", str(model), *args, "--device", "cpu"]
    assert main(train_cmd) == 0
    card = json.loads((model / "card.json").read_text())
    assert card["frames"] == {"train": 3, "val": 3} and len(card["history"]) == 2
    assert card["history"][0]["val_loss"] is not None
    assert (model / "loss_curves.png").is_file() and (model / "README.md").is_file()
    assert not (tmp_path / "m.wip").exists()
    # the release named by its manifest, as the workflow names it
    manifest = str(release / "manifest.sha256")
    assert main(["predict", str(model), manifest, "--out", str(pred)]) == 0
    masks = sorted((pred / "S03" / "tibia-1").glob("*.png"))
    assert len(masks) == 3 and read_png(masks[0]).shape == (SIZE, SIZE)
    prov = json.loads((pred / "provenance.json").read_text())
    assert (
        prov["release_hash"] == card["release_hash"] == prov["trained_on_release_hash"]
    )
    assert prov["release"] == str(release)
    capsys.readouterr()
    assert (
        main(["score", str(pred), str(release), "--json", "--out", str(tmp_path)]) == 0
    )
    scores = json.loads(capsys.readouterr().out)
    assert scores["frames"] == 3 and scores["otsu_source"] == "given"
    for part in (scores, scores["high"], scores["low"]):
        for metric in ("accuracy", "completeness", "f1"):
            values = part[metric]
            assert len(values) == len(scores["eps_mm"]) == 5
            assert all(v is None or 0.0 <= v <= 1.0 for v in values)
    assert list(scores["per_specimen"]) == ["S03"]
    assert (tmp_path / "scores.png").is_file() and (
        tmp_path / "per_frame.csv"
    ).is_file()


def test_score_without_predictions_names_the_folder(release, tmp_path, capsys):
    assert main(["score", str(tmp_path), str(release)]) == 1
    assert "no predictions" in capsys.readouterr().err


def test_perfect_prediction_scores_one(release, tmp_path, capsys):
    from ultrabones.io.masks import iter_store_frames, open_label_store
    from ultrabones.model.files import write_mask_png

    store = release / "labels" / "S03" / "tibia-1.zarr"
    ds = open_label_store(store)
    for _, stamp, data in iter_store_frames(ds, ("label",)):
        write_mask_png(tmp_path / "S03" / "tibia-1" / f"{stamp}.png", data["label"] > 0)
    capsys.readouterr()
    assert main(["score", str(tmp_path), str(release), "--json", "--eps", "0.1"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["accuracy"] == scores["completeness"] == scores["f1"] == [1.0]


def test_model_bench_table_has_every_method(release, tmp_path):
    from ultrabones.io.masks import iter_store_frames, open_label_store
    from ultrabones.model.files import write_mask_png
    from ultrabones.studies.model_baseline import sim_truth_folder

    store = release / "labels" / "S03" / "tibia-1.zarr"
    truth = sim_truth_folder(tmp_path / "sim", "S03/tibia-1")
    for _, stamp, data in iter_store_frames(open_label_store(store), ("label",)):
        for folder in (tmp_path / "p" / "S03" / "tibia-1", truth):
            write_mask_png(folder / f"{stamp}.png", data["label"] > 0)
    out = tmp_path / "out"
    args = ["model-bench", str(release), "--refined", str(tmp_path / "p")]
    args += ["--initial", str(tmp_path / "p"), "--truth-root", str(tmp_path / "sim")]
    assert main([*args, "--out", str(out)]) == 0
    rows = json.loads((out / "model_baseline.json").read_text())["rows"]
    assert len(rows) == 10 and all(r["frames"] == 3 for r in rows)
    model = [r for r in rows if r["method"] == "model (refined labels)"]
    assert all(r["all_f1"] == 1.0 for r in model)
    initial = next(r for r in rows if r["method"] == "initial labels")
    assert initial["all_f1"] < 1.0
