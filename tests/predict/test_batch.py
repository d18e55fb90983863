from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from PIL import Image
from predict_helpers import BandClassBackend, class_map_image, make_meta, write_geotiff

from terraseg.predict import expand_inputs, output_paths, predict_batch


def _scenes(folder, n=3):
    folder.mkdir(parents=True, exist_ok=True)
    cls, image = class_map_image(100, 110)
    paths = []
    for i in range(n):
        paths.append(write_geotiff(folder / f"scene{i}.tif", np.roll(image, 7 * i, axis=1)))
    return paths


def _mtimes(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_resume_skips_finished_files(tmp_path):
    inputs = _scenes(tmp_path / "in")
    backend = BandClassBackend(make_meta(tile_size=64))
    out = tmp_path / "out"
    first = predict_batch(backend, [tmp_path / "in"], out, vector="geojson")
    assert first.ok and len(first.done) == 3 and not first.skipped
    for p in inputs:
        assert all(path.exists() for path in first.outputs[p].values())
    before = _mtimes(out)
    assert len(before) == 3 * 8  # classes (+ .aux.xml, .qml), color, overlay, areas csv+json, polygons

    again = predict_batch(backend, [tmp_path / "in"], out, vector="geojson")
    assert again.ok and again.done == [] and len(again.skipped) == 3
    assert _mtimes(out) == before  # nothing rewritten

    # one output missing -> that file (only) is predicted again
    output_paths(inputs[1], out, name="scene1")["overlay"].unlink()
    third = predict_batch(backend, [tmp_path / "in"], out, vector="geojson")
    assert third.done == [inputs[1]] and len(third.skipped) == 2
    after = _mtimes(out)
    for name, mtime in before.items():
        if name.startswith("scene1_"):
            assert name in after
        else:
            assert after[name] == mtime, name

    # asking for an extra output makes every file unfinished
    fourth = predict_batch(backend, [tmp_path / "in"], out, vector="geojson", confidence=True)
    assert len(fourth.done) == 3


def test_failing_file_does_not_stop_batch(tmp_path):
    good = _scenes(tmp_path / "in", n=2)
    bad = tmp_path / "in" / "broken.tif"
    bad.write_bytes(b"II*\x00not really a tiff")
    lines = []
    backend = BandClassBackend(make_meta(tile_size=64))
    result = predict_batch(backend, [tmp_path / "in", tmp_path / "missing.tif"], tmp_path / "out", log=lines.append)
    assert not result.ok and result.exit_code == 1
    assert sorted(p.name for p, _ in result.failed) == ["broken.tif", "missing.tif"]
    assert result.done == good
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert any("broken.tif" in line for line in lines)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert not [n for n in names if n.startswith("broken") or n.startswith(".")]
    assert "scene0_classes.tif" in names and "scene1_classes.tif" in names


def test_expand_inputs_globs_folders_and_collisions(tmp_path):
    a = _scenes(tmp_path / "a", n=2)
    b = _scenes(tmp_path / "b", n=1)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    files = expand_inputs([tmp_path / "a", str(tmp_path / "b" / "*.tif"), a[0]])
    assert files == a + b  # de-duplicated, non-images left out
    with pytest.raises(Exception, match="no images found"):
        expand_inputs([str(tmp_path / "nothing" / "*.png")])
    backend = BandClassBackend(make_meta(tile_size=64))
    result = predict_batch(backend, [a[0], b[0]], tmp_path / "out", overlay=False, areas=False, color=False)
    assert result.ok
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"{s}_scene0_classes{ext}" for s in "ab" for ext in (".qml", ".tif", ".tif.aux.xml")]
    # outputs of an earlier run in the output folder are not taken as inputs
    again = expand_inputs([tmp_path / "out"] + [str(tmp_path / "a" / "*.tif")], exclude_dir=tmp_path / "out")
    assert again == a


# ------------------------------------------------------------------------------------------------
# the command line, with a real (tiny, random) torch bundle


def _run_cli(args, capsys):
    from terraseg.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["predict", *args])
    captured = capsys.readouterr()
    return exc.value.code, captured.out + captured.err


