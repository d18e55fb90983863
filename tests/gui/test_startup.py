"""Start-up check (issue 16): a missing system library of Qt's X11 plugin gives one line, not an abort."""

from __future__ import annotations

import ctypes
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from terraseg.gui.startup import missing_libraries, missing_message, platform_problem, run_ldd, xcb_plugin

# ldd of libqxcb.so (PySide6 6.11) on a Debian 12 desktop that has libxcb-cursor0 but not the other two
FAKE_LDD = """\tlinux-vdso.so.1 (0x00007ffd5a1f2000)
\tlibQt6XcbQpa.so.6 => /opt/venv/lib/python3.11/site-packages/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f1)
\tlibGL.so.1 => /lib/x86_64-linux-gnu/libGL.so.1 (0x00007f2100bc5000)
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007f2100b72000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f2100b6b000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f2100b63000)
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-randr.so.0 => /lib/x86_64-linux-gnu/libxcb-randr.so.0 (0x00007f2100b4a000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f20fee1e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f2100d25000)
"""


def test_missing_libraries_from_ldd_output():
    assert missing_libraries(FAKE_LDD) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert missing_libraries(FAKE_LDD.replace("not found", "/lib/x/y.so (0x1)")) == []


def test_message_is_one_line_with_debian_and_fedora_packages():
    msg = missing_message(["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0", "libfoo.so.3"])
    assert "\n" not in msg
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1, libxcb-cursor.so.0, libfoo.so.3" in msg
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libfoo.so.3`" in msg
    assert "sudo dnf install xcb-util-wm xcb-util-keysyms xcb-util-cursor libfoo.so.3`" in msg


@pytest.mark.parametrize("env, expect", [
    ({"DISPLAY": ":0"}, "libxcb-icccm.so.4"),  # plain X11 desktop
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, "libxcb-icccm.so.4"),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, None),  # the X11 plugin is not used at all
    ({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, None),
    ({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland", "QT_QPA_PLATFORM": "xcb"},
     "libxcb-icccm.so.4"),
])
def test_platform_problem_only_when_x11_is_used(env, expect, tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("the X11 plugin check is for Linux")
    seen = []

    def fake_ldd(path):
        seen.append(path)
        return FAKE_LDD

    problem = platform_problem(env, ldd=fake_ldd, plugin=tmp_path / "libqxcb.so")
    if expect is None:
        assert problem is None and seen == []
    else:
        assert expect in problem and seen == [tmp_path / "libqxcb.so"]


def test_no_display_and_nothing_missing(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("the X11 plugin check is for Linux")
    complete = FAKE_LDD.replace("=> not found", "=> /lib/x86_64-linux-gnu/present.so (0x1)")
    assert platform_problem({"DISPLAY": ":0"}, ldd=lambda p: complete, plugin=tmp_path / "p.so") is None
    no_display = platform_problem({}, ldd=lambda p: complete, plugin=tmp_path / "p.so")
    assert "DISPLAY is not set" in no_display and "\n" not in no_display
    # ldd unavailable: nothing is claimed about libraries
    assert platform_problem({"DISPLAY": ":0"}, ldd=lambda p: None, plugin=tmp_path / "p.so") is None


def test_real_plugin_ldd_agrees_with_the_dynamic_loader():
    """On this machine: what the check calls missing is exactly what the loader cannot open."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the X11 plugin check is for Linux")
    plugin = xcb_plugin()
    assert plugin is not None and plugin.name == "libqxcb.so"
    output = run_ldd(plugin)
    assert output is not None
    detected = set(missing_libraries(output))
    system = []
    for line in output.splitlines():
        name = line.strip().split(" ")[0]
        if "=>" in line and not name.startswith(("libQt6", "libicu", "libshiboken", "libpyside")):
            system.append(name)  # Qt's own libraries resolve through the plugin's RUNPATH only
    assert len(system) > 10
    unloadable = set()
    for name in system:
        try:
            ctypes.CDLL(name)
        except OSError:
            unloadable.add(name)
    assert detected == unloadable


def test_app_start_prints_one_line_instead_of_qt_abort(tmp_path):
    """The real entry point in a subprocess, with an ``ldd`` on PATH that reports two missing libraries."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the X11 plugin check is for Linux")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (tmp_path / "ldd.txt").write_text(FAKE_LDD)
    ldd = bindir / "ldd"
    ldd.write_text(f"#!/bin/sh\ncat '{tmp_path / 'ldd.txt'}'\n")
    ldd.chmod(ldd.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", DISPLAY=":97",
               TERRASEG_GUI_SETTINGS=str(tmp_path / "s.ini"))
    env.pop("QT_QPA_PLATFORM", None)
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.run([sys.executable, "-m", "terraseg", "gui"], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 2, proc.stderr[-1500:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in lines[0]
    assert "apt install libxcb-icccm4 libxcb-keysyms1" in lines[0]
    assert "dnf install xcb-util-wm xcb-util-keysyms" in lines[0]
    assert Path(env["TERRASEG_GUI_SETTINGS"]).exists() is False  # stopped before any window was made
