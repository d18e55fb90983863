"""``terraseg models list/info/encoders``."""

from __future__ import annotations

import re
import subprocess
import sys

from typer.testing import CliRunner

from terraseg import models
from terraseg.models.complexity import count_flops
from terraseg.cli import app

runner = CliRunner()


def test_models_list_markdown_matches_library_counts():
    result = runner.invoke(app, ["models", "list", "--size", "128", "--num-classes", "5", "--markdown"])
    assert result.exit_code == 0, result.output
    rows = {m.group(1): (float(m.group(2)), float(m.group(3)))
            for m in re.finditer(r"^\| `([^`]+)` \| [^|]+ \| ([\d.]+) \| ([\d.]+) \|", result.output, re.M)}
    for name in models.available():
        assert name in rows, name
    params, flops = count_flops("resuneta_d6", size=128, num_classes=5)
    assert rows["resuneta_d6"] == (round(params / 1e6, 1), round(flops / 1e9, 1))


def test_models_list_rich_table():
    result = runner.invoke(app, ["models", "list", "--size", "64", "--no-smp", "--in-channels", "4"],
                           env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "GFLOPs @ 64" in result.output and "resuneta_d6_multitask" in result.output
    assert "smp:Unet" not in result.output


def test_models_info_with_options():
    result = runner.invoke(app, ["models", "info", "smp:fpn", "-o", "encoder_name=resnet18", "--size", "256"],
                           env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    params, flops = count_flops("smp:FPN", size=256, num_classes=6, encoder_name="resnet18")
    assert f"{params / 1e6:.2f} M parameters" in result.output
    assert f"{flops / 1e9:.1f} GFLOPs at 256x256" in result.output
    assert "encoder_name" in result.output and "'resnet18'" in result.output


def test_models_encoders_filter():
    result = runner.invoke(app, ["models", "encoders", "resnet"])
    assert result.exit_code == 0
    names = result.output.split()
    assert "resnet50" in names and all("resnet" in n for n in names)


def test_unknown_model_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, "-m", "terraseg", "models", "info", "segnet"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert lines[0].startswith("error:") and "unknown architecture 'segnet'" in proc.stderr
    assert "Traceback" not in proc.stderr
