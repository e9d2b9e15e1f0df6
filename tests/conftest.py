"""Shared fixtures: the real sample lives in ../shared and is never copied here."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "real"
REAL_SAMPLE = SHARED / "ultrabones-sample"
APPEARANCE = SHARED / "appearance"


@pytest.fixture(scope="session")
def real_sample() -> Path:
    """Path of the real record; skips (with the reason) when ../shared is absent."""
    if not (REAL_SAMPLE / "sweep_initial.csv").is_file():
        pytest.skip(f"real sample not found at {REAL_SAMPLE} (../shared is absent)")
    return REAL_SAMPLE


@pytest.fixture(scope="session")
def appearance_dir() -> Path:
    """Path of the real appearance frames; skips when ../shared is absent."""
    if not APPEARANCE.is_dir():
        pytest.skip(
            f"appearance frames not found at {APPEARANCE} (../shared is absent)"
        )
    return APPEARANCE


def pytest_collection_modifyitems(config, items):
    """Put the files with the most slow tests first, each file's tests in order.

    With ``-n 2 --dist loadfile --no-loadscope-reorder`` (``make pytest``) the two
    workers start on the end-to-end runs (``slow``: the shared tiny run's file, then
    the SLURM run) and the short files fill in behind them; by default xdist queues
    the files by their number of tests, which put the one-test SLURM file last.
    """
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])
