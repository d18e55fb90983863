"""Usage errors, warnings and summaries: each one line, never a box, a page or a traceback."""

from __future__ import annotations

import logging
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image

from terraseg.cli import app

from .helpers import listing, one_line, run


@pytest.mark.parametrize("argv, expect", [
    (["data", "split", "x.yaml", "--bogus"], "No such option: --bogus"),
    (["predict"], "Missing argument"),
    (["data", "chip", "x.yaml", "-o", "out", "--size", "big"], "Invalid value for '--size'"),
    (["no-such-command"], "No such command 'no-such-command'"),
])
def test_usage_errors_are_one_line(argv, expect, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv, capsys)
    line = one_line(err)
    assert code == 2 and expect in line and "--help" in line
    assert listing(tmp_path) == []


@app.command("noise-test", hidden=True)
def _noise() -> None:
    for i in range(50):  # the same warning with different numbers: printed once, then counted
        warnings.warn(f"tile {i} has {i * 3} NaN values", RuntimeWarning, stacklevel=1)
    warnings.warn("Dataset has no geotransform.\nThe identity matrix will be returned.", UserWarning)
    logging.getLogger("terraseg.test").warning("could not update plots: %s", "disk full")


def test_warnings_become_one_line_each_and_repeats_are_counted(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # no de-duplication by Python: the summary must do it
        code, out, err = run(["noise-test"], capsys)
    assert code == 0 and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == [
        "warning: RuntimeWarning: tile 0 has 0 NaN values",
        "warning: Dataset has no geotransform. The identity matrix will be returned.",
        "warning: could not update plots: disk full",
        "warning: 49 more like: RuntimeWarning: tile 0 has 0 NaN values",
    ]


def test_jpeg_masks_give_one_short_line(sample_dataset, tmp_path, capsys):
    # JPEG compression turns 6 mask colours into thousands: the line names the count and the most frequent
    ds = tmp_path / "ds"
    shutil.copytree(sample_dataset.parent, ds)
    for png in sorted((ds / "masks").glob("*.png")):
        Image.open(png).convert("RGB").save(png.with_suffix(".jpg"), quality=40)
        png.unlink()
    colours = set()
    for jpg in (ds / "masks").glob("*.jpg"):
        colours |= set(map(tuple, np.asarray(Image.open(jpg)).reshape(-1, 3)))
    assert len(colours) > 100  # the case worth summarising
    code, out, err = run(["data", "convert-masks", ds / "dataset.yaml", "-o", tmp_path / "index"], capsys)
    # most pixels are compression colours no class owns: refused (more than max_ignored_share ignored)
    line = one_line(err)
    assert code == 2 and len(line) < 1000, line
    assert "unknown colours, the most frequent:" in line
    assert not (tmp_path / "index").exists()


def test_evaluate_warns_when_most_mask_pixels_are_unknown(sample_dataset, tiny_bundle, tmp_path, capsys):
    # every mask pixel outside a 10x10 corner gets a colour no class owns: 100/25600 = 0.4 % labelled
    ds = tmp_path / "ds"
    shutil.copytree(sample_dataset.parent, ds)
    for png in sorted((ds / "masks").glob("*.png")):
        m = np.asarray(Image.open(png).convert("RGB")).copy()
        m[10:, :] = (7, 8, 9)
        m[:, 10:] = (7, 8, 9)
        Image.fromarray(m).save(png)
    out_dir = tmp_path / "eval"
    code, out, err = run(["evaluate", tiny_bundle, "--data", ds / "dataset.yaml", "--split", "all", "-o", out_dir],
                         capsys)
    assert code == 0, err
    line = one_line(err, "warning")
    labelled = 6 * 10 * 10 - sum(  # the black ignore colour may fall in the corner too
        int((np.asarray(Image.open(p).convert("RGB"))[:10, :10] == 0).all(axis=-1).sum())
        for p in (ds / "masks").glob("*.png"))
    share = 100 * (1 - labelled / (6 * 160 * 160))
    assert f"{share:.1f} % of the mask pixels are ignored or have colours no class owns" in line
    assert sorted(p.name for p in out_dir.iterdir()) == ["confusion_matrix.png", "metrics.json", "metrics.md"]
