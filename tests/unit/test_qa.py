"""QA overlays and figures."""

from __future__ import annotations

import numpy as np
from test_release import make_ds

from ultrabones.cli import main
from ultrabones.qa import COLOURS, contour, correction_figure, overlay_rgb, pick_frames
from ultrabones.release import reject_statistics, sweep_statistics


def test_contour_of_square_is_its_border():
    mask = np.zeros((5, 5), bool)
    mask[1:4, 1:4] = True
    ring = contour(mask)
    assert ring.sum() == 8 and not ring[2, 2]


def test_overlay_colours_follow_fig2():
    image = np.zeros((9, 9), np.uint8)
    full = np.zeros((9, 9), bool)
    full[1:8, 1:8] = True
    shadow = np.zeros((9, 9), bool)
    shadow[8, 0] = True
    masks = {
        "shadow": shadow,
        "oblique": np.zeros_like(full),
        "full_initial": full,
        "full_refined": np.zeros_like(full),
    }
    rgb = overlay_rgb(image, masks)
    assert tuple(rgb[1, 4]) == COLOURS["full_initial"]
    assert tuple(rgb[2, 4]) == COLOURS["full_initial"]
    assert tuple(rgb[4, 4]) == (0, 0, 0)


def test_pick_frames_prefers_kept():
    ds = make_ds(
        ["no_bone_in_view", "ok", "ok", "no_image"], [np.nan, 0.1, 0.2, np.nan]
    )
    assert pick_frames(ds, 5).tolist() == [1, 2]


def test_correction_figure_draws_bound():
    fig = correction_figure(make_ds(["ok"], [0.3]), max_correction_mm=1.0)
    assert fig.axes[0].get_xlabel() == "mean fiducial correction (mm)"


def test_qa_summary_writes_the_declared_path_or_into_out(tmp_path):
    from ultrabones.io.tables import write_table

    ds = make_ds(["ok", "ok", "no_image"], [0.1, 0.2, 0.0])
    stats = tmp_path / "reject_statistics.csv"
    write_table(stats, reject_statistics([sweep_statistics(ds)]))
    declared = tmp_path / "qa" / "rate.png"
    assert main(["qa-summary", str(stats), "--discard-rate", str(declared)]) == 0
    assert declared.stat().st_size > 0
    assert main(["qa-summary", str(stats), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "discard_rate.png").read_bytes() == declared.read_bytes()
    assert main(["qa-summary", str(stats)]) == 1  # neither: names what to give
