"""Property-based tests of every parser of user input: whatever is generated ends in a result or one
TerrasegError (one line, naming the file or key), never another exception or a hang.

Examples are generated around valid inputs (a valid file with one key replaced by anything, a key
deleted, text cut or spliced) as well as from scratch, so the generator reaches the deep checks and
not only "not a mapping". ``max_examples`` is small and ``deadline=None``: the suite stays fast on
two loaded cores; a failure prints the smallest input that breaks the promise.
"""

from __future__ import annotations

import copy
import json
import math
import os

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from terraseg.errors import TerrasegError  # noqa: E402

# The suite runs the same examples every time (no flaky CI); TERRASEG_HYPOTHESIS=explore draws new
# ones on each run, for hunting (`--hypothesis-seed=N` then replays a run).
settings.register_profile("suite", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("TERRASEG_HYPOTHESIS", "suite"))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12) | st.sampled_from(["", "#00FF00", "1e-4", "-1", "nan", "inf", "null", "255", "a\nb",
                                                    "\x1b[31m", "[", "{", "*", "&a", "0x10", "1,2,3"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
    st.text(max_size=8) | st.sampled_from(["name", "color", "value", "classes", "images", "bands"]), inner,
    max_size=5), max_leaves=15)
# deep nesting reached directly (the recursive strategy stays shallow): as text, and as values deep
# enough to pass the limit yet shallow enough for json.dumps / yaml.safe_dump in the test itself
deep = st.integers(1, 3000).map(lambda n: "[" * n + "]" * n)


def _nested(n: int) -> list:
    value: list = []
    for _ in range(n - 1):
        value = [value]
    return value


deep_values = st.integers(1, 120).map(_nested)


def _one_line(exc: TerrasegError) -> str:
    text = str(exc)
    assert "\n" not in text and "\r" not in text and "\x1b" not in text, repr(text)
    return text


def _mutate(data: dict, draw) -> dict:
    """A copy of ``data`` with one (possibly nested) key replaced, deleted or added."""
    out = copy.deepcopy(data)
    node = out
    for _ in range(draw(st.integers(0, 2))):
        keys = [k for k, v in node.items() if isinstance(v, dict)] if isinstance(node, dict) else []
        if not keys:
            break
        node = node[draw(st.sampled_from(sorted(keys)))]
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if isinstance(node, dict) and node and action != "add":
        key = draw(st.sampled_from(sorted(node)))
        if action == "delete":
            del node[key]
        else:
            node[key] = draw(values | deep_values)
    elif isinstance(node, dict):
        node[draw(st.text(max_size=8))] = draw(values)
    return out


# ------------------------------------------------------------------ YAML and JSON text
@SETTINGS
@given(text=st.text(alphabet=st.sampled_from(list("[]{}:,-&*!|>'\"#%@` \n\tab01.?") + ["\x00", "\ufeff", "é"]),
                    max_size=200) | deep)
def test_parse_yaml_any_text(text):
    from terraseg.schemas._validate import parse_yaml

    try:
        parse_yaml(text, "x.yaml")
    except TerrasegError as exc:
        assert _one_line(exc).startswith("x.yaml: ")


@SETTINGS
@given(text=st.text(alphabet=st.sampled_from(list('[]{}:,"\\ 0123456789.eE-+truefalsn') + ["\x00", "é"]),
                    max_size=200) | deep)
def test_parse_json_any_text(text):
    from terraseg.schemas._validate import parse_json

    try:
        parse_json(text, "x.json")
    except TerrasegError as exc:
        assert _one_line(exc).startswith("x.json: ")


# ------------------------------------------------------------------ dataset YAML
@pytest.fixture(scope="module")
def dataset_dict(sample_dataset):
    import yaml

    return yaml.safe_load(sample_dataset.read_text())


@SETTINGS
@given(data=st.data())
def test_dataset_description(tmp_path_factory, sample_dataset, dataset_dict, data):
    import yaml

    from terraseg.data.spec import load_spec

    mutated = _mutate(dataset_dict, data.draw)
    path = tmp_path_factory.mktemp("ds") / "dataset.yaml"
    path.write_text(yaml.safe_dump(mutated, allow_unicode=True), encoding="utf-8")
    for name in ("images", "masks"):  # the patterns stay relative to the sample
        (path.parent / name).symlink_to(sample_dataset.parent / name)
    try:
        spec = load_spec(path)
    except TerrasegError as exc:
        assert str(path) in _one_line(exc)
        return
    assert all(name.isprintable() for name in spec.class_names)


