"""Tests of the label metrics, the Otsu split, the label-set readers and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from ultrabones.cli import main
from ultrabones.errors import InputDataError
from ultrabones.evaluate import (
    aggregate_scores,
    evaluate_label_sets,
    fractions_within,
    frame_scores,
    label_histogram,
    match_frames,
    otsu_threshold,
    region_masks,
)
from ultrabones.io.masks import open_mask_source
from ultrabones.io.png import write_png

EPS = np.array([0.1, 0.25, 0.5, 1.0, 2.0])
SPACING = (0.13, 0.31)  # (s_x, s_y): anisotropic on purpose


def centres_mm(mask, spacing):
    """Pixel centres (x, y) in mm of a mask's pixels, by the definition."""
    r, c = np.nonzero(mask)
    return np.c_[(c + 0.5) * spacing[0], (r + 0.5) * spacing[1]]


def brute_fraction(counted, other, eps, spacing):
    """Fraction of ``counted`` pixels strictly within eps of ``other`` (pairwise)."""
    a, b = centres_mm(counted, spacing), centres_mm(other, spacing)
    if len(a) == 0:
        return np.full(len(eps), np.nan)
    if len(b) == 0:
        return np.zeros(len(eps))
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min(axis=1)
    return np.array([(d < e).mean() for e in eps])


def random_masks(seed, shape=(30, 41), density=0.04):
    rng = np.random.default_rng(seed)
    return rng.random(shape) < density, rng.random(shape) < density


@pytest.mark.parametrize("seed", [1234, 5, 77])
@pytest.mark.parametrize(
    ("metric", "counted"), [("accuracy", "pred"), ("completeness", "truth")]
)
def test_metric_matches_pairwise_definition(seed, metric, counted):
    pred, truth = random_masks(seed)
    s = frame_scores(pred, truth, spacing_mm=SPACING, eps_mm=EPS)
    a, b = (pred, truth) if counted == "pred" else (truth, pred)
    np.testing.assert_allclose(
        getattr(s, metric)[0], brute_fraction(a, b, EPS, SPACING), atol=1e-12
    )


def test_f1_is_harmonic_mean_of_brute_force_values():
    pred, truth = random_masks(99)
    acc = brute_fraction(pred, truth, EPS, SPACING)
    com = brute_fraction(truth, pred, EPS, SPACING)
    expected = np.where(acc + com > 0, 2 * acc * com / (acc + com + 1e-300), 0.0)
    s = frame_scores(pred, truth, spacing_mm=SPACING, eps_mm=EPS)
    np.testing.assert_allclose(s.f1[0], expected, atol=1e-12)


def test_split_regions_count_pixels_but_measure_to_whole_sets():
    rng = np.random.default_rng(2024)
    pred, truth = random_masks(3)
    image = rng.integers(0, 256, pred.shape, dtype=np.uint8)
    regions = region_masks(pred.shape, image, threshold=127.0)
    s = frame_scores(pred, truth, spacing_mm=SPACING, eps_mm=EPS, regions=regions)
    high = image > 127
    np.testing.assert_allclose(
        s.accuracy[1], brute_fraction(pred & high, truth, EPS, SPACING), atol=1e-12
    )
    np.testing.assert_allclose(
        s.completeness[2], brute_fraction(truth & ~high, pred, EPS, SPACING), atol=1e-12
    )


def test_exact_distance_is_not_within_eps():
    # 3-4-5 triangle with exactly representable spacing: d = 5 mm exactly.
    pred = np.zeros((6, 5), bool)
    truth = np.zeros((6, 5), bool)
    pred[0, 0] = truth[4, 4] = True
    s = frame_scores(pred, truth, spacing_mm=(1.0, 0.75), eps_mm=[5.0, 5.0 + 1e-9])
    np.testing.assert_array_equal(s.accuracy[0], [0.0, 1.0])
    np.testing.assert_array_equal(s.completeness[0], [0.0, 1.0])


