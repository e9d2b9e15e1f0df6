"""The label engine's per-specimen model on disk: one folder of ``.npy`` arrays.

::

    <dir>/
        model.json            bone names, spacing, density, array list (sorted keys)
        points.npy normals.npy weights.npy bone_index.npy cell_keys.npy cell_start.npy
        mesh_<bone>_vertices.npy  mesh_<bone>_faces.npy

``np.save`` writes no timestamps, so the same model gives the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputDataError

__all__ = ["read_specimen_model", "write_specimen_model"]

_ARRAYS = ("points", "normals", "weights", "bone_index", "cell_keys", "cell_start")
_FORMAT = "ultrabones-specimen-model/2"


def write_specimen_model(path: str | Path, model) -> None:
    """Write a :class:`~ultrabones.engine.SpecimenModel` into folder ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for name in _ARRAYS:
        np.save(path / f"{name}.npy", np.ascontiguousarray(getattr(model, name)))
    for bone in model.bone_names:
        np.save(path / f"mesh_{bone}_vertices.npy", model.vertices[bone])
        np.save(path / f"mesh_{bone}_faces.npy", model.faces[bone])
    doc = {
        "format": _FORMAT,
        "bone_names": list(model.bone_names),
        "spacing_mm": model.spacing_mm,
        "density_per_mm2": model.density_per_mm2,
    }
    (path / "model.json").write_text(json.dumps(doc, sort_keys=True, indent=1) + "\n")


def _load(path: Path, name: str) -> np.ndarray:
    try:
        return np.load(path / f"{name}.npy", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputDataError(f"{path / (name + '.npy')}: cannot read ({err})") from err


def read_specimen_model(path: str | Path) -> dict:
    """Read a model folder written by :func:`write_specimen_model`.

    Returns the keyword arguments of ``engine.model.SpecimenModel`` (io stays below
    the engine: ``SpecimenModel.load`` builds the model from them).

    Raises
    ------
    InputDataError
        If ``model.json`` or an array is missing or of another format.
    """
    path = Path(path)
    try:
        doc = json.loads((path / "model.json").read_text())
    except (OSError, ValueError) as err:
        raise InputDataError(f"{path / 'model.json'}: cannot read ({err})") from err
    if doc.get("format") != _FORMAT:
        raise InputDataError(
            f"{path / 'model.json'}: format must be {_FORMAT!r}, "
            f"got {doc.get('format')!r}"
        )
    names = tuple(doc["bone_names"])
    arrays = {name: _load(path, name) for name in _ARRAYS}
    return dict(
        bone_names=names,
        vertices={b: _load(path, f"mesh_{b}_vertices") for b in names},
        faces={b: _load(path, f"mesh_{b}_faces") for b in names},
        spacing_mm=float(doc["spacing_mm"]),
        density_per_mm2=float(doc["density_per_mm2"]),
        **arrays,
    )
