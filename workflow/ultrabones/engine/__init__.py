"""Label engine: objective, refinement, physics filter and labels for one frame.

Public API (see ``docs/engine.md``)::

    from ultrabones.engine import (
        EngineParams, SpecimenModel, prepare_specimen, process_frame, FrameResult,
    )

The frame and model modules (numba, scipy) load on first use, so a command line
that only reads ``EngineParams`` (``label-sweep``'s options) stays instant.
"""

import importlib

from ..vocabulary import Reason
from .params import OBJECTIVES, EngineParams, FrameResult

__all__ = [
    "OBJECTIVES",
    "EngineParams",
    "FrameResult",
    "Reason",
    "SpecimenModel",
    "prepare_specimen",
    "process_frame",
]

#: Names loaded on first use, and their modules.
_LAZY = {
    "process_frame": ".frame",
    "SpecimenModel": ".model",
    "prepare_specimen": ".model",
}


def __getattr__(name: str):
    """Import the heavy parts of the public API on first use (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
