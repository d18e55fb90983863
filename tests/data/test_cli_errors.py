"""Bad input through the CLI: one line naming the file and the problem, exit status 2, no outputs."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from terraseg.cli import main


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    err = capsys.readouterr().err
    return exc.value.code, err


@pytest.fixture
def ds(sample_dataset, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(sample_dataset.parent, root)
    return root


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


def test_truncated_image(ds, tmp_path, capsys):
    img = sorted((ds / "images").iterdir())[1]
    data = img.read_bytes()
    img.write_bytes(data[: len(data) // 2])
    code, err = run_cli(["data", "stats", ds / "dataset.yaml", "--json", tmp_path / "stats.json"], capsys)
    line = _one_error_line(err)
    assert code == 2 and img.name in line and "corrupt or truncated" in line
    assert not (tmp_path / "stats.json").exists()
    code, err = run_cli(["data", "chip", ds / "dataset.yaml", "-o", tmp_path / "chips", "--size", "64"], capsys)
    assert code == 2 and img.name in _one_error_line(err)
    assert not (tmp_path / "chips").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_not_an_image(ds, capsys):
    img = sorted((ds / "images").iterdir())[0]
    img.write_text("hello")
    code, err = run_cli(["data", "stats", ds / "dataset.yaml"], capsys)
    line = _one_error_line(err)
    assert code == 2 and img.name in line and "not a readable image" in line


def test_mask_size_mismatch(ds, tmp_path, capsys):
    mask = sorted((ds / "masks").iterdir())[2]
    Image.new("RGB", (50, 40), (31, 120, 180)).save(mask)
    code, err = run_cli(["data", "chip", ds / "dataset.yaml", "-o", tmp_path / "chips", "--size", "64"], capsys)
    line = _one_error_line(err)
    assert code == 2 and mask.name in line and "mask is 50x40 but its image" in line
    assert not (tmp_path / "chips").exists()


def test_mask_size_mismatch_in_dataset(ds):
    from terraseg.data.dataset import SegmentationDataset
    from terraseg.errors import DataError

    mask = sorted((ds / "masks").iterdir())[0]
    Image.new("RGB", (50, 40), (31, 120, 180)).save(mask)
    for crop in (None, 64):
        with pytest.raises(DataError, match="mask is 50x40") as err:  # when the data set is built
            SegmentationDataset(ds / "dataset.yaml", crop_size=crop)[0]
        assert mask.name in str(err.value)


def test_unknown_mask_colour_strict(ds, tmp_path, capsys):
    mask = sorted((ds / "masks").iterdir())[0]
    rgb = np.asarray(Image.open(mask).convert("RGB")).copy()
    rgb[5, 5] = (1, 2, 3)
    Image.fromarray(rgb).save(mask)
    code, err = run_cli(["data", "convert-masks", ds / "dataset.yaml", "-o", tmp_path / "idx", "--strict"], capsys)
    line = _one_error_line(err)
    assert code == 2 and mask.name in line and "#010203" in line
    assert not (tmp_path / "idx").exists()
    # without --strict the colour is counted and becomes ignore
    from typer.testing import CliRunner

    from terraseg.cli import app

    res = CliRunner().invoke(app, ["data", "convert-masks", str(ds / "dataset.yaml"), "-o", str(tmp_path / "idx")])
    assert res.exit_code == 0 and "1 pixel(s)" in res.output and "#010203" in res.output


def test_wrong_band_count(ds, capsys):
    yaml = ds / "dataset.yaml"
    yaml.write_text(yaml.read_text().replace("bands: 3", "bands: 4"))
    code, err = run_cli(["data", "stats", yaml], capsys)
    line = _one_error_line(err)
    assert code == 2 and "has 3 band(s) but the dataset says bands: 4" in line and ".png" in line


def test_missing_yaml_key(ds, capsys):
    yaml = ds / "dataset.yaml"
    text = yaml.read_text()
    start = text.index("classes:")
    end = text.index("ignore")
    yaml.write_text(text[:start] + text[end:])
    code, err = run_cli(["data", "split", yaml, "-o", ds / "split.json"], capsys)
    line = _one_error_line(err)
    assert code == 2 and "dataset.yaml" in line and "key 'classes': missing" in line
    assert not (ds / "split.json").exists()


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "nothing").mkdir()
    code, err = run_cli(["data", "inspect", tmp_path / "nothing", "-o", tmp_path / "d.yaml"], capsys)
    line = _one_error_line(err)
    assert code == 2 and "nothing" in line and "empty folder" in line
    assert not (tmp_path / "d.yaml").exists()


def test_console_script_exit_status(tmp_path):
    (tmp_path / "nothing").mkdir()
    res = subprocess.run([sys.executable, "-m", "terraseg", "data", "inspect", str(tmp_path / "nothing")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.startswith("error: ") and "Traceback" not in res.stderr


def test_cli_round_trip_on_sample(tmp_path):
    """Every command end to end on a generated sample (through the real console entry)."""
    exe = [sys.executable, "-m", "terraseg", "data"]

    def ok(*args):
        res = subprocess.run(exe + [str(a) for a in args], capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        return res.stdout

    ok("sample", tmp_path / "s", "-n", "4", "--size", "64", "--format", "tif")
    out = ok("inspect", tmp_path / "s", "-o", tmp_path / "draft.yaml")
    assert "6 distinct colours" in out and (tmp_path / "draft.yaml").is_file()
    ok("stats", tmp_path / "s" / "dataset.yaml", "--write", "--json", tmp_path / "stats.json")
    ok("split", tmp_path / "s" / "dataset.yaml", "-o", tmp_path / "split.json", "--val", "0.25", "--test", "0.25")
    ok("convert-masks", tmp_path / "s" / "dataset.yaml", "-o", tmp_path / "idx")
    ok("colorize", tmp_path / "s" / "dataset.yaml", tmp_path / "idx" / "masks", "-o", tmp_path / "col")
    ok("chip", tmp_path / "s" / "dataset.yaml", "-o", tmp_path / "chips", "--size", "32")
    from terraseg.data.spec import load_spec

    assert load_spec(tmp_path / "s" / "dataset.yaml").mean is not None
    assert len(list((tmp_path / "col").rglob("*.tif"))) == 4
    assert len(load_spec(tmp_path / "chips" / "dataset.yaml").labelled()) >= 4


def test_import_terraseg_data_does_not_import_torch():
    code = ("import sys, terraseg.data, terraseg.cli.data; from terraseg.data import inspect_dataset, compute_stats, "
            "make_split, load_split, generate_sample, chip_dataset, convert_masks; "
            "assert 'torch' not in sys.modules and 'albumentations' not in sys.modules, 'heavy import'")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
