"""Layout discovery on generated copies of the layouts public data sets use, and its errors."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from terraseg.data.inspect import inspect_dataset
from terraseg.data.spec import load_spec
from terraseg.errors import DataError

from . import byod


def _make(layout: str, root):
    """Write one layout; returns (truth masks by number, expected images pattern, expected masks pattern)."""
    png = byod.colour_png
    if layout == "deepglobe":  # train/N_sat.jpg + train/N_mask.png, unlabelled valid/
        truths = byod.deepglobe(root, n=4, size=48)
        return truths, ["train/*_sat.jpg"], ["train/*_mask.png"]
    if layout == "image_label":
        truths = byod.write_pairs(root, 4, lambda i: f"tile{i}_image.png", lambda i: f"tile{i}_label.png", png, 48)
        return truths, ["*_image.png"], ["*_label.png"]
    if layout == "rgb_label":  # GeoTIFF-style image names with _RGB, masks _label
        truths = byod.write_pairs(root, 4, lambda i: f"area{i}_RGB.tif", lambda i: f"area{i}_label.png", png, 48,
                                  image_ext=".tif")
        return truths, ["*_RGB.tif"], ["*_label.png"]
    if layout == "img_gt":  # prefixes, no separator
        truths = byod.write_pairs(root, 4, lambda i: f"img{i:03d}.png", lambda i: f"gt{i:03d}.png", png, 48)
        return truths, ["img*.png"], ["gt*.png"]
    if layout == "trees":  # two trees with the same relative paths, folder names not in any list
        truths = byod.write_pairs(root, 4, lambda i: f"ortho/region_{i % 2}/{i}.png",
                                  lambda i: f"labels_v2/region_{i % 2}/{i}.png", png, 48)
        return truths, ["ortho/**/*.png"], ["labels_v2/**/*.png"]
    if layout == "folders_with_affixes":  # images/ + masks/ whose names differ by a suffix
        truths = byod.write_pairs(root, 4, lambda i: f"images/{i}_sat.jpg", lambda i: f"masks/{i}_mask.png", png, 48)
        return truths, ["images/*_sat.jpg"], ["masks/*_mask.png"]
    if layout == "dataset_yaml":  # names nothing could guess; a dataset.yaml gives patterns and names
        truths = byod.write_pairs(root, 4, lambda i: f"a/s{i}.png", lambda i: f"b/s{i}-m.png", png, 48)
        from terraseg.data.palette import to_hex
        from terraseg.data.spec import dump_yaml

        (root / "dataset.yaml").write_text(dump_yaml({
            "images": "a/*.png", "masks": "b/*-m.png",
            "classes": [{"name": n.upper(), "color": to_hex(c)} for n, c in byod.DEEPGLOBE]}))
        return truths, ["a/*.png"], ["b/*-m.png"]
    raise AssertionError(layout)


LAYOUTS = ["deepglobe", "image_label", "rgb_label", "img_gt", "trees", "folders_with_affixes", "dataset_yaml"]


def _number(path) -> int:
    return int(re.findall(r"\d+", path.stem)[-1])


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # plain TIFF images
@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_is_found_and_paired(layout, tmp_path):
    root = tmp_path / layout
    root.mkdir()
    truths, images, masks = _make(layout, root)
    report = inspect_dataset(root, tmp_path / "draft.yaml", progress=False)
    assert (report.images_patterns, report.masks_patterns) == (images, masks)
    assert report.n_pairs == 4 and not report.images_without_masks and not report.masks_without_images
    # the palette is the colours the masks were drawn with, black named where a name file names it
    assert {e.color for e in report.palette} == {c for _, c in byod.DEEPGLOBE}
    spec = load_spec(tmp_path / "draft.yaml")
    assert len(spec.labelled()) == 4
    for s in spec.labelled():
        # every image is paired with the mask of its own number, and reads as its truth
        n = _number(s.image) - (100 if layout == "deepglobe" else 0)
        assert _number(s.mask) == _number(s.image)
        index, unknown = spec.read_mask(s)
        truth_colors = byod.COLORS[truths[n]]
        got = np.array(spec.colors + [(1, 2, 3)] * (256 - spec.num_classes), np.uint8)[index]
        known = index != spec.ignore_index
        assert not unknown and np.array_equal(got[known], truth_colors[known])
    names = dict(zip(spec.colors, spec.class_names))
    if layout == "deepglobe":  # class_dict.csv names all seven, black ("unknown") included
        assert names == {c: n for n, c in byod.DEEPGLOBE} and not spec.ignore_colors
    elif layout == "dataset_yaml":
        assert names == {c: n.upper() for n, c in byod.DEEPGLOBE} and "dataset.yaml" in report.layout
    else:  # no names shipped: black is ignored, the others get class_N
        assert (0, 0, 0) not in names and spec.ignore_colors == [(0, 0, 0)]


def test_nothing_pairs_names_the_folder_files_and_flags(tmp_path):
    root = tmp_path / "loose"
    root.mkdir()
    for name in ("alpha.jpg", "beta.jpg", "gamma.png"):
        Image.new("RGB", (8, 8)).save(root / name)
    with pytest.raises(DataError) as err:
        inspect_dataset(root, progress=False)
    text = str(err.value)
    assert str(root) in text and "alpha.jpg" in text and "beta.jpg" in text
    assert "--images" in text and "--masks" in text


def test_folders_whose_names_never_pair(tmp_path):
    root = tmp_path / "ds"
    byod.write_pairs(root, 3, lambda i: f"images/scene_{i}.png", lambda i: f"masks/label_{i + 10}.png",
                     byod.colour_png, 16)
    with pytest.raises(DataError) as err:
        inspect_dataset(root, progress=False)
    text = str(err.value)
    assert "no name pairs" in text and "scene_0.png" in text and "label_10.png" in text
    assert "--images" in text and "--masks" in text and "classes" not in text


def test_explicit_patterns_override_discovery(tmp_path):
    root = tmp_path / "ds"
    byod.write_pairs(root, 3, lambda i: f"x/p{i}.png", lambda i: f"y/p{i}.png", byod.colour_png, 16)
    report = inspect_dataset(root, images="x/*.png", masks="y/*.png", progress=False)
    assert report.n_pairs == 3 and report.layout == "--images/--masks"


def test_cli_no_pairs_is_one_line_exit_2(tmp_path):
    root = tmp_path / "loose"
    root.mkdir()
    Image.new("RGB", (8, 8)).save(root / "only.jpg")
    out = subprocess.run([sys.executable, "-m", "terraseg", "data", "inspect", str(root), "--no-yaml"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "only.jpg" in lines[0] and "--images" in lines[0]
