from __future__ import annotations

import json

import pytest

from terraseg.data.spec import spec_from_dict
from terraseg.data.split import load_split, make_split, write_split
from terraseg.errors import DataError


def _grouped_dataset(tmp_path, groups=6, per=5):
    from PIL import Image

    for g in range(groups):
        for i in range(per):
            for kind in ("images", "masks"):
                d = tmp_path / f"Tile {g + 1}" / kind
                d.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (4, 4)).save(d / f"p{i}.png")
    return spec_from_dict({"images": "Tile */images/*.png", "masks": "Tile */masks/*.png",
                           "classes": [{"name": "a", "color": "#000001"}], "group": r"Tile \d+"},
                          base_dir=tmp_path)


def test_group_split_no_leaks_and_deterministic(tmp_path):
    spec = _grouped_dataset(tmp_path)
    a = make_split(spec, val=0.2, test=0.2, holdout=2, seed=7)
    b = make_split(spec, val=0.2, test=0.2, holdout=2, seed=7)
    assert a == b
    groups = {s.key: s.group for s in spec.items()}
    sets = {k: {groups[x] for x in v} for k, v in a.items()}
    assert not sets["train"] & (sets["val"] | sets["test"] | sets["holdout"])
    assert not sets["val"] & sets["test"]
    assert len(a["holdout"]) == 2 and sets["holdout"] <= sets["test"] | sets["holdout"]
    assert sorted(sum(a.values(), [])) == sorted(groups)  # every image exactly once
    assert len(a["val"]) == 5 and len(a["test"]) + 2 == 5  # one tile each: closest to 20 % of 30
    c = make_split(spec, val=0.2, test=0.2, holdout=2, seed=8)
    assert c != a


def test_file_split(tmp_path):
    spec = _grouped_dataset(tmp_path, groups=2, per=10)
    s = make_split(spec, val=0.25, test=0.25, seed=1, by="file")
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (10, 5, 5)
    groups = {x.key: x.group for x in spec.items()}
    assert {groups[k] for k in s["val"] + s["test"]} == {"Tile 1", "Tile 2"}  # files mix groups


def test_too_few_groups(tmp_path):
    spec = _grouped_dataset(tmp_path, groups=2, per=2)
    with pytest.raises(DataError, match="too few to split by group"):
        make_split(spec, val=0.2, test=0.2, by="group")


def test_write_and_load_split(tmp_path):
    spec = _grouped_dataset(tmp_path)
    split = make_split(spec, seed=3)
    path = write_split(split, tmp_path / "split.json", {"seed": 3})
    assert load_split(path) == split
    assert spec.select(load_split(path)["val"])  # keys are the spec's keys


def test_load_split_errors(tmp_path):
    p = tmp_path / "s.json"
    p.write_text("{not json")
    with pytest.raises(DataError, match="not a valid split JSON"):
        load_split(p)
    p.write_text(json.dumps({"train": ["a"], "val": "b"}))
    with pytest.raises(DataError, match="'val' must be a list"):
        load_split(p)
    p.write_text(json.dumps({"train": ["a"], "val": ["a"]}))
    with pytest.raises(DataError, match="in both 'train' and 'val'"):
        load_split(p)
    with pytest.raises(DataError, match="not found"):
        load_split(tmp_path / "missing.json")


@pytest.mark.dubai
def test_dubai_split_by_tile(dubai_root):
    from pathlib import Path

    from terraseg.data.spec import load_spec

    spec = load_spec(Path(__file__).resolve().parents[2] / "examples" / "dubai.yaml")
    s = make_split(spec, val=0.15, test=0.15, holdout=3, seed=0)
    tiles = {k: {x.split("/")[0] for x in v} for k, v in s.items()}
    assert not tiles["train"] & (tiles["val"] | tiles["test"] | tiles["holdout"])
    assert sum(len(v) for v in s.values()) == 72


def test_single_group_falls_back_to_files_unless_explicit(tmp_path):
    spec = _grouped_dataset(tmp_path, groups=1, per=8)
    s = make_split(spec, val=0.25, test=0.0, seed=0)
    assert (len(s["train"]), len(s["val"])) == (6, 2)
    with pytest.raises(DataError, match="too few to split by group"):
        make_split(spec, val=0.25, test=0.0, by="group")
