"""Run directories travelling back from Ray nodes: limits, untrusted paths, links."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hyperjoule.execution._ray_files import ReturnedFile, pack_run_dir, unpack_run_dir


def _tree(root: Path) -> None:
    (root / "energy").mkdir(parents=True)
    (root / "attempt-1.log").write_text("Epoch 1\n")
    (root / "energy" / "cpu.csv").write_text("t_s,power_w\n0,1\n")
    (root / "checkpoint.pt").write_bytes(b"x" * 5000)


def test_small_files_travel_and_large_ones_stay_on_the_node(tmp_path: Path) -> None:
    node, home = tmp_path / "node", tmp_path / "home"
    _tree(node)
    packed = pack_run_dir(node, max_file_bytes=4096)
    assert sorted(f.path for f in packed.files) == ["attempt-1.log", "energy/cpu.csv"]
    assert packed.left_on_node == {"checkpoint.pt": str(node / "checkpoint.pt")}
    written = unpack_run_dir(packed.files, home)
    assert sorted(written) == ["attempt-1.log", "energy/cpu.csv"]
    assert (home / "energy" / "cpu.csv").read_text() == "t_s,power_w\n0,1\n"


def test_total_limit_keeps_the_largest_files_behind(tmp_path: Path) -> None:
    _tree(tmp_path)
    packed = pack_run_dir(tmp_path, max_total_bytes=100)
    assert {f.path for f in packed.files} == {"attempt-1.log", "energy/cpu.csv"}
    assert list(packed.left_on_node) == ["checkpoint.pt"]


def test_links_do_not_travel(tmp_path: Path) -> None:
    node = tmp_path / "node"
    _tree(node)
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    os.symlink(secret, node / "leak.txt")
    os.symlink(tmp_path, node / "up")
    packed = pack_run_dir(node)
    assert "leak.txt" not in {f.path for f in packed.files}
    assert sorted(packed.skipped) == ["leak.txt", "up"]
    assert all(b"private" not in f.data for f in packed.files)


@pytest.mark.parametrize("path", ["../evil", "/etc/evil", "a/../../evil", ""])
def test_unpacking_refuses_paths_outside_the_run_directory(tmp_path: Path, path: str) -> None:
    home = tmp_path / "home"
    with pytest.raises(ValueError, match="outside the run directory"):
        unpack_run_dir([ReturnedFile(path, b"x")], home)
    assert not (tmp_path / "evil").exists()


def test_unpacking_does_not_write_through_a_link(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, home / "energy")
    with pytest.raises(ValueError, match="through a link"):
        unpack_run_dir([ReturnedFile("energy/sub/cpu.csv", b"x")], home)
    assert list(elsewhere.iterdir()) == []
