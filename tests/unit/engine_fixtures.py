"""The image grid and identity calibration shared by the engine tests."""

import numpy as np

from ultrabones.io.calibration import Calibration

SPACING = (0.1, 0.1)
SHAPE = (120, 160)  # rows, cols: 12 x 16 mm


def calibration(fiducials=((0, 0, 50.0), (30, 0, 50.0), (0, 30, 50.0))):
    """An identity image-to-probe calibration of the ``SHAPE`` grid."""
    return Calibration(
        probe_from_image=np.eye(4),
        pixel_spacing_mm=SPACING,
        image_size_px=(SHAPE[1], SHAPE[0]),
        probe_marker_fiducials_mm=np.asarray(fiducials, float),
    )
