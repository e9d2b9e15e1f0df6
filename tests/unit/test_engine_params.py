"""``EngineParams`` is the one list of engine parameters: options, config, schema."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import numpy as np
import pytest
import yaml

from ultrabones.cli import build_parser
from ultrabones.engine.features import bone_evidence, feature_maps
from ultrabones.engine.frame import _lit
from ultrabones.engine.params import EngineParams
from ultrabones.errors import ParameterError

CONFIG = Path(__file__).parents[2] / "config"
FIELDS = {f.name for f in dataclasses.fields(EngineParams)}


def subcommand(name):
    """Return the parser of one ``ultrabones`` subcommand."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices[name]


def options(parser) -> set:
    """Return a parser's long options as field names (``--gamma-mm`` -> gamma_mm)."""
    flags = (s for a in parser._actions for s in a.option_strings)
    return {f[2:].replace("-", "_") for f in flags if f.startswith("--")}


def config_engine() -> dict:
    return yaml.safe_load((CONFIG / "config.yaml").read_text())["engine"]


def schema_engine() -> dict:
    schema = yaml.safe_load((CONFIG / "schema.yaml").read_text())
    return schema["properties"]["engine"]["properties"]


def test_every_engine_param_is_a_label_sweep_option():
    # --max-failed-fraction etc. are the command's own; every field is an option
    assert FIELDS <= options(subcommand("label-sweep"))


def test_every_engine_param_is_a_bench_option():
    assert FIELDS <= options(subcommand("bench"))


def test_config_engine_section_lists_exactly_the_engine_params():
    # the workflow passes the whole section as options (rules/common.smk)
    assert set(config_engine()) == FIELDS


def test_schema_engine_section_lists_exactly_the_engine_params():
    assert set(schema_engine()) == FIELDS


def test_config_and_schema_defaults_are_the_engine_defaults():
    defaults = EngineParams().to_dict()
    assert config_engine() == defaults
    assert {k: v["default"] for k, v in schema_engine().items()} == defaults


def test_config_section_as_options_gives_the_default_params():
    # as rules/common.smk engine_options() writes them: --key value ...
    words = []
    for key, value in config_engine().items():
        values = value if isinstance(value, list) else [value]
        words += [f"--{key.replace('_', '-')}", *(shlex.quote(str(v)) for v in values)]
    argv = ["label-sweep", "rec", "--model", "m", "--out", "o"]
    argv += ["--specimen", "S", "--sweep", "W", *words]
    args = build_parser().parse_args(argv)
    from ultrabones.cli.options import engine_kwargs

    assert EngineParams(**engine_kwargs(args), seed=args.seed) == EngineParams()


def test_params_survive_their_json_round_trip():
    params = EngineParams(shadow_window_mm=[0.2, 1.5], evidence_percentiles=[25, 99])
    assert params.shadow_window_mm == (0.2, 1.5)
    assert EngineParams(**params.to_dict()) == params


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"evidence_percentiles": (99.5, 50.0)}, "evidence_percentiles must be two"),
        ({"evidence_percentiles": (50.0, 101.0)}, "evidence_percentiles must be two"),
        ({"shadow_window_mm": (0.4,)}, "shadow_window_mm must be two"),
        ({"facing_min": 1.0}, r"facing_min must be in \[0.0, 1.0\)"),
        ({"evidence_downsample": 0}, "evidence_downsample must be in"),
        ({"pull_back_fraction": -0.1}, "pull_back_fraction must be in"),
        ({"motion": "planar"}, "motion must be one of"),
    ],
)
def test_out_of_range_heuristics_are_refused_naming_them(kw, match):
    with pytest.raises(ParameterError, match=match):
        EngineParams(**kw)


def test_evidence_offset_shifts_the_evidence_and_prices_the_outside():
    rng = np.random.default_rng(1234)
    image = rng.integers(0, 256, (80, 60)).astype(np.uint8)
    base = feature_maps(image, spacing_mm=(0.1, 0.1))
    more = feature_maps(
        image, spacing_mm=(0.1, 0.1), params=EngineParams(evidence_offset=0.3)
    )
    np.testing.assert_allclose(base.evidence - more.evidence, 0.15, atol=1e-6)
    assert (base.outside, more.outside) == (-0.15, -0.3)


def test_shadow_window_and_percentiles_change_the_evidence():
    rng = np.random.default_rng(1234)
    image = rng.random((80, 60)).astype(np.float32)
    image[30:33] = 1.0  # a bright line with darkness below it
    image[33:] *= 0.2
    base = bone_evidence(image, spacing_mm=0.1)
    for kw in ({"shadow_window_mm": (0.2, 1.0)}, {"evidence_percentiles": (25, 99.5)}):
        other = bone_evidence(image, spacing_mm=0.1, params=EngineParams(**kw))
        assert not np.allclose(base, other), kw


def test_shadow_margin_decides_which_deeper_samples_are_lit():
    full = np.zeros((100, 10), bool)
    full[20, :5] = True  # a bone at 2.05 mm depth under columns 0-4
    deeper = np.array([[0.25, 2.05 + 1.0, 0.0]])  # 1 mm below its interface
    assert _lit(deeper, full, (0.1, 0.1), margin_mm=1.5).tolist() == [True]
    assert _lit(deeper, full, (0.1, 0.1), margin_mm=0.75).tolist() == [False]
