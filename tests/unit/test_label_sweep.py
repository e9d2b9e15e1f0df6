"""``ultrabones label-sweep`` end to end on a four-frame record of a cylinder."""

from __future__ import annotations

import dataclasses
import json
import logging
from types import SimpleNamespace

import pandas as pd
import pytest
from test_engine import calibration, cylinder, ring_image

from ultrabones.cli import main
from ultrabones.cli.label_sweep import _dashboard_message
from ultrabones.engine import EngineParams, prepare_specimen
from ultrabones.errors import ParameterError
from ultrabones.io.calibration import write_calibration
from ultrabones.io.png import write_png
from ultrabones.io.record import write_poses_table
from ultrabones.io.stl import write_stl
from ultrabones.io.store import open_store

STAMPS = (100, 117, 133, 150)  # ms


def write_record(folder, *, image_name="{}.png"):
    """Write a record of the ring image at pose zero and its model; return both."""
    record, model = folder / "record", folder / "model"
    (record / "UltrasoundImages").mkdir(parents=True)
    (record / "CT_models").mkdir()
    write_stl(record / "CT_models" / "Bone.stl", *cylinder())
    cal = calibration()
    write_calibration(record / "calibration.yaml", cal)
    poses = pd.DataFrame({"timestamp": STAMPS, "space_factor": cal.pixel_spacing_mm[0]})
    for col in ("x", "y", "z", "euler_x", "euler_y", "euler_z"):
        poses[col] = 0.0
    write_poses_table(record / "sweep_initial.csv", poses)
    for t in STAMPS:
        write_png(record / "UltrasoundImages" / image_name.format(t), ring_image())
    prepare_specimen({"Bone": cylinder()}, params=EngineParams()).save(model)
    return record, model


def label_sweep(record, model, out, *extra) -> int:
    """Run the command on two-frame chunks with a two-pilot warm start.

    The pilots scatter the model and params before the chunks do: with content-hashed
    keys one run in two lost them ("lost dependencies"); ``sweep.cluster._scatter``
    scatters under fresh keys, and these runs keep that race covered.
    """
    args = ["label-sweep", str(record), "--model", str(model), "--out", str(out)]
    args += ["--specimen", "S01", "--sweep", "tibia-1", "--chunk-frames", "2"]
    return main([*args, "--warm-start-frames", "2", *extra])


def test_sweep_without_a_usable_frame_fails_naming_the_record(tmp_path, capsys):
    # images named 0<ts>.png: no row of the poses table finds its image
    record, model = write_record(tmp_path, image_name="0{}.png")
    assert label_sweep(record, model, tmp_path / "out.zarr") == 1
    err = capsys.readouterr().err
    assert f"{record}: no frame of the sweep has an image that was read" in err
    assert "no_image 4" in err and not (tmp_path / "out.zarr").exists()


def test_sweep_of_unreadable_images_fails_after_labelling(tmp_path, capsys):
    record, model = write_record(tmp_path)
    for t in STAMPS:
        (record / "UltrasoundImages" / f"{t}.png").write_bytes(b"not a png")
    assert label_sweep(record, model, tmp_path / "out.zarr") == 1
    err = capsys.readouterr().err
    assert "no frame of the sweep has an image that was read" in err
    assert "unreadable_image 4" in err and not (tmp_path / "out.zarr").exists()


def test_refined_frames_all_discarded_publish_and_the_log_links_the_dashboard(
    tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="ultrabones")
    record, model = write_record(tmp_path)
    out = tmp_path / "out.zarr"
    # no frame reaches confidence 1: all are refined, then discarded
    assert label_sweep(record, model, out, "--min-confidence", "1") == 0
    assert set(open_store(out)["reason"].values) == {"low_confidence"}
    assert "Dask dashboard: http://" in caplog.text


def test_store_records_every_engine_param_given_or_not(tmp_path):
    record, model = write_record(tmp_path)
    out = tmp_path / "out.zarr"
    assert label_sweep(record, model, out, "--facing-min", "0.2") == 0
    recorded = json.loads(open_store(out).attrs["engine_params"])
    assert set(recorded) == {f.name for f in dataclasses.fields(EngineParams)}
    assert recorded["facing_min"] == 0.2
    assert recorded["shadow_window_mm"] == [0.4, 3.0]


def test_dashboard_off_without_bokeh_says_why():
    client = SimpleNamespace(scheduler_info=lambda: {"services": {}})
    message = _dashboard_message(client, bokeh=False)
    assert message.startswith("Dask dashboard off: bokeh is not installed")


def test_too_fine_sample_spacing_is_refused_naming_it(tmp_path, capsys):
    record, model = write_record(tmp_path)
    out = tmp_path / "out.zarr"
    assert label_sweep(record, model, out, "--sample-spacing-mm", "0.02") == 1
    assert "sample_spacing_mm must be >= 0.1 mm" in capsys.readouterr().err


@pytest.mark.parametrize("spacing_mm", [0.02, 0.0999, float("nan")])
def test_engine_params_bound_the_sample_spacing(spacing_mm):
    with pytest.raises(ParameterError, match="sample_spacing_mm must be >= 0.1 mm"):
        EngineParams(sample_spacing_mm=spacing_mm)
    assert EngineParams(sample_spacing_mm=0.1).sample_spacing_mm == 0.1


