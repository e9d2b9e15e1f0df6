"""End to end on the tiny case: run, rerun, report, snapshot, kill, resume, raw mode."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import raw_release
from workflow_helpers import (
    BIN,
    REPO,
    copy_workflow,
    job_counts,
    snakemake,
)

pytestmark = pytest.mark.slow

CASE = REPO / "tests" / "workflow" / "tiny"
ARGS = ("--cores", "2", "--configfile", "config/case.yaml", "--rerun-incomplete")
#: The release's manifest: the kill-and-resume run builds only what it covers (the
#: QC scores and audit pages it leaves out are checked on the uninterrupted run).
RELEASE = "results/release/manifest.sha256"
#: Generated folders whose contents vary between runs (times, PIDs, host).
IGNORED = ("logs", "benchmarks", ".snakemake")


def prepare(workdir: Path) -> Path:
    copy_workflow(workdir)
    (workdir / "config" / "case.yaml").write_text((CASE / "config.yaml").read_text())
    return workdir


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    workdir = prepare(tmp_path_factory.mktemp("tiny"))
    proc = snakemake(workdir, *ARGS)
    assert proc.returncode == 0, proc.stderr[-3000:] + failed_logs(workdir, proc)
    return workdir


def failed_logs(workdir: Path, proc) -> str:
    """The tails of the logs Snakemake names for failed jobs."""
    names = re.findall(r"log: (logs/\S+) \(check log", proc.stdout + proc.stderr)
    return "".join(
        f"\n--- {n}\n{(workdir / n).read_text()[-1500:]}"
        for n in dict.fromkeys(names)
        if (workdir / n).is_file()
    )


def result_files(workdir: Path) -> list[str]:
    root = workdir / "results"
    return sorted(
        p.relative_to(workdir).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith((".log", ".tsv"))
    )


def manifest(workdir: Path) -> str:
    return (workdir / "results" / "release" / "manifest.sha256").read_text()


#: Share of the snapshot's released frames whose kept/discarded outcome may differ on
#: another machine. The refinement's search amplifies the last-digit differences of
#: the CPU's BLAS kernels. At commit 4c20a59, on one machine, OpenBLAS's Haswell and
#: SkylakeX kernels released 42 and 36 of the tiny preset's 48 frames, and the
#: machine that made that snapshot released 33 (docs/results/test_budget.md).
FRAMES_MAY_FLIP = 0.35


def _frame_stamp(path: str) -> str | None:
    """Return the frame timestamp in a released file's name, or None."""
    found = re.search(r"(?<![\d-])(\d{5,})(?=[_.])", path.rsplit("/", 1)[-1])
    return found.group(1) if found else None


def _by_frame(names: list[str]) -> tuple[list[str], dict[str, frozenset]]:
    """Split release files into the per-release ones and each frame's file forms."""
    fixed, frames = [], {}
    for name in names:
        stamp = _frame_stamp(name)
        if stamp is None:
            fixed.append(name)
        else:
            frames.setdefault(stamp, set()).add(name.replace(stamp, "{t}"))
    return fixed, {k: frozenset(v) for k, v in frames.items()}


def test_release_files_match_snapshot(finished):
    """The release's files are the snapshot's; a few frames may flip (see above)."""
    files = [
        f
        for f in result_files(finished)
        if f.startswith("results/release/")
        and "/labels/" not in f
        and "/public/" not in f
        and "/audit/" not in f  # one thumbnail a frame: test_each_sweep_has_...
    ]
    fixed, frames = _by_frame(files)
    fixed_expected, expected = _by_frame(
        (CASE / "release_files.txt").read_text().split()
    )
    assert fixed == fixed_expected
    flipped = set(frames) ^ set(expected)
    assert len(flipped) <= FRAMES_MAY_FLIP * len(expected), sorted(flipped)
    for stamp in set(frames) & set(expected):
        assert frames[stamp] == expected[stamp], stamp
    # a frame the snapshot lacks is released in the forms of one of its sweep's frames
    for stamp in set(frames) - set(expected):
        assert frames[stamp] in expected.values(), stamp


def test_splits_match_snapshot_checksum(finished):
    from ultrabones.io.checksum import sha256_file

    got = sha256_file(finished / "results" / "release" / "splits.csv")
    assert got == (CASE / "splits.sha256").read_text().split()[0]


