"""Path recipes of the raw acquisition layout and of the simulator's truth beside it.

The one place that knows how a cohort folder is laid out (``docs/data-layout.md``)::

    <cohort>/calibration/<recording>/     Z-phantom recording
    <cohort>/specimens/<S>/               a specimen: ct/, markers/
    <cohort>/specimens/<S>/ct/bones/      its CT bone models
    <cohort>/specimens/<S>/sweeps/<W>/    a tracked sweep
    <cohort>/truth/...                    the simulator's truth, mirroring the above
    <cohort>/truth/calibration.yaml       the true probe calibration

and the file names of a release folder (:data:`RELEASE_FILES`).

The simulator writes it, the commands read it, and the workflow's rules load this file
by its path (it imports nothing of the package: the Snakefile parses without it).
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "RELEASE_FILES",
    "bones_folder",
    "cohort_of",
    "recording_folder",
    "release_paths",
    "specimen_folder",
    "sweep_folder",
    "true_calibration",
    "truth_of",
]

#: Depth of each kind of folder below its cohort, and the folder that holds it.
_DEPTH = {"recording": 2, "specimen": 2, "sweep": 4}
_PARENT = {"recording": "calibration", "specimen": "specimens", "sweep": "sweeps"}

#: What ``ultrabones release`` writes, by its option (``--labels`` ...): the names in
#: the release folder. croissant.json names the tables relative to that folder, and the
#: readers of a release (train, validate, the exports) find them by these names.
RELEASE_FILES = {
    "labels": "labels",  # labels/<specimen>/<sweep>.zarr
    "splits": "splits.csv",
    "stats": "reject_statistics.csv",
    "card": "README.md",
    "croissant": "croissant.json",
    "citation": "CITATION.cff",
}


def recording_folder(cohort, recording: str) -> Path:
    """Return the folder of a Z-phantom recording of a cohort.

    >>> recording_folder("c", "zcal").as_posix()
    'c/calibration/zcal'
    """
    return Path(cohort) / "calibration" / recording


def specimen_folder(cohort, specimen: str) -> Path:
    """Return the folder of a specimen of a cohort.

    >>> specimen_folder("c", "S01").as_posix()
    'c/specimens/S01'
    """
    return Path(cohort) / "specimens" / specimen


def bones_folder(specimen: Path | str) -> Path:
    """Return the bone models folder of a specimen folder."""
    return Path(specimen) / "ct" / "bones"


def sweep_folder(cohort, specimen: str, sweep: str) -> Path:
    """Return the folder of a sweep of a cohort.

    >>> sweep_folder("c", "S01", "tibia-1").as_posix()
    'c/specimens/S01/sweeps/tibia-1'
    """
    return specimen_folder(cohort, specimen) / "sweeps" / sweep


def cohort_of(folder, kind: str) -> Path | None:
    """Return the cohort of a ``kind`` folder (recording, specimen, sweep), or None.

    None when the folder does not sit where the layout puts that kind.

    >>> cohort_of("c/specimens/S01/sweeps/tibia-1", "sweep").as_posix()
    'c'
    >>> cohort_of("elsewhere/tibia-1", "sweep") is None
    True
    """
    parts, depth = Path(folder).parts, _DEPTH[kind]
    if len(parts) < depth or parts[-2] != _PARENT[kind]:
        return None
    return Path(*parts[:-depth])


def truth_of(folder, kind: str) -> Path | None:
    """Return the simulator's truth folder of a ``kind`` folder, or None.

    >>> truth_of("c/specimens/S01/sweeps/tibia-1", "sweep").as_posix()
    'c/truth/specimens/S01/sweeps/tibia-1'
    """
    cohort = cohort_of(folder, kind)
    if cohort is None:
        return None
    return cohort / "truth" / Path(folder).relative_to(cohort)


def true_calibration(cohort) -> Path:
    """Return the simulator's true probe calibration of a cohort."""
    return Path(cohort) / "truth" / "calibration.yaml"


def release_paths(folder) -> dict[str, Path]:
    """Return the files of a release folder, by their key in :data:`RELEASE_FILES`.

    >>> release_paths("results/release")["splits"].as_posix()
    'results/release/splits.csv'
    """
    return {key: Path(folder) / name for key, name in RELEASE_FILES.items()}
