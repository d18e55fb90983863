"""Fixtures for the bad-input catalogue: small and read-only file systems (tmpfs / bind mounts, as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _mount(target: Path, options: str) -> None:
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root on Linux to mount a small tmpfs (full-disk and read-only cases)")
    target.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({p.stderr.strip() or p.returncode})")


def _umount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.fixture
def readonly_dir(tmp_path):
    """An empty folder on a read-only file system (root ignores permission bits, so a mount it is)."""
    target = tmp_path / "readonly"
    _mount(target, "ro,size=1m")
    yield target
    _umount(target)


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a 2 MB tmpfs: a disk that fills up."""
    target = tmp_path / "small-disk"
    _mount(target, "size=2m")
    yield target
    _umount(target)


@pytest.fixture
def disk_factory(tmp_path):
    """``make(size)``: a fresh tmpfs of that size (e.g. "64m")."""
    mounted = []

    def make(size: str) -> Path:
        target = tmp_path / f"disk-{len(mounted)}"
        _mount(target, f"size={size}")
        mounted.append(target)
        return target

    yield make
    for target in mounted:
        _umount(target)


@pytest.fixture
def readonly_bind(tmp_path):
    """``make(folder)``: a read-only view of ``folder`` (a read-only bind mount)."""
    mounted = []

    def make(folder: Path) -> Path:
        target = tmp_path / f"ro-view-{len(mounted)}"
        if sys.platform != "linux" or os.geteuid() != 0:
            pytest.skip("needs root on Linux for a read-only bind mount")
        target.mkdir()
        for cmd in (["mount", "--bind", str(folder), str(target)],
                    ["mount", "-o", "remount,ro,bind", str(target)]):
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                _umount(target)
                pytest.skip(f"cannot make a read-only bind mount here ({p.stderr.strip()})")
        mounted.append(target)
        return target

    yield make
    for target in mounted:
        _umount(target)
