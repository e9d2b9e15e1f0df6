"""Plain tables and YAML documents (cohort files, truth tables, statistics)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

__all__ = ["write_table", "write_yaml"]


def write_table(path: str | Path, table: pd.DataFrame) -> None:
    """Write a table as CSV (full float precision) or Parquet, by suffix.

    ``%.17g`` round-trips float64 exactly, so truth tables lose nothing.
    """
    path = Path(path)
    if path.suffix == ".parquet":
        table.to_parquet(path, index=False)
    else:
        table.to_csv(path, index=False, float_format="%.17g")


def write_yaml(path: str | Path, doc: dict) -> None:
    """Write a YAML document with keys in insertion order."""
    Path(path).write_text(yaml.safe_dump(doc, sort_keys=False))
