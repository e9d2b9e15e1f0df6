"""A default the workflow passes from config is the library's default, stated once.

The config (and its schema) repeat the library's value for the reader; these tests keep
them equal, and the commands' options default to None so the library decides.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from ultrabones.cli import build_parser

CONFIG = Path(__file__).parents[2] / "config"

#: (config key, library module, its constant, command, option dest)
CASES = [
    (
        "poses.max_gap_ms",
        "ultrabones.poses",
        "DEFAULT_MAX_GAP_MS",
        "poses",
        "max_gap_ms",
    ),
    (
        "calibrate.max_gap_ms",
        "ultrabones.calibrate",
        "DEFAULT_MAX_GAP_MS",
        "calibrate",
        "max_gap_ms",
    ),
    (
        "label.chunk_frames",
        "ultrabones.store",
        "DEFAULT_CHUNK_FRAMES",
        "label-sweep",
        "chunk_frames",
    ),
]


def _lookup(tree: dict, key: str, *, schema: bool = False):
    for part in key.split("."):
        tree = tree["properties"][part] if schema else tree[part]
    return tree["default"] if schema else tree


@pytest.mark.parametrize(("key", "module", "constant", "command", "dest"), CASES)
def test_config_schema_and_library_agree(key, module, constant, command, dest):
    value = getattr(importlib.import_module(module), constant)
    config = yaml.safe_load((CONFIG / "config.yaml").read_text())
    schema = yaml.safe_load((CONFIG / "schema.yaml").read_text())
    assert _lookup(config, key) == value
    assert _lookup(schema, key, schema=True) == value


@pytest.mark.parametrize(("key", "module", "constant", "command", "dest"), CASES)
def test_the_option_leaves_the_default_to_the_library(
    key, module, constant, command, dest
):
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    action = next(a for a in sub.choices[command]._actions if a.dest == dest)
    assert action.default is None
    assert constant in action.help
