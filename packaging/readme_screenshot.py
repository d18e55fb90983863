"""Make the README's screenshot (docs/images/gui.png) from a real run on a real X server.

    Xvfb :77 -screen 0 1600x1000x24 &
    DISPLAY=:77 python packaging/readme_screenshot.py IMAGE MODEL docs/images/gui.png

The window opens IMAGE and MODEL, predicts, and the picture is taken from the X server's screen
(``QScreen.grabWindow``), not rendered offscreen. It prints the figures the picture shows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image")
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--size", default="1440x860", help="window size WxH")
    args = p.parse_args()
    if os.environ.get("QT_QPA_PLATFORM", "xcb") != "xcb" or not os.environ.get("DISPLAY"):
        sys.exit("run it on an X server (DISPLAY set, QT_QPA_PLATFORM unset or xcb)")
    from terraseg.gui.startup import platform_problem

    problem = platform_problem()
    if problem:
        sys.exit(f"error: {problem}")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from terraseg.gui.app import MainWindow
    from terraseg.gui.theme import make_settings

    app = QApplication(sys.argv[:1])
    win = MainWindow(settings=make_settings(Path(tempfile.mkdtemp()) / "settings.ini"))
    w, h = (int(v) for v in args.size.split("x"))
    win.resize(w, h)
    win.move(0, 0)
    win.show()
    status = {"code": 1}

    def shoot() -> None:
        frame = win.frameGeometry()
        shot = win.screen().grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
        shot.save(args.out)
        r = win.result
        print(f"{win.image_doc.width} x {win.image_doc.height} px, {r.seconds:.1f} s, {win.model_doc.runtime}")
        for name, share, ha in win.legend.entries():
            print(f"  {name:<12s} {100 * share:5.1f} %" + (f"  {ha:,.2f} ha" if ha is not None else ""))
        status["code"] = 0
        app.quit()

    def done() -> None:
        if win.run is None and win.result is not None:
            win.statusBar().clearMessage()
            QTimer.singleShot(800, shoot)  # let the window settle and the X server draw it

    win.stateChanged.connect(done)
    if not (win.open_image(args.image) and win.open_model(args.model) and win.start_prediction()):
        print(win.last_error, file=sys.stderr)
        return 1
    QTimer.singleShot(600_000, app.quit)
    app.exec()
    return status["code"]


if __name__ == "__main__":
    sys.exit(main())
