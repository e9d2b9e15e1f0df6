"""Procedural lower-leg anatomy: bone surfaces and the specimen marker's spheres.

Bones are built in a leg frame (x lateral, y posterior, z proximal, mm, ankle joint
near z = 0) and moved to CT by a per-specimen rigid ``ct_from_leg``. Long bones are
closed tubes whose cross-section radius varies with height and angle (triangular
tibia with an anterior crest, ridged fibula, flaring ends); the calcaneus is a
superellipsoid with low-frequency bumps. The talus is drawn too but has no CT model
(``Anatomy.unmodelled``): the imaged scene holds it, the CT folder does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..transforms import apply_rigid, matrix_from_params

__all__ = [
    "BONES",
    "SPHERE_RADIUS_MM",
    "UNMODELLED_BONES",
    "Anatomy",
    "make_anatomy",
    "sphere_surface",
    "tube_mesh",
]

BONES = ("Tibia", "Fibula", "Calcaneus")
#: Bones that are imaged but have no CT model, as the public sample lacks its tibia
#: and foot models.
UNMODELLED_BONES = ("Talus",)
SPHERE_RADIUS_MM = 5.75
#: Specimen marker sphere centres in the marker frame (mm), a rigid asymmetric star.
_MARKER_MM = ((0.0, 0.0, 0.0), (55.0, 0.0, 0.0), (0.0, 70.0, 0.0), (40.0, 60.0, 12.0))


@dataclass(frozen=True)
class Anatomy:
    """One specimen's geometry in CT coordinates.

    Attributes
    ----------
    bones : dict of str to (vertices, faces)
        Surface meshes, CT frame, mm.
    ct_from_leg : ndarray of shape (4, 4)
    ct_from_specimen : ndarray of shape (4, 4)
        True registration (specimen marker frame to CT).
    marker_mm : ndarray of shape (4, 3)
        Sphere centres in the specimen marker frame.
    axes : dict of str to ndarray of shape (m, 3)
        Centre line of each long bone in the leg frame (for probe paths).
    unmodelled : dict of str to (vertices, faces)
        Imaged bones without a CT model (``UNMODELLED_BONES``), CT frame, mm.
    """

    bones: dict
    ct_from_leg: np.ndarray
    ct_from_specimen: np.ndarray
    marker_mm: np.ndarray
    axes: dict
    unmodelled: dict


def _ring_faces(n_rings: int, n_phi: int) -> np.ndarray:
    """Quads between consecutive rings plus fans to a pole vertex at each end."""
    r, p = np.meshgrid(np.arange(n_rings - 1), np.arange(n_phi), indexing="ij")
    a = r * n_phi + p
    b = r * n_phi + (p + 1) % n_phi
    c, d = a + n_phi, b + n_phi
    quads = np.r_[
        np.c_[a.ravel(), b.ravel(), c.ravel()], np.c_[b.ravel(), d.ravel(), c.ravel()]
    ]
    south, north = n_rings * n_phi, n_rings * n_phi + 1
    ring0 = np.arange(n_phi)
    ringn = (n_rings - 1) * n_phi + ring0
    fan0 = np.c_[np.full(n_phi, south), (ring0 + 1) % n_phi, ring0]
    fann = np.c_[np.full(n_phi, north), ringn, ringn - ring0 + (ring0 + 1) % n_phi]
    return np.r_[quads, fan0, fann].astype(np.int64)


def tube_mesh(centre, radius, *, cap_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Close a tube given its centre line and a radius table.

    Parameters
    ----------
    centre : ndarray of shape (n, 3)
        Centre line, leg frame, roughly along z, mm.
    radius : ndarray of shape (n, m)
        Radius per ring (n) and angle (m, uniform over [0, 2 pi)), mm.
    cap_mm : float
        Length over which the ends round off like a hemisphere.

    Returns
    -------
    vertices : ndarray of shape (n * m + 2, 3)
    faces : ndarray of shape (2 n m, 3)
    """
    n, m = radius.shape
    phi = np.linspace(0, 2 * np.pi, m, endpoint=False)
    s = np.r_[0, np.cumsum(np.linalg.norm(np.diff(centre, axis=0), axis=1))]
    into = np.minimum(s - s[0], s[-1] - s) / cap_mm
    shrink = np.sqrt(np.clip(1 - (1 - np.clip(into, 0, 1)) ** 2, 1e-4, 1))
    r = radius * shrink[:, None]
    ring = np.stack([np.cos(phi), np.sin(phi), np.zeros(m)], axis=-1)
    v = centre[:, None, :] + r[..., None] * ring[None]
    poles = centre[[0, -1]] + np.array([[0, 0, -1.0], [0, 0, 1.0]]) * 0.3
    return np.r_[v.reshape(-1, 3), poles], _ring_faces(n, m)


