"""Provenance: config hash, relative input paths, content checksums."""

from __future__ import annotations

import json

import pytest

from ultrabones.io.checksum import sha256_path
from ultrabones.provenance import (
    config_hash,
    input_digest,
    provenance,
    relative_path,
)


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": {"c": 2}}) == config_hash({"b": {"c": 2}, "a": 1})


def test_config_hash_changes_with_a_value():
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_relative_path_is_never_absolute(tmp_path):
    assert relative_path(tmp_path / "x" / "y", root=tmp_path) == "x/y"


def test_folder_checksum_follows_content_not_location(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "sub" / "f.txt").write_text("same")
    assert sha256_path(tmp_path / "a") == sha256_path(tmp_path / "b")
    (tmp_path / "b" / "sub" / "f.txt").write_text("other")
    assert sha256_path(tmp_path / "a") != sha256_path(tmp_path / "b")


@pytest.mark.parametrize("digest", [sha256_path, input_digest])
def test_digests_follow_the_record_layouts_linked_images(tmp_path, digest):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "1.png").write_bytes(b"x")
    (tmp_path / "record").mkdir()
    (tmp_path / "record" / "UltrasoundImages").symlink_to(tmp_path / "images")
    before = digest(tmp_path / "record")
    (tmp_path / "images" / "1.png").write_bytes(b"y")
    assert digest(tmp_path / "record") != before


def test_provenance_records_relative_inputs(tmp_path):
    (tmp_path / "in.txt").write_text("data")
    attrs = provenance([tmp_path / "in.txt"], config_hash="h", root=tmp_path)
    assert json.loads(attrs["inputs"]) == {"in.txt": input_digest(tmp_path / "in.txt")}
    assert attrs["config_hash"] == "h" and attrs["ultrabones_version"]


def test_input_digest_equals_the_folder_checksum_without_links(tmp_path):
    (tmp_path / "record" / "UltrasoundImages").mkdir(parents=True)
    (tmp_path / "record" / "UltrasoundImages" / "1.png").write_bytes(b"x")
    (tmp_path / "record" / "calibration.yaml").write_text("a: 1")
    # same digest as before links were handled, so resumable plans stay valid
    assert input_digest(tmp_path / "record") == sha256_path(tmp_path / "record")


def test_input_digest_hashes_a_link_out_of_the_record_as_its_text(tmp_path):
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "big.bin").write_bytes(b"a")
    record = tmp_path / "record"
    record.mkdir()
    (record / "sweep_initial.csv").write_text("timestamp\n")
    (record / "usr").symlink_to(outside, target_is_directory=True)
    before = input_digest(record)
    # a walk of the link would see this change; the digest must not
    (outside / "deep" / "big.bin").write_bytes(b"b")
    assert input_digest(record) == before
    (record / "usr").unlink()
    (record / "usr").symlink_to(tmp_path, target_is_directory=True)
    assert input_digest(record) != before
