"""Label store schema, resumable chunk writes and the Dask chunk orchestration."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
import xarray as xr

from ultrabones.errors import InputDataError
from ultrabones.io.store import open_store, open_work, write_region
from ultrabones.store import (
    chunk_dataset,
    chunk_slices,
    encoding,
    status_of,
    template_dataset,
    validate_store,
)
from ultrabones.sweep import FrameTask, frame_seed, label_chunks, run_chunk

SHAPE = (6, 5)
ATTRS = {
    "ultrabones_version": "0",
    "git_sha": "x",
    "config_hash": "h",
    "inputs": "{}",
    "pixel_spacing_mm": [0.1, 0.2],
    "probe_from_image": [0.0] * 6,
    "gamma_mm": 0.3,
}


@dataclass
class FakeResult:
    """Stand-in for the engine's FrameResult."""

    reason: str
    pose_refined: np.ndarray
    fiducial_correction_mm: float
    objective_initial: float = 1.0
    objective_refined: float = 2.0
    evaluations: int = 7
    confidence: float = 0.9
    confidence_features: np.ndarray = field(
        default_factory=lambda: np.array([0.2, 1.0, 0.0, 0.0])
    )
    masks: dict = field(default_factory=dict)


def fake_frame(image, ct_from_probe, *, model, calibration, params, seed):
    """Keep frames with an even first pixel; label the bright pixels."""
    label = image > 100
    reason = "ok" if image[0, 0] % 2 == 0 else "correction_too_large"
    if model == "explode" and image[0, 0] == 4:
        raise RuntimeError("boom")
    return FakeResult(
        reason,
        ct_from_probe[:3, 3].repeat(2),
        0.1 * image[0, 0],
        masks={"label": label},
    )


def make_tasks(tmp_path, n=5):
    from ultrabones.io.png import write_png

    tasks = []
    for t in range(n):
        path = tmp_path / f"{t}.png"
        write_png(path, np.full(SHAPE, t, np.uint8))
        status = "no_image" if t == 3 else "ok"
        tasks.append(FrameTask(t, str(path) if t != 3 else "", np.zeros(6), status, t))
    return tasks


def kernel(model=None):
    return dict(
        frame_fn=fake_frame, shape=SHAPE, model=model, calibration=None, params=None
    )


def new_store(tmp_path, tasks, chunk=2):
    ds = template_dataset(
        [t.timestamp for t in tasks],
        shape=SHAPE,
        spacing_mm=(0.1, 0.2),
        specimen="S01",
        sweep="tibia-1",
        chunk_frames=chunk,
        attrs=ATTRS,
    )
    work = open_work(tmp_path / "out.zarr", {"plan": 1})
    work.create(ds, encoding(ds, chunk))
    return work


def test_chunk_slices_cover_frames_once():
    slices = chunk_slices(7, 3)
    assert [(s.start, s.stop) for s in slices] == [(0, 3), (3, 6), (6, 7)]


def test_status_of_reason():
    assert [status_of(r) for r in ("ok", "no_image", "no_bone_in_view")] == [
        "kept",
        "no_image",
        "discarded",
    ]


def test_frame_seed_depends_on_sweep():
    assert frame_seed(0, "S01", "tibia-1", 5) != frame_seed(0, "S01", "fibula-1", 5)


def test_run_chunk_turns_faults_into_reasons(tmp_path):
    tasks = make_tasks(tmp_path)
    out = run_chunk(tasks, **kernel(model="explode"))
    assert list(out["reason"]) == [
        "ok",
        "correction_too_large",
        "ok",
        "no_image",
        "engine_error",
    ]
    assert list(out["status"]) == ["kept", "discarded", "kept", "no_image", "discarded"]