def _harmonics(rng, phi, n_terms: int, scale: float) -> np.ndarray:
    """Smooth random angular modulation (bumps), one value per angle."""
    k = np.arange(2, 2 + n_terms)
    amp = rng.normal(0, scale, n_terms) / k
    phase = rng.uniform(0, 2 * np.pi, n_terms)
    return (amp[None] * np.cos(k[None] * phi[:, None] + phase[None])).sum(axis=1)


def _tibia(rng, *, n: int = 240, m: int = 120):
    z = np.linspace(8.0, 390.0, n)
    u = (z - z[0]) / (z[-1] - z[0])
    centre = np.c_[2.0 * np.sin(np.pi * u), -3.0 * np.sin(np.pi * u), z]
    phi = np.linspace(0, 2 * np.pi, m, endpoint=False)
    scale = rng.uniform(0.9, 1.1)
    shaft = (
        10.5
        + 13.0 * np.exp(-(((1 - u) / 0.09) ** 2))
        + 7.0 * np.exp(-((u / 0.07) ** 2))
    )
    # Triangular cross-section, apex (crest) pointing anterior (-y, phi = 270 deg).
    tri = 0.16 * np.cos(3 * (phi - 1.5 * np.pi))
    crest = 0.22 * np.exp(-((np.angle(np.exp(1j * (phi - 1.5 * np.pi))) / 0.25) ** 2))
    shaft_mid = np.sin(np.pi * u) ** 0.5
    wide = 1 + 0.35 * np.exp(-(((1 - u) / 0.09) ** 2))[:, None] * np.cos(phi) ** 2
    bumps = _harmonics(rng, phi, 6, 0.08)
    radius = (
        scale
        * shaft[:, None]
        * wide
        * (1 + shaft_mid[:, None] * (tri + crest)[None] + bumps[None])
    )
    return centre, radius


def _fibula(rng, *, n: int = 240, m: int = 100):
    z = np.linspace(-6.0, 370.0, n)
    u = (z - z[0]) / (z[-1] - z[0])
    centre = np.c_[
        27.0 + 3.0 * np.sin(np.pi * u) - 4.0 * u, 6.0 + 2.5 * np.sin(np.pi * u), z
    ]
    phi = np.linspace(0, 2 * np.pi, m, endpoint=False)
    scale = rng.uniform(0.9, 1.12)
    shaft = (
        5.8 + 4.5 * np.exp(-((u / 0.08) ** 2)) + 4.0 * np.exp(-(((1 - u) / 0.06) ** 2))
    )
    ridges = 0.12 * np.cos(4 * phi + rng.uniform(0, 2 * np.pi)) + 0.05 * np.cos(
        7 * phi + rng.uniform(0, 2 * np.pi)
    )
    twist = 1 + np.sin(np.pi * u)[:, None] * ridges[None]
    bumps = _harmonics(rng, phi, 5, 0.07)
    return centre, scale * shaft[:, None] * twist * (1 + bumps[None])