def test_public_export_holds_kept_frames_only(finished):
    import pandas as pd

    stats = pd.read_csv(finished / "results" / "release" / "reject_statistics.csv")
    for row in stats.itertuples():
        record = finished / "results" / "release" / "public" / row.specimen / row.sweep
        table = pd.read_csv(record / "sweepProcessedAndOptimized.csv")
        labels = list((record / "Label_partial_gradient").glob("*.png"))
        assert len(table) == len(labels) == row.kept


def test_manifest_verifies_with_sha256sum(finished):
    proc = subprocess.run(
        ["sha256sum", "--check", "--quiet", "manifest.sha256"],
        cwd=finished / "results" / "release",
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_stores_validate_and_statistics_have_a_row_per_sweep(finished):
    import pandas as pd

    from ultrabones.io.store import open_store
    from ultrabones.store import validate_store

    stores = sorted((finished / "results" / "label").glob("*/*.zarr"))
    for store in stores:
        validate_store(open_store(store))
    stats = pd.read_csv(finished / "results" / "release" / "reject_statistics.csv")
    assert len(stores) == len(stats) == 4
    assert (stats["rows"] == 12).all()


def test_second_run_has_nothing_to_do(finished):
    proc = snakemake(finished, *ARGS)
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_a_deleted_store_is_rebuilt_with_what_depends_on_it(finished):
    store = finished / "results" / "label" / "S01" / "tibia-1.zarr"
    aside = finished / "aside.zarr"
    store.rename(aside)
    try:
        proc = snakemake(finished, *ARGS, "--dry-run")
    finally:
        aside.rename(store)
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = job_counts(proc.stdout)
    assert counts["label_sweep"] == 1
    assert counts["build_release"] == 1 and counts["write_manifest"] == 1


def test_report_is_written(finished):
    import zipfile

    proc = snakemake(finished, *ARGS, "--report", "results/report.zip")
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = zipfile.ZipFile(finished / "results" / "report.zip").namelist()
    assert any(n.endswith("report.html") for n in names)
    # each sweep's audit page folder is a report item (htmlindex): its page, script
    # and timeline travel together in one folder of the zip
    folders = {n.rsplit("/", 1)[0] for n in names if n.endswith("/timeline.png")}
    pages = [
        f for f in folders if f"{f}/index.html" in names and f"{f}/audit.js" in names
    ]
    assert len(pages) == 4, sorted(folders)


def wait_for_chunk(workdir: Path, proc: subprocess.Popen, timeout: float = 600):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if list((workdir / "results" / "label").glob("*/*.zarr.wip/done/*")):
            return
        if proc.poll() is not None:
            pytest.fail("the run ended before any chunk was written")
        time.sleep(0.2)
    pytest.fail("no chunk written in time")


def comparable(workdir: Path) -> tuple[list[str], list[dict]]:
    """Manifest lines and store attrs without the git SHA (the lead may commit)."""
    lines = [
        line
        for line in manifest(workdir).splitlines()
        if not line.endswith(("README.md", ".zarr/zarr.json"))
    ]
    attrs = []
    for path in sorted((workdir / "results/release/labels").glob("*/*.zarr/zarr.json")):
        doc = json.loads(path.read_text())
        doc["attributes"].pop("git_sha")
        attrs.append(doc)
    return lines, attrs


#: What the kill-and-resume run takes from the uninterrupted one: every result
#: upstream of the label stores (the lambda choice sits in the release's QA), and
#: Snakemake's records of how each was made.
UPSTREAM = (
    *(f"results/{step}" for step in ("simulate", "calibrate", "register", "poses")),
    "results/model",
    "results/release/qa/lambda",
    ".snakemake/metadata",
)
#: ...and S02's finished sweeps (stores, digests, figures, public records): only
#: S01's two label jobs run, side by side (``--cores 2``), so the kill interrupts both.
FINISHED_SWEEPS = tuple(
    f"results/{step}/S02"
    for step in ("label", "verify", "release/qa", "release/public")
)


def upstream_of_labels(finished: Path, workdir: Path) -> None:
    """Copy ``finished``'s results upstream of the labels, and Snakemake's records.

    Modification times travel along (``copy2``), so Snakemake sees the copies as up
    to date and the run starts at ``label_sweep``: the simulation, calibration,
    poses, models and lambda choice are the uninterrupted run's, as are S02's
    sweeps; S01's stores and all that follows them are rebuilt.
    """
    for name in (*UPSTREAM, *FINISHED_SWEEPS):
        shutil.copytree(finished / name, workdir / name, symlinks=True)


def test_kill_during_refinement_then_resume_gives_same_release(finished, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    copy_workflow(workdir, finished)  # the same workflow files as the uninterrupted run
    upstream_of_labels(finished, workdir)
    dry = snakemake(workdir, *ARGS, RELEASE, "--dry-run")
    assert dry.returncode == 0, dry.stderr[-2000:]
    counts = job_counts(dry.stdout)
    assert counts["label_sweep"] == 2
    assert not {"simulate_sweep", "compute_poses", "select_lambda"} & set(counts), (
        counts
    )
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(
        [str(BIN / "snakemake"), *ARGS, RELEASE],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_chunk(workdir, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the run's own process group only
        proc.wait()
    assert snakemake(workdir, "--unlock").returncode == 0
    rerun = snakemake(workdir, *ARGS, RELEASE)
    assert rerun.returncode == 0, rerun.stderr[-3000:] + failed_logs(workdir, rerun)
    logs = "".join(
        p.read_text() for p in (workdir / "logs" / "label_sweep").rglob("*.log")
    )
    assert "resuming" in logs
    assert comparable(workdir) == comparable(finished)


#: What the raw comparison's simulate-mode run takes from the uninterrupted run: the
#: Z-phantom recording, specimen S01 and the jobs made of them alone (the same preset,
#: seed and settings in both cases), with Snakemake's records of them.
RAW_CASE_UPSTREAM = (
    "results/simulate/recording",
    "results/simulate/specimen/S01",
    "results/calibrate",
    "results/register/S01",
    "results/model/S01",
    ".snakemake/metadata",
)
#: The raw comparison's one sweep, simulated before both runs start.
RAW_CASE_SWEEP = "results/simulate/sweep/S01/tibia-1"
#: The jobs that those copies leave out of the raw comparison's simulate-mode run.
SHARED_JOBS = {
    "simulate_recording",
    "simulate_specimen",
    "calibrate_probe",
    "register_specimen",
    "prepare_specimen",
}


def test_raw_mode_on_a_simulated_cohort_gives_the_simulated_release(finished, tmp_path):
    """Raw mode (issue 15) on simulate mode's cohort folders: the same release.

    The case and what may differ: ``tests/raw_release.py``. The raw-mode run
    calibrates, registers and prepares from the raw folders itself; once the sweep
    is simulated, the two runs read only the cohort folders, so they run side by
    side.
    """
    simulated = raw_release.prepare(tmp_path / "simulate")
    for name in RAW_CASE_UPSTREAM:
        shutil.copytree(finished / name, simulated / name, symlinks=True)
    args = (raw_release.RELEASE, *raw_release.SIMULATE_ARGS)
    dry = snakemake(simulated, *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr[-3000:]
    counts = job_counts(dry.stdout)
    assert counts["simulate_sweep"] == counts["label_sweep"] == 1, counts
    assert not SHARED_JOBS & set(counts), counts
    sweep = snakemake(simulated, RAW_CASE_SWEEP, *raw_release.SIMULATE_ARGS)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    raw = raw_release.prepare(tmp_path / "raw")  # raw.yaml: ../simulate/results/...
    dry = snakemake(raw, "-n", *raw_release.RAW_ARGS)
    assert dry.returncode == 0, dry.stderr[-3000:]
    counts = job_counts(dry.stdout)
    assert SHARED_JOBS - {"simulate_recording", "simulate_specimen"} <= set(counts)
    assert "compute_poses" in counts, counts
    assert not any(r.startswith("simulate_") or r == "evaluate_sweep" for r in counts)
    with ThreadPoolExecutor(2) as pool:
        runs = {
            simulated: pool.submit(snakemake, simulated, *args),
            raw: pool.submit(
                snakemake, raw, raw_release.RELEASE, *raw_release.RAW_ARGS
            ),
        }
    for workdir, run in runs.items():
        proc = run.result()
        assert proc.returncode == 0, proc.stderr[-3000:] + failed_logs(workdir, proc)
    raw_release.compare_releases(simulated, raw)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def audit_page_path(workdir: Path, specimen: str = "", sweep: str = "") -> Path:
    return workdir / "results" / "release" / "audit" / specimen / sweep / "index.html"


def chromium(*args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium; skip the test when it is not installed."""
    if CHROMIUM is None:
        pytest.skip(
            "chromium not found on PATH (make setup installs Debian's chromium "
            "when run as root with apt-get)"
        )
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def page_rows(dom: str) -> list[tuple[str, str, bool]]:
    """(status, reason, shown) of each frame row of a sweep page's DOM."""
    found = re.findall(
        r'<tr data-status="(\w+)" data-reason="(\w+)"( hidden="")?>', dom
    )
    return [(status, reason, not hidden) for status, reason, hidden in found]


def sweep_stores(workdir: Path):
    from ultrabones.io.store import open_store
    from ultrabones.store import as_str

    for store in sorted((workdir / "results" / "label").glob("*/*.zarr")):
        ds = open_store(store)
        yield store.parent.name, store.stem, as_str(ds["reason"].values)


def test_each_sweep_has_its_audit_page(finished):
    import pandas as pd

    stats = pd.read_csv(finished / "results" / "release" / "reject_statistics.csv")
    index = audit_page_path(finished).read_text()
    for row in stats.itertuples():
        page = audit_page_path(finished, row.specimen, row.sweep)
        assert f'<a href="{row.specimen}/{row.sweep}/index.html">' in index
        assert len(page_rows(page.read_text())) == row.rows
        assert len(list((page.parent / "thumbs").glob("*.png"))) == row.frames
        assert (page.parent / "timeline.png").is_file()


def test_audit_pages_in_chromium_list_every_frame_and_filter_by_reason(finished):
    for specimen, sweep, reasons in sweep_stores(finished):
        url = audit_page_path(finished, specimen, sweep).as_uri()
        rows = page_rows(chromium("--dump-dom", url).stdout)
        assert [r for _, r, shown in rows if shown] == list(reasons)
        values, counts = np.unique(reasons, return_counts=True)
        reason = values[np.argmin(counts)]  # the rarest: a filter that hides most
        rows = page_rows(chromium("--dump-dom", f"{url}?reason={reason}").stdout)
        assert len(rows) == len(reasons)
        assert [r for _, r, shown in rows if shown] == [reason] * counts.min()


def test_audit_page_screenshot_is_not_blank(finished, tmp_path):
    from PIL import Image

    specimen, sweep, _ = next(sweep_stores(finished))
    shot = tmp_path / "page.png"
    url = audit_page_path(finished, specimen, sweep).as_uri()
    chromium(
        "--hide-scrollbars",
        "--window-size=1280,1400",
        "--virtual-time-budget=5000",
        f"--screenshot={shot}",
        url,
    )
    with Image.open(shot) as im:
        colours = np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)
    assert len(colours) > 50


def test_validate_command_passes_on_the_release(finished):
    proc = subprocess.run(
        [str(BIN / "ultrabones"), "validate", "results/release"],
        cwd=finished,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_exports_validate_against_kept_frames(finished):
    import pandas as pd

    release = finished / "results" / "release"
    kept = int(pd.read_csv(release / "reject_statistics.csv")["kept"].sum())
    (dataset,) = (release / "nnunet").glob("Dataset*")
    meta = json.loads((dataset / "dataset.json").read_text())
    assert meta["numTraining"] + len(list((dataset / "imagesTs").glob("*.png"))) == kept
    tracking = (release / "published").glob("*/ultrasound_records/*/*/tracking.csv")
    assert sum(len(pd.read_csv(t)) for t in tracking) == kept


def test_stores_validate_against_their_chunk_digests(finished):
    from ultrabones.io.store import DIGESTS, verify_store

    for store in sorted((finished / "results" / "label").glob("*/*.zarr")):
        verify_store(store)
        specimen, sweep = store.parent.name, store.name.removesuffix(".zarr")
        verified = finished / "results" / "verify" / specimen / f"{sweep}.sha256"
        assert verified.read_text() == (store / DIGESTS).read_text()
