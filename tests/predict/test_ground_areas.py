"""Ground areas in every CRS, checked against analytic ellipsoid areas (not terraseg's own numbers)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from affine import Affine
from predict_helpers import BandClassBackend, make_meta, write_geotiff
from rasterio.crs import CRS

from terraseg.predict import predict_file
from terraseg.predict.areas import area_report
from terraseg.predict.ground import pixel_areas

WGS84_A = 6378137.0
WGS84_F = 1 / 298.257223563


def quadrangle_m2(lat1: float, lat2: float, dlon: float) -> float:
    """Area between two parallels and two meridians ``dlon`` degrees apart on the WGS84 ellipsoid.

    Closed form: ``dlon * b² / 2 * [q(lat2) - q(lat1)]`` with
    ``q(φ) = sinφ / (1 - e² sin²φ) + atanh(e sinφ) / e``.
    """
    b = WGS84_A * (1 - WGS84_F)
    e = math.sqrt(1 - (b / WGS84_A) ** 2)

    def q(lat):
        s = math.sin(math.radians(lat))
        return s / (1 - e * e * s * s) + math.atanh(e * s) / e

    return abs(math.radians(dlon) * b * b / 2 * (q(lat2) - q(lat1)))


@pytest.mark.parametrize("lat", [0.0, 60.0])
def test_one_degree_cell_matches_the_ellipsoid(lat):
    cls = np.zeros((1, 1), np.uint8)
    rep = area_report(cls, ["a"], transform=Affine(1.0, 0.0, 10.0, 0.0, -1.0, lat + 1.0), crs=CRS.from_epsg(4326))
    assert rep["area_method"] == "geodesic"
    assert rep["classes"][0]["m2"] == pytest.approx(quadrangle_m2(lat, lat + 1.0, 1.0), rel=1e-5)


def test_degree_pixels_differ_by_row_and_shares_are_shares_of_ground():
    # two rows of 1° pixels: 0..1° N and 59..60° N; class 0 on top (60° N), class 1 below (equator)
    cls = np.zeros((2, 3), np.uint8)
    transform = Affine(1.0, 0.0, 0.0, 0.0, -59.0, 60.0)  # rows of 59 degrees: 1..60 and -58..1
    cls[1] = 1
    rep = area_report(cls, ["north", "south"], transform=transform, crs=CRS.from_epsg(4326))
    north, south = quadrangle_m2(1.0, 60.0, 3.0), quadrangle_m2(-58.0, 1.0, 3.0)
    assert rep["classes"][0]["m2"] == pytest.approx(north, rel=1e-5)
    assert rep["classes"][1]["m2"] == pytest.approx(south, rel=1e-5)
    assert rep["classes"][0]["percent"] == pytest.approx(100 * north / (north + south), rel=1e-5)
    rows = pixel_areas(transform, CRS.from_epsg(4326), 3, 2)
    np.testing.assert_allclose(rows, [north / 3, south / 3], rtol=1e-5)


def test_milli_degree_pixels_at_the_equator():
    cls = np.zeros((10, 10), np.uint8)
    cls[:, 5:] = 1
    rep = area_report(cls, ["a", "b"], transform=Affine(0.001, 0.0, 0, 0.0, -0.001, 0.005), crs=CRS.from_epsg(4326))
    # class a: 5 columns x 10 rows of 0.001° between 0.005° S and 0.005° N
    assert rep["classes"][0]["m2"] == pytest.approx(quadrangle_m2(-0.005, 0.005, 0.005), rel=1e-6)


def _mercator_scene(tmp_path, lon0=5.0, lat_top=52.1, lon1=5.1, width=200):
    from pyproj import Transformer

    to_merc = Transformer.from_crs(4326, 3857, always_xy=True)
    x0, y0 = to_merc.transform(lon0, lat_top)
    x1, _ = to_merc.transform(lon1, lat_top)
    res = (x1 - x0) / width
    height = 150
    lat_bottom = to_merc.transform(x0, y0 - height * res, direction="INVERSE")[1]
    image = np.zeros((height, width, 3), np.float32)
    image[:, width // 2:, 0] = 1.0  # class 1 on the east half
    src = write_geotiff(tmp_path / "merc.tif", image, crs="EPSG:3857", transform=Affine(res, 0, x0, 0, -res, y0))
    return src, quadrangle_m2(lat_bottom, lat_top, lon1 - lon0), res * res * width * height


def test_web_mercator_scene_at_52_north_reports_ground_area(tmp_path):
    src, truth, planar = _mercator_scene(tmp_path)
    assert planar / truth > 2.6  # what the old report said
    out = predict_file(BandClassBackend(make_meta(tile_size=64)), src, tmp_path / "out", overlay=False,
                       color=False, vector="gpkg")
    report = json.loads(out["areas_json"].read_text())
    assert report["area_method"] == "geodesic"
    assert report["total_m2"] == pytest.approx(truth, rel=5e-3)
    assert report["classes"][1]["m2"] == pytest.approx(truth / 2, rel=5e-3)
    import fiona

    with fiona.open(out["vector"]) as layer:
        areas = {f["properties"]["class_id"]: f["properties"]["area"] for f in layer}
    assert areas[0] == pytest.approx(truth / 2, rel=5e-3) and areas[1] == pytest.approx(truth / 2, rel=5e-3)


def test_small_web_mercator_scene_is_measured_on_the_ellipsoid_too():
    """A 1 km scene: the scale hardly changes over it, but it is 2.64, not 1."""
    from pyproj import Transformer

    x0, y0 = Transformer.from_crs(4326, 3857, always_xy=True).transform(5.0, 52.0)
    to_lonlat = Transformer.from_crs(3857, 4326, always_xy=True)
    (lon0, lon1), (lat0, lat1) = to_lonlat.transform([x0, x0 + 1000.0], [y0, y0 - 1000.0])
    rep = area_report(np.zeros((100, 100), np.uint8), ["a"], transform=Affine(10.0, 0, x0, 0, -10.0, y0),
                      crs=CRS.from_epsg(3857))
    assert rep["area_method"] == "geodesic"
    assert rep["total_m2"] == pytest.approx(quadrangle_m2(lat1, lat0, lon1 - lon0), rel=1e-4)


def test_utm_scene_is_planar_and_unchanged(tmp_path):
    image = np.zeros((60, 80, 3), np.float32)
    image[:20, :, 0] = 2.0
    src = write_geotiff(tmp_path / "utm.tif", image, crs="EPSG:32640",
                        transform=Affine(10.0, 0, 500000.0, 0, -10.0, 2800000.0))
    out = predict_file(BandClassBackend(make_meta(tile_size=64)), src, tmp_path / "out", overlay=False)
    report = json.loads(out["areas_json"].read_text())
    assert report["area_method"] == "planar" and report["pixel_area_m2"] == 100.0
    assert report["classes"][2]["m2"] == 20 * 80 * 100.0 and report["total_m2"] == 60 * 80 * 100.0


def test_us_feet_crs_reports_square_metres():
    cls = np.zeros((4, 5), np.uint8)
    rep = area_report(cls, ["a"], transform=Affine(10.0, 0, 2_300_000.0, 0, -10.0, 10_200_000.0),
                      crs=CRS.from_epsg(2277))  # Texas Central, US survey feet
    foot = 1200 / 3937
    assert rep["classes"][0]["m2"] == pytest.approx(20 * (10 * foot) ** 2, rel=1e-9)


def test_min_area_in_square_metres_in_degrees(tmp_path):
    """``--min-area`` in a 4326 scene: m² (it used to be a sieve size in degrees² and crash)."""
    import fiona
    from shapely.geometry import shape

    h, w = 40, 50
    image = np.zeros((h, w, 3), np.float32)
    image[10:13, 10:13, 0] = 1.0  # 9 px of ~123 m² (0.0001° at 52° N) = ~1,100 m²
    image[20:35, 20:45, 0] = 2.0  # 375 px, ~46,000 m²
    transform = Affine(0.0001, 0, 5.0, 0, -0.0001, 52.0)
    src = write_geotiff(tmp_path / "deg.tif", image, crs="EPSG:4326", transform=transform)
    backend = BandClassBackend(make_meta(tile_size=64))
    out = predict_file(backend, src, tmp_path / "out", vector="gpkg", min_area=4.0, overlay=False)
    with fiona.open(out["vector"]) as layer:
        feats = [(f["properties"]["class_id"], f["properties"]["area"], shape(f["geometry"])) for f in layer]
    assert sorted(c for c, *_ in feats) == [0, 1, 2]  # 4 m² removes nothing
    big = [a for c, a, _ in feats if c == 2][0]
    assert big == pytest.approx(quadrangle_m2(52.0 - 0.0035, 52.0 - 0.002, 0.0025), rel=1e-5)
    total = json.loads(out["areas_json"].read_text())["total_m2"]
    assert sum(a for _, a, _ in feats) == pytest.approx(total, rel=1e-6)
    out = predict_file(backend, src, tmp_path / "out2", vector="gpkg", min_area=2000.0, overlay=False)
    with fiona.open(out["vector"]) as layer:
        classes = sorted(f["properties"]["class_id"] for f in layer)
    assert classes == [0, 2]  # the 1,100 m² square is merged into its surroundings