def test_unreadable_image_is_a_reason(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    out = run_chunk([FrameTask(1, str(bad), np.zeros(6), "ok", 1)], **kernel())
    assert out["reason"][0] == "unreadable_image"


def test_store_round_trip_validates(tmp_path):
    tasks = make_tasks(tmp_path)
    work = new_store(tmp_path, tasks)
    for i, s in enumerate(chunk_slices(len(tasks), 2)):
        work.write_chunk(i, s, chunk_dataset(run_chunk(tasks[s], **kernel())))
    work.publish(ATTRS)
    ds = open_store(tmp_path / "out.zarr")
    validate_store(ds)
    assert ds["image"].encoding["chunks"] == (2, *SHAPE)
    assert ds["timestamp"].values.tolist() == [0, 1, 2, 3, 4]


def test_validate_store_names_missing_variable(tmp_path):
    tasks = make_tasks(tmp_path)
    ds = template_dataset(
        [0, 1],
        shape=SHAPE,
        spacing_mm=(0.1, 0.2),
        specimen="S",
        sweep="W",
        chunk_frames=2,
        attrs=ATTRS,
    )
    with pytest.raises(InputDataError, match="variable oblique missing"):
        validate_store(ds.drop_vars("oblique"))
    del tasks


def test_unwritten_chunk_fails_validation(tmp_path):
    tasks = make_tasks(tmp_path)
    work = new_store(tmp_path, tasks)
    work.write_chunk(0, slice(0, 2), chunk_dataset(run_chunk(tasks[:2], **kernel())))
    with pytest.raises(InputDataError, match="unknown reason code"):
        validate_store(open_store(work.store))


def test_resume_keeps_completed_chunks_only(tmp_path):
    tasks = make_tasks(tmp_path)
    work = new_store(tmp_path, tasks)
    work.write_chunk(0, slice(0, 2), chunk_dataset(run_chunk(tasks[:2], **kernel())))
    # a chunk written without its marker (killed mid-chunk) must not count as done
    write_region(
        work.store, slice(2, 4), chunk_dataset(run_chunk(tasks[2:4], **kernel()))
    )
    resumed = open_work(tmp_path / "out.zarr", {"plan": 1})
    assert resumed.created and resumed.completed() == {0}


def test_changed_plan_starts_afresh(tmp_path):
    tasks = make_tasks(tmp_path)
    work = new_store(tmp_path, tasks)
    work.write_chunk(0, slice(0, 2), chunk_dataset(run_chunk(tasks[:2], **kernel())))
    assert open_work(tmp_path / "out.zarr", {"plan": 2}).completed() == set()


def write_reasons(index, arrays, *, folder):
    """Chunk writer of the Dask test: one file of reasons per chunk."""
    (folder / str(index)).write_text(" ".join(arrays["reason"].tolist()))


def test_label_chunks_on_dask_writes_then_marks_every_pending_chunk(tmp_path):
    from functools import partial

    from dask.distributed import Client

    tasks = make_tasks(tmp_path)
    slices = chunk_slices(len(tasks), 2)
    marked = []
    with Client(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"
    ) as client:
        label_chunks(
            client,
            {i: tasks[slices[i]] for i in (0, 2)},
            write=partial(write_reasons, folder=tmp_path),
            mark=lambda i: marked.append((i, (tmp_path / str(i)).is_file())),
            **kernel(),
        )
    assert sorted(marked) == [(0, True), (2, True)]
    assert (tmp_path / "2").read_text() == "ok"


def test_work_emptied_by_an_interrupted_publish_starts_afresh(tmp_path):
    tasks = make_tasks(tmp_path)
    work = new_store(tmp_path, tasks)
    work.write_chunk(0, slice(0, 2), chunk_dataset(run_chunk(tasks[:2], **kernel())))
    work.store.rename(tmp_path / "moved.zarr")  # killed between rename and cleanup
    again = open_work(tmp_path / "out.zarr", {"plan": 1})
    assert not again.created and again.completed() == set()


def test_validate_store_checks_confidence(tmp_path):
    tasks = make_tasks(tmp_path)
    work = new_store(tmp_path, tasks)
    for i, s in enumerate(chunk_slices(len(tasks), 2)):
        work.write_chunk(i, s, chunk_dataset(run_chunk(tasks[s], **kernel())))
    ds = open_store(work.store).load()
    assert np.isnan(ds["confidence"].values[3])  # no image: not refined
    validate_store(ds.assign_attrs(ATTRS))
    ds["confidence"][1] = 1.5
    with pytest.raises(InputDataError, match=r"confidence must lie in \[0, 1\]"):
        validate_store(ds.assign_attrs(ATTRS))
    ds["confidence"][1] = 0.5
    ds["confidence"][0] = np.nan
    with pytest.raises(InputDataError, match="frame 0: kept without a confidence"):
        validate_store(ds.assign_attrs(ATTRS))


def test_confidence_check_discards_the_outlier_and_resumes_the_same(tmp_path):
    from ultrabones.engine import EngineParams
    from ultrabones.io.store import write_variables
    from ultrabones.sweep.store_io import apply_confidence_check

    tasks = make_tasks(tmp_path, n=6)
    work = new_store(tmp_path, tasks)
    for i, s in enumerate(chunk_slices(len(tasks), 2)):
        work.write_chunk(i, s, chunk_dataset(run_chunk(tasks[s], **kernel())))
    refined = np.zeros((6, 6))
    refined[4, 0] = 2.0  # frame 4 (kept) moved 2 mm, its neighbours not at all
    label = np.ones((6, *SHAPE), np.uint8)
    write_variables(work.store, {"pose_refined": refined, "label": label})
    work.save_sweep({"eps": None, "pilots": []})
    params = EngineParams(confidence_model=(2.197, 0, 0, 0, -2.0))  # logit(0.9)
    fiducials = np.array([[0, 0, 50.0], [30, 0, 50.0], [0, 30, 50.0]])
    for _ in range(2):  # the second run re-applies the saved results
        apply_confidence_check(work, params, fiducials)
        ds = open_store(work.store)
        assert ds["reason"].values[4] == "low_confidence"
        assert ds["status"].values[4] == "discarded"
        assert ds["confidence"].values[4] == pytest.approx(1 / (1 + np.exp(4 - 2.197)))
        assert ds["confidence"].values[0] == pytest.approx(0.9, abs=1e-4)
        assert ds["confidence_features"].values[4, 3] == pytest.approx(2.0)
        assert int(ds["label"].values[4].sum()) == 0
        assert int(ds["label"].values[0].sum()) == label[0].sum()
    assert work.load_sweep()["confidence_check"]["discarded"] == [4]
    validate_store(open_store(work.store).assign_attrs(ATTRS))


def published(tmp_path, n=5):
    """A published store of ``n`` frames (chunks of 2) and its path."""
    tasks = make_tasks(tmp_path, n=n)
    work = new_store(tmp_path, tasks)
    for i, s in enumerate(chunk_slices(len(tasks), 2)):
        work.write_chunk(i, s, chunk_dataset(run_chunk(tasks[s], **kernel())))
    work.publish(ATTRS)
    return tmp_path / "out.zarr"


def test_flags_are_stored_as_cf_codes_and_read_as_strings(tmp_path):
    import zarr

    store = published(tmp_path)
    raw = zarr.open_group(store, mode="r")["reason"]
    meanings = raw.attrs["flag_meanings"].split()
    assert raw.dtype == np.uint8 and raw.attrs["flag_values"] == list(range(14))
    assert [meanings[c] for c in raw[:]] == [
        "ok",
        "correction_too_large",
        "ok",
        "no_image",
        "ok",
    ]
    ds = open_store(store)
    assert ds["status"].values.tolist() == [
        "kept",
        "discarded",
        "kept",
        "no_image",
        "kept",
    ]


def test_read_variables_reads_what_open_store_reads(tmp_path):
    from ultrabones.io.store import read_variables
    from ultrabones.store import FRAME_VARIABLES

    tasks = make_tasks(tmp_path)
    work = new_store(tmp_path, tasks)
    # chunks 1 and 2 never written: their fill values (NaN, 0, unset) read the same
    work.write_chunk(0, slice(0, 2), chunk_dataset(run_chunk(tasks[:2], **kernel())))
    names = ["timestamp", *FRAME_VARIABLES]
    read, ds = read_variables(work.store, names), open_store(work.store)
    for name in names:
        want = ds[name].values
        assert read[name].dtype == want.dtype, name
        assert np.array_equal(read[name], want, equal_nan=want.dtype.kind == "f"), name
    assert read["reason"].tolist() == ["ok", "correction_too_large", "", "", ""]


def test_encode_flags_rejects_an_unknown_code():
    from ultrabones.store import encode_flags

    with pytest.raises(ValueError, match="not in"):
        encode_flags("reason", ["ok", "made_up"])


def test_decode_flags_marks_codes_beyond_the_meanings():
    from ultrabones.store import decode_flags

    ds = xr.Dataset(
        {
            "status": (
                "frame",
                np.array([1, 9], np.uint8),
                {"flag_meanings": "unset kept"},
            )
        }
    )
    assert decode_flags(ds)["status"].values.tolist() == ["kept", "invalid_code_9"]


def test_published_store_verifies_with_every_chunk_stored(tmp_path):
    from ultrabones.io.store import DIGESTS, verify_store

    store = published(tmp_path)
    verify_store(store)
    # masks of frame 3 (no image) are all zero, and still stored
    assert (store / "full_initial" / "c" / "1" / "0" / "0").is_file()
    assert "label/c/2/0/0" in (store / DIGESTS).read_text()


def flip_a_byte(chunk):
    """Flip the bits of the middle byte of a chunk file."""
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))


