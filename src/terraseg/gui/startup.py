"""Start-up check before Qt starts: can the X11 platform plugin load? (no Qt widgets imported here)

When a system library of Qt's xcb plugin is missing, Qt prints a long message that blames
``libxcb-cursor0`` whatever is missing and aborts. ``platform_problem()`` runs ``ldd`` on the plugin of
the installed PySide6 first and turns the libraries it reports as ``not found`` into one line naming
them and the Debian/Ubuntu and Fedora packages that provide them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Mapping

# soname -> (Debian/Ubuntu package, Fedora package): every system library libqxcb.so links against
PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libXau.so.6": ("libxau6", "libXau"),
    "libXdmcp.so.6": ("libxdmcp6", "libXdmcp"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libGLX.so.0": ("libglx0", "libglvnd-glx"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
}

LddRunner = Callable[[Path], "str | None"]


def missing_libraries(ldd_output: str) -> list[str]:
    """Sonames that ``ldd`` reports as ``not found`` (each once, in ldd's order)."""
    out: list[str] = []
    for line in ldd_output.splitlines():
        name, sep, rest = line.strip().partition("=>")
        if sep and rest.strip() == "not found" and name.strip() not in out:
            out.append(name.strip())
    return out


def _packages(missing: list[str], column: int) -> list[str]:
    out: list[str] = []
    for soname in missing:
        pkg = PACKAGES.get(soname, (soname, soname))[column]
        if pkg not in out:
            out.append(pkg)
    return out


def missing_message(missing: list[str]) -> str:
    """One line: which libraries are missing and the commands that install them."""
    return (f"the desktop app cannot start: Qt's X11 platform plugin needs {', '.join(missing)}, "
            f"which {'is' if len(missing) == 1 else 'are'} not installed; install "
            f"{'it' if len(missing) == 1 else 'them'} with `sudo apt install {' '.join(_packages(missing, 0))}` "
            f"(Debian, Ubuntu) or `sudo dnf install {' '.join(_packages(missing, 1))}` (Fedora)")


def uses_xcb(env: Mapping[str, str]) -> bool:
    """Whether Qt will start on X11 (xcb) in this environment on Linux."""
    if not sys.platform.startswith("linux"):
        return False
    requested = env.get("QT_QPA_PLATFORM", "").strip()
    if requested:
        return requested.split(";")[0].split(":")[0] == "xcb"
    # unset: Qt takes Wayland in a Wayland session, X11 otherwise
    return not (env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE") == "wayland")


def xcb_plugin() -> Path | None:
    """``libqxcb.so`` of the PySide6 in use (wheel or standalone build), or None when there is none."""
    candidates = []
    for p in os.environ.get("QT_PLUGIN_PATH", "").split(os.pathsep):
        if p:
            candidates.append(Path(p))
    try:
        from PySide6.QtCore import QLibraryInfo

        candidates.append(Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)))
        import PySide6

        candidates.append(Path(PySide6.__file__).parent / "Qt" / "plugins")
    except ImportError:
        return None
    for c in candidates:
        plugin = c / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def run_ldd(path: Path) -> str | None:
    """``ldd``'s output for ``path``; None when ldd is not available or fails."""
    try:
        proc = subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def platform_problem(env: Mapping[str, str] | None = None, ldd: LddRunner = run_ldd,
                     plugin: Path | None = None) -> str | None:
    """A one-line reason why Qt cannot start here, or None when nothing is known to be wrong."""
    env = os.environ if env is None else env
    if not uses_xcb(env):
        return None
    plugin = plugin or xcb_plugin()
    if plugin is not None:
        output = ldd(plugin)
        missing = missing_libraries(output) if output else []
        if missing:
            return missing_message(missing)
    if not env.get("DISPLAY"):
        return ("the desktop app cannot start: no X display (DISPLAY is not set); start it from a desktop "
                "session, or with QT_QPA_PLATFORM=offscreen for a headless check")
    return None


__all__ = ["PACKAGES", "missing_libraries", "missing_message", "platform_problem", "uses_xcb", "xcb_plugin"]
