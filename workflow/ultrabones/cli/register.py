"""``ultrabones register SPECIMEN_DIR``: specimen marker to CT (spheres, ICP, FRE)."""

from __future__ import annotations

import json
from pathlib import Path

from ..layout import truth_of


def add_parser(sub) -> None:
    """Register the ``register`` subcommand."""
    p = sub.add_parser(
        "register",
        help="register the specimen marker to the CT (fiducial spheres, ICP, FRE)",
    )
    p.add_argument(
        "specimen_dir",
        help="<cohort>/specimens/<S> with ct/marker_spheres.stl, markers/specimen.ini",
    )
    p.add_argument("--out", required=True, help="output JSON (ct_from_specimen, FRE)")
    p.add_argument(
        "--max-fre-mm",
        type=float,
        default=1.0,
        help="fail when the fiducial registration error exceeds this (mm)",
    )
    p.add_argument(
        "--radius-range-mm",
        type=float,
        nargs=2,
        default=(2.0, 10.0),
        metavar=("MIN", "MAX"),
        help="plausible fiducial sphere radii (mm)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    """Register, write the JSON and print FRE."""
    from ..io.markers import read_marker_ini
    from ..io.registration import write_registration
    from ..io.stl import read_stl
    from ..register import register_specimen

    folder = Path(args.specimen_dir)
    vertices, faces = read_stl(folder / "ct" / "marker_spheres.stl")
    _, fiducials = read_marker_ini(folder / "markers" / "specimen.ini")
    result = register_specimen(
        vertices,
        faces,
        fiducials,
        name=folder.name,
        max_fre_mm=args.max_fre_mm,
        radius_range_mm=tuple(args.radius_range_mm),
    )
    info = {
        "specimen": folder.name,
        "fre_mm": round(result.fre_mm, 6),
        "icp_rmse_mm": round(result.icp_rmse_mm, 6),
        "n_spheres": len(result.centres_ct),
        "sphere_radii_mm": [round(float(r), 4) for r in result.radii_mm],
        "pairs": result.pairs.tolist(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_registration(out, result.ct_from_specimen, info)
    summary = {k: info[k] for k in ("specimen", "fre_mm", "icp_rmse_mm", "n_spheres")}
    truth = truth_of(folder, "specimen")
    if truth and (truth / "ct_from_specimen.json").is_file():
        summary.update(_truth_errors(result.ct_from_specimen, truth))
    print(
        json.dumps(summary, indent=2)
        if args.json
        else "\n".join(f"{k}: {v}" for k, v in summary.items())
    )
    return 0


def _truth_errors(ct_from_specimen, truth: Path) -> dict:
    """Errors against the simulator's truth (absent for real cohorts)."""
    import numpy as np

    from ..io.registration import read_registration
    from ..transforms import invert_rigid, rotation_angle_deg

    delta = invert_rigid(read_registration(truth / "ct_from_specimen.json"))
    delta = delta @ ct_from_specimen
    return {
        "rotation_error_deg": round(float(rotation_angle_deg(delta)), 4),
        "translation_error_mm": round(float(np.linalg.norm(delta[:3, 3])), 4),
    }
