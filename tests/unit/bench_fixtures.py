"""A small image grid and calibration shared by the bench and honesty tests."""

import numpy as np

from ultrabones.io.calibration import Calibration
from ultrabones.transforms import matrix_from_params

SPACING = (0.1, 0.2)
SHAPE = (80, 120)  # rows, cols: 16 x 12 mm


def calibration():
    return Calibration(
        probe_from_image=matrix_from_params([1.0, -2.0, 3.0, 10.0, -5.0, 30.0]),
        pixel_spacing_mm=SPACING,
        image_size_px=(SHAPE[1], SHAPE[0]),
        probe_marker_fiducials_mm=np.array([[0, 0, 50.0], [30, 0, 50.0]]),
    )
