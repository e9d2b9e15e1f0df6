"""The rigid error our Z-phantom calibration leaves on simulated recordings (issue 16).

Sizes the simulator's record calibration error (``ERROR_MODELS["paper"]``,
``calib_mm``/``calib_deg`` in ``simulate/motion.py``): per seed, the paper preset's
Z-phantom recording is simulated and calibrated by ``ultrabones calibrate``; the
error ``inv(true probe_from_image) @ estimated`` is split into translations along
and rotations about the image axes (lateral, axial, elevational), and the RMS over
seeds is printed beside the calibration's own 3D (localization) error, the figure
the paper gives as 1.07 mm.

    .venv/bin/python docs/results/calibration_error.py --work /tmp/calerr \
        --seeds 1 2 3 4 5 6 7 8 9 10
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ultrabones.io.calibration import read_calibration
from ultrabones.transforms import invert_rigid, params_from_matrix

AXES = ["lateral_mm", "axial_mm", "elevational_mm", "rx_deg", "ry_deg", "rz_deg"]


def _run(*args: str) -> str:
    cli = str(Path(sys.executable).with_name("ultrabones"))  # the venv's command
    done = subprocess.run([cli, *args], capture_output=True, text=True, check=True)
    return done.stdout + done.stderr


def calibrate_seed(work: Path, seed: int) -> dict:
    """Simulate and calibrate one recording; return its error and 3D error."""
    sim, out = work / f"sim{seed}", work / f"cal{seed}"
    if not (out / "calibration.yaml").is_file():
        _run("simulate", "--preset", "paper", "--seed", str(seed), "--errors",
             "paper", "--recording", "zcal", "--out", str(sim))
        log = _run("calibrate", str(sim / "calibration" / "zcal"), "--out", str(out))
        (out / "calibrate.log").write_text(log)
    log = (out / "calibrate.log").read_text()
    true = read_calibration(sim / "truth" / "calibration.yaml").probe_from_image
    est = read_calibration(out / "calibration.yaml").probe_from_image
    error = params_from_matrix(invert_rigid(true) @ est)
    found = re.search(r"localization_error_mm: ([0-9.]+)", log)
    return {"seed": seed, "localization_error_mm": float(found.group(1))} | dict(
        zip(AXES, error, strict=True)
    )


def main(argv=None) -> None:
    """Run the calibrations and print the per-seed table and the RMS row."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(1, 11)))
    args = p.parse_args(argv)
    table = pd.DataFrame([calibrate_seed(args.work, s) for s in args.seeds])
    rms = np.sqrt((table[AXES] ** 2).mean()).to_frame().T.assign(seed="RMS")
    rms["localization_error_mm"] = table["localization_error_mm"].mean()
    print(pd.concat([table, rms]).to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