def test_cli_predicts_mixed_inputs_and_reports_failures(tmp_path, tiny_bundle, capsys):
    from terraseg.bundle import read_meta

    meta = read_meta(tiny_bundle)
    rng = np.random.default_rng(0)
    inp = tmp_path / "in"
    inp.mkdir()
    write_geotiff(inp / "geo.tif", (rng.random((150, 170, meta.in_channels)) * 255).astype(np.uint8))
    Image.fromarray((rng.random((90, 80, 3)) * 255).astype(np.uint8)).save(inp / "photo.jpg")
    out = tmp_path / "out"
    code, text = _run_cli([str(tiny_bundle), str(inp), "--out", str(out), "--vector", "gpkg", "--min-area", "4",
                           "--simplify", "0.5", "--confidence"], capsys)
    assert code in (0, None), text
    assert "2 predicted" in text
    for stem, ext in (("geo", ".tif"), ("photo", ".png")):
        assert (out / f"{stem}_classes{ext}").exists()
        assert (out / f"{stem}_color{ext}").exists()
        assert (out / f"{stem}_overlay.png").exists()
        assert (out / f"{stem}_confidence.tif").exists()
        assert (out / f"{stem}_polygons.gpkg").exists()
        report = json.loads((out / f"{stem}_areas.json").read_text())
        assert [r["class"] for r in report["classes"]] == meta.classes
    with rasterio.open(out / "geo_classes.tif") as ds:
        assert ds.crs.to_epsg() == 32640
        assert ds.read(1).max() < meta.num_classes

    # second run: everything skipped; a broken file makes the exit status 1 but the rest is done
    (inp / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    code, text = _run_cli([str(tiny_bundle), str(inp), "--out", str(out), "--vector", "gpkg", "--min-area", "4",
                           "--simplify", "0.5", "--confidence"], capsys)
    assert code == 1
    assert "broken.png" in text and "2 skipped" in text and "1 failed" in text
    assert not list(out.glob("broken*"))


def test_cli_user_errors_exit_2(tmp_path, tiny_bundle, capsys):
    write_geotiff(tmp_path / "x.tif", np.zeros((40, 40, 3), np.uint8))
    code, text = _run_cli([str(tmp_path / "no-bundle"), str(tmp_path / "x.tif"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "error:" in text and "no-bundle" in text
    code, text = _run_cli([str(tiny_bundle), str(tmp_path / "x.tif"), "--out", str(tmp_path / "o"),
                           "--backend", "torch", "--precision", "int8"], capsys)
    assert code == 2 and "onnx" in text.lower()  # int8 runs on ONNX Runtime (auto exports a bundle)
    code, text = _run_cli([str(tiny_bundle), str(tmp_path / "*.png"), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "no images found" in text
    code, text = _run_cli([str(tiny_bundle), str(tmp_path / "x.tif"), "--out", str(tmp_path / "o"),
                           "--tile-size", "64", "--overlap", "64"], capsys)
    assert code == 2 and "overlap" in text
    for flag, value, word in (("--blend", "box", "blend"), ("--vector", "shp", "vector format"),
                              ("--backend", "tensorflow", "unknown backend"), ("--precision", "fp8", "precision")):
        code, text = _run_cli([str(tiny_bundle), str(tmp_path / "x.tif"), "--out", str(tmp_path / "o"), flag, value],
                              capsys)
        assert code == 2 and word in text and len(text.strip().splitlines()) == 1, text
    assert not (tmp_path / "o").exists()


def test_resume_removes_temporaries_of_an_interrupted_run(tmp_path):
    inputs = _scenes(tmp_path / "in", n=2)
    backend = BandClassBackend(make_meta(tile_size=64))
    out = tmp_path / "out"
    assert predict_batch(backend, [tmp_path / "in"], out, vector="geojson").ok
    output_paths(inputs[0], out, name="scene0")["classes"].unlink()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # the killed run that left temporaries
    dead.wait()
    stale = [out / ".scene0_classes.k3j2h1ab.part.tif", out / f".scene0_polygons.{dead.pid}-x9y8z7w6.part.geojson"]
    kept = [out / ".scene10_classes.zzzzzzzz.part.tif",  # not a temporary of scene0's outputs
            out / f".scene0_color.{os.getpid()}-abcdefgh.part.tif"]  # a running process's
    for p in stale + kept:
        p.write_bytes(b"left by a killed run")
    again = predict_batch(backend, [tmp_path / "in"], out, vector="geojson")
    assert again.done == [inputs[0]] and again.skipped == [inputs[1]]
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