def test_the_bench_path_labels_as_label_sweep(tmp_path):
    # sweep.local (the bench, select-lambda) runs label-sweep's tasks, warm start,
    # frame loop and sweep step in this process: the same poses as the store's
    import numpy as np

    from ultrabones.engine import SpecimenModel
    from ultrabones.io.record import open_record
    from ultrabones.sweep import plan_tasks
    from ultrabones.sweep.local import kernel_of, label_tasks, warm_start

    record, model = write_record(tmp_path)
    out = tmp_path / "out.zarr"
    assert label_sweep(record, model, out, "--seed", "3") == 0
    ds = open_store(out)
    opened = open_record(record)
    params = EngineParams(seed=3, warm_start_frames=2)
    kernel = kernel_of(opened.calibration, SpecimenModel.load(model), params)
    tasks = plan_tasks(opened, seed=3, specimen="S01", sweep="tibia-1")
    prior, pilots = warm_start(tasks, kernel)
    assert json.loads(ds.attrs["warm_start"])["pilots"] == pilots
    fields = label_tasks(tasks, kernel, prior=prior)
    refined = np.array([f["pose_refined"] for f in fields])
    np.testing.assert_array_equal(refined, ds["pose_refined"].values)
    assert all(f["ms"] > 0 and "image" not in f for f in fields)


def test_lambda_table_runs_each_lambda_through_the_sweep_loop(tmp_path):
    from ultrabones.engine import SpecimenModel
    from ultrabones.io.record import open_record
    from ultrabones.sweep.lam import choose_lambda, lambda_table

    record, model = write_record(tmp_path)
    opened = open_record(record)
    params = EngineParams(warm_start_frames=2)
    table = lambda_table(
        opened, SpecimenModel.load(model), params, [0, 2, 3], lambdas=(0.1, 10.0)
    )
    assert table["lam"].tolist() == [0.1, 10.0]
    assert (table["frames"] == 3).all()
    assert choose_lambda(table)[0] in (0.1, 10.0)


def test_select_lambda_writes_the_declared_paths_with_the_engine_options(
    tmp_path, monkeypatch
):
    # the rule passes its outputs and every engine option but lam and seed
    from ultrabones.sweep import lam

    record, model = write_record(tmp_path)
    searched, real = [], lam.lambda_table

    def two_lambdas(record, model, params, rows, *, truth=None):
        searched.append(params)
        return real(record, model, params, rows, truth=truth, lambdas=(0.1, 10.0))

    monkeypatch.setattr(lam, "lambda_table", two_lambdas)
    out = {
        k: tmp_path / k / f"lambda.{e}"
        for k, e in [("table", "csv"), ("choice", "json"), ("figure", "png")]
    }
    args = ["select-lambda", str(record), "--model", str(model), "--frames", "2"]
    args += ["--warm-start-frames", "2", "--gamma-mm", "0.4", "--refinement", "frame"]
    assert main([*args, *(a for k, p in out.items() for a in (f"--{k}", str(p)))]) == 0
    (params,) = searched
    assert params.gamma_mm == 0.4 and params.refinement == "frame"
    assert params.warm_start_frames == 2
    assert pd.read_csv(out["table"])["lam"].tolist() == [0.1, 10.0]
    assert json.loads(out["choice"].read_text())["lam"] in (0.1, 10.0)
    assert out["figure"].stat().st_size > 1000


def test_select_lambda_refuses_the_truth_rule_without_truth_before_labelling(
    tmp_path, capsys
):
    # the refusal names the rule before the record is even opened
    args = ["select-lambda", str(tmp_path / "absent"), "--model", str(tmp_path)]
    assert main([*args, "--choose-by", "truth", "--out", str(tmp_path / "out")]) == 1
    assert "'truth' needs the simulator's truth" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_lam_from_labels_with_the_chosen_lambda_and_records_the_rule(tmp_path):
    from ultrabones.sweep.lam import write_choice

    record, model = write_record(tmp_path)
    choice = tmp_path / "lambda.json"
    write_choice(choice, 10.0, "least median label error")
    out = tmp_path / "out.zarr"
    assert label_sweep(record, model, out, "--lam-from", str(choice)) == 0
    attrs = open_store(out).attrs
    assert json.loads(attrs["engine_params"])["lam"] == 10.0
    assert attrs["lam_rule"] == f"select-lambda ({choice}): least median label error"


def test_lam_and_lam_from_together_are_refused(tmp_path, capsys):
    record, model = write_record(tmp_path)
    args = ("--lam", "1", "--lam-from", str(tmp_path / "lambda.json"))
    assert label_sweep(record, model, tmp_path / "out.zarr", *args) == 1
    assert "--lam and --lam-from" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "no lambda choice file"),
        ("{", "not JSON"),
        ('{"rule": "x"}', "'lam' must be a number >= 0, got None"),
        ('{"lam": -1}', "'lam' must be a number >= 0, got -1"),
        ('{"lam": "3"}', "'lam' must be a number >= 0, got '3'"),
    ],
)
def test_a_bad_choice_file_is_refused_naming_it(tmp_path, text, message):
    from ultrabones.errors import InputDataError
    from ultrabones.sweep.lam import read_choice

    path = tmp_path / "lambda.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(InputDataError, match=f"{path}: {message}"):
        read_choice(path)
