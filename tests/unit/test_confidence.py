"""Per-frame confidence: features, the logistic score, the neighbour check, AUROC."""

from __future__ import annotations

import numpy as np
import pytest
from test_engine import CENTRE, calibration, cylinder, ring_image

from ultrabones.engine import EngineParams, prepare_specimen, process_frame
from ultrabones.engine.confidence import (
    EVIDENCE_REFERENCE,
    confidence_auroc,
    confidence_score,
    curve_length_mm,
    evidence_reference,
    fit_confidence_model,
    inside_fraction,
    neighbour_distance_mm,
    sweep_confidence,
)
from ultrabones.sweep import confidence_check
from ultrabones.transforms import matrix_from_params
from ultrabones.vocabulary import Reason

FIDUCIALS = np.array([[0, 0, 50.0], [30, 0, 50.0], [0, 30, 50.0]])


@pytest.fixture(scope="module")
def cyl_model():
    return prepare_specimen({"Bone": cylinder()}, params=EngineParams())


def brute_auroc(c, e, t):
    bad, good = c[e > t], c[e <= t]
    wins = (bad[:, None] < good[None]).sum() + 0.5 * (bad[:, None] == good[None]).sum()
    return wins / (bad.size * good.size)


def test_curve_length_of_a_straight_band():
    band = np.zeros((20, 50), bool)
    band[10:16] = True  # 6 rows of 0.1 mm: 2 gamma = 0.6 mm
    assert curve_length_mm(band, spacing_mm=(0.2, 0.1), gamma_mm=0.3) == (
        pytest.approx(10.0)
    )


def test_auroc_matches_pairwise_count_with_ties():
    rng = np.random.default_rng(1234)
    c = np.round(rng.random(200), 1)  # many ties
    e = rng.random(200) + 0.5 * (1 - c)
    assert confidence_auroc(c, e, 0.7) == pytest.approx(brute_auroc(c, e, 0.7))


def test_auroc_is_one_for_perfect_and_zero_for_reversed_scores():
    e = np.array([0.1, 0.2, 0.9, 1.5])
    assert confidence_auroc([0.9, 0.8, 0.3, 0.1], e) == 1.0
    assert confidence_auroc([0.1, 0.3, 0.8, 0.9], e) == 0.0


def test_auroc_leaves_out_nan_and_needs_both_classes():
    assert confidence_auroc([0.9, np.nan, 0.1], [0.1, 2.0, 0.7]) == 1.0
    assert np.isnan(confidence_auroc([0.9, 0.8], [0.1, 0.2]))


def test_score_is_monotone_in_each_feature():
    b = [0.5, 2.0, 1.0, -1.0, -3.0]
    base = np.array([0.2, 0.8, 0.0, 0.1])
    for k, sign in enumerate([1, 1, -1, -1]):
        up = base.copy()
        up[k] += 0.5
        assert sign * (confidence_score(up, b) - confidence_score(base, b)) > 0


def test_neighbour_distance_flags_the_frame_that_moved_the_other_way():
    n = 11
    initial = np.zeros((n, 6))
    refined = initial + [0.4, -0.2, 0.1, 0.2, 0.0, -0.1]
    refined[5] = [-0.4, 0.2, -0.1, -0.2, 0.0, 0.1]  # the wrong way
    refined[8] = np.nan  # not refined
    d = neighbour_distance_mm(
        initial, refined, np.isfinite(refined[:, 0]), fiducials=FIDUCIALS
    )
    assert np.isnan(d[8])
    assert d[5] > 0.5
    np.testing.assert_allclose(np.delete(d, [5, 8]), 0.0, atol=1e-9)


def test_neighbour_distance_ignores_frames_not_refined():
    initial = np.zeros((3, 6))
    refined = np.array([[0.5, 0, 0, 0, 0, 0], [0.0] * 6, [0.5, 0, 0, 0, 0, 0]])
    d = neighbour_distance_mm(
        initial, refined, np.array([True, False, True]), fiducials=FIDUCIALS
    )
    np.testing.assert_allclose(d[[0, 2]], 0.0, atol=1e-9)
    assert np.isnan(d[1])


def test_evidence_reference_is_the_robust_spread_or_the_default():
    median, scale = evidence_reference([0.1, 0.2, 0.3, 0.4, 10.0, np.nan])
    assert median == pytest.approx(0.3)
    assert scale == pytest.approx(1.4826 * 0.1)
    assert evidence_reference([0.1, 0.2]) == EVIDENCE_REFERENCE


def test_sweep_confidence_scores_evidence_against_the_sweep():
    f = np.zeros((8, 4))
    f[:, 0] = [0.01, 0.012, 0.008, 0.011, 0.009, 0.01, -0.2, np.nan]
    f[:, 1] = 1.0
    f[7] = np.nan
    f[0, 3] = np.nan  # no refined neighbour: counts as 0
    c = sweep_confidence(f, np.ones(8, bool), [1.0, 2.0, 0.0, 0.0, -1.0])
    assert np.isnan(c[7])
    assert c[6] < 0.01 < 0.5 < c[:6].min()
    # the same low level for the whole sweep is that sweep's normal
    alone = confidence_score(f[1:6], [1.0, 2.0, 0.0, 0.0, -1.0])
    assert alone.max() < 0.01


