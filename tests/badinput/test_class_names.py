"""Class names are one line of printable text, checked where they enter; the error names file and class."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from terraseg.schemas._validate import MAX_CLASS_NAME, class_name_problem, printable_label

from .helpers import listing, one_line, run

BAD_NAMES = {
    "newline": ("ro\nad", "line break"),
    "carriage return": ("ro\rad", "line break"),
    "escape code": ("\x1b[31mroad\x1b[0m", "control character '\\x1b'"),
    "tab": ("ro\tad", "control character '\\t'"),
    "NUL": ("ro\x00ad", "control character '\\x00'"),
    "line separator": ("ro\u2028ad", "line break"),
    "bidi override": ("\u202eroad", "control character"),
    "too long": ("r" * (MAX_CLASS_NAME + 1), f"over the limit of {MAX_CLASS_NAME}"),
    "blank": ("   ", "empty"),
}


@pytest.mark.parametrize("name", ["water", "bare land", "Gebäude", "水体", "a" * MAX_CLASS_NAME, "x-1 (rare)"])
def test_good_names_pass(name):
    assert class_name_problem(name) is None


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_bad_names_are_described(case):
    name, words = BAD_NAMES[case]
    problem = class_name_problem(name)
    assert problem is not None and words in problem
    assert "\n" not in problem and "\x1b" not in problem and "\r" not in problem  # the message itself is safe


@pytest.mark.parametrize("case", ["newline", "escape code", "too long"])
def test_dataset_yaml(tmp_path, sample_dataset, capsys, case):
    name, words = BAD_NAMES[case]
    ds = tmp_path / "ds"
    shutil.copytree(sample_dataset.parent, ds)
    text = (ds / "dataset.yaml").read_text().replace("name: road", f"name: {json.dumps(name)}")
    (ds / "dataset.yaml").write_text(text)
    code, _, err = run(["data", "stats", ds / "dataset.yaml"], capsys)
    line = one_line(err)
    assert code == 2 and "dataset.yaml" in line and "classes[1].name" in line and words in line


@pytest.mark.parametrize("case", ["newline", "escape code", "too long", "NUL"])
def test_bundle_json(tmp_path, tiny_bundle, sample_dataset, capsys, case):
    name, words = BAD_NAMES[case]
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["classes"][2] = name
    (bundle / "bundle.json").write_text(json.dumps(meta))
    image = sorted((sample_dataset.parent / "images").iterdir())[0]
    code, _, err = run(["predict", bundle, image, "-o", tmp_path / "out", "--backend", "torch"], capsys)
    line = one_line(err)
    assert code == 2 and "bundle.json" in line and "classes[2]" in line and words in line
    assert not (tmp_path / "out").exists()


def test_onnx_metadata(tmp_path, tiny_bundle, sample_dataset, capsys):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    meta = json.loads((tiny_bundle / "bundle.json").read_text())
    meta["classes"][0] = "wa\nter"
    graph = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=1)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, "H", "W"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"terraseg": json.dumps(meta)})
    path = tmp_path / "names.onnx"
    onnx.save(model, str(path))
    image = sorted((sample_dataset.parent / "images").iterdir())[0]
    code, _, err = run(["predict", path, image, "-o", tmp_path / "out"], capsys)
    line = one_line(err)
    assert code == 2 and "names.onnx" in line and "classes[0]" in line and "line break" in line


@pytest.mark.parametrize("table", ["classes.json", "class_dict.csv"])
def test_class_tables(tmp_path, sample_dataset, capsys, table):
    ds = tmp_path / "ds"
    shutil.copytree(sample_dataset.parent, ds)
    (ds / "dataset.yaml").unlink()
    if table == "classes.json":
        (ds / table).write_text(json.dumps({"classes": [{"name": "water", "color": "#1F78B4"},
                                                        {"name": "\x1b]0;owned\x07road", "color": "#A0A0A0"}]}))
    else:
        (ds / table).write_text('name,r,g,b\nwater,31,120,180\n"ro\nad",160,160,160\n')
    code, out, err = run(["data", "inspect", ds, "--no-yaml"], capsys)
    line = one_line(err)
    assert code == 2 and table in line and "class name" in line
    assert "\x1b" not in out + err and listing(ds / "masks") == listing(sample_dataset.parent / "masks")


def test_overlay_legend_draws_any_label():
    # the legend never sees a raw control character, whatever reaches it
    from terraseg.predict.outputs import make_overlay

    image = np.zeros((40, 50, 3), np.uint8)
    classes = np.zeros((40, 50), np.uint8)
    classes[:, 25:] = 1
    canvas = make_overlay(image, classes, [(255, 0, 0), (0, 0, 255)], ["a\nb", "\x1b[1mbold" + "x" * 200],
                          [50.0, 50.0])
    assert canvas.size[1] >= 40 and canvas.size[0] > 50
    assert printable_label("a\nb") == "a\ufffdb" and len(printable_label("x" * 200)) == MAX_CLASS_NAME
