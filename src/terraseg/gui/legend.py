"""The legend: class colour, name, share of the predicted area and hectares when georeferenced."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QHeaderView, QStyle, QStyledItemDelegate,
                               QStyleOptionViewItem, QTableWidget, QTableWidgetItem)


@dataclass
class ClassStat:
    index: int
    name: str
    color: tuple[int, int, int]
    pixels: int
    share: float  # fraction of the valid (non-ignored) pixels, 0..1
    hectares: float | None


def class_stats(report: dict, colors: list) -> list[ClassStat]:
    """Legend rows from the prediction engine's area report (``terraseg.predict.areas.area_report``)."""
    out = []
    for row in report["classes"]:
        i = int(row["class_id"])
        out.append(ClassStat(i, str(row["class"]), tuple(int(c) for c in colors[i][:3]), int(row["pixels"]),
                             float(row["percent"]) / 100.0, row.get("ha")))
    return out


def swatch(color, size: int = 14) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(QColor(*color))
    p = QPainter(pm)
    p.setPen(QColor(0, 0, 0, 90))
    p.drawRect(0, 0, size - 1, size - 1)
    p.end()
    return QIcon(pm)


class _ShareDelegate(QStyledItemDelegate):
    """Draws the share as a thin bar in the class colour with the percentage on top."""

    def paint(self, painter: QPainter, option, index) -> None:
        share = index.data(Qt.ItemDataRole.UserRole)
        color = index.data(Qt.ItemDataRole.UserRole + 1)
        if share is None or color is None:
            return super().paint(painter, option, index)
        painter.save()
        r = option.rect.adjusted(4, 5, -4, -5)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(255, 255, 255, 18))
        painter.drawRoundedRect(r, 3, 3)
        bar = QRect(r.left(), r.top(), max(1, round(r.width() * float(share))) if share > 0 else 0, r.height())
        c = QColor(*color)
        c.setAlpha(190)
        painter.setBrush(c)
        painter.drawRoundedRect(bar, 3, 3)
        painter.setPen(option.palette.color(option.palette.ColorRole.Text))
        painter.drawText(r.adjusted(0, 0, -4, 0), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         index.data(Qt.ItemDataRole.DisplayRole))
        painter.restore()

    def sizeHint(self, option, index) -> QSize:  # noqa: N802
        s = super().sizeHint(option, index)
        return QSize(max(s.width(), 90), s.height())


class _ClassDelegate(QStyledItemDelegate):
    """The class cell with a check box that is plain to see on the dark theme, ticked or not.

    Fusion draws an unticked box in almost the colour of the dark table; here the box gets a light
    outline and, when ticked, the accent colour with a white tick. Clicks still go through Qt's own
    check-box handling (same rectangle).
    """

    BORDER, FILL, TICK = QColor(176, 182, 190), QColor(38, 166, 154), QColor(255, 255, 255)

    def paint(self, painter: QPainter, option, index) -> None:
        super().paint(painter, option, index)
        state = index.data(Qt.ItemDataRole.CheckStateRole)
        if state is None:
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        r = style.subElementRect(QStyle.SubElement.SE_ItemViewItemCheckIndicator, opt, widget)
        side = min(r.width(), r.height(), 14)
        box = QRectF(r.center().x() - side / 2 + 0.5, r.center().y() - side / 2 + 0.5, side - 1, side - 1)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(r, option.palette.color(option.palette.ColorRole.Base) if not
                         opt.state & QStyle.StateFlag.State_Selected else option.palette.highlight().color())
        checked = Qt.CheckState(state) == Qt.CheckState.Checked
        painter.setPen(QPen(self.FILL if checked else self.BORDER, 1.5))
        painter.setBrush(self.FILL if checked else QColor(0, 0, 0, 0))
        painter.drawRoundedRect(box, 2.5, 2.5)
        if checked:
            pen = QPen(self.TICK, 2.0)
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            painter.setPen(pen)
            x, y, s = box.x(), box.y(), box.width()
            painter.drawPolyline([QPointF(x + 0.22 * s, y + 0.52 * s), QPointF(x + 0.42 * s, y + 0.72 * s),
                                  QPointF(x + 0.78 * s, y + 0.30 * s)])
        painter.restore()


class LegendWidget(QTableWidget):
    """One row per model class; shares and areas are filled in after a prediction.

    Each class has a check box: unticking it hides that class in the mask and overlay views.
    """

    COLS = ("Class", "Share", "Area")  # the same before and after a run; the cells carry the unit
    visibilityChanged = Signal(list)  # one bool per class

    def __init__(self, parent=None):
        super().__init__(0, len(self.COLS), parent)
        self.setHorizontalHeaderLabels(list(self.COLS))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setShowGrid(False)
        self.setAlternatingRowColors(False)
        self.setItemDelegateForColumn(0, _ClassDelegate(self))
        self.setItemDelegateForColumn(1, _ShareDelegate(self))
        h = self.horizontalHeader()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        h.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.setColumnWidth(1, 96)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.verticalHeader().setDefaultSectionSize(26)
        self.stats: list[ClassStat] = []
        self._filling = False
        self.itemChanged.connect(self._on_item_changed)

    def _on_item_changed(self, item) -> None:
        if not self._filling and item.column() == 0:
            self.visibilityChanged.emit(self.visible_classes())

    def visible_classes(self) -> list[bool]:
        return [self.item(i, 0) is None or self.item(i, 0).checkState() == Qt.CheckState.Checked
                for i in range(self.rowCount())]

    def set_visible(self, index: int, visible: bool) -> None:
        self.item(index, 0).setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)

    def set_classes(self, names: list[str], colors: list) -> None:
        """Show the model's classes (before any prediction: no shares yet)."""
        self.stats = []
        keep = self.visible_classes() if self.rowCount() == len(names) else [True] * len(names)
        self._filling = True
        try:
            self.setRowCount(len(names))
            for i, (name, color) in enumerate(zip(names, colors)):
                item = QTableWidgetItem(swatch(tuple(color[:3])), name)
                item.setToolTip(f"class {i}: {name}  RGB {tuple(color[:3])}; untick to hide it in the views")
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if keep[i] else Qt.CheckState.Unchecked)
                self.setItem(i, 0, item)
                self.setItem(i, 1, QTableWidgetItem(""))
                self.setItem(i, 2, QTableWidgetItem(""))
        finally:
            self._filling = False
        self.setHorizontalHeaderLabels(list(self.COLS))

    def set_stats(self, stats: list[ClassStat]) -> None:
        self.set_classes([s.name for s in stats], [s.color for s in stats])
        self.stats = list(stats)
        for i, s in enumerate(stats):
            share = QTableWidgetItem(f"{100 * s.share:.1f} %")
            share.setData(Qt.ItemDataRole.UserRole, s.share)
            share.setData(Qt.ItemDataRole.UserRole + 1, s.color)
            share.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.setItem(i, 1, share)
            text = f"{s.hectares:,.2f} ha" if s.hectares is not None else f"{s.pixels:,} px"
            area = QTableWidgetItem(text)
            area.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            area.setForeground(QBrush(self.palette().color(self.palette().ColorRole.Text)))
            self.setItem(i, 2, area)

    def entries(self) -> list[tuple[str, float, float | None]]:
        """(name, share, hectares) per row, as shown (for tests and the smoke test)."""
        return [(s.name, s.share, s.hectares) for s in self.stats]
