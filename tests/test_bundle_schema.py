"""A bundle.json of the wrong type or value is one line naming the key, in every loader and command."""

from __future__ import annotations

import json
import shutil

import pytest

from terraseg.bundle import META_NAME, BundleMeta, read_meta
from terraseg.errors import ModelError

CASES = [
    ("tile_size", "512", "key 'tile_size': must be an integer, got '512'"),
    ("std", [58.0, 0.0, 57.0], "key 'std[1]': must be > 0, got 0.0"),
    ("mean", [float("nan"), 120.0, 110.0], "key 'mean[0]': must be a finite number, got nan"),
    ("mean", [120.0, 110.0], "key 'mean': must have 3 item(s) (in_channels is 3), got 2"),
    ("classes", None, "key 'classes': missing; it is required"),
    ("band_indexes", [0, 1, 2], "key 'band_indexes[0]': must be >= 1, got 0"),
    ("resolution", -0.5, "key 'resolution': must be > 0, got -0.5"),
    ("colors", "red", "key 'colors': must be a list, got 'red'"),
]


def _broken_bundle(tiny_bundle, folder, key, value):
    shutil.copytree(tiny_bundle, folder)
    d = json.loads((tiny_bundle / META_NAME).read_text())
    d.setdefault("mean", [120.0, 115.0, 100.0])
    d.setdefault("std", [50.0, 50.0, 50.0])
    if value is None:
        del d[key]
    else:
        d[key] = value
    (folder / META_NAME).write_text(json.dumps(d))  # json writes NaN as NaN, as Python's json reads it
    return folder


@pytest.mark.parametrize("key, value, message", CASES)
def test_read_meta_names_the_key(tiny_bundle, tmp_path, key, value, message):
    folder = _broken_bundle(tiny_bundle, tmp_path / "b", key, value)
    with pytest.raises(ModelError) as info:
        read_meta(folder)
    assert str(info.value) == f"{folder / META_NAME}: {message}"


def test_new_fields_round_trip(tiny_bundle, tmp_path):
    meta = read_meta(tiny_bundle)
    d = meta.to_json()
    d.update(band_indexes=[4, 3, 2], resolution=0.3)
    again = BundleMeta.from_json(json.loads(json.dumps(d)))
    assert again.band_indexes == [4, 3, 2] and again.resolution == 0.3
    assert read_meta(tiny_bundle).band_indexes is None and read_meta(tiny_bundle).resolution is None


def _cli(args, capsys):
    from terraseg.cli import main

    with pytest.raises(SystemExit) as exc:  # an uncaught exception (a traceback) fails the test
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return exc.value.code, captured.err + captured.out


@pytest.mark.parametrize("key, value, message", CASES[:5])
def test_predict_and_export_refuse_a_bad_bundle_in_one_line(tiny_bundle, sample_dataset, tmp_path, capsys, key,
                                                            value, message):
    folder = _broken_bundle(tiny_bundle, tmp_path / "b", key, value)
    image = next((sample_dataset.parent / "images").glob("*.png"))
    for args in (["predict", folder, image, "-o", tmp_path / "pred"], ["export", folder, "--onnx", tmp_path / "m.onnx"]):
        code, output = _cli(args, capsys)
        lines = [ln for ln in output.splitlines() if ln.strip()]
        assert (code, lines) == (2, [f"error: {folder / META_NAME}: {message}"]), args[0]
    assert not (tmp_path / "m.onnx").exists()
    written = [p for p in tmp_path.joinpath("pred").rglob("*") if p.is_file()]
    assert written == []
