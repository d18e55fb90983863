"""The dataset description's schema: new keys, one-line errors naming the key, duplicate YAML keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.transform import from_origin

from terraseg.data.spec import load_spec, spec_from_dict
from terraseg.errors import ConfigError, DataError
from terraseg.schemas._validate import read_yaml, validate
from terraseg.schemas.dataset import DatasetFile

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE = {"images": "img", "classes": [{"name": "a", "color": "#000001"}, {"name": "b", "color": [1, 2, 3]}]}


def test_example_dataset_descriptions_validate():
    for path in EXAMPLES.glob("*.yaml"):
        if not path.name.startswith("train-"):
            f = validate(DatasetFile, read_yaml(path), path)
            assert f.mask_type == "rgb" and len(f.classes) >= 2


def test_new_keys_are_stored_on_the_spec(tmp_path):
    spec = spec_from_dict({**BASE, "bands": [4, 3, 2], "resolution": 0.3, "color_tolerance": 8, "color_snap": 40,
                           "max_ignored_share": 0.1, "mean": [1, 2, 3], "std": [1, 1, 1]}, tmp_path)
    assert (spec.band_indexes, spec.band_count, spec.bands) == ([4, 3, 2], 3, 3)
    assert (spec.resolution, spec.color_tolerance, spec.color_snap, spec.max_ignored_share) == (0.3, 8, 40.0, 0.1)
    assert spec.mask_channel is None
    again = spec_from_dict(spec.to_dict(relative_to=tmp_path), tmp_path)
    assert (again.band_indexes, again.resolution, again.color_tolerance, again.color_snap) == ([4, 3, 2], 0.3, 8, 40.0)
    index = spec_from_dict({"images": "img", "classes": [{"name": "bg", "value": 0}, {"name": "x", "value": 1}],
                            "mask_channel": 2}, tmp_path)
    assert (index.mask_type, index.mask_channel, index.band_indexes, index.max_ignored_share) == ("index", 2, None, 0.5)


@pytest.mark.parametrize("change, message", [
    ({"bands": 0}, "key 'bands': must be >= 1, got 0"),
    ({"bands": [4, 0]}, "key 'bands[1]': must be >= 1, got 0"),
    ({"bands": [4, 4]}, "key 'bands': lists a band twice: [4, 4]"),
    ({"resolution": 0}, "key 'resolution': must be > 0, got 0"),
    ({"color_tolerance": -1}, "key 'color_tolerance': must be >= 0, got -1"),
    ({"color_tolerance": 2.5}, "key 'color_tolerance': must be an integer, got 2.5"),
    ({"color_snap": -3}, "key 'color_snap': must be >= 0, got -3"),
    ({"mask_channel": 3}, "key 'mask_channel': must be <= 2, got 3"),
    ({"mask_channel": 1}, "key 'mask_channel': needs index classes (a 'value' per class)"),
    ({"max_ignored_share": 1.5}, "key 'max_ignored_share': must be <= 1, got 1.5"),
    ({"mean": [1, 2], "std": [1, 1]}, "key 'mean': must list 3 numbers (one per band), got 2"),
    ({"bands": [1, 2], "mean": [1, 2, 3], "std": [1, 1, 1]}, "key 'mean': must list 2 numbers (one per band), got 3"),
    ({"mean": [1, 2, 3], "std": [1, 0, 1]}, "key 'std[1]': must be > 0, got 0"),
    ({"mean": [1, 2, 3]}, "key 'std': mean and std go together; give both or neither"),
    ({"colour_tolerance": 3}, "key 'colour_tolerance': unknown key (did you mean 'color_tolerance'?)"),
    ({"classes": [{"name": "a", "colr": "#000000"}]}, "key 'classes[0].colr': unknown key (did you mean 'color'?)"),
    ({"classes": [{"name": "a", "color": "#00000"}]}, "key 'classes[0].color': colour '#00000' is not '#RRGGBB'"),
    ({"unknown": "err"}, "key 'unknown': must be one of ignore, error, got 'err' (did you mean 'error'?)"),
    ({"ignore_index": 1}, "key 'ignore_index': 1 is a class index (there are 2 classes); use 255"),
])
def test_mistakes_name_the_key(tmp_path, change, message):
    with pytest.raises(ConfigError) as info:
        spec_from_dict({**BASE, **change}, tmp_path, path=tmp_path / "d.yaml")
    assert str(info.value).startswith(f"{tmp_path / 'd.yaml'}: {message}")


def test_duplicate_yaml_key_is_one_line_in_the_cli(sample_dataset, tmp_path, capsys):
    from terraseg.cli import main

    text = sample_dataset.read_text()
    assert "\nignore_index: 255\n" in text
    bad = sample_dataset.parent / "dup.yaml"
    bad.write_text(text + "ignore_index: 254\n")
    line = text[: text.index("\nignore_index: 255\n")].count("\n") + 2
    last = (text + "ignore_index: 254\n").count("\n")
    with pytest.raises(SystemExit) as exc:
        main(["data", "stats", str(bad)])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert exc.value.code == 2
    assert err == [f"error: {bad}: duplicate key 'ignore_index' at line {last} (first given at line {line}); "
                   "keep one of them"]
    nested = tmp_path / "n.yaml"
    nested.write_text("images: img\nclasses:\n  - {name: a, color: '#000001', name: b}\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'classes\[0\]\.name' at line 3"):
        load_spec(nested)


def test_band_indexes_select_bands_in_gdal_order(tmp_path):
    (tmp_path / "img").mkdir()
    data = np.stack([np.full((8, 8), v, np.uint16) for v in (10, 20, 30, 40)])
    with rasterio.open(tmp_path / "img" / "a.tif", "w", driver="GTiff", width=8, height=8, count=4,
                       dtype="uint16", crs="EPSG:32640", transform=from_origin(500000, 2800000, 0.3, 0.3)) as dst:
        dst.write(data)
    spec = spec_from_dict({**BASE, "bands": [4, 3, 2]}, tmp_path)
    img = spec.read_image(tmp_path / "img" / "a.tif")
    assert img.shape == (8, 8, 3) and img[0, 0].tolist() == [40, 30, 20]
    spec = spec_from_dict({**BASE, "bands": [5, 1]}, tmp_path)
    with pytest.raises(DataError, match=r"a.tif: band selection 5,1 asks for band 5 but the image has 4 bands"):
        spec.read_image(tmp_path / "img" / "a.tif")
    assert yaml.safe_load(yaml.safe_dump(spec.to_dict()))["bands"] == [5, 1]
