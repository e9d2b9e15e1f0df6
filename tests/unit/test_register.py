import json

import numpy as np
import open3d as o3d
import pytest

from ultrabones.cli import main
from ultrabones.errors import InputDataError, RegistrationError
from ultrabones.io.markers import write_marker_ini
from ultrabones.io.registration import read_registration, write_registration
from ultrabones.io.stl import write_stl
from ultrabones.register import fit_sphere, match_fiducials, register_specimen
from ultrabones.transforms import apply_rigid, invert_rigid, matrix_from_params

FIDUCIALS = np.array([[0, 0, 0], [55, 0, 0], [10, 70, 0], [48, 62, 15]], float)
CT_FROM_SPECIMEN = matrix_from_params([120.0, -40.0, 310.0, 20.0, -35.0, 110.0])


def _sphere_mesh(centres, radius, *, rng, noise_mm=0.05):
    verts, faces = [], []
    for c in centres:
        mesh = o3d.geometry.TriangleMesh.create_sphere(radius=radius, resolution=12)
        v = np.asarray(mesh.vertices) + c
        faces.append(np.asarray(mesh.triangles) + sum(len(x) for x in verts))
        verts.append(v + rng.normal(0, noise_mm, v.shape))
    return np.concatenate(verts), np.concatenate(faces)


def _ct_mesh(rng, *, extra=()):
    centres = apply_rigid(CT_FROM_SPECIMEN, FIDUCIALS)
    v, f = _sphere_mesh(np.r_[centres[[2, 0, 3, 1]]], 5.75, rng=rng)
    for centre, radius in extra:
        v2, f2 = _sphere_mesh([centre], radius, rng=rng)
        v, f = np.r_[v, v2], np.r_[f, f2 + len(v)]
    return v, f


def test_fit_sphere_known_answer():
    rng = np.random.default_rng(1)
    d = rng.normal(size=(200, 3))
    points = 4.0 * d / np.linalg.norm(d, axis=1, keepdims=True) + [1, 2, 3]
    centre, radius, rms = fit_sphere(points)
    np.testing.assert_allclose(centre, [1, 2, 3], atol=1e-9)
    assert radius == pytest.approx(4.0) and rms < 1e-9


def test_match_fiducials_finds_permutation():
    centres = apply_rigid(CT_FROM_SPECIMEN, FIDUCIALS)[[3, 1, 0, 2]]
    T, pairs, rms = match_fiducials(centres, FIDUCIALS)
    pairs = pairs[np.argsort(pairs[:, 0])]
    np.testing.assert_array_equal(pairs, [[0, 2], [1, 1], [2, 3], [3, 0]])
    np.testing.assert_allclose(T, CT_FROM_SPECIMEN, atol=1e-9)
    assert rms < 1e-9


def test_register_recovers_transform_and_rejects_distractor():
    rng = np.random.default_rng(2)
    v, f = _ct_mesh(rng, extra=[((0, 0, 0), 30.0)])
    result = register_specimen(v, f, FIDUCIALS, name="S01")
    delta = invert_rigid(CT_FROM_SPECIMEN) @ result.ct_from_specimen
    assert len(result.centres_ct) == 4
    assert np.linalg.norm(delta[:3, 3]) < 0.05
    assert result.fre_mm < 0.05


def test_register_fre_above_bound_names_specimen():
    rng = np.random.default_rng(3)
    v, f = _ct_mesh(rng)
    wrong = FIDUCIALS * [1.0, 1.05, 1.0]
    with pytest.raises(RegistrationError, match="specimen S07: fiducial registration"):
        register_specimen(v, f, wrong, name="S07", max_fre_mm=0.5)


def test_register_needs_three_spheres():
    rng = np.random.default_rng(4)
    v, f = _sphere_mesh(FIDUCIALS[:2], 5.75, rng=rng)
    with pytest.raises(RegistrationError, match="specimen S02: 2 plausible"):
        register_specimen(v, f, FIDUCIALS, name="S02")


def _specimen_dir(tmp_path, rng):
    folder = tmp_path / "S03"
    (folder / "ct").mkdir(parents=True)
    (folder / "markers").mkdir()
    write_stl(folder / "ct" / "marker_spheres.stl", *_ct_mesh(rng))
    write_marker_ini(folder / "markers" / "specimen.ini", 2000, FIDUCIALS)
    return folder


def test_cli_register_writes_readable_json(tmp_path, capsys):
    folder = _specimen_dir(tmp_path, np.random.default_rng(5))
    out = tmp_path / "reg.json"
    assert main(["register", str(folder), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["specimen"] == "S03" and summary["fre_mm"] < 0.05
    np.testing.assert_allclose(read_registration(out), CT_FROM_SPECIMEN, atol=0.05)


def test_cli_register_empty_stl_is_one_line_error(tmp_path, capsys):
    folder = _specimen_dir(tmp_path, np.random.default_rng(6))
    (folder / "ct" / "marker_spheres.stl").write_bytes(b"")
    assert main(["register", str(folder), "--out", str(tmp_path / "r.json")]) == 1
    assert "marker_spheres.stl: STL shorter" in capsys.readouterr().err


def test_read_registration_rejects_non_rigid(tmp_path):
    path = tmp_path / "reg.json"
    write_registration(path, CT_FROM_SPECIMEN, {})
    doc = json.loads(path.read_text())
    doc["ct_from_specimen"][0][0] = 2.0
    path.write_text(json.dumps(doc))
    with pytest.raises(InputDataError, match="reg.json: ct_from_specimen rotation"):
        read_registration(path)


def test_register_simulated_specimen_matches_truth(tmp_path):
    from ultrabones.transforms import rotation_angle_deg

    cohort = tmp_path / "c"
    args = ["--preset", "tiny", "--seed", "0", "--out", str(cohort)]
    assert main(["simulate", *args, "--specimen", "S01", "--errors", "none"]) == 0
    out = tmp_path / "reg.json"
    assert main(["register", str(cohort / "specimens" / "S01"), "--out", str(out)]) == 0
    truth = read_registration(
        cohort / "truth" / "specimens" / "S01" / "ct_from_specimen.json"
    )
    delta = invert_rigid(truth) @ read_registration(out)
    assert np.linalg.norm(delta[:3, 3]) < 0.3
    assert rotation_angle_deg(delta) < 0.1
