"""Deeply nested JSON and YAML: one line naming the file (and the depth), never a RecursionError."""

from __future__ import annotations

import json
import shutil

import pytest

from terraseg.errors import TerrasegError
from terraseg.schemas._validate import MAX_NESTING, json_nesting, parse_json, parse_yaml

from .helpers import listing, one_line, run

DEEP = 100_000


def _image(sample_dataset):
    return sorted((sample_dataset.parent / "images").iterdir())[0]


def test_json_nesting_is_measured_outside_strings():
    # brackets inside strings, escaped quotes and backslashes do not count
    assert json_nesting('{"a": "[[[[", "b": "\\"[[", "c": "\\\\", "d": [1, {"e": [2]}]}') == 4
    assert json_nesting("[]") == 1 and json_nesting('"x"') == 0 and json_nesting("{}") == 1
    assert json_nesting("[" * 70 + "]" * 70) == 70


def test_nesting_at_the_limit_still_parses():
    text = "[" * MAX_NESTING + "]" * MAX_NESTING
    value = parse_json(text)
    for _ in range(MAX_NESTING - 1):
        value = value[0]
    assert value == []
    assert parse_yaml(text) == json.loads(text)  # the top-level list counts as a level in both
    with pytest.raises(TerrasegError, match=f"{MAX_NESTING + 1} levels deep"):
        parse_json("[" + text + "]", "f.json")


def test_bundle_json_nested_100000_deep(tmp_path, tiny_bundle, sample_dataset, capsys):
    bundle = tmp_path / "deep-bundle"
    shutil.copytree(tiny_bundle, bundle)
    meta = (bundle / "bundle.json").read_text().rstrip().rstrip("}")
    (bundle / "bundle.json").write_text(meta + ', "extra2": ' + "[" * DEEP + "]" * DEEP + "}")
    code, _, err = run(["predict", bundle, _image(sample_dataset), "-o", tmp_path / "out", "--backend", "torch"], capsys)
    line = one_line(err)
    assert code == 2 and "bundle.json" in line and f"{DEEP + 1} levels deep" in line
    assert not (tmp_path / "out").exists()


def test_onnx_metadata_nested_100000_deep(tmp_path, capsys, sample_dataset):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, "H", "W"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"terraseg": "[" * DEEP + "]" * DEEP})
    path = tmp_path / "deep.onnx"
    onnx.save(model, str(path))
    code, _, err = run(["predict", path, _image(sample_dataset), "-o", tmp_path / "out"], capsys)
    line = one_line(err)
    assert code == 2 and "deep.onnx" in line and "levels deep" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("where", ["classes", "extra", "augment"])
def test_dataset_yaml_nested_deep(tmp_path, sample_dataset, capsys, where):
    ds = tmp_path / "ds"
    shutil.copytree(sample_dataset.parent, ds)
    text = (ds / "dataset.yaml").read_text()
    deep = "[" * 5000 + "]" * 5000
    text = text.replace("classes:\n", f"classes: {deep}\nx:\n") if where == "classes" else \
        text + f"{where}: {deep}\n"
    (ds / "dataset.yaml").write_text(text)
    before = listing(ds)
    code, _, err = run(["data", "stats", ds / "dataset.yaml"], capsys)
    line = one_line(err)
    assert code == 2 and "dataset.yaml" in line and f"more than {MAX_NESTING} levels deep" in line
    assert listing(ds) == before


def test_yaml_block_style_nesting(tmp_path):
    # indentation-nested mappings (not flow brackets) are counted the same way
    text = "".join(f"{'  ' * i}k{i}:\n" for i in range(MAX_NESTING + 5)) + "  " * (MAX_NESTING + 5) + "v: 1\n"
    with pytest.raises(TerrasegError, match="levels deep"):
        parse_yaml(text, tmp_path / "c.yaml")


def test_yaml_alias_bomb_is_refused(tmp_path, capsys):
    # nine lines standing for 10^9 strings: refused from the event stream before anything is expanded
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    config = tmp_path / "bomb.yaml"
    config.write_text("\n".join(lines) + "\n")
    code, _, err = run(["train", config], capsys)
    line = one_line(err)
    assert code == 2 and "bomb.yaml" in line and "aliases" in line
    # shared anchors that stay small are fine
    assert parse_yaml("a: &x [1, 2]\nb: *x\nc: *x\n") == {"a": [1, 2], "b": [1, 2], "c": [1, 2]}


def test_training_override_nested_deep(tmp_path, sample_dataset, capsys):
    # an override value is YAML: a deep one is kept as a string and then refused by the schema
    code, _, err = run(["train", f"data.dataset={sample_dataset}", "loss.terms=" + "[" * 3000 + "]" * 3000,
                        "-o", tmp_path / "runs"], capsys)
    line = one_line(err)
    assert code == 2 and "loss.terms" in line
    assert listing(tmp_path) == []


def test_split_and_class_table_json_nested_deep(tmp_path, sample_dataset, capsys):
    split = tmp_path / "split.json"
    split.write_text('{"train": ' + "[" * DEEP + "]" * DEEP + "}")
    from terraseg.data.split import load_split

    with pytest.raises(TerrasegError, match="split.json: .*levels deep"):
        load_split(split)
    ds = tmp_path / "ds"
    shutil.copytree(sample_dataset.parent, ds)
    (ds / "classes.json").write_text("[" * DEEP + "]" * DEEP)
    code, out, err = run(["data", "inspect", ds, "--no-yaml"], capsys)
    assert "Traceback" not in err and "RecursionError" not in out + err
    assert "classes.json" in out + err and "levels deep" in out + err