# ------------------------------------------------------------------ training config and overrides
@settings(SETTINGS, max_examples=25)
@given(data=st.data())
def test_training_config_and_overrides(sample_dataset, data):
    from terraseg.train.config import default_config, load_config

    base = {"data": {"dataset": str(sample_dataset)}}
    config = _mutate({**default_config(), **base}, data.draw)
    keys = ["data.crop_size", "data.batch_size", "data.samples_per_epoch", "data.val_crop_size", "model.options",
            "model.options.depth", "model.options.base_channels", "loss.terms", "loss.terms.dice", "optimizer.lr",
            "optimizer.betas", "schedule.milestones", "trainer.max_epochs", "trainer.devices", "logger", "callbacks",
            "data.sampling.class_balance", "loss.class_weights", "trainer.bogus", "x", "data"]
    texts = st.one_of(st.text(max_size=12), values.map(json.dumps), deep)
    overrides = data.draw(st.lists(st.tuples(st.sampled_from(keys), texts).map(lambda kv: f"{kv[0]}={kv[1]}")
                                   | st.text(max_size=15), max_size=3))
    try:
        load_config(config, overrides)
    except TerrasegError as exc:
        _one_line(exc)


# ------------------------------------------------------------------ bundle.json and ONNX metadata
@pytest.fixture(scope="module")
def bundle_dict(tiny_bundle):
    return json.loads((tiny_bundle / "bundle.json").read_text())


@SETTINGS
@given(data=st.data())
def test_bundle_json(tmp_path_factory, bundle_dict, data):
    from terraseg.bundle import read_meta

    folder = tmp_path_factory.mktemp("bundle")
    mutated = _mutate(bundle_dict, data.draw)
    text = json.dumps(mutated, allow_nan=True)
    if data.draw(st.booleans()):  # and cut or spliced text
        cut = data.draw(st.integers(0, len(text)))
        text = text[:cut] + data.draw(st.sampled_from(["", "[" * 5000, "}", '"\\u0000"', "\x00", "NaN"])) + text[cut:]
    (folder / "bundle.json").write_text(text, encoding="utf-8")
    try:
        meta = read_meta(folder)
    except TerrasegError as exc:
        assert "bundle.json" in _one_line(exc)
        return
    assert meta.num_classes == len(meta.classes) and all(map(math.isfinite, meta.mean or []))


@SETTINGS
@given(data=st.data())
def test_onnx_metadata(bundle_dict, data):
    from terraseg.predict.onnx_backend import _export_props, _meta_from_props

    raw = data.draw(st.one_of(st.just(json.dumps(_mutate(bundle_dict, data.draw), allow_nan=True)), st.text(max_size=40),
                              deep, values.map(json.dumps)))
    try:
        _meta_from_props({"terraseg": raw}, "m.onnx")
    except TerrasegError as exc:
        assert _one_line(exc).startswith("m.onnx: ")
    assert isinstance(_export_props({"terraseg_export": raw}), dict)


# ------------------------------------------------------------------ band lists
@SETTINGS
@given(bands=st.one_of(st.text(alphabet="0123456789,- x.", max_size=15), st.lists(st.integers(-5, 10**6), max_size=6),
                       st.none()))
def test_band_lists(bands):
    from terraseg.data.source import parse_bands

    try:
        out = parse_bands(bands)
    except TerrasegError as exc:
        _one_line(exc)
        return
    assert out is None or all(isinstance(b, int) and b >= 1 for b in out)


