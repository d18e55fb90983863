"""QGIS-native rasters: COG class raster with overviews, GDAL category names, .qml style, RGBA colour GeoTIFF.

Everything is read back through GDAL (rasterio) or parsed as XML, never with terraseg's writers.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from rasterio.transform import from_origin

from terraseg.data.raster import geotiff_profile
from terraseg.predict.outputs import (COLOR_PROFILE, BandColorizer, class_colormap, tag_classes, to_cog,
                                      write_category_names, write_qml)

NAMES = ["water", "road & path", "building <new>"]
COLORS = [(0, 0, 255), (128, 128, 128), (200, 30, 30)]


def _classes(h=600, w=700):
    cls = ((np.arange(w)[None, :] // 50 + np.arange(h)[:, None] // 70) % 4).astype(np.uint8)
    cls[cls == 3] = 255  # nodata
    return cls


def _tiled(path, cls):
    profile = geotiff_profile(cls.shape[1], cls.shape[0], 1, "uint8", "EPSG:32640",
                              from_origin(500000, 2800000, 2, 2), nodata=255)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(cls, 1)
        dst.write_colormap(1, class_colormap(COLORS))
        tag_classes(dst, NAMES, COLORS)
    return path


def test_class_raster_becomes_a_cog_with_overviews_colours_and_tags(tmp_path):
    cls = _classes()
    cog = tmp_path / "scene_classes.tif"
    to_cog(_tiled(tmp_path / "tiled.tif", cls), cog)
    with rasterio.open(cog) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.overviews(1) == [2, 4]
        assert ds.block_shapes[0] == (256, 256)
        assert ds.nodata == 255 and ds.crs.to_epsg() == 32640
        assert ds.colormap(1)[2][:3] == COLORS[2]
        assert ds.tags()["CLASSES"].startswith('["water"')
        np.testing.assert_array_equal(ds.read(1), cls)
    with rasterio.open(cog, overview_level=0) as ov:
        # mode resampling keeps class indices (no averaged values between classes)
        assert set(np.unique(ov.read(1))) <= {0, 1, 2, 255}
    assert not list(tmp_path.glob("*.aux.xml"))  # no stray sidecar from GDAL's PAM


def test_category_names_are_read_by_gdal(tmp_path):
    cog = tmp_path / "scene_classes.tif"
    to_cog(_tiled(tmp_path / "tiled.tif", _classes()), cog)
    write_category_names(tmp_path / "scene_classes.tif.aux.xml", NAMES, COLORS)
    # GDAL reads the sidecar; a VRT copy written by GDAL lists what it understood
    rasterio.shutil.copy(str(cog), str(tmp_path / "check.vrt"), driver="VRT")
    vrt = ET.parse(tmp_path / "check.vrt").getroot()
    band = vrt.find("VRTRasterBand")
    assert [c.text for c in band.find("CategoryNames")] == NAMES
    rat = band.find("GDALRasterAttributeTable")
    rows = [[f.text for f in row] for row in rat.findall("Row")]
    assert rows[1] == ["1", "road & path", "128", "128", "128"]


def test_qml_is_a_paletted_style_with_the_bundle_colours(tmp_path):
    write_qml(tmp_path / "scene_classes.qml", NAMES, COLORS)
    text = (tmp_path / "scene_classes.qml").read_text()
    assert text.startswith("<!DOCTYPE qgis")
    root = ET.fromstring(text)
    renderer = root.find("pipe/rasterrenderer")
    assert renderer.get("type") == "paletted" and renderer.get("band") == "1"
    entries = renderer.findall("colorPalette/paletteEntry")
    assert [e.get("label") for e in entries] == NAMES
    assert [int(e.get("value")) for e in entries] == [0, 1, 2]
    assert [tuple(int(e.get("color")[i:i + 2], 16) for i in (1, 3, 5)) for e in entries] == COLORS


def test_colour_geotiff_is_rgba_with_transparent_nodata(tmp_path):
    cls = _classes(300, 280)
    profile = geotiff_profile(280, 300, 4, "uint8", "EPSG:32640", from_origin(500000, 2800000, 1, 1))
    profile.update(COLOR_PROFILE)
    with rasterio.open(tmp_path / "c.tif", "w", **profile) as dst:
        dst.write(BandColorizer(COLORS, alpha=True)(cls))
    with rasterio.open(tmp_path / "c.tif") as ds:
        assert [c.name for c in ds.colorinterp] == ["red", "green", "blue", "alpha"]
        rgba = ds.read()
    assert (rgba[3][cls == 255] == 0).all() and (rgba[3][cls != 255] == 255).all()
    np.testing.assert_array_equal(rgba[:3, cls == 1].T, np.tile(COLORS[1], ((cls == 1).sum(), 1)))


@pytest.mark.parametrize("name", ["a&b", 'quote"d'])
def test_names_with_xml_characters_round_trip(tmp_path, name):
    write_qml(tmp_path / "s.qml", [name], [(1, 2, 3)])
    assert ET.parse(tmp_path / "s.qml").getroot().find(".//paletteEntry").get("label") == name
    write_category_names(tmp_path / "s.aux.xml", [name], [(1, 2, 3)])
    assert ET.parse(tmp_path / "s.aux.xml").getroot().find(".//Category").text == name
