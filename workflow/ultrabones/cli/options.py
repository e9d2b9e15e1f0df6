"""Options shared by commands, from the library's parameters (never re-typed)."""

from __future__ import annotations

__all__ = [
    "OWN_OPTIONS",
    "add_engine_options",
    "add_without_option",
    "engine_fields",
    "engine_kwargs",
    "given",
    "output_folder",
    "output_path",
    "release_folder",
]

#: ``EngineParams`` fields with an option of their own in a command (``--seed`` also
#: seeds the frames' tasks), so :func:`add_engine_options` leaves them out.
OWN_OPTIONS = ("seed",)


#: The release's checksum manifest, at the top of the release folder.
MANIFEST_NAME = "manifest.sha256"


def release_folder(path: str) -> str:
    """Return the release folder named by ``path``: the folder, or its manifest.

    The workflow hands the release's manifest (the file its rule declares); a person
    may name the folder.

    Examples
    --------
    >>> release_folder("results/release/manifest.sha256")
    'results/release'
    >>> release_folder("results/release")
    'results/release'
    """
    from pathlib import Path

    return str(Path(path).parent) if Path(path).name == MANIFEST_NAME else path


def output_path(args, option: str, name: str):
    """Return the path of an output: its own option, else ``name`` in ``--out``.

    The workflow names each output it declares; a person may name one folder.

    Parameters
    ----------
    args : argparse.Namespace
        With ``out`` (a folder or None) and ``option`` (a path or None).
    option : str
        The output's attribute in ``args`` (``"overlays"`` for ``--overlays``).
    name : str
        Its file name in the ``--out`` folder.

    Raises
    ------
    ConfigError
        If neither the output's option nor ``--out`` is given.

    Examples
    --------
    >>> from argparse import Namespace
    >>> output_path(Namespace(out="qa", overlays=None), "overlays", "overlays.png")
    PosixPath('qa/overlays.png')
    >>> output_path(Namespace(out="qa", overlays="o.png"), "overlays", "overlays.png")
    PosixPath('o.png')
    """
    from pathlib import Path

    from ..errors import ConfigError

    given_path = getattr(args, option)
    if given_path is not None:
        return Path(given_path)
    if args.out is None:
        flag = "--" + option.replace("_", "-")
        raise ConfigError(f"give {flag} or --out (the folder for {name})")
    return Path(args.out) / name


def output_folder(args, names: dict, *, why: str):
    """Return the one folder of outputs that sit side by side under fixed names.

    Each output is its own option's path, else its name in ``--out``
    (:func:`output_path`); together they must be ``names`` in one folder.

    Parameters
    ----------
    args : argparse.Namespace
        With ``out`` and an attribute per key of ``names``.
    names : dict
        Option attribute -> the output's file name in the folder.
    why : str
        Why the names are fixed, for the error.

    Raises
    ------
    ConfigError
        Naming each path off ``names`` in the folder of the first output, and the
        path expected.

    Examples
    --------
    >>> from argparse import Namespace
    >>> names = {"index": "index.html", "style": "audit.css"}
    >>> args = Namespace(out=None, index="a/index.html", style="a/audit.css")
    >>> output_folder(args, names, why="linked by name").as_posix()
    'a'
    """
    from ..errors import ConfigError

    paths = {option: output_path(args, option, name) for option, name in names.items()}
    first = next(iter(paths))
    folder = paths[first].parent
    wrong = [o for o, name in names.items() if paths[o] != folder / name]
    if not wrong:
        return folder
    flag = {o: "--" + o.replace("_", "-") for o in names}
    got = ", ".join(f"{flag[o]} {paths[o]}" for o in wrong)
    expected = ", ".join(str(folder / names[o]) for o in wrong)
    raise ConfigError(
        f"{got}: expected {expected}, beside {flag[first]} {paths[first]} ({why})"
    )


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


def add_without_option(parser, *, condition: str = "") -> None:
    """Add ``--without SOURCE ...``: the simulator sources to switch off.

    The command passes them to ``simulate.presets.without``; ``condition`` opens the
    help, e.g. ``"with --preset: "``.
    """
    parser.add_argument(
        "--without",
        nargs="+",
        default=[],
        metavar="SOURCE",
        help=f"{condition}switch these simulator sources off "
        "(ultrabones.simulate.presets.SOURCE_NAMES)",
    )


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