# ------------------------------------------------------------------ class tables and split files
@SETTINGS
@given(data=st.data(), table=st.sampled_from(["classes.json", "class_dict.csv", "dataset.yaml"]))
def test_class_tables(tmp_path_factory, data, table):
    from terraseg.data.names import read_class_names
    from terraseg.schemas._validate import class_name_problem

    folder = tmp_path_factory.mktemp("names")
    names = st.text(max_size=70) | st.sampled_from(["water", "a\nb", "\x1b[0m", "r" * 65, ""])
    if table == "class_dict.csv":
        rows = data.draw(st.lists(st.tuples(names, st.integers(-1, 300), st.text(max_size=3), st.integers(0, 255)),
                                  max_size=5))
        import csv
        import io

        buf = io.StringIO()
        csv.writer(buf).writerows([("name", "r", "g", "b"), *rows])
        (folder / table).write_text(buf.getvalue(), encoding="utf-8")
    else:
        entries = data.draw(st.lists(st.fixed_dictionaries({"name": names | scalars}, optional={
            "color": scalars | st.lists(st.integers(-1, 300), max_size=4), "value": scalars}), max_size=5)
            | values | deep_values)
        body = {"classes": entries} if data.draw(st.booleans()) else entries
        import yaml

        text = json.dumps(body) if table == "classes.json" else yaml.safe_dump(body)
        (folder / table).write_text(text, encoding="utf-8")
    try:
        found = read_class_names(folder)
    except TerrasegError as exc:
        assert table in _one_line(exc)
        return
    for src in found:
        assert all(class_name_problem(n) is None for n in [*src.colors.values(), *src.values.values()])


@SETTINGS
@given(body=values | deep)
def test_split_files(tmp_path_factory, body):
    from terraseg.data.split import load_split

    path = tmp_path_factory.mktemp("split") / "split.json"
    path.write_text(body if isinstance(body, str) and body.startswith("[") else json.dumps(body))
    try:
        out = load_split(path)
    except TerrasegError as exc:
        assert "split.json" in _one_line(exc)
        return
    assert all(isinstance(v, list) for v in out.values())



# ------------------------------------------------------------------ every error message
@SETTINGS
@given(message=st.text(max_size=40), path=st.none() | st.text(max_size=20))
def test_every_error_is_one_printable_line(message, path):
    # keys, class names and file names from user files end up in messages: escaped, never raw
    text = str(TerrasegError(message, path))
    assert text.isprintable() and "\n" not in text


# ------------------------------------------------------------------ point files of `terraseg assess areas`
_csv_cells = st.one_of(st.text(alphabet="0123456789.-e+ ,;\"'\nxyabnNaif", max_size=12), scalars.map(str))


@SETTINGS
@given(data=st.data(), kind=st.sampled_from(["csv", "geojson", "gpkg"]))
def test_point_files(tmp_path_factory, data, kind):
    from terraseg.assess.points import read_points

    folder = tmp_path_factory.mktemp("points")
    path = folder / f"points.{kind}"
    if kind == "csv":
        header = data.draw(st.sampled_from(["x,y,reference", "X,Y,reference", "x,reference", "lon,lat,ref", ""])
                           | st.text(max_size=20))
        rows = data.draw(st.lists(st.lists(_csv_cells, max_size=4).map(",".join), max_size=6))
        path.write_text("\n".join([header, *rows]), encoding="utf-8")
    elif kind == "geojson":
        feature = st.fixed_dictionaries({"type": st.just("Feature"), "geometry": values | st.fixed_dictionaries(
            {"type": st.sampled_from(["Point", "LineString", "Bogus"]),
             "coordinates": st.lists(st.floats(allow_nan=True, allow_infinity=True) | scalars, max_size=3)}),
            "properties": values | st.fixed_dictionaries({"reference": scalars})})
        body = data.draw(st.fixed_dictionaries({"type": st.just("FeatureCollection"),
                                                "features": st.lists(feature, max_size=4)}) | values | deep_values)
        path.write_text(json.dumps(body, allow_nan=True), encoding="utf-8")
    else:  # bytes that are, or are cut from, a real GeoPackage are beyond hypothesis: arbitrary bytes then
        path.write_bytes(data.draw(st.binary(max_size=300)) if data.draw(st.booleans()) else b"SQLite format 3\x00")
    try:
        points = read_points(path)
    except TerrasegError as exc:
        assert "points." in _one_line(exc)
        return
    assert len(points.x) == len(points.y) == len(points.labels)
