"""Label engine: objective, refinement, physics filter and labels for one frame.

Public API (see ``docs/engine.md``)::

    from ultrabones.engine import (
        EngineParams, SpecimenModel, prepare_specimen, process_frame, FrameResult,
    )
"""

from .frame import process_frame
from .model import SpecimenModel, prepare_specimen
from .params import MASK_NAMES, OBJECTIVES, EngineParams, FrameResult
from .reasons import Reason

__all__ = [
    "MASK_NAMES",
    "OBJECTIVES",
    "EngineParams",
    "FrameResult",
    "Reason",
    "SpecimenModel",
    "prepare_specimen",
    "process_frame",
]
