"""The app and `terraseg predict` give the same outputs for the same file (issue 9, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner


def _cli(model, image: Path, out: Path, *extra: str) -> None:
    from terraseg.cli import app

    res = CliRunner().invoke(app, ["predict", str(model), str(image), "--out", str(out), *extra])
    assert res.exit_code == 0, res.output


def _app(qtbot, window, model, image: Path, out: Path) -> dict[str, Path]:
    assert window.open_image(image) and window.open_model(model)
    with qtbot.waitSignal(window.predictionFinished, timeout=120000):
        assert window.start_prediction()
    qtbot.waitUntil(lambda: window.run is None, timeout=60000)
    return window.save_all(out)


def _report(path: Path) -> dict:
    report = json.loads(path.read_text())
    report.pop("input")  # the path as each caller spelled it
    return report


def _same_outputs(app_out: dict[str, Path], cli_dir: Path, stem: str, classes_ext: str) -> None:
    assert app_out["classes"].name == f"{stem}_classes{classes_ext}"
    cli_classes = cli_dir / app_out["classes"].name
    assert app_out["classes"].read_bytes() == cli_classes.read_bytes()  # byte for byte
    assert app_out["color"].read_bytes() == (cli_dir / app_out["color"].name).read_bytes()
    assert app_out["areas"].read_text() == (cli_dir / f"{stem}_areas.csv").read_text()
    assert _report(app_out["areas"].with_suffix(".json")) == _report(cli_dir / f"{stem}_areas.json")


def test_geotiff_through_the_app_and_the_cli_is_byte_identical(qtbot, window, errors, tiny_bundle, sample_images,
                                                              tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    from terraseg.data.raster import read_raster

    arr = read_raster(sample_images[1])
    tif = tmp_path / "scene.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=3, dtype="uint8",
                       crs="EPSG:32640", transform=from_origin(500000.0, 2770000.0, 0.5, 0.5)) as dst:
        dst.write(np.moveaxis(arr, -1, 0))
    _cli(tiny_bundle, tif, tmp_path / "cli")
    out = _app(qtbot, window, tiny_bundle, tif, tmp_path / "app")
    assert errors == []
    _same_outputs(out, tmp_path / "cli", "scene", ".tif")
    with rasterio.open(out["classes"]) as src:  # a real GeoTIFF with the input's georeference
        assert src.crs.to_epsg() == 32640 and src.res == (0.5, 0.5)
    # the legend shows the report the CLI wrote
    report = json.loads((tmp_path / "cli" / "scene_areas.json").read_text())
    assert [e[2] for e in window.legend.entries()] == [row["ha"] for row in report["classes"]]


def test_rgba_png_behaves_as_in_the_cli(qtbot, window, errors, tiny_bundle, sample_images, tmp_path):
    """Alpha is the nodata mask in both: transparent pixels get the ignore value, the rest is predicted."""
    from PIL import Image

    from terraseg.data.raster import read_raster

    rgb = read_raster(sample_images[2])
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[: rgb.shape[0] // 3, : rgb.shape[1] // 2] = 0
    png = tmp_path / "cutout.png"
    Image.fromarray(np.dstack([rgb, alpha])).save(png)
    _cli(tiny_bundle, png, tmp_path / "cli")
    assert window.open_image(png) and window.image_doc.bands == 3  # the alpha band is the mask, not a band
    out = _app(qtbot, window, tiny_bundle, png, tmp_path / "app")
    assert errors == []
    _same_outputs(out, tmp_path / "cli", "cutout", ".png")
    with Image.open(out["classes"]) as img:
        classes = np.asarray(img)
    ignore = window.model_doc.meta.ignore_index
    assert (classes[alpha == 0] == ignore).all() and (classes[alpha == 255] < 5).all()
    report = json.loads(out["areas"].with_suffix(".json").read_text())
    assert report["nodata_pixels"] == int((alpha == 0).sum())


def test_band_selection_in_the_app_matches_the_cli(qtbot, window, errors, tiny_bundle, sample_images, tmp_path):
    """An RGB+NIR GeoTIFF with an RGB model: refused until bands are chosen, then identical to --bands."""
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    from terraseg.data.raster import read_raster

    rgb = read_raster(sample_images[0]).astype(np.uint16)
    nir = (rgb.sum(axis=2) // 3).astype(np.uint16)
    tif = tmp_path / "rgbn.tif"  # stored as N, R, G, B: the model's bands are 2,3,4
    with rasterio.open(tif, "w", driver="GTiff", width=rgb.shape[1], height=rgb.shape[0], count=4, dtype="uint16",
                       crs="EPSG:32640", transform=from_origin(500000.0, 2770000.0, 1.0, 1.0)) as dst:
        dst.write(np.concatenate([nir[None], np.moveaxis(rgb, -1, 0)]))
    assert window.open_image(tif) and window.open_model(tiny_bundle)
    window.quiet_errors = True
    assert not window.start_prediction()  # 4 bands for a 3-band model, nothing chosen yet
    assert "4 bands" in window.last_error and "Input bands" in window.last_error
    assert window.set_bands("2,3,4")
    _cli(tiny_bundle, tif, tmp_path / "cli", "--bands", "2,3,4")
    out = _app(qtbot, window, tiny_bundle, tif, tmp_path / "app")
    _same_outputs(out, tmp_path / "cli", "rgbn", ".tif")