def test_confidence_check_discards_kept_outliers_only():
    n = 9
    initial = np.zeros((n, 6))
    refined = initial + [0.4, 0, 0, 0.2, 0, 0]
    refined[2] = refined[6] = [-0.4, 0, 0, -0.2, 0, 0]
    reason = np.array(["ok"] * n, dtype=object)
    reason[6] = "correction_too_large"
    features = np.tile([0.2, 1.0, 0.0, 0.0], (n, 1))
    params = EngineParams(confidence_model=(1.0, 0, 0, 0, -8.0), min_confidence=0.5)
    out = confidence_check(
        initial, refined, features, reason, params=params, fiducials=FIDUCIALS
    )
    assert out["discarded"].tolist() == [2]
    assert out["reason"][2] == Reason.LOW_CONFIDENCE
    assert out["reason"][6] == "correction_too_large"
    assert out["status"][2] == "discarded"
    assert out["confidence"].dtype == np.float32
    assert out["confidence"][0] == pytest.approx(1 / (1 + np.exp(-1)))
    assert out["confidence_features"][2, 3] > 0.5


def test_confidence_check_writes_the_whole_code_among_short_ones():
    refined = np.zeros((6, 6))
    refined[3, 0] = 2.0
    out = confidence_check(
        np.zeros((6, 6)),
        refined,
        np.tile([0.2, 1.0, 0.0, 0.0], (6, 1)),
        np.array(["ok"] * 6),
        params=EngineParams(confidence_model=(1.0, 0, 0, 0, -2.0)),
        fiducials=FIDUCIALS,
    )
    assert out["reason"].tolist() == ["ok"] * 3 + ["low_confidence"] + ["ok"] * 2


def test_fit_recovers_the_informative_feature_and_keeps_signs():
    rng = np.random.default_rng(1234)
    n = 2000
    f = np.c_[rng.normal(size=(n, 1)), rng.random((n, 1)), np.zeros((n, 2))]
    good = rng.random(n) < 1 / (1 + np.exp(-(3 * f[:, 0] - 2 * f[:, 1])))
    b = fit_confidence_model(f, good, ridge=0.0)
    assert 2.5 < b[1] < 3.5
    # inside_fraction lowers the odds here; the fit holds it at its sign's bound
    assert b[2] == 0.0
    assert confidence_auroc(confidence_score(f, b), (~good).astype(float)) > 0.8


def test_params_reject_a_model_of_the_wrong_sign_or_length():
    with pytest.raises(ValueError, match="wrong sign"):
        EngineParams(confidence_model=(0, -1.0, 0, 0, 0))
    with pytest.raises(ValueError, match="must have 5 values"):
        EngineParams(confidence_model=(0, 1.0))
    with pytest.raises(ValueError, match="min_confidence must be in"):
        EngineParams(min_confidence=1.5)


def test_params_dict_equals_its_json_round_trip():
    import json

    d = EngineParams().to_dict()
    assert json.loads(json.dumps(d)) == d


def test_inside_fraction_of_a_bone_half_out_of_view(cyl_model):
    cal, kw = calibration(), dict(sigma_mm=0.25, facing_min=0.1)
    assert inside_fraction(cyl_model, np.zeros(6), cal, **kw) == 1.0
    # move the image so its left edge passes through the cylinder's axis
    pose = np.array([CENTRE[0], 0, 0, 0, 0, 0])
    half = inside_fraction(cyl_model, pose, cal, **kw)
    assert half == pytest.approx(0.5, abs=0.05)


def test_facing_threshold_decides_which_samples_face_the_probe(cyl_model):
    # no normal points towards the transducer by more than 0.999999 of its length
    pose, cal = np.zeros(6), calibration()
    kw = dict(sigma_mm=0.25, facing_min=0.999999)
    assert np.isnan(inside_fraction(cyl_model, pose, cal, **kw))


def test_echo_raises_the_confidence(cyl_model):
    flat = np.full(ring_image().shape, 70, np.uint8)
    params = EngineParams(
        lam=0.5,
        coarse_points=400,
        min_confidence=0.0,
        confidence_model=(0, 10, 0, 0, 0),
    )
    kw = dict(model=cyl_model, calibration=calibration(), params=params, seed=3)
    echo = process_frame(ring_image(), np.eye(4), **kw)
    none = process_frame(flat, np.eye(4), **kw)
    assert echo.reason == none.reason == Reason.OK
    assert 0 < none.confidence < echo.confidence < 1


def test_refined_frame_carries_its_features(cyl_model):
    res = process_frame(
        ring_image(),
        matrix_from_params([0.3, 0, 0, 0, 0, 0]),
        model=cyl_model,
        calibration=calibration(),
        params=EngineParams(lam=0.5, coarse_points=400),
        seed=3,
    )
    evidence, inside, bound, neighbour = res.confidence_features
    assert evidence > 0  # the ring's echo
    assert inside == pytest.approx(1.0)
    assert (bound, neighbour) == (0.0, 0.0)
    assert res.confidence == pytest.approx(
        confidence_score(res.confidence_features, EngineParams().confidence_model)
    )


def test_frame_not_refined_has_no_confidence(cyl_model):
    res = process_frame(None, np.eye(4), model=cyl_model, calibration=calibration())
    assert res.reason == Reason.NO_IMAGE
    assert np.isnan(res.confidence)
    assert np.isnan(res.confidence_features).all()
