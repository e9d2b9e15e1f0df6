"""Shared fixtures: the real sample lives in ../shared and is never copied here."""

from __future__ import annotations

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
