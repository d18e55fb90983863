from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from PIL import Image

from terraseg.data.inspect import inspect_dataset
from terraseg.data.palette import parse_color
from terraseg.data.spec import load_spec
from terraseg.errors import DataError


def _readme_table(root):
    """``{(r, g, b): share in %}`` from the data set's own README (the independent source)."""
    text = (root / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\|[^|]+\|\s*\((\d+), (\d+), (\d+)\)\s*\|\s*(#[0-9A-Fa-f]{6})\s*\|\s*([\d.]+) %\s*\|", text,
                      re.M)
    table = {}
    for r, g, b, hexa, share in rows:
        assert parse_color(hexa) == (int(r), int(g), int(b))
        table[(int(r), int(g), int(b))] = float(share)
    return table


@pytest.mark.dubai
def test_dubai_palette_matches_readme(dubai_root, tmp_path):
    expected = _readme_table(dubai_root)
    assert len(expected) == 7
    report = inspect_dataset(dubai_root, tmp_path / "dubai.yaml", progress=False)
    found = {e.color: 100 * e.share for e in report.palette}
    assert set(found) == set(expected)
    for color, share in expected.items():
        assert abs(found[color] - share) <= 0.05 + 1e-9, (color, found[color], share)
    assert report.n_images == report.n_masks == report.n_pairs == 72
    assert not report.images_without_masks and not report.masks_without_images
    assert not report.size_mismatches and not report.unreadable
    # classes.json names colours the masks never use
    warn = next(w for w in report.warnings if "classes.json" in w)
    assert "disagrees" in warn and "#50E3C2" in warn
    # the draft YAML is a valid dataset description over the same files
    spec = load_spec(tmp_path / "dubai.yaml")
    assert spec.ignore_colors == [(0, 0, 0)]
    assert set(spec.colors) == set(expected) - {(0, 0, 0)}
    assert spec.class_names[spec.colors.index((155, 155, 155))] == "Unlabeled"  # the one classes.json gets right
    assert len(spec.labelled()) == 72
    assert spec.group and {s.group for s in spec.items()} == {f"Tile {i}" for i in range(1, 9)}


def _flat_copy(sample_yaml, dest):
    src = sample_yaml.parent
    shutil.copytree(src / "images", dest / "images")
    shutil.copytree(src / "masks", dest / "masks")
    return dest


def test_flat_layout_problems_reported(sample_dataset, tmp_path):
    root = _flat_copy(sample_dataset, tmp_path / "ds")
    masks = sorted((root / "masks").iterdir())
    images = sorted((root / "images").iterdir())
    masks[0].unlink()  # image without mask
    Image.new("RGB", (10, 10)).save(root / "masks" / "orphan.png")  # mask without image
    Image.new("RGB", (64, 48), (31, 120, 180)).save(masks[1])  # size mismatch
    data = images[2].read_bytes()
    images[2].write_bytes(data[: len(data) // 3])  # truncated image
    report = inspect_dataset(root, progress=False)
    assert report.images_pattern == "images" and report.masks_pattern == "masks" and report.group is None
    assert [p.name for p in report.images_without_masks] == [images[0].name]
    assert [p.name for p in report.masks_without_images] == ["orphan.png"]
    assert [(m.name, b) for _, m, _, b in report.size_mismatches] == [(masks[1].name, (64, 48))]
    assert [p.name for p, _ in report.unreadable] == [images[2].name]
    assert not report.ok
    text = "\n".join(report.warnings)
    assert "1 image(s) without a mask" in text and "orphan.png" in text and "mask is 64x48" in text


def test_palette_counts_exact(sample_dataset, tmp_path):
    root = _flat_copy(sample_dataset, tmp_path / "ds")
    report = inspect_dataset(root, progress=False)
    counts = {}
    for p in sorted((root / "masks").iterdir()):
        arr = np.asarray(Image.open(p).convert("RGB")).reshape(-1, 3)
        cols, n = np.unique(arr, axis=0, return_counts=True)
        for c, k in zip(map(tuple, cols.tolist()), n.tolist()):
            counts[c] = counts.get(c, 0) + k
    assert {e.color: e.pixels for e in report.palette} == counts
    assert abs(sum(e.share for e in report.palette) - 1) < 1e-9


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty folder"):
        inspect_dataset(tmp_path / "empty", progress=False)


def test_no_mask_folder_is_an_error(tmp_path):
    (tmp_path / "x").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "x" / "a.png")
    with pytest.raises(DataError, match="no image/mask pairs found among 1 file"):
        inspect_dataset(tmp_path / "x", progress=False)


def test_index_masks_and_multiband_geotiffs(tmp_path):
    from .conftest import make_geotiff_set

    make_geotiff_set(tmp_path / "g", n=2, size=(20, 24), bands=4)
    (tmp_path / "g" / "dataset.yaml").unlink()
    report = inspect_dataset(tmp_path / "g", tmp_path / "draft.yaml", progress=False)
    assert report.mask_type == "index" and report.bands == 4
    assert sorted(e.color for e in report.palette) == [(0,), (1,), (2,)]
    spec = load_spec(tmp_path / "draft.yaml")
    assert spec.mask_type == "index" and spec.bands == 4 and sorted(spec.class_values) == [0, 1, 2]
    assert len(spec.labelled()) == 2


def test_refuses_to_overwrite_yaml(sample_dataset, tmp_path):
    root = _flat_copy(sample_dataset, tmp_path / "ds")
    out = tmp_path / "d.yaml"
    out.write_text("# my edits\n")
    with pytest.raises(DataError, match="file exists"):
        inspect_dataset(root, out, overwrite=False, progress=False)
    assert out.read_text() == "# my edits\n"
    inspect_dataset(root, out, overwrite=True, progress=False)
    assert load_spec(out).num_classes == 5


def test_names_from_an_existing_dataset_yaml(sample_dataset):
    report = inspect_dataset(sample_dataset.parent, progress=False)
    spec = load_spec(sample_dataset)
    names = {e.color: e.name for e in report.palette}
    assert {c: names[c] for c in spec.colors} == dict(zip(spec.colors, spec.class_names))
    assert names[(0, 0, 0)] is None
