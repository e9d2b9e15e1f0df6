"""Honesty study: image motion, pooled lambda summaries, targets and the command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from bench_fixtures import calibration

from ultrabones.studies.honesty import (
    EQ3_LAMBDAS,
    appearance_rows,
    image_motion_mm,
    lambda_summary,
    side_by_side,
    spread,
    targets,
)
from ultrabones.transforms import (
    POSE_COLUMNS,
    invert_rigid,
    matrix_from_params,
    params_from_matrix,
)


def pose_rows(initial, refined) -> pd.DataFrame:
    """Table rows with ``ct_from_probe`` stacks as record pose parameters."""
    table = pd.DataFrame(params_from_matrix(initial), columns=list(POSE_COLUMNS))
    refined = params_from_matrix(refined)
    for i, c in enumerate(POSE_COLUMNS):
        table[f"{c}_refined"] = refined[:, i]
    return table


def test_image_motion_splits_an_image_plane_shift_into_lateral_and_axial():
    cal = calibration()
    start = matrix_from_params([[10.0, 5, 3, 20, 30, 40], [0, 0, 0, 0, 0, 0]])
    image = start @ cal.probe_from_image
    # move the image 0.3 mm across (x) and 0.2 mm up (-y) in its own plane, and spin
    # the second 2 deg about the image normal through the image centre
    shift = matrix_from_params([0.3, -0.2, 0, 0, 0, 0])
    centre = matrix_from_params([6.0, 8.0, 0, 0, 0, 0])
    spin = centre @ matrix_from_params([0, 0, 0, 0, 0, 2.0]) @ invert_rigid(centre)
    moved = image @ np.stack([shift, spin]) @ invert_rigid(cal.probe_from_image)
    motion = image_motion_mm(pose_rows(start, moved), cal)
    np.testing.assert_allclose(motion, [[0.3, -0.2], [0.0, 0.0]], atol=1e-9)


def run_rows(lam, corrections, *, status="kept", source="a") -> pd.DataFrame:
    eye = np.repeat(np.eye(4)[None], len(corrections), axis=0)
    table = pose_rows(eye, eye)
    return table.assign(
        lam=lam,
        source=source,
        status=status,
        evaluations=[0 if np.isnan(c) else 10 for c in corrections],
        fiducial_correction_mm=corrections,
        lateral_mm=-np.asarray(corrections),
        axial_mm=0.5 * np.asarray(corrections),
        cpu_ms=1e3 * np.arange(len(corrections)),
    )


def test_lambda_summary_pools_sources_and_counts_unrefined_frames_as_discards():
    runs = pd.concat(
        [
            run_rows(1.0, [0.1, 0.2], source="a"),
            run_rows(1.0, [0.3, np.nan], source="b", status="discarded"),
            run_rows(0.1, [0.5, 0.7, 0.9], source="a"),
        ],
        ignore_index=True,
    )
    runs["at_bound"] = 0.0
    runs.loc[[0, 4], "at_bound"] = 1.0  # a frame per lambda at the search's edge
    s = lambda_summary(runs).set_index("lam")
    assert s.index.tolist() == [0.1, 1.0]
    assert s.loc[1.0, "frames"] == 3
    assert s.loc[1.0, "correction_mm_median"] == pytest.approx(0.2)
    assert s.loc[1.0, "discarded_fraction"] == pytest.approx(0.5)
    assert s.loc[0.1, "bound_hit_fraction"] == pytest.approx(1 / 3)
    assert s.loc[1.0, "bound_hit_fraction"] == pytest.approx(1 / 3)
    assert s.loc[0.1, "lateral_mm_median_abs"] == pytest.approx(0.7)
    assert s.loc[0.1, "axial_mm_median_abs"] == pytest.approx(0.35)
    assert s.loc[0.1, "cpu_s_median"] == pytest.approx(1.0)


def test_spread_shares_the_frames_over_the_sweeps():
    assert spread(4, 6) == [1, 1, 1, 1, 0, 0]
    assert spread(7, 3) == [3, 2, 2]
    assert sum(spread(13, 4)) == 13


def robust_table(sim, real):
    lams = [0.01, 0.1, 1.0, 3.0, 10.0, 100.0, 1000.0]
    return side_by_side(
        pd.DataFrame({"lam": lams, "correction_mm_median": sim}),
        pd.DataFrame({"lam": lams, "correction_mm_median": real}),
    )


def eq3_table(sim_hits):
    return side_by_side(
        pd.DataFrame({"lam": EQ3_LAMBDAS, "bound_hit_fraction": [sim_hits, 0.0]}),
        pd.DataFrame({"lam": EQ3_LAMBDAS, "bound_hit_fraction": [0.6, 0.0]}),
    )


REAL = [0.78, 0.45, 0.34, 0.2, 0.04, 0.0, 0.0]


def test_targets_pass_within_a_factor_of_two_and_near_zero_at_strong_penalties():
    sim = [0.9, 0.85, 0.2, 0.2, 0.079, 0.049, 0.0]
    t = targets(robust_table(sim, REAL), eq3_table(0.3)).set_index("target")
    assert t["passed"].all()
    assert len(t) == 6
    assert t.loc["correction mm at lambda 10", "sim"] == pytest.approx(0.079)
    assert t.loc["correction mm at lambda 10", "real"] == pytest.approx(0.04)


@pytest.mark.parametrize(
    ("index", "value", "failing"),
    [
        (1, 0.95, "correction mm at lambda 0.1"),  # 2.1 x the real 0.45
        (2, 0.16, "correction mm at lambda 1"),  # under half the real 0.34
        (4, 0.0, "correction mm at lambda 10"),  # no correction at all
        (5, 0.06, "correction mm at lambda 100"),  # not near zero
        (6, np.nan, "correction mm at lambda 1000"),  # not measured
    ],
)
def test_each_curve_target_fails_alone(index, value, failing):
    sim = [0.9, 0.85, 0.2, 0.2, 0.079, 0.049, 0.0]
    sim[index] = value
    t = targets(robust_table(sim, REAL), eq3_table(0.3)).set_index("target")
    assert t.index[~t["passed"]].tolist() == [failing]


def test_eq3_target_needs_thirty_percent_of_simulated_frames_at_the_bound():
    sim = [0.9, 0.85, 0.2, 0.2, 0.079, 0.049, 0.0]
    t = targets(robust_table(sim, REAL), eq3_table(0.29)).set_index("target")
    assert t.index[~t["passed"]].tolist() == ["eq3 bound hits at lambda 0.001"]
    without_eq3 = pd.DataFrame({"lam": list(EQ3_LAMBDAS)})
    t = targets(robust_table(sim, REAL), without_eq3).set_index("target")
    assert not t.loc["eq3 bound hits at lambda 0.001", "passed"]


def test_appearance_rows_follow_the_statistics_compared():
    def stat(real, sim, passed):
        rel = (sim - real) / real
        return {"real": real, "sim": sim, "relative_difference": rel, "pass": passed}

    doc = {
        "statistics": {
            "mean_intensity": stat(70.0, 84.0, True),
            "new_statistic": stat(2.0, 2.6, False),
        },
        "tolerance": 0.25,
    }
    rows = pd.DataFrame(appearance_rows(doc)).set_index("target")
    assert rows.index.tolist() == [
        "appearance mean_intensity",
        "appearance new_statistic",
    ]
    assert rows["passed"].tolist() == [True, False]
    assert rows.loc["appearance new_statistic", "real"] == 2.0
    assert rows.loc["appearance new_statistic", "rule"] == "|sim/real - 1| <= 25%"
    sim = [0.9, 0.85, 0.2, 0.2, 0.079, 0.049, 0.0]
    t = targets(robust_table(sim, REAL), eq3_table(0.3), doc)
    assert len(t) == 8


def fake_engine_runs(sources, params, lambdas):
    """Engine stand-in: corrections shrink with lambda; Eq. 3 ends at the bound."""
    rows = []
    for name, frames, _, _ in sources:
        for lam in lambdas:
            for task in frames:
                eps = np.zeros(6)
                eps[0] = params.bounds_mm if params.objective == "eq3" else 0.1
                pose = np.asarray(task.pose)
                row = {"source": name, "lam": float(lam), "timestamp": task.timestamp}
                refined = [f"{c}_refined" for c in POSE_COLUMNS]
                row |= dict(zip(POSE_COLUMNS, pose, strict=True))
                row |= dict(zip(refined, pose + eps, strict=True))
                row |= {"status": "kept", "evaluations": 5, "lateral_mm": 0.1}
                row |= {"cpu_ms": 10.0, "at_bound": float(params.objective == "eq3")}
                row |= {"fiducial_correction_mm": 0.4 / (1 + lam), "axial_mm": 0.0}
                rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tiny_record(tmp_path_factory):
    from ultrabones.simulate.cohort import simulate_sweep

    out = tmp_path_factory.mktemp("real")
    return simulate_sweep(
        out, preset="tiny", seed=5, specimen="S02", sweep="fibula-1", frames=2
    )


def test_honesty_command_prints_one_json_object_and_writes_tables(
    monkeypatch, capsys, tiny_record, tmp_path
):
    from ultrabones.cli import honesty, main
    from ultrabones.studies import honesty as study

    monkeypatch.setattr(study, "engine_runs", fake_engine_runs)
    monkeypatch.setattr(honesty, "_model", lambda record, params: None)
    argv = ["honesty", "--real", str(tiny_record), "--preset", "tiny"]
    argv += ["--cohorts", "1", "--frames", "1", "--eq3-frames", "1", "--json"]
    argv += ["--without", "bone_drift", "--out", str(tmp_path)]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"settings", "robust", "eq3", "appearance", "targets", "passed"} <= set(doc)
    assert doc["settings"]["without"] == ["bone_drift"]
    assert doc["settings"]["sim_sweeps"] == ["0/S01/tibia-1", "0/S01/fibula-1"]
    robust = pd.DataFrame(doc["robust"]).set_index("lam")
    assert robust.index.tolist() == [0.01, 0.1, 1.0, 3.0, 10.0, 100.0, 1000.0]
    # two simulated sweeps of one frame each; the real side gets as many frames
    assert robust["frames_sim"].tolist() == [2] * 7
    assert robust["frames_real"].tolist() == [2] * 7
    eq3 = pd.DataFrame(doc["eq3"]).set_index("lam")
    assert eq3.loc[0.001, "frames_sim"] == 1 and eq3.loc[0.001, "frames_real"] == 1
    rows = pd.DataFrame(doc["targets"]).set_index("target")
    appearance = [t for t in rows.index if t.startswith("appearance ")]
    assert len(appearance) == len(doc["appearance"]["statistics"]) >= 1
    # equal fake curves on both sides pass every curve target; Eq. 3 ends at bounds
    assert rows.drop(appearance)["passed"].all()
    assert doc["passed"] == int(rows["passed"].sum())
    for name in ("robust.csv", "eq3.csv", "targets.csv", "honesty.json"):
        assert (tmp_path / name).is_file()
    assert (tmp_path / "honesty_lambda.png").stat().st_size > 1000


def test_honesty_text_output_shows_the_targets(monkeypatch, capsys, tiny_record):
    from ultrabones.cli import honesty, main
    from ultrabones.studies import honesty as study

    monkeypatch.setattr(study, "engine_runs", fake_engine_runs)
    monkeypatch.setattr(honesty, "_model", lambda record, params: None)
    argv = ["honesty", "--real", str(tiny_record), "--preset", "tiny"]
    assert main([*argv, "--cohorts", "1", "--frames", "1", "--eq3-frames", "0"]) == 0
    text = capsys.readouterr().out
    assert "targets (" in text and "eq3 bound hits at lambda 0.001" in text
    assert main([*argv, "--frames", "0"]) == 1
