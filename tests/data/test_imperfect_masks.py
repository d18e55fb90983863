"""Masks as other tools save them: JPEG, anti-aliased, palette PNGs, an index in the blue channel, a
colormap scaled per image; class names from the files shipped with the data; the refusal of a
description under which most mask pixels would be ignored."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image

from terraseg.data.convert import convert_masks
from terraseg.data.inspect import inspect_dataset
from terraseg.data.palette import rgb_to_index, to_hex
from terraseg.data.spec import dump_yaml, load_spec
from terraseg.data.stats import compute_stats
from terraseg.errors import DataError

from . import byod

DG = {c for _, c in byod.DEEPGLOBE}


def _jpeg(path, mask, rng):
    path.write_bytes(byod.jpeg_bytes(byod.COLORS[mask], quality=90))


def _truth_agreement(report, spec, truths) -> tuple[float, float]:
    """(share of pixels written as ignore, share of the others equal to the truth), by image number."""
    ignored = agree = known = 0
    for s in spec.labelled():
        n = int(s.image.stem.split("_")[0]) - 100
        idx = np.asarray(Image.open(report.out_dir / s.mask.relative_to(spec.root)))
        truth = np.array([spec.colors.index(tuple(int(v) for v in c)) for c in byod.COLORS])[truths[n]]
        ignored += int((idx == 255).sum())
        agree += int((idx == truth)[idx != 255].sum())
        known += int((idx != 255).sum())
    total = sum(t.size for t in truths)
    return ignored / total, agree / known


def test_jpeg_masks_convert_with_a_tolerance_and_lose_under_1_percent(tmp_path):
    root = tmp_path / "dg"
    truths = byod.deepglobe(root, n=6, size=96, mask_writer=_jpeg)
    report = inspect_dataset(root, tmp_path / "dg.yaml", progress=False)
    assert report.distinct_colors > 1000  # JPEG noise: thousands of near-duplicates
    assert len(report.palette) == 7 and report.tolerance == 127
    # the class colours are the drawn ones (class_dict.csv names them exactly), each with its spread
    spec = load_spec(tmp_path / "dg.yaml")
    assert set(spec.colors) == DG and spec.color_tolerance == 127
    assert all(e.colors > 1 and e.spread > 0 for e in report.palette)
    converted = convert_masks(spec, tmp_path / "idx", progress=False)
    lost, agree = _truth_agreement(converted, spec, truths)
    assert lost < 0.01 and agree > 0.99
    assert converted.unknown_pixels / converted.pixels == pytest.approx(lost)
    # inspect announced the same loss convert-masks found
    assert sum(report.beyond.values()) == converted.unknown_pixels


def test_jpeg_masks_without_tolerance_are_refused_in_one_short_line(tmp_path):
    root = tmp_path / "dg"
    byod.deepglobe(root, n=4, size=96, mask_writer=_jpeg)
    inspect_dataset(root, tmp_path / "dg.yaml", progress=False)
    d = yaml.safe_load((tmp_path / "dg.yaml").read_text())
    d.pop("color_tolerance")
    (tmp_path / "strict.yaml").write_text(dump_yaml(d))
    out = subprocess.run([sys.executable, "-m", "terraseg", "data", "convert-masks", str(tmp_path / "strict.yaml"),
                          "-o", str(tmp_path / "idx")], capture_output=True, text=True)
    assert out.returncode == 2 and not (tmp_path / "idx").exists()
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and len(lines[0]) < 500, lines
    assert "would be ignored" in lines[0] and "unknown colours, the most frequent: #" in lines[0]
    # the same rule with a snap distance instead: everything near a class colour is kept
    d["color_snap"] = 127
    (tmp_path / "snap.yaml").write_text(dump_yaml(d))
    r = convert_masks(tmp_path / "snap.yaml", tmp_path / "idx2", progress=False)
    assert r.unknown_pixels / r.pixels < 0.01


def test_antialiased_edges_are_blends_not_classes(tmp_path):
    root = tmp_path / "dg"

    def aa(path, mask, rng):
        Image.fromarray(byod.antialiased(mask, byod.COLORS, rng=rng)).save(path)

    byod.deepglobe(root, n=4, size=64, mask_writer=aa)
    report = inspect_dataset(root, tmp_path / "dg.yaml", progress=False)
    assert report.distinct_colors > 32 and {e.color for e in report.palette} == DG
    assert report.blends and not set(report.blends) & DG
    # every blend lies between two class colours: a mix a*c1 + (1-a)*c2 within rounding
    cols = np.array(sorted(DG), float)
    for b in report.blends:
        best = min(np.abs(np.clip(np.round(a * c1 + (1 - a) * c2), 0, 255) - b).max()
                   for c1 in cols for c2 in cols for a in np.linspace(0, 1, 17))
        assert best <= 16
    spec = load_spec(tmp_path / "dg.yaml")
    r = convert_masks(spec, tmp_path / "idx", progress=False)
    assert r.unknown_pixels / r.pixels < 0.01


def test_palette_pngs_with_a_different_index_order_per_file(tmp_path):
    root = tmp_path / "pal"

    def palette_png(path, mask, rng):
        order = rng.permutation(len(byod.COLORS))  # index i of this file is class order[i]
        inverse = np.argsort(order)
        img = Image.fromarray(inverse[mask].astype(np.uint8), mode="P")
        img.putpalette(byod.COLORS[order].reshape(-1).tolist())
        img.save(path)

    truths = byod.write_pairs(root, 4, lambda i: f"images/{i}.png", lambda i: f"masks/{i}.png", palette_png, 48)
    report = inspect_dataset(root, tmp_path / "p.yaml", progress=False)
    assert report.mask_type == "rgb" and {e.color for e in report.palette} == DG
    spec = load_spec(tmp_path / "p.yaml")
    for s in spec.labelled():
        index, _ = spec.read_mask(s)
        lut = np.array([spec.colors.index(tuple(int(v) for v in c)) if tuple(c) != (0, 0, 0) else 255
                        for c in byod.COLORS])
        assert np.array_equal(index, lut[truths[int(s.image.stem)]])


def _blue_index(path, mask, rng):
    rgb = np.zeros(mask.shape + (3,), np.uint8)
    rgb[..., 2] = mask % 5
    Image.fromarray(rgb).save(path)


def test_index_in_the_blue_channel_is_read_as_class_values(tmp_path):
    root = tmp_path / "blue"
    truths = byod.write_pairs(root, 4, lambda i: f"images/{i}.png", lambda i: f"labels/{i}.png", _blue_index, 48)
    report = inspect_dataset(root, tmp_path / "b.yaml", progress=False)
    assert report.mask_type == "index" and report.mask_channel == 2
    assert sorted(e.color for e in report.palette) == [(0,), (1,), (2,), (3,), (4,)]
    assert any("blue channel" in w and "mask_channel: 2" in w for w in report.warnings)
    spec = load_spec(tmp_path / "b.yaml")
    assert spec.mask_channel == 2 and sorted(spec.class_values) == [0, 1, 2, 3, 4]  # black is class 0
    assert not spec.ignore_values
    for s in spec.labelled():
        index, unknown = spec.read_mask(s)
        assert not unknown
        values = np.array(spec.class_values)[index]
        assert np.array_equal(values, truths[int(s.image.stem)] % 5)


def test_colormap_scaled_per_image_is_an_error(tmp_path):
    root = tmp_path / "cmap"

    def rendered(path, mask, rng):
        m = mask % 5
        classes = rng.choice(5, size=int(rng.integers(2, 4)), replace=False)
        m = np.sort(classes)[m % len(classes)]  # each image holds a few classes
        lo, hi = m.min(), m.max()
        Image.fromarray(byod.colormap((m - lo) / max(hi - lo, 1))).save(path)

    byod.write_pairs(root, 8, lambda i: f"images/{i}.png", lambda i: f"masks/{i}.png", rendered, 32)
    with pytest.raises(DataError, match="colormap scaled to each image"):
        inspect_dataset(root, progress=False)


def test_names_from_dataset_yaml_black_included_and_disagreement_reported(tmp_path):
    root = tmp_path / "dg"
    byod.write_pairs(root, 3, lambda i: f"images/{i}.png", lambda i: f"masks/{i}.png", byod.colour_png, 48)
    classes = [{"name": f"my_{n}", "color": to_hex(c)} for n, c in byod.DEEPGLOBE]  # black named "my_unknown"
    (root / "dataset.yaml").write_text(dump_yaml({"images": "images", "masks": "masks", "classes": classes}))
    report = inspect_dataset(root, tmp_path / "d.yaml", progress=False)
    names = {e.color: e.name for e in report.palette}
    assert names[(0, 0, 0)] == "my_unknown" and not any("no class owns" in w for w in report.warnings)
    assert not any("disagrees" in w for w in report.warnings)
    # a dataset.yaml whose colours the masks never use is reported like classes.json would be
    wrong = [{"name": "Water", "color": "#50E3C2"}, {"name": "Road", "color": "#DE597F"}]
    (root / "dataset.yaml").write_text(dump_yaml({"images": "images", "masks": "masks", "classes": wrong}))
    report = inspect_dataset(root, progress=False)
    warn = next(w for w in report.warnings if "disagrees" in w)
    assert warn.startswith("dataset.yaml disagrees") and "Water #50E3C2" in warn and "Road #DE597F" in warn


def _wrong_palette_yaml(root, path):
    byod.write_pairs(root, 3, lambda i: f"images/{i}.png", lambda i: f"masks/{i}.png", byod.colour_png, 48)
    path.write_text(dump_yaml({"root": str(root), "images": "images", "masks": "masks",
                               "classes": [{"name": "a", "color": "#123456"}, {"name": "b", "color": "#654321"}]}))
    return path


def test_palette_matching_no_mask_colour_is_refused_by_convert_and_stats(tmp_path):
    yml = _wrong_palette_yaml(tmp_path / "ds", tmp_path / "wrong.yaml")
    with pytest.raises(DataError, match=r"100\.0 % of the mask pixels would be ignored.*7 unknown colours"):
        convert_masks(yml, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataError, match="max_ignored_share: 0.5"):
        compute_stats(yml, progress=False)
    # a higher limit lets it through, and the ignored pixels are still counted
    d = yaml.safe_load(yml.read_text())
    d["max_ignored_share"] = 1.0
    yml.write_text(dump_yaml(d))
    st = compute_stats(yml, progress=False)
    assert st.ignored_pixels == 3 * 48 * 48 and sum(st.class_pixels) == 0


def test_rgb_to_index_tolerance_and_snap_match_a_brute_force_search():
    rng = np.random.default_rng(3)
    colors = [(0, 0, 255), (255, 255, 0), (120, 40, 200)]
    ignore = [(0, 0, 0)]
    rgb = rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)
    table = np.array(colors + ignore, float)
    values = np.array([0, 1, 2, 255])
    for tol, snap in ((0, None), (30, None), (0, 90.0), (20, 60.0)):
        index, unknown = rgb_to_index(rgb, colors, ignore, 255, tolerance=tol, snap=snap)
        expect = np.full(rgb.shape[:2], 255)
        lost = {}
        for (r, c), px in np.ndenumerate(rgb[..., 0]):
            p = rgb[r, c].astype(float)
            d = np.sqrt(((table - p) ** 2).sum(1))
            k = int(d.argmin())
            if np.abs(table[k] - p).max() <= tol or (snap is not None and d[k] <= snap):
                expect[r, c] = values[k]
            else:
                key = tuple(int(v) for v in rgb[r, c])
                lost[key] = lost.get(key, 0) + 1
        assert np.array_equal(index, expect) and unknown == lost


def test_values_listed_out_of_order_map_to_their_class_positions():
    from terraseg.data.palette import values_to_index

    mask = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    index, unknown = values_to_index(mask, [0, 2, 1])  # class 1 has value 2, class 2 value 1
    assert index.tolist() == [[0, 2, 1], [1, 2, 0]] and not unknown
