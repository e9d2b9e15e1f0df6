"""The audit pages: frame and sweep tables, overlays, the HTML and the command."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from test_store import ATTRS as STORE_ATTRS

from ultrabones.auditpage.images import FINAL_COLOUR, frame_overlay, shrink
from ultrabones.auditpage.tables import (
    FRAME_COLUMNS,
    INDEX_COLUMNS,
    cell,
    frame_table,
)
from ultrabones.errors import ConfigError, InputDataError
from ultrabones.io.png import read_png
from ultrabones.io.store import open_store
from ultrabones.io.tables import write_table
from ultrabones.qa import COLOURS
from ultrabones.release import reject_statistics, sweep_statistics
from ultrabones.store import as_str, encoding, status_of, template_dataset
from ultrabones.vocabulary import DISCARD_REASONS

SHAPE = (12, 20)
REASONS = ["ok", "ok", "correction_too_large", "low_confidence", "no_image", "ok"]
# the store tests' minimal attrs, with square pixels
ATTRS = {**STORE_ATTRS, "pixel_spacing_mm": [0.1, 0.1]}


def make_store(path, reasons=REASONS, *, sweep="tibia-1"):
    """Write a small valid label store: a bright curve as label, seeded values."""
    rng = np.random.default_rng(1234)
    n = len(reasons)
    ds = template_dataset(
        np.arange(n) * 88 + 1000,
        shape=SHAPE,
        spacing_mm=(0.1, 0.1),
        specimen="S01",
        sweep=sweep,
        chunk_frames=4,
        attrs=ATTRS,
    ).load()
    has_image = np.array([r != "no_image" for r in reasons])
    values = {"image": rng.integers(0, 200, (n, *SHAPE)) * has_image[:, None, None]}
    for k, name in enumerate(("full_initial", "full_refined", "label")):
        values[name] = np.zeros((n, *SHAPE))
        values[name][:, 5 + k, 2:18] = has_image[:, None]
    values["shadow"] = np.zeros((n, *SHAPE))
    values["shadow"][:, 6, 15:18] = has_image[:, None]
    values["oblique"] = np.zeros((n, *SHAPE))
    values["reason"] = reasons
    values["status"] = [status_of(r) for r in reasons]
    values["fiducial_correction_mm"] = np.where(has_image, rng.uniform(0, 2, n), np.nan)
    values["confidence"] = np.where(has_image, rng.uniform(0.2, 1, n), np.nan)
    values["objective"] = np.where(
        has_image[:, None], rng.uniform(0, 1, (n, 2)), np.nan
    )
    values["pose_initial"] = np.where(
        has_image[:, None], rng.normal(0, 10, (n, 6)), np.nan
    )
    values["pose_refined"] = values["pose_initial"] + [0.3, 0.0, 0.4, 1.0, 0.0, 0.0]
    for name, value in values.items():
        # new arrays: the template's equal lazy fills load as one shared array
        ds[name].values = np.asarray(value, dtype=ds[name].dtype)
    ds.to_zarr(
        path, mode="w", consolidated=False, zarr_format=3, encoding=encoding(ds, 4)
    )
    return path


class Table(HTMLParser):
    """Collect a page's table rows: attributes and (text, data-v) per cell."""

    def __init__(self):
        super().__init__()
        self.rows, self.heads, self._cell, self.images = [], [], None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-status" in attrs or tag == "tr" and self.heads:
            self.rows.append({"attrs": attrs, "cells": []})
        elif tag == "th":
            self.heads.append(attrs.get("data-key"))
        elif tag == "td" and self.rows:
            self._cell = [attrs.get("data-v"), ""]
            self.rows[-1]["cells"].append(self._cell)
        elif tag == "img":
            self.images.append(attrs)

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data


def parse(html: str) -> Table:
    table = Table()
    table.feed(html)
    return table


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "S01" / "tibia-1.zarr")


def audit_page(*argv: str) -> int:
    """Run ``ultrabones audit-page`` through its own parser."""
    import argparse

    from ultrabones.cli import audit_page as command

    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["audit-page", *argv])
    return command.run(args)


def write_stats(path, stores):
    """Write reject_statistics.csv of the stores as ``ultrabones release`` does."""
    table = reject_statistics(sweep_statistics(open_store(p)) for p in stores)
    write_table(path, table, precision="measured")
    return path


def png_rgb(path):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def has_colour(rgb, colour) -> bool:
    return bool(np.all(rgb == colour, axis=-1).any())


def test_cell_rounds_the_text_and_keeps_the_exact_value():
    assert cell(0.1234567, 3) == ("0.123", "0.1234567")
    assert cell(np.int64(12), 0) == ("12", "12")
    assert cell(np.nan, 3) == ("–", "")
    assert cell("ok", None) == ("ok", "ok")


