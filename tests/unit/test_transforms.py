import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ultrabones import transforms as tf


def random_params(rng, n):
    return np.c_[rng.uniform(-100, 100, (n, 3)), rng.uniform(-170, 170, (n, 3))]


def test_inverse_composed_is_identity():
    T = tf.matrix_from_params(random_params(np.random.default_rng(1234), 20))
    np.testing.assert_allclose(
        tf.invert_rigid(T) @ T, np.broadcast_to(np.eye(4), T.shape), atol=1e-12
    )


def test_params_roundtrip():
    p = random_params(np.random.default_rng(1), 50)
    p[:, 4] = np.clip(p[:, 4], -80, 80)  # keep away from gimbal lock
    np.testing.assert_allclose(
        tf.params_from_matrix(tf.matrix_from_params(p)), p, atol=1e-9
    )


def test_euler_is_scipy_extrinsic_xyz():
    T = tf.matrix_from_params([0, 0, 0, 92.5, -0.47, 179.2])
    R = Rotation.from_euler("xyz", [92.5, -0.47, 179.2], degrees=True).as_matrix()
    np.testing.assert_allclose(T[:3, :3], R)


def test_chain_of_hand_built_transforms():
    ct_from_probe = tf.matrix_from_params([10, 0, 0, 0, 0, 90])
    probe_from_image = tf.matrix_from_params([0, 5, 0, 0, 0, 0])
    p = tf.apply_rigid(ct_from_probe @ probe_from_image, [[1.0, 0.0, 0.0]])
    # image (1,0,0) -> probe (1,5,0) -> rotate 90 about z: (-5,1,0) -> + (10,0,0)
    np.testing.assert_allclose(p, [[5.0, 1.0, 0.0]], atol=1e-12)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.eye(3), "shape"),
        (np.diag([1.0, 1.0, 2.0, 1.0]), "orthonormal"),
        (np.diag([1.0, 1.0, -1.0, 1.0]), "det"),
        (np.r_[np.eye(4)[:3], [[0, 0, 1, 1]]], "last row"),
        (np.full((4, 4), np.nan), "finite"),
    ],
)
def test_check_rigid_errors_name_the_transform(bad, match):
    with pytest.raises(ValueError, match=f"ct_from_probe.*{match}|{match}"):
        tf.check_rigid(bad, name="ct_from_probe")


def test_interpolate_hits_samples_and_midpoint():
    t = np.array([0.0, 10.0])
    T = tf.matrix_from_params([[0, 0, 0, 0, 0, 0], [10, 0, 0, 0, 0, 20]])
    out = tf.interpolate_rigid(t, T, [0.0, 5.0, 10.0])
    np.testing.assert_allclose(out[[0, 2]], T, atol=1e-12)
    np.testing.assert_allclose(
        tf.params_from_matrix(out[1]), [5, 0, 0, 0, 0, 10], atol=1e-9
    )


def test_interpolate_rejects_out_of_range():
    T = np.broadcast_to(np.eye(4), (2, 4, 4))
    with pytest.raises(ValueError, match="query_times"):
        tf.interpolate_rigid([0.0, 1.0], T, [2.0])


def test_fit_rigid_recovers_known_transform_batched():
    rng = np.random.default_rng(7)
    truth = tf.matrix_from_params(random_params(rng, 5))
    pts = rng.normal(size=(5, 12, 3)) * 20
    pts[..., 2] = 0.0  # coplanar, as image-plane points are
    fitted = tf.fit_rigid(pts, tf.apply_rigid(truth, pts))
    np.testing.assert_allclose(fitted, truth, atol=1e-9)


def test_points_image_from_rc_matches_image_from_pixel():
    rc = np.array([[3, 7], [0, 0], [810, 949]])
    pts = tf.points_image_from_rc(rc, (0.05392, 0.05392))
    hom = np.c_[rc, np.zeros(3), np.ones(3)] @ tf.image_from_pixel((0.05392, 0.05392)).T
    np.testing.assert_allclose(pts, hom[:, :3])
    np.testing.assert_allclose(pts[0], [7.5 * 0.05392, 3.5 * 0.05392, 0])
