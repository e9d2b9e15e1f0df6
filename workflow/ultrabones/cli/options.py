"""Options shared by commands, from the library's parameters (never re-typed)."""

from __future__ import annotations

__all__ = [
    "OWN_OPTIONS",
    "add_engine_options",
    "engine_fields",
    "engine_kwargs",
    "given",
]

#: ``EngineParams`` fields with an option of their own in a command (``--seed`` also
#: seeds the frames' tasks), so :func:`add_engine_options` leaves them out.
OWN_OPTIONS = ("seed",)


def _boolean(text: str) -> bool:
    """Parse a config boolean as the rule writes it (True/False)."""
    value = {"true": True, "false": False}.get(text.lower())
    if value is None:
        raise ValueError(f"expected true or false, got {text!r}")
    return value


def engine_fields(exclude=()) -> dict:
    """Return the ``EngineParams`` fields as ``{name: (type, default)}``.

    The dataclass is the one list of the engine's parameters: the options, the
    config's ``engine:`` section and the store's ``engine_params`` attr follow it.
    """
    import dataclasses
    import typing

    from ..engine.params import EngineParams

    hints = typing.get_type_hints(EngineParams)
    return {
        f.name: (hints[f.name], f.default)
        for f in dataclasses.fields(EngineParams)
        if f.name not in exclude
    }


def add_engine_options(parser, *, exclude=OWN_OPTIONS) -> None:
    """Add ``--kebab-name`` for each ``EngineParams`` field (default None: keep)."""
    for name, (kind, default) in engine_fields(exclude).items():
        shown = " ".join(map(str, default)) if kind is tuple else default
        kw = {"default": None, "help": f"EngineParams.{name} (default {shown})"}
        if kind is tuple:
            kw |= {"type": float, "nargs": "+"}
        else:
            kw["type"] = _boolean if kind is bool else kind
        parser.add_argument(f"--{name.replace('_', '-')}", **kw)


def engine_kwargs(args, *, exclude=OWN_OPTIONS) -> dict:
    """Return the ``EngineParams`` keywords of the engine options given in ``args``."""
    return given(args, *engine_fields(exclude))


def given(args, *names: str) -> dict:
    """Return the options of ``names`` given on the command line (not None).

    Options default to None and the library's keyword defaults apply: the library
    states each default once, and the CLI cannot drift from it.
    """
    values = {name: getattr(args, name) for name in names}
    return {k: v for k, v in values.items() if v is not None}
