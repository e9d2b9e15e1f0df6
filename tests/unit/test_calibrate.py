import json

import numpy as np
import pytest

from ultrabones.calibrate import calibrate_recording, paper_lag_grid
from ultrabones.calibrate.dots import assign_triples, detect_dots, dot_threshold
from ultrabones.calibrate.lag import covered_frames
from ultrabones.calibrate.zgeometry import middle_points_phantom
from ultrabones.cli import main
from ultrabones.errors import CalibrationError
from ultrabones.io.calibration import read_calibration
from ultrabones.io.phantom import read_phantom_recording
from ultrabones.io.png import read_png
from ultrabones.io.tracker import MarkerStream
from ultrabones.simulate.phantom import simulate_recording
from ultrabones.transforms import invert_rigid, rotation_angle_deg

SEED = 11


@pytest.fixture(scope="module")
def clean_cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("zcal")
    simulate_recording(out, preset="tiny", seed=SEED, errors="none", frames=40)
    return out


def _images(recording):
    return ((t, read_png(p)) for t, p in recording.image_paths.items())


def test_paper_lag_grid_has_3000_candidates():
    grid = paper_lag_grid()
    assert grid.size == 3000
    assert (grid[0], grid[-1]) == (-300.0, -0.1)


def test_middle_point_of_tilted_plane_uses_distance_ratio():
    wires = np.array(
        [
            [
                [[0, 0, 0], [0, 20, 0]],
                [[0, 0, 0], [10, 20, 0]],
                [[10, 0, 0], [10, 20, 0]],
            ]
        ],
        float,
    )
    # The plane meets wire 1 at y=4, wire 3 at y=12: the diagonal at x=10 r.
    a, c = np.array([0.0, 4, 0]), np.array([10.0, 12, 0])
    r = 4 / (20 - 12 + 4)
    b = np.array([10 * r, 20 * r, 0])
    # Image coordinates: any rigid placement of the three collinear dots.
    dist = np.linalg.norm([b - a, c - a], axis=1)
    dots = np.array([[[0, 0, 0], [dist[0], 0, 0], [dist[1], 0, 0]]])
    np.testing.assert_allclose(middle_points_phantom(dots, wires)[0], b, atol=1e-12)


def test_detect_dots_is_sub_pixel():
    rows, cols = np.mgrid[0:60, 0:80]
    image = np.full((60, 80), 20.0)
    for r, c in ((10.25, 12.6), (30.7, 40.4)):
        image += 200 * np.exp(-((rows - r) ** 2 / 8 + (cols - c) ** 2 / 18))
    rc = detect_dots(image)
    rc = rc[np.argsort(rc[:, 0])]
    np.testing.assert_allclose(rc, [[10.25, 12.6], [30.7, 40.4]], atol=0.02)


def test_detect_dots_gives_ndimages_centres_to_the_bit(clean_cohort):
    # the blob-pixel sums are center_of_mass's terms in its order: the same bits
    from scipy import ndimage

    recording = read_phantom_recording(clean_cohort / "calibration" / "zcal")
    for _, image in list(_images(recording))[:5]:
        smooth = ndimage.gaussian_filter(image.astype(np.float64), 1.5)
        threshold = dot_threshold(smooth, 8.0)
        labels, count = ndimage.label(smooth > threshold)
        index = np.arange(1, count + 1)
        area = ndimage.sum_labels(np.ones_like(smooth), labels, index)
        centres = np.asarray(ndimage.center_of_mass(smooth - threshold, labels, index))
        rc = detect_dots(image)
        assert rc.shape[0] >= 3
        np.testing.assert_array_equal(rc, centres[area >= 4])


def test_assign_triples_orders_bands_then_columns():
    rc = np.array([[50, 5], [10, 30], [51, 1], [11, 10], [49, 9], [10, 20]], float)
    triples = assign_triples(rc, n_patterns=2, spacing_mm=(1.0, 1.0))
    np.testing.assert_array_equal(triples[0][:, 1], [10, 20, 30])
    np.testing.assert_array_equal(triples[1][:, 1], [1, 5, 9])


def test_assign_triples_rejects_wrong_count():
    assert assign_triples(np.zeros((5, 2)), n_patterns=2, spacing_mm=(1, 1)) is None


def test_covered_frames_excludes_long_dropouts():
    stamps = np.arange(0, 1001, 10)
    visible = np.ones(stamps.size, bool)
    visible[50:60] = False  # 500..590 ms missing: a 110 ms gap
    stream = MarkerStream(stamps, np.tile(np.eye(4), (stamps.size, 1, 1)), visible)
    frames = np.array([50, 400, 550, 800, 1000])
    covered = covered_frames(frames, stream, dt_ms=[-40.0, -10.0], max_gap_ms=50)
    np.testing.assert_array_equal(covered, [True, True, False, True, True])


def test_lag_and_calibration_recovered_without_errors(clean_cohort):
    recording = read_phantom_recording(clean_cohort / "calibration" / "zcal")
    truth = read_calibration(clean_cohort / "truth" / "calibration.yaml")
    grid = np.round(np.arange(-20, 20, 0.1) + round(truth.dt_ms, 1), 1)
    result = calibrate_recording(recording, _images(recording), dt_ms=grid)
    delta = invert_rigid(truth.probe_from_image) @ result.probe_from_image
    assert abs(result.dt_ms - truth.dt_ms) < 0.3
    assert rotation_angle_deg(delta) < 0.05
    assert np.linalg.norm(delta[:3, 3]) < 0.05
    assert result.localization_error_mm < 0.1


def test_calibration_fails_without_dots(clean_cohort):
    recording = read_phantom_recording(clean_cohort / "calibration" / "zcal")
    blank = ((t, np.zeros((406, 475), np.uint8)) for t in recording.image_paths)
    with pytest.raises(CalibrationError, match="0 frame"):
        calibrate_recording(recording, blank, dt_ms=[-100.0, -99.9])


def test_wrong_size_frames_are_skipped(clean_cohort, caplog):
    recording = read_phantom_recording(clean_cohort / "calibration" / "zcal")
    small = ((t, np.zeros((10, 10), np.uint8)) for t in recording.image_paths)
    with pytest.raises(CalibrationError, match="need at least 10"):
        calibrate_recording(recording, small, dt_ms=[-100.0])
    assert "png: image is 10x10 px, expected 475x406" in caplog.text


def test_cli_writes_calibration_with_truth_errors(clean_cohort, tmp_path, capsys):
    code = main(
        [
            "calibrate",
            str(clean_cohort / "calibration" / "zcal"),
            "--out",
            str(tmp_path),
            "--json",
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    calibration = read_calibration(tmp_path / "calibration.yaml")
    assert code == 0
    assert abs(summary["dt_error_ms"]) < 0.3
    assert summary["candidates"] == 3000
    assert calibration.dt_ms == summary["dt_ms"]
    assert (tmp_path / "error_curve.csv").read_text().count("\n") == 3001
    assert (tmp_path / "error_curve.png").stat().st_size > 0


def test_chosen_lag_is_parabola_vertex_within_window():
    from ultrabones.calibrate.lag import LagCurve

    dt = paper_lag_grid()
    # Quadratic objective with its vertex at -123.37 ms plus a ripple at 60 Hz.
    rms = np.sqrt(1 + 1e-3 * (dt + 123.37) ** 2 + 0.002 * np.sin(dt / 2.65))
    curve = LagCurve(dt, np.zeros((dt.size, 4, 4)), rms, rms)
    assert curve.dt_ms[curve.chosen(window_ms=40)] == pytest.approx(-123.4)
    assert curve.chosen(window_ms=0) == curve.best
