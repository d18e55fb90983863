"""Settings store and the app's look: Fusion with a calm dark palette (no window logic here)."""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory


def make_settings(path: str | os.PathLike | None = None) -> QSettings:
    """Settings in ``path`` (INI), ``$TERRASEG_GUI_SETTINGS``, or the user's native store."""
    path = path or os.environ.get("TERRASEG_GUI_SETTINGS")
    if path:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings("terraseg", "terraseg")


def apply_theme(app: QApplication) -> None:
    """Fusion with a calm dark palette: imagery and class colours stand out, easy on the eyes all day."""
    if app.property("terrasegTheme"):
        return
    app.setProperty("terrasegTheme", True)
    app.setStyle(QStyleFactory.create("Fusion"))
    p = QPalette()
    base, window, text = QColor(30, 32, 36), QColor(43, 45, 50), QColor(222, 224, 228)
    accent = QColor(38, 166, 154)
    for role, color in [
        (QPalette.ColorRole.Window, window), (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base), (QPalette.ColorRole.AlternateBase, QColor(37, 39, 43)),
        (QPalette.ColorRole.ToolTipBase, QColor(55, 58, 64)), (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, QColor(52, 55, 61)),
        (QPalette.ColorRole.ButtonText, text), (QPalette.ColorRole.BrightText, QColor(255, 90, 90)),
        (QPalette.ColorRole.Highlight, accent), (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
        (QPalette.ColorRole.Link, accent), (QPalette.ColorRole.PlaceholderText, QColor(140, 144, 150)),
        (QPalette.ColorRole.Mid, QColor(60, 63, 69)), (QPalette.ColorRole.Dark, QColor(25, 26, 29)),
    ]:
        p.setColor(role, color)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 123, 128))
    app.setPalette(p)
    app.setStyleSheet("""
        QToolBar { spacing: 4px; padding: 4px 6px; border: none; border-bottom: 1px solid #1e2023; }
        QToolButton, QPushButton { padding: 4px 10px; border-radius: 4px; }
        QToolButton:checked { background: #26a69a; color: white; }
        QPushButton#predict { background: #26a69a; color: white; font-weight: bold; padding: 5px 16px; }
        QPushButton#predict:disabled { background: #3a4a48; color: #8a9290; }
        QPushButton#cancel:enabled { background: #b5544a; color: white; }
        QLabel.heading, QLabel[heading="true"] { color: #9aa0a6; font-weight: bold;
            text-transform: uppercase; letter-spacing: 1px; padding-top: 6px; }
        QLabel[paneTitle="true"] { color: #c9ccd1; background: rgba(0,0,0,110); padding: 2px 8px;
            border-radius: 3px; }
        QTableWidget { border: none; background: #2b2d32; }
        QHeaderView::section { background: #2b2d32; color: #9aa0a6; border: none; padding: 3px 6px; }
        QStatusBar { border-top: 1px solid #1e2023; }
        QSplitter::handle { background: #1e2023; }
    """)
