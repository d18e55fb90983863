"""terraseg desktop app (PySide6).

``terraseg gui [IMAGE] [--model MODEL]`` or, in the standalone bundle, ``terraseg-app``. Nothing
here imports PySide6 at module level; torch is imported only when a torch bundle is predicted with,
so the app with an ONNX model runs where torch is not installed.

``main(["--smoke-test", IMAGE, MODEL])`` opens the window offscreen-capable, predicts, prints the
legend and exits 0 (non-zero on any failure): the packaging script uses it to check the bundle.
Before Qt starts, ``startup.platform_problem`` checks that the X11 platform plugin can load; if not,
the app prints one line naming the missing system libraries and their packages and exits 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def run_app(image: str | Path | None = None, model: str | Path | None = None, *, smoke_test: bool = False,
            settings_path: str | Path | None = None, timeout_s: float = 600.0, screenshot: str | None = None,
            bands: list[int] | None = None) -> int:
    """Start the app (blocking) and return its exit status."""
    if smoke_test and not os.environ.get("QT_QPA_PLATFORM") and not os.environ.get("DISPLAY") \
            and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from terraseg.gui.startup import platform_problem

    problem = platform_problem()
    if problem is not None:  # Qt itself would abort with a long message that may blame the wrong library
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from terraseg.gui.app import MainWindow, apply_theme, make_settings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("terraseg")
    app.setOrganizationName("terraseg")
    apply_theme(app)
    if smoke_test and settings_path is None:
        import tempfile

        settings_path = Path(tempfile.mkdtemp(prefix="terraseg-smoke-")) / "settings.ini"
    win = MainWindow(settings=make_settings(settings_path))
    win.bands = bands
    status = {"code": 0}
    true_refs = sys.getrefcount(True)
    if smoke_test:
        win.quiet_errors = True

        def done(result) -> None:
            if win.run is not None:  # wait until the worker thread has ended and the UI is idle again
                win.stateChanged.connect(lambda: done(result))
                return
            h, w = result.height, result.width
            print(f"smoke test: predicted {w}x{h} px in {result.seconds:.2f} s with {win.model_doc.label} "
                  f"on {win.model_doc.runtime}")
            for name, share, ha in win.legend.entries():
                print(f"  {name:<20s} {100 * share:6.2f} %" + (f"  {ha:,.2f} ha" if ha is not None else ""))
            if screenshot:
                win.grab().save(str(screenshot))
            print("torch imported:", "torch" in sys.modules)
            now = sys.getrefcount(True)
            print(f"references to True: {true_refs} at start, {now} now")
            if now < true_refs - 100:  # PySide6 6.12.0 loses one per signal emit and aborts later (issue 16)
                import PySide6

                status["code"] = 4
                print(f"smoke test failed: PySide6 {PySide6.__version__} loses references to True on signal "
                      "emits; install PySide6-Essentials>=6.6,<6.12", file=sys.stderr)
            QTimer.singleShot(0, app.quit)

        def fail(msg: str = "") -> None:
            status["code"] = 1
            print(f"smoke test failed: {msg or win.last_error}", file=sys.stderr)
            QTimer.singleShot(0, app.quit)

        win.predictionFinished.connect(done)
        win.predictionFailed.connect(fail)
        win.predictionCancelled.connect(lambda: fail("cancelled"))

        def timeout() -> None:
            status["code"] = 3
            print(f"smoke test: no result after {timeout_s:.0f} s", file=sys.stderr)
            app.quit()

        QTimer.singleShot(int(timeout_s * 1000), timeout)
    win.show()
    if model is not None and not win.open_model(model) and smoke_test:
        return 1
    if image is not None and not win.open_image(image) and smoke_test:
        return 1
    if smoke_test:
        if not win.start_prediction():
            print(f"smoke test failed: {win.last_error}", file=sys.stderr)
            return 1
    code = app.exec()
    return status["code"] or code


def main(argv: list[str] | None = None) -> int:
    """Entry point of the standalone app (argparse only: no typer/rich needed in the bundle)."""
    p = argparse.ArgumentParser(prog="terraseg-app", description="terraseg desktop app: segment satellite "
                                "and aerial imagery with a terraseg model.")
    p.add_argument("image", nargs="?", help="image to open (JPG, PNG, TIFF, GeoTIFF)")
    p.add_argument("--model", "-m", help="model: bundle folder, bundle.json, model.safetensors or .onnx file")
    p.add_argument("--smoke-test", nargs=2, metavar=("IMAGE", "MODEL"),
                   help="open IMAGE and MODEL, predict, print the legend and exit (0 = success)")
    p.add_argument("--screenshot", help="with --smoke-test: save a PNG of the window after the prediction")
    p.add_argument("--settings", help="settings file (INI) to use instead of the user's settings")
    args = p.parse_args(argv)
    if args.smoke_test:
        return run_app(args.smoke_test[0], args.smoke_test[1], smoke_test=True, settings_path=args.settings,
                       screenshot=args.screenshot)
    return run_app(args.image, args.model, settings_path=args.settings)


__all__ = ["main", "run_app"]