def test_frame_table_has_gain_and_pose_change(store):
    ds = open_store(store)
    table = frame_table(ds)
    objective = ds["objective"].values
    refined = table["reason"] != "no_image"
    np.testing.assert_allclose(table["pose_change_mm"][refined], 0.5)
    np.testing.assert_allclose(table["pose_change_deg"][refined], 1.0)
    assert (
        table.loc[~refined, ["pose_change_mm", "objective_gain"]].isna().all(axis=None)
    )
    np.testing.assert_array_equal(
        table["objective_gain"], objective[:, 1] - objective[:, 0]
    )


def test_shrink_keeps_a_one_pixel_contour():
    image = np.full((40, 400), 100, np.uint8)
    line = np.zeros((40, 400), bool)
    line[17, :] = True
    small, masks = shrink(image, {"label": line}, cols=160)
    assert small.shape == (13, 133)
    assert masks["label"].any(axis=1).sum() == 1 and masks["label"].any(axis=0).all()


def test_overlay_draws_the_final_label_over_the_qa_colours():
    masks = {k: np.zeros((9, 9), bool) for k in (*COLOURS, "label")}
    masks["full_initial"][2, 1:8] = True
    masks["full_refined"][6, 1:8] = True
    masks["label"][6, 1:4] = True
    rgb = frame_overlay(np.zeros((9, 9), np.uint8), masks)
    assert tuple(rgb[2, 4]) == COLOURS["full_initial"]
    assert tuple(rgb[6, 7]) == COLOURS["full_refined"]
    assert tuple(rgb[6, 2]) == FINAL_COLOUR


def test_sweep_page_numbers_equal_the_store(store, tmp_path):
    audit_page(str(store), "--out", str(tmp_path / "page"))
    page = parse((tmp_path / "page" / "index.html").read_text())
    table = frame_table(open_store(store))
    assert len(page.rows) == len(table) == len(REASONS)
    assert page.heads == [None, *(k for k, _, _ in FRAME_COLUMNS)]
    for row, expected in zip(page.rows, table.to_dict("records"), strict=True):
        assert row["attrs"]["data-reason"] == expected["reason"]
        for (value, text), (key, _, digits) in zip(
            row["cells"][1:], FRAME_COLUMNS, strict=True
        ):
            assert (text, value) == cell(expected[key], digits)
            if digits and value:
                assert float(value) == expected[key]


def test_sweep_page_has_lazy_thumbnails_and_full_overlays(store, tmp_path):
    out = tmp_path / "page"
    audit_page(str(store), "--out", str(out))
    page = parse((out / "index.html").read_text())
    ds = open_store(store)
    stamps = ds["timestamp"].values[as_str(ds["reason"].values) != "no_image"]
    thumbs = [i for i in page.images if "data-src" in i]
    assert [i["data-src"] for i in thumbs] == [f"thumbs/{t}.png" for t in stamps]
    assert all(i["loading"] == "lazy" for i in thumbs)
    assert sorted(p.name for p in (out / "full").iterdir()) == sorted(
        f"{t}.png" for t in stamps
    )
    full = png_rgb(out / "full" / f"{stamps[0]}.png")
    assert full.shape == (*SHAPE, 3)
    for colour in (COLOURS["full_initial"], FINAL_COLOUR):
        assert has_colour(full, colour)
        assert has_colour(png_rgb(out / "thumbs" / f"{stamps[0]}.png"), colour)
    assert read_png(out / "timeline.png").shape[1] > 500
    assert (out / "audit.js").read_text().startswith("// ultrabones audit pages")


def test_pages_need_no_network(store, tmp_path):
    audit_page(str(store), "--out", str(tmp_path / "page"))
    for name in ("index.html", "audit.js", "audit.css"):
        text = (tmp_path / "page" / name).read_text()
        assert "http:" not in text and "https:" not in text and "//cdn" not in text


def test_pages_are_the_same_bytes_on_a_rerun(store, tmp_path):
    trees = []
    for name in ("a", "b"):
        audit_page(
            str(store), "--max-correction-mm", "1", "--out", str(tmp_path / name)
        )
        root = tmp_path / name
        trees.append({p.relative_to(root): p.read_bytes() for p in root.rglob("*.*")})
    assert trees[0] == trees[1] and len(trees[0]) == 2 * 5 + 4


def test_index_numbers_equal_the_reject_statistics_and_the_stores(tmp_path):
    stores = [
        make_store(tmp_path / "S01" / "tibia-1.zarr"),
        make_store(
            tmp_path / "S01" / "fibula-1.zarr",
            ["ok", "no_bone_in_view"] * 3,
            sweep="fibula-1",
        ),
    ]
    stats = write_stats(tmp_path / "reject_statistics.csv", stores)
    audit_page(*map(str, stores), "--stats", str(stats), "--out", str(tmp_path / "a"))
    page = parse((tmp_path / "a" / "index.html").read_text())
    csv = pd.read_csv(stats).set_index("sweep")
    assert [r["cells"][0][0] for r in page.rows] == ["S01/fibula-1", "S01/tibia-1"]
    assert {f"discarded_{r}" for r in DISCARD_REASONS} <= set(page.heads)
    for row, path in zip(page.rows, stores[::-1], strict=True):
        ds = open_store(path)
        kept = ds["confidence"].values[as_str(ds["reason"].values) == "ok"]
        expected = {
            **csv.loc[str(ds["sweep"].values)].to_dict(),
            "confidence_p10_kept": np.quantile(kept.astype(float), 0.1),
            "confidence_p90_kept": np.quantile(kept.astype(float), 0.9),
        }
        for (value, text), (key, _, digits) in zip(
            row["cells"][1:], INDEX_COLUMNS, strict=True
        ):
            assert (text, value) == cell(expected[key], digits), key
            assert float(value) == expected[key]


