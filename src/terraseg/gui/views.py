"""Image views: zoomable, pannable ``QGraphicsView`` s whose zoom and pan stay in sync.

Scene coordinates are full-resolution image pixels in every view; the (downscaled) preview and mask
pixmaps are scaled up to cover the image, so a point under the cursor is the same ground location in
all views. ``SyncGroup`` copies the transform and scrollbar positions from the view that changed to
the others.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap, QTransform
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QLabel, QVBoxLayout, QWidget

MIN_ZOOM, MAX_ZOOM = 1 / 256, 64.0


def array_to_qimage(rgb: np.ndarray) -> QImage:
    """(H, W, 3) or (H, W, 4) uint8 array -> QImage that owns a copy of the pixels."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, c = rgb.shape
    fmt = QImage.Format.Format_RGB888 if c == 3 else QImage.Format.Format_RGBA8888
    return QImage(rgb.data, w, h, c * w, fmt).copy()


class ImageView(QGraphicsView):
    """One pane: a base image, an optional class-mask layer on top (opacity adjustable)."""

    viewChanged = Signal()
    hovered = Signal(float, float)  # scene x, y (full-resolution pixels); -1, -1 when outside
    filesDropped = Signal(list)

    def __init__(self, title: str = "", parent=None):
        super().__init__(parent)
        self.title = title
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        # no scroll bars: their appearing on zoom resized the viewport, and a resize of a fitted pane
        # re-fitted it and, through the sync, its neighbour (issue 16); drag, arrow keys and the wheel pan
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setBackgroundBrush(QColor(38, 40, 44))
        self.setFrameShape(QGraphicsView.Shape.NoFrame)
        self.setMouseTracking(True)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.base_item = QGraphicsPixmapItem()
        self.base_item.setTransformationMode(Qt.TransformationMode.FastTransformation)
        self.mask_item = QGraphicsPixmapItem()
        self.mask_item.setZValue(1)
        self.scene().addItem(self.base_item)
        self.scene().addItem(self.mask_item)
        self.mask_item.setVisible(False)
        self.image_size: tuple[int, int] | None = None  # full-resolution (width, height)
        self.fitted = True  # follow resizes until the user zooms
        self._placeholder = ""
        for bar in (self.horizontalScrollBar(), self.verticalScrollBar()):
            bar.valueChanged.connect(lambda _v: self.viewChanged.emit())

    # -- content -------------------------------------------------------------------------------
    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.viewport().update()

    def set_base(self, rgb: np.ndarray | None, full_size: tuple[int, int] | None = None) -> None:
        if rgb is None:
            self.base_item.setPixmap(QPixmap())
            self.image_size = None
            self.clear_mask()
            return
        self.base_item.setPixmap(QPixmap.fromImage(array_to_qimage(rgb)))
        w, h = full_size or (rgb.shape[1], rgb.shape[0])
        self.image_size = (w, h)
        self.base_item.setTransform(QTransform.fromScale(w / rgb.shape[1], h / rgb.shape[0]))
        self.scene().setSceneRect(QRectF(0, 0, w, h))

    def set_mask(self, rgb: np.ndarray) -> None:
        self.mask_item.setPixmap(QPixmap.fromImage(array_to_qimage(rgb)))
        if self.image_size:
            w, h = self.image_size
            self.mask_item.setTransform(QTransform.fromScale(w / rgb.shape[1], h / rgb.shape[0]))
        self.mask_item.setVisible(True)

    def clear_mask(self) -> None:
        self.mask_item.setPixmap(QPixmap())
        self.mask_item.setVisible(False)

    def has_mask(self) -> bool:
        return not self.mask_item.pixmap().isNull()

    def set_layers(self, base: bool, mask: bool, opacity: float = 1.0) -> None:
        self.base_item.setVisible(base)
        self.mask_item.setVisible(mask and self.has_mask())
        self.mask_item.setOpacity(opacity)

    # -- navigation ----------------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom by ``factor`` keeping the scene point under ``anchor`` (viewport pixels; default: centre)."""
        self.fitted = False
        new = min(MAX_ZOOM, max(MIN_ZOOM, self.zoom() * factor))
        centre = QPointF(self.viewport().rect().center())
        anchor = centre if anchor is None else QPointF(anchor)
        fixed = self.mapToScene(anchor.toPoint())
        self._set_zoom(new, fixed - (anchor - centre) / new)

    def _set_zoom(self, zoom: float, centre: QPointF) -> None:
        # the transform is set outright and the centre placed explicitly: Qt's own anchors use the
        # last mouse-move position, which is stale after a wheel event or a key press
        self.setTransform(QTransform.fromScale(zoom, zoom))
        self.centerOn(centre)
        self.viewChanged.emit()

    def fit(self) -> None:
        self.fitted = True
        if self.image_size:
            self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
            self.viewChanged.emit()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.fitted and self.image_size and self.isVisible():
            self.fit()  # a fitted view stays fitted when the window or the splitter changes

    def actual_pixels(self) -> None:
        """One image pixel per screen pixel, around the point now in the centre."""
        self.fitted = False
        self._set_zoom(1.0, self.mapToScene(self.viewport().rect().center()))

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt naming
        delta = event.angleDelta().y()
        if delta == 0 or not self.image_size:
            return
        self.zoom_by(1.25 ** (delta / 120.0), anchor=event.position())

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        super().mouseMoveEvent(event)
        p = self.mapToScene(event.position().toPoint())
        if self.image_size and 0 <= p.x() < self.image_size[0] and 0 <= p.y() < self.image_size[1]:
            self.hovered.emit(p.x(), p.y())
        else:
            self.hovered.emit(-1.0, -1.0)

    def drawForeground(self, painter: QPainter, rect) -> None:  # noqa: N802
        super().drawForeground(painter, rect)
        if self.image_size is None and self._placeholder:
            painter.save()
            painter.resetTransform()
            painter.setPen(QColor(170, 174, 180))
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self._placeholder)
            painter.restore()

    # -- drag and drop -------------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            event.acceptProposedAction()
            self.filesDropped.emit(urls)
        else:
            super().dropEvent(event)


class SyncGroup:
    """Keeps zoom and pan identical across views: whichever view moves, the others follow."""

    def __init__(self, views: list[ImageView]):
        self.views = list(views)
        self._busy = False
        for v in self.views:
            v.viewChanged.connect(lambda v=v: self.sync_from(v))

    def sync_from(self, source: ImageView) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            t = source.transform()
            centre = source.mapToScene(source.viewport().rect().center())
            for other in self.views:
                if other is source:
                    continue
                other.fitted = source.fitted  # else a resize of the other pane would re-fit both
                if other.transform() != t:
                    other.setTransform(t)
                other.centerOn(centre)
        finally:
            self._busy = False


class Pane(QWidget):
    """An ``ImageView`` with a small title in its corner."""

    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.view = ImageView(title, self)
        lay.addWidget(self.view)
        self.title = QLabel(title, self.view)
        self.title.setProperty("paneTitle", True)
        self.title.move(8, 8)
        self.title.adjustSize()

    def set_title(self, text: str) -> None:
        self.title.setText(text)
        self.title.adjustSize()