def test_fractions_within_is_strict():
    np.testing.assert_array_equal(
        fractions_within([0.0, 1.0, 1.0, 2.0], [1.0, 2.0, 2.5]), [0.25, 0.75, 1.0]
    )


def test_both_empty_frame_is_skipped():
    empty = np.zeros((5, 5), bool)
    assert frame_scores(empty, empty, spacing_mm=(1, 1), eps_mm=EPS) is None


@pytest.mark.parametrize(
    ("empty", "undefined", "zero"),
    [("pred", "accuracy", "completeness"), ("truth", "completeness", "accuracy")],
)
def test_an_empty_side_has_one_metric_undefined_the_other_and_f1_zero(
    empty, undefined, zero
):
    mask = np.zeros((5, 5), bool)
    mask[2, 2] = True
    sides = {"pred": mask, "truth": mask, empty: np.zeros_like(mask)}
    s = frame_scores(sides["pred"], sides["truth"], spacing_mm=(1, 1), eps_mm=EPS)
    assert np.isnan(getattr(s, undefined)).all()
    np.testing.assert_array_equal(getattr(s, zero)[0], 0.0)
    np.testing.assert_array_equal(s.f1[0], 0.0)


def test_aggregate_skips_undefined_values_and_never_returns_nan():
    truth = np.zeros((5, 5), bool)
    truth[2, 2] = True
    miss = frame_scores(np.zeros_like(truth), truth, spacing_mm=(1, 1), eps_mm=[1.0])
    hit = frame_scores(truth, truth, spacing_mm=(1, 1), eps_mm=[1.0])
    out = aggregate_scores([miss, hit], eps_mm=[1.0])["all"]
    assert out["accuracy"] == [1.0] and out["frames"]["accuracy"] == [1]
    assert out["completeness"] == [0.5] and out["f1"] == [0.5]


def test_aggregate_of_no_defined_frame_is_none():
    pred = np.zeros((5, 5), bool)
    pred[0, 0] = True
    s = frame_scores(pred, np.zeros_like(pred), spacing_mm=(1, 1), eps_mm=[1.0])
    assert aggregate_scores([s], eps_mm=[1.0])["all"]["completeness"] == [None]


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match=r"one shape, got \(3, 3\) and \(3, 4\)"):
        frame_scores(np.ones((3, 3)), np.ones((3, 4)), spacing_mm=(1, 1))


@pytest.mark.parametrize("spacing", [(0, 1), (1, -2), (1,)])
def test_bad_spacing_raises(spacing):
    with pytest.raises(ValueError, match="spacing_mm must be two positive"):
        frame_scores(np.ones((3, 3)), np.ones((3, 3)), spacing_mm=spacing)


def test_negative_eps_raises():
    with pytest.raises(ValueError, match="eps_mm must be finite non-negative"):
        frame_scores(np.ones((3, 3)), np.ones((3, 3)), spacing_mm=(1, 1), eps_mm=[-1])


def test_otsu_separates_two_intensity_populations():
    image = np.r_[np.full(50, 30), np.full(50, 210)].astype(np.uint8).reshape(10, 10)
    counts = label_histogram(image, np.ones_like(image, bool))
    assert counts.sum() == 100
    assert 30 <= otsu_threshold(counts) < 210


def test_otsu_of_a_single_level_raises():
    counts = np.zeros(256, int)
    counts[7] = 3
    with pytest.raises(ValueError, match="at least two grey levels"):
        otsu_threshold(counts)


def test_label_histogram_rejects_non_uint8():
    with pytest.raises(ValueError, match="image must be uint8"):
        label_histogram(np.zeros((2, 2), float), np.ones((2, 2), bool))


def test_match_frames_counts_status_and_one_sided_frames():
    pred = {"1": "kept", "2": "discarded", "3": "kept", "9": "kept"}
    truth = {"1": "kept", "2": "kept", "3": "kept", "4": "kept"}
    names, counts = match_frames(pred, truth)
    assert names == ["1", "3"]
    assert counts == {
        "common": 3,
        "excluded_status": 1,
        "pred_only": 1,
        "truth_only": 1,
    }