def test_index_links_each_sweep_page(store, tmp_path):
    stats = write_stats(tmp_path / "reject_statistics.csv", [store])
    audit_page(str(store), "--stats", str(stats), "--out", str(tmp_path / "audit"))
    html = (tmp_path / "audit" / "index.html").read_text()
    assert '<a href="S01/tibia-1/index.html">S01/tibia-1</a>' in html


def test_index_takes_the_declared_paths_as_the_rule_does(store, tmp_path):
    stats = write_stats(tmp_path / "reject_statistics.csv", [store])
    audit_page(str(store), "--stats", str(stats), "--out", str(tmp_path / "out"))
    named = {"index": "index.html", "script": "audit.js", "style": "audit.css"}
    paths = [a for k, n in named.items() for a in (f"--{k}", str(tmp_path / "a" / n))]
    audit_page(str(store), "--stats", str(stats), *paths)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(named.values())
    for name in named.values():
        assert (tmp_path / "a" / name).read_bytes() == (
            tmp_path / "out" / name
        ).read_bytes()


def test_index_refuses_a_script_away_from_the_page(store, tmp_path):
    # the page links audit.js and audit.css by name: they sit beside it
    stats = write_stats(tmp_path / "reject_statistics.csv", [store])
    page, script = tmp_path / "a" / "index.html", tmp_path / "b" / "audit.js"
    with pytest.raises(ConfigError) as err:
        audit_page(
            str(store), "--stats", str(stats), "--index", str(page),
            "--script", str(script), "--style", str(tmp_path / "a" / "audit.css"),
        )  # fmt: skip
    assert str(err.value).startswith(
        f"--script {script}: expected {tmp_path / 'a' / 'audit.js'}, "
        f"beside --index {page} (the index page links audit.js and audit.css by name)"
    )
    assert not (tmp_path / "a").exists()


def test_a_sweep_page_takes_a_folder_not_index_paths(store, tmp_path):
    with pytest.raises(ConfigError, match="a sweep page takes --out"):
        audit_page(str(store), "--index", str(tmp_path / "index.html"))
    with pytest.raises(ConfigError, match="a sweep page takes --out"):
        audit_page(str(store))


def test_index_without_the_sweeps_row_names_the_table(store, tmp_path):
    other = make_store(tmp_path / "S02.zarr", sweep="fibula-1")
    stats = write_stats(tmp_path / "reject_statistics.csv", [other])
    with pytest.raises(InputDataError, match="reject_statistics.csv: expected one row"):
        audit_page(str(store), "--stats", str(stats), "--out", str(tmp_path / "a"))


def test_index_with_a_missing_column_names_it(store, tmp_path):
    stats = write_stats(tmp_path / "stats.csv", [store])
    pd.read_csv(stats).drop(columns="discarded_low_confidence").to_csv(stats)
    with pytest.raises(InputDataError, match="stats.csv: missing .*low_confidence"):
        audit_page(str(store), "--stats", str(stats), "--out", str(tmp_path / "a"))


def test_missing_store_is_named(tmp_path):
    with pytest.raises(InputDataError, match="nothing.zarr: cannot open"):
        audit_page(str(tmp_path / "nothing.zarr"), "--out", str(tmp_path / "a"))


def test_two_stores_need_the_statistics(store, tmp_path):
    with pytest.raises(ConfigError, match="give --stats"):
        audit_page(str(store), str(store), "--out", str(tmp_path / "a"))


def dump_dom(url: str) -> str:
    """The DOM of a page after its script ran, from headless Chromium."""
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not found on PATH (make setup installs it as root)")
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def shown_rows(dom: str) -> list[dict]:
    return [r for r in parse(dom).rows if "hidden" not in r["attrs"]]


def test_page_script_filters_and_sorts_from_the_address(store, tmp_path):
    audit_page(str(store), "--out", str(tmp_path / "page"))
    url = (tmp_path / "page" / "index.html").as_uri()
    rows = shown_rows(dump_dom(f"{url}?reason=low_confidence"))
    assert [r["attrs"]["data-reason"] for r in rows] == ["low_confidence"]
    rows = shown_rows(dump_dom(f"{url}#status=kept&sort=confidence&order=desc"))
    confidence = [float(r["cells"][6][0]) for r in rows]
    assert len(rows) == REASONS.count("ok") and confidence == sorted(confidence)[::-1]
