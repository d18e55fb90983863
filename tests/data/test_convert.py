from __future__ import annotations

import numpy as np
import pytest
import rasterio
from PIL import Image

from terraseg.data.convert import colorize_masks, convert_masks
from terraseg.data.spec import load_spec
from terraseg.errors import DataError

from .conftest import GEO_CLASSES, make_geotiff_set


def test_convert_round_trip_and_unknown_colours(sample_dataset, tmp_path):
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(sample_dataset.parent, root)
    spec = load_spec(root / "dataset.yaml")
    s0 = spec.labelled()[0]
    rgb = np.asarray(Image.open(s0.mask).convert("RGB")).copy()
    rgb[:3, :4] = (1, 2, 3)  # a colour no class owns: 12 pixels
    Image.fromarray(rgb).save(s0.mask)
    report = convert_masks(spec, tmp_path / "idx", progress=False)
    assert report.unknown == {(1, 2, 3): 12} and report.files_with_unknown == [s0.mask]
    assert len(report.written) == len(spec.labelled())
    out = np.asarray(Image.open(report.written[0]))
    assert out.ndim == 2 and out.dtype == np.uint8
    assert np.all(out[:3, :4] == 255)
    # class indices follow the YAML's class order
    colors = np.array(spec.colors, np.uint8)
    known = out != 255
    assert np.array_equal(colors[out[known]], rgb[known])
    # the written YAML describes the same images with the index masks
    ispec = load_spec(report.yaml_path)
    assert ispec.mask_type == "index" and ispec.class_names == spec.class_names
    for s in spec.labelled():
        a, _ = spec.read_mask(s)
        b, unknown = ispec.read_mask(ispec.sample(s.key))
        assert np.array_equal(a, b) and not unknown
    # and colorize gives the colours back (unknown colour -> black, the ignore colour)
    col = colorize_masks(ispec, None, tmp_path / "col", progress=False)
    back = np.asarray(Image.open(col.written[0]).convert("RGB"))
    expect = rgb.copy()
    expect[:3, :4] = 0
    assert np.array_equal(back, expect)


def test_strict_unknown_colour_is_an_error_without_outputs(sample_dataset, tmp_path):
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(sample_dataset.parent, root)
    spec = load_spec(root / "dataset.yaml")
    s0 = spec.labelled()[0]
    rgb = np.asarray(Image.open(s0.mask).convert("RGB")).copy()
    rgb[0, 0] = (9, 9, 9)
    Image.fromarray(rgb).save(s0.mask)
    with pytest.raises(DataError, match=r"#090909 \(1 px\).*no class owns") as err:
        convert_masks(spec, tmp_path / "idx", strict=True, progress=False)
    assert s0.mask.name in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no output folder, no staging leftovers


def test_geotiff_masks_keep_georeference(tmp_path):
    yaml = make_geotiff_set(tmp_path / "g", n=2, index_masks=False)
    spec = load_spec(yaml)
    report = convert_masks(spec, tmp_path / "idx", progress=False)
    assert all(p.suffix == ".tif" for p in report.written)
    src = spec.labelled()[1].mask
    with rasterio.open(src) as a, rasterio.open(report.written[1]) as b:
        assert b.count == 1 and b.crs == a.crs and b.transform == a.transform
        colors = np.array([c for _, c in GEO_CLASSES], np.uint8)
        assert np.array_equal(colors[b.read(1)], np.moveaxis(a.read(), 0, -1))
    col = colorize_masks(spec, [tmp_path / "idx" / "masks"], tmp_path / "col", progress=False)
    with rasterio.open(col.written[1]) as c, rasterio.open(src) as a:
        assert c.transform == a.transform and np.array_equal(c.read(), a.read())