# --- label sets on disk -------------------------------------------------------


def write_mask_folder(folder, masks):
    folder.mkdir(parents=True)
    for name, mask in masks.items():
        write_png(folder / f"{name}.png", np.where(mask, 255, 0).astype(np.uint8))


def write_store(path, labels, images, stamps, status, spacing=SPACING):
    """A tiny label store following the team schema (the parts evaluate reads)."""
    n, rows, cols = labels.shape
    ds = xr.Dataset(
        {
            "image": (("frame", "y", "x"), images.astype(np.uint8)),
            "label": (("frame", "y", "x"), labels.astype(np.uint8)),
            "status": (("frame",), np.array(status, dtype=np.dtypes.StringDType())),
        },
        coords={
            "timestamp": (("frame",), np.asarray(stamps, np.int64)),
            "x_mm": (("x",), (np.arange(cols) + 0.5) * spacing[0]),
            "y_mm": (("y",), (np.arange(rows) + 0.5) * spacing[1]),
        },
        attrs={"pixel_spacing_mm": list(spacing)},
    )
    ds.to_zarr(path, consolidated=False, mode="w")
    return path


@pytest.fixture
def pair(tmp_path):
    """Three frames: prediction store, truth PNG folder, image folder."""
    rng = np.random.default_rng(4321)
    pred = rng.random((3, 24, 32)) < 0.05
    truth = rng.random((3, 24, 32)) < 0.05
    images = rng.integers(0, 256, (3, 24, 32), dtype=np.uint8)
    stamps = [100, 188, 276]
    store = write_store(tmp_path / "p.zarr", pred, images, stamps, ["kept"] * 3)
    write_mask_folder(
        tmp_path / "truth", dict(zip(map(str, stamps), truth, strict=True))
    )
    write_mask_folder(tmp_path / "pred", dict(zip(map(str, stamps), pred, strict=True)))
    (tmp_path / "images").mkdir()
    for t, im in zip(stamps, images, strict=True):
        write_png(tmp_path / "images" / f"{t}.png", im)
    return {"store": store, "pred": pred, "truth": truth, "images": images}


def expected_mean_accuracy(pred, truth, spacing):
    return np.mean(
        [brute_fraction(p, g, EPS, spacing) for p, g in zip(pred, truth, strict=True)],
        0,
    )


def test_png_folder_mode_matches_brute_force(pair, tmp_path):
    out = evaluate_label_sets(
        open_mask_source(tmp_path / "pred"),
        open_mask_source(tmp_path / "truth"),
        spacing_mm=SPACING,
        eps_mm=EPS,
    )
    assert out["frames"] == 3
    np.testing.assert_allclose(
        out["accuracy"], expected_mean_accuracy(pair["pred"], pair["truth"], SPACING)
    )


def test_store_mode_uses_store_spacing_and_excludes_discarded(tmp_path):
    rng = np.random.default_rng(8)
    pred = rng.random((3, 20, 20)) < 0.05
    images = rng.integers(0, 256, (3, 20, 20), dtype=np.uint8)
    store = write_store(
        tmp_path / "s.zarr", pred, images, [5, 6, 7], ["kept", "discarded", "kept"]
    )
    source = open_mask_source(store)
    assert source.spacing_mm == SPACING
    assert source.names == ("5", "6", "7")
    np.testing.assert_array_equal(source.read_mask("6"), pred[1])
    out = evaluate_label_sets(source, source, spacing_mm=SPACING, eps_mm=EPS)
    assert out["frames"] == 2 and out["frame_counts"]["excluded_status"] == 1
    assert out["accuracy"] == [1.0] * len(EPS)


def test_missing_folder_raises(tmp_path):
    with pytest.raises(InputDataError, match="label folder or store not found"):
        open_mask_source(tmp_path / "nope")


def test_folder_without_pngs_raises(tmp_path):
    with pytest.raises(InputDataError, match="no PNG masks"):
        open_mask_source(tmp_path)


