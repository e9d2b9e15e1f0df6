import numpy as np
import pytest

from ultrabones.errors import InputDataError
from ultrabones.io.calibration import read_calibration
from ultrabones.io.phantom import (
    Device,
    read_device,
    read_phantom,
    read_phantom_recording,
    write_device,
    write_phantom,
)
from ultrabones.simulate.phantom import (
    phantom_from_image_path,
    phantom_geometry,
    simulate_recording,
    wire_points_image,
)
from ultrabones.simulate.presets import get_preset, true_probe


def test_phantom_yaml_roundtrip(tmp_path):
    phantom = phantom_geometry()
    write_phantom(tmp_path / "phantom.yaml", phantom)
    back = read_phantom(tmp_path / "phantom.yaml")
    assert back.names == phantom.names
    np.testing.assert_allclose(back.wires, phantom.wires)


def test_phantom_yaml_bad_wires_names_pattern(tmp_path):
    path = tmp_path / "phantom.yaml"
    path.write_text("z_patterns:\n  - name: a\n    wires: [[[0, 0, 0], [1, 1, 1]]]\n")
    with pytest.raises(InputDataError, match=r"phantom.yaml: z_patterns\[0\]"):
        read_phantom(path)


def test_device_roundtrip_and_missing_key(tmp_path):
    write_device(tmp_path / "device.yaml", Device((0.1, 0.2), (30, 20)))
    assert read_device(tmp_path / "device.yaml") == Device((0.1, 0.2), (30, 20))
    (tmp_path / "bad.yaml").write_text("pixel_spacing_mm: [0.1, 0.1]\n")
    with pytest.raises(InputDataError, match="bad.yaml: device is missing key"):
        read_device(tmp_path / "bad.yaml")


def test_wire_points_at_rest_pose_lie_on_the_wires():
    phantom = phantom_geometry()
    pose = phantom_from_image_path(
        [0.0], np.zeros((2, 6)) + [[1.0], [0.0]], image_size_mm=(50.0, 40.0)
    )[0]
    points = wire_points_image(phantom, pose)
    # At rest the image x axis is the phantom x axis and depth is phantom z.
    np.testing.assert_allclose(points[0, :, 0], [6.0, 13.5, 21.0], atol=1e-9)
    np.testing.assert_allclose(points[:, :, 1][:, 0], [10, 10, 20, 20, 30, 30])


def test_simulate_recording_layout_and_truth(tmp_path):
    root = simulate_recording(tmp_path, preset="tiny", seed=3, frames=12)
    recording = read_phantom_recording(root)
    truth = read_calibration(tmp_path / "truth" / "calibration.yaml")
    expected = true_probe(get_preset("tiny"), 3)
    assert len(recording.image_paths) == 12
    assert set(recording.streams) == {"probe", "phantom"}
    assert truth.dt_ms == pytest.approx(expected.dt_ms, abs=1e-6)
    np.testing.assert_allclose(
        truth.probe_from_image, expected.probe_from_image, atol=1e-6
    )


def test_simulate_recording_is_deterministic(tmp_path):
    a = simulate_recording(tmp_path / "a", preset="tiny", seed=5, frames=4)
    b = simulate_recording(tmp_path / "b", preset="tiny", seed=5, frames=4)
    for name in (
        "tracker.csv",
        "phantom.yaml",
        *(f"images/{p.name}" for p in (a / "images").glob("*.png")),
    ):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_simulate_recording_rejects_unknown_error_model(tmp_path):
    with pytest.raises(ValueError, match="errors must be one of"):
        simulate_recording(tmp_path, preset="tiny", seed=0, errors="some")
