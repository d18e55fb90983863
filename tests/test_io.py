"""Atomic writes: the final file appears only on success, with normal permissions."""

from __future__ import annotations

import os
import stat

import pytest

from terraseg._io import atomic_path, write_json_atomic


def test_success_renames_with_umask_permissions(tmp_path):
    target = tmp_path / "out.tif"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".tif" and tmp != target
        tmp.write_bytes(b"data")
        assert not target.exists()
    assert target.read_bytes() == b"data"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


def test_failure_leaves_nothing(tmp_path):
    target = tmp_path / "sub" / "out.json"
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise ValueError("boom")
    assert list((tmp_path / "sub").iterdir()) == []


def test_json_round_trip(tmp_path):
    import json

    path = write_json_atomic(tmp_path / "m.json", {"miou": 0.5, "classes": ["a"]})
    assert json.loads(path.read_text()) == {"miou": 0.5, "classes": ["a"]}


def test_pictures_are_saved_without_loading_every_pillow_plugin(tmp_path):
    """Each picture suffix names its Pillow format (asking Pillow for its suffix table imports all its
    plugins); the files written open as that format."""
    import subprocess
    import sys

    from terraseg.data.raster import PIL_FORMATS
    from terraseg.data.source import PIL_SUFFIXES

    assert PIL_FORMATS.keys() == PIL_SUFFIXES
    code = ("import sys, numpy as np; from terraseg.data.raster import write_raster; "
            f"write_raster({str(tmp_path / 'a.png')!r}, np.zeros((8, 8, 3), np.uint8)); "
            f"write_raster({str(tmp_path / 'a.jpg')!r}, np.zeros((8, 8, 3), np.uint8)); "
            "assert 'PIL.TiffImagePlugin' not in sys.modules and 'PIL.IcnsImagePlugin' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    from PIL import Image

    for suffix in (".png", ".jpg"):
        with Image.open(tmp_path / f"a{suffix}") as img:
            assert img.format == PIL_FORMATS[suffix]