def test_flipped_bytes_in_a_chunk_fail_verification(tmp_path):
    from ultrabones.io.store import verify_store

    store = published(tmp_path)
    flip_a_byte(store / "image" / "c" / "1" / "0" / "0")
    with pytest.raises(InputDataError, match="image/c/1/0/0: content does not match"):
        verify_store(store)


def test_flipped_bytes_fail_to_decode(tmp_path):
    store = published(tmp_path)
    flip_a_byte(store / "label" / "c" / "0" / "0" / "0")
    with pytest.raises(Exception, match="(?i)checksum|crc"):
        open_store(store)["label"].load()


def test_deleted_chunk_fails_verification(tmp_path):
    from ultrabones.io.store import verify_store

    store = published(tmp_path)
    (store / "image" / "c" / "0" / "0" / "0").unlink()
    with pytest.raises(
        InputDataError, match="out.zarr: store corrupted: image/c/0/0/0: missing"
    ):
        verify_store(store)


def test_store_without_digests_fails_verification(tmp_path):
    from ultrabones.io.store import DIGESTS, verify_store

    store = published(tmp_path)
    (store / DIGESTS).unlink()
    with pytest.raises(InputDataError, match="no chunk digests"):
        verify_store(store)


def test_verify_store_command_removes_a_corrupted_store(tmp_path, capsys):
    from ultrabones.cli import main

    store = published(tmp_path)
    out = tmp_path / "verified.sha256"
    assert main(["verify-store", str(store), "--out", str(out)]) == 0
    assert out.read_text() == (store / "chunks.sha256").read_text()
    (store / "label" / "c" / "1" / "0" / "0").write_bytes(b"garbage")
    args = ["verify-store", str(store), "--remove-corrupt", "--out", str(out)]
    assert main(args) == 1
    assert "label/c/1/0/0" in capsys.readouterr().err and not store.exists()


def test_leftover_marker_tmp_does_not_block_a_resume(tmp_path):
    tasks = make_tasks(tmp_path)
    work = new_store(tmp_path, tasks)
    work.write_chunk(0, slice(0, 2), chunk_dataset(run_chunk(tasks[:2], **kernel())))
    # a marker write cut short (disk full) leaves its temporary file behind
    leftover = work.root / "done" / "1.tmp"
    leftover.write_text("[2,")
    resumed = open_work(tmp_path / "out.zarr", {"plan": 1})
    assert resumed.completed() == {0} and not leftover.exists()
