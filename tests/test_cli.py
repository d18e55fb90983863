"""The command line as a user meets it: help, version, and one-line errors for user mistakes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from terraseg import __version__
from terraseg.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "terraseg", *args], capture_output=True, text=True)


def test_version_and_help_list_every_stage():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"terraseg {__version__}"
    helptext = run_cli("--help").stdout
    for command in ("data", "models", "train", "evaluate", "predict", "export", "gui"):
        assert command in helptext, command


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from terraseg.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported by terraseg --help'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_user_error_is_one_line_without_traceback(tmp_path):
    missing = tmp_path / "no such model"
    out = run_cli("evaluate", str(missing), "--data", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error:") and "Traceback" not in out.stderr


def test_main_exits_2_on_terraseg_error(monkeypatch, capsys):
    from terraseg.cli import app
    from terraseg.errors import DataError

    @app.command("boom-test", hidden=True)
    def _boom() -> None:
        raise DataError("mask is 10x10 but image is 12x12", "a [weird] name.png")

    with pytest.raises(SystemExit) as info:
        main(["boom-test"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "a [weird] name.png: mask is 10x10 but image is 12x12" in err.replace("\n", "")