@pytest.mark.parametrize(
    ("name", "shape", "match"),
    [
        ("2", (4, 4), "no common kept frames"),
        ("1", (4, 5), r"frame 1: prediction .* shape \(4, 4\)"),
    ],
    ids=["no-common-frames", "mismatched-shapes"],
)
def test_unmatched_folders_raise(tmp_path, name, shape, match):
    write_mask_folder(tmp_path / "a", {"1": np.ones((4, 4), bool)})
    write_mask_folder(tmp_path / "b", {name: np.ones(shape, bool)})
    with pytest.raises(InputDataError, match=match):
        evaluate_label_sets(
            open_mask_source(tmp_path / "a"),
            open_mask_source(tmp_path / "b"),
            spacing_mm=(1, 1),
            eps_mm=EPS,
        )


def test_cli_json_store_against_png_folder(pair, tmp_path, capsys):
    code = main(
        [
            "evaluate",
            "--pred",
            str(pair["store"]),
            "--truth",
            str(tmp_path / "truth"),
            "--eps",
            *map(str, EPS),
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["frames"] == 3 and out["eps_mm"] == list(EPS)
    np.testing.assert_allclose(
        out["accuracy"], expected_mean_accuracy(pair["pred"], pair["truth"], SPACING)
    )
    assert set(out["regions"]) == {"all", "high", "low"}


@pytest.mark.parametrize(
    ("store", "spacing", "message"),
    [
        (False, [], "give --spacing"),
        (True, ["--spacing", "0.2", "0.2"], "differs from"),
    ],
    ids=["png-folders-need-spacing", "spacing-conflicts-with-store"],
)
def test_cli_spacing_errors(pair, tmp_path, capsys, store, spacing, message):
    pred = pair["store"] if store else tmp_path / "pred"
    code = main(
        ["evaluate", "--pred", str(pred), "--truth", str(tmp_path / "truth"), *spacing]
    )
    assert code == 1
    assert message in capsys.readouterr().err


def test_cli_otsu_file_drives_split_and_figures(pair, tmp_path, capsys):
    otsu = tmp_path / "otsu.json"
    assert main(["otsu", str(pair["store"]), "--out", str(otsu)]) == 0
    assert "otsu threshold" in capsys.readouterr().out
    doc = json.loads(otsu.read_text())
    pixels = pair["images"][pair["pred"]]
    expected = otsu_threshold(label_histogram(pixels, np.ones(pixels.shape, bool)))
    assert doc["threshold"] == expected
    code = main(
        [
            "evaluate",
            "--pred",
            str(tmp_path / "pred"),
            "--truth",
            str(tmp_path / "truth"),
            "--spacing",
            *map(str, SPACING),
            "--images",
            str(tmp_path / "images"),
            "--otsu",
            str(otsu),
            "--out",
            str(tmp_path / "ev"),
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["otsu_threshold"] == expected and out["otsu_source"] == "given"
    assert (tmp_path / "ev" / "eval_curves.png").stat().st_size > 0
    assert (tmp_path / "ev" / "per_frame.csv").is_file()


def test_threshold_defaults_to_otsu_of_truth_label_intensities(pair, tmp_path):
    pred = open_mask_source(pair["store"])
    out = evaluate_label_sets(
        pred,
        open_mask_source(tmp_path / "truth"),
        spacing_mm=SPACING,
        eps_mm=EPS,
        read_image=pred.read_image,
    )
    pixels = pair["images"][pair["truth"]]
    expected = otsu_threshold(label_histogram(pixels, np.ones(pixels.shape, bool)))
    assert out["otsu_threshold"] == expected
    assert out["otsu_source"] == "truth_labels"


def test_figures_are_byte_identical_across_runs(pair, tmp_path):
    args = [
        "evaluate",
        "--pred",
        str(pair["store"]),
        "--truth",
        str(tmp_path / "truth"),
    ]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    for name in ("eval_curves.png", "metrics.json", "per_frame.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (
            tmp_path / "b" / name
        ).read_bytes()