def _superellipsoid(
    rng, half, centre, *, n: int = 160, m: int = 140
) -> tuple[np.ndarray, np.ndarray]:
    """Superellipsoid (exponent ~2.6) of half axes ``half`` at ``centre``, bumpy."""
    theta = np.linspace(0, np.pi, n + 2)[1:-1]
    phi = np.linspace(0, 2 * np.pi, m, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    e = 2.0 / 2.6

    def spow(x):
        return np.sign(x) * np.abs(x) ** e

    d = np.stack(
        [
            spow(np.sin(t)) * spow(np.cos(p)),
            spow(np.sin(t)) * spow(np.sin(p)),
            spow(np.cos(t)),
        ],
        axis=-1,
    )
    bump = (
        1
        + np.outer(_harmonics(rng, theta, 4, 0.15), np.ones(m))
        + np.outer(np.ones(n), _harmonics(rng, phi, 5, 0.12))
    )
    v = centre + d * half * bump[..., None]
    v = v[::-1]  # rings from south (z < 0) to north so the faces point outward
    poles = centre + np.array([[0, 0, -half[2]], [0, 0, half[2]]]) * 0.999
    return np.r_[v.reshape(-1, 3), poles], _ring_faces(n, m)


def _calcaneus(rng) -> tuple[np.ndarray, np.ndarray]:
    """Calcaneus below and behind the ankle (half axes ~19 x 36 x 17 mm)."""
    half = np.array([19.0, 36.0, 17.0]) * rng.uniform(0.92, 1.08, 3)
    return _superellipsoid(rng, half, np.array([10.0, 14.0, -32.0]))


def _talus(rng) -> tuple[np.ndarray, np.ndarray]:
    """Talus on top of the calcaneus, under the tibia (half axes ~16 x 24 x 11 mm).

    It reaches into the proximal edge columns of the foot sweeps' images (their
    image width runs along the leg over the calcaneus).
    """
    # A little under an adult talus (about 40 x 55 x 30 mm; literature), so that it
    # only touches its neighbours' meshes.
    half = np.array([16.0, 24.0, 11.0]) * rng.uniform(0.92, 1.08, 3)
    return _superellipsoid(rng, half, np.array([8.0, 2.0, -6.0]), n=100, m=90)


def make_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw one specimen: bone meshes, registration and marker, CT frame."""
    ct_from_leg = matrix_from_params(
        np.r_[
            rng.uniform(-20, 20, 2) + (60.0, 300.0),
            rng.uniform(1050, 1150),
            rng.normal(0, 3, 2),
            rng.uniform(-180, 180),
        ]
    )
    tib_c, tib_r = _tibia(rng)
    fib_c, fib_r = _fibula(rng)
    meshes = {
        "Tibia": tube_mesh(tib_c, tib_r, cap_mm=18.0),
        "Fibula": tube_mesh(fib_c, fib_r, cap_mm=10.0),
        "Calcaneus": _calcaneus(rng),
    }
    bones = {k: (apply_rigid(ct_from_leg, v), f) for k, (v, f) in meshes.items()}
    leg_from_specimen = matrix_from_params(
        np.r_[-70.0, -40.0, 330.0, rng.normal(0, 10, 3) + (90.0, 0.0, 20.0)]
    )
    talus_v, talus_f = _talus(rng)
    return Anatomy(
        bones,
        ct_from_leg,
        ct_from_leg @ leg_from_specimen,
        np.asarray(_MARKER_MM),
        {"Tibia": tib_c, "Fibula": fib_c},
        {"Talus": (apply_rigid(ct_from_leg, talus_v), talus_f)},
    )


def sphere_surface(
    centres,
    *,
    rng: np.random.Generator,
    noise_mm: float,
    voxel_mm: float,
    shift_mm: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Mesh the fiducial spheres as a CT segmentation would: faceted, noisy, partial.

    Each sphere is a coarse UV sphere; vertices get radial noise of ``noise_mm`` and
    are snapped to a ``voxel_mm`` grid (0 disables both); the cap where the sphere sits
    on its post (a random direction) is missing; each sphere is displaced by
    N(0, ``shift_mm``) per axis.

    Returns
    -------
    vertices, faces : ndarray
        CT frame, mm.
    """
    n, m = 14, 24
    theta = np.linspace(0, np.pi, n + 2)[1:-1]
    phi = np.linspace(0, 2 * np.pi, m, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    unit = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1)
    unit = np.r_[unit.reshape(-1, 3), [[0, 0, -1.0], [0, 0, 1.0]]]
    faces = _ring_faces(n, m)
    all_v, all_f = [], []
    for k, c in enumerate(np.asarray(centres, dtype=np.float64)):
        r = SPHERE_RADIUS_MM + rng.normal(0, 1, len(unit)) * noise_mm
        v = c + rng.normal(0, 1, 3) * shift_mm + unit * r[:, None]
        if voxel_mm > 0:
            v = np.round(v / voxel_mm) * voxel_mm
        post = rng.normal(size=3)
        keep = (unit[faces].mean(axis=1) @ (post / np.linalg.norm(post))) < 0.8
        all_v.append(v)
        all_f.append(faces[keep] + k * len(unit))
    return np.concatenate(all_v), np.concatenate(all_f)
