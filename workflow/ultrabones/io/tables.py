"""Plain files: tables, JSON, YAML, text and figures, each written one way.

Their bytes depend only on their content: LF line ends, sorted JSON keys, PNGs without
Matplotlib's version stamp, and one float format per kind of table
(:data:`FLOAT_FORMATS`). Every writer creates the file's folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

__all__ = [
    "FLOAT_FORMATS",
    "read_table",
    "save_figure",
    "write_json",
    "write_rows",
    "write_table",
    "write_text",
    "write_yaml",
]

#: CSV float format by what a table holds.
FLOAT_FORMATS = {
    # round-trips float64: the simulator's truth and the record's poses lose nothing
    "exact": "%.17g",
    # 1e-10 relative, far below any measurement: tracker streams, per-frame engine
    # tables, release statistics and exports
    "measured": "%.10g",
    # six digits for scores and reports that people read
    "report": "%.6g",
}


def _parent(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_table(path: str | Path, table: pd.DataFrame, *, precision="exact") -> None:
    """Write a table as CSV (floats as ``FLOAT_FORMATS[precision]``) or Parquet.

    The suffix decides: ``.parquet`` is Parquet (full precision), anything else CSV.
    """
    path = _parent(path)
    if path.suffix == ".parquet":
        table.to_parquet(path, index=False)
    else:
        fmt = FLOAT_FORMATS[precision]
        table.to_csv(path, index=False, float_format=fmt, lineterminator="\n")


def write_rows(path: str | Path, rows: list[dict], *, precision="report") -> None:
    """Write rows (dicts with the same keys) as a CSV table."""
    write_table(path, pd.DataFrame(rows), precision=precision)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV table."""
    return pd.read_csv(path)


def write_text(path: str | Path, text: str) -> None:
    """Write a text file."""
    _parent(path).write_text(text)


def write_json(path: str | Path, doc, *, indent: int = 1) -> None:
    """Write a JSON document with sorted keys and a final newline."""
    write_text(path, json.dumps(doc, sort_keys=True, indent=indent) + "\n")


def write_yaml(path: str | Path, doc: dict) -> None:
    """Write a YAML document with keys in insertion order."""
    write_text(path, yaml.safe_dump(doc, sort_keys=False))


def save_figure(fig, path: str | Path) -> None:
    """Save a Matplotlib figure as PNG (100 dpi) without the version stamp."""
    fig.savefig(_parent(path), format="png", dpi=100, metadata={"Software": None})
