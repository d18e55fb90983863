"""The side panel: model and image facts, the legend, the run summary and the polygon options."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from terraseg.gui.legend import LegendWidget


def _esc(s) -> str:
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _crs_in_metres(crs) -> bool:
    try:
        return bool(crs.is_projected) and abs(float(crs.linear_units_factor[1]) - 1.0) < 1e-9
    except Exception:  # a CRS object without linear units
        return False


class SidePanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumWidth(330)
        self.setMaximumWidth(460)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 10)
        lay.setSpacing(6)
        lay.addWidget(_heading("Model"))
        self.model_label = _info("No model. Open a bundle or an .onnx file.")
        lay.addWidget(self.model_label)
        lay.addWidget(_heading("Image"))
        self.image_label = _info("No image.")
        lay.addWidget(self.image_label)
        lay.addWidget(_heading("Legend"))
        self.legend = LegendWidget()
        self.legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        lay.addWidget(self.legend, 1)
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        self.summary_label.setStyleSheet("color: #9aa0a6;")
        lay.addWidget(self.summary_label)
        lay.addWidget(_heading("Polygons"))
        lay.addLayout(self._polygon_options())

    # -- polygons ------------------------------------------------------------------------------
    def _polygon_options(self) -> QFormLayout:
        """The CLI's --min-area and --simplify for saved polygons (0 keeps every pixel region as it is)."""
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        self.min_area = QDoubleSpinBox()
        self.simplify = QDoubleSpinBox()
        for box, tip in ((self.min_area, "Drop polygons smaller than this (terraseg predict --min-area); smaller "
                          "regions are merged into their largest neighbour"),
                         (self.simplify, "Simplification tolerance of the outlines (terraseg predict --simplify)")):
            box.setRange(0.0, 1e9)
            box.setDecimals(2)
            box.setToolTip(tip)
        form.addRow("Minimum area", self.min_area)
        form.addRow("Simplify", self.simplify)
        self.polygon_units(None)
        return form

    def polygon_units(self, image_doc) -> None:
        """Units as the CLI reads them: CRS units (metres for UTM) when georeferenced, pixels otherwise."""
        georef = image_doc is not None and image_doc.georeferenced
        unit = ("m" if _crs_in_metres(image_doc.crs) else "CRS units") if georef else "px"
        self.min_area.setSuffix(f" {unit}²")
        self.simplify.setSuffix(f" {unit}")

    # -- facts ---------------------------------------------------------------------------------
    def show_model(self, doc) -> None:
        m = doc.meta
        info = [f"<b>{_esc(doc.label)}</b>",
                f"{m.num_classes} classes · {m.in_channels} band{'s' if m.in_channels != 1 else ''} · "
                f"tile {m.tile_size}", f"runs on {_esc(doc.runtime)}"]
        miou = (m.metrics or {}).get("miou") if isinstance(m.metrics, dict) else None
        if isinstance(miou, (int, float)):
            info.append(f"validation mIoU {miou:.3f}")
        self.model_label.setText("<br>".join(info))

    def show_image(self, d) -> None:
        if d is None:
            self.image_label.setText("No image.")
            return
        lines = [f"<b>{_esc(d.path.name)}</b>", f"{d.width:,} × {d.height:,} px · {d.bands} band"
                 f"{'s' if d.bands != 1 else ''} · {d.dtype}"]
        if d.georeferenced:
            t = d.transform
            crs = d.crs.to_string() if hasattr(d.crs, "to_string") else str(d.crs)
            lines.append(f"{_esc(crs)} · pixel {abs(t.a):.3g} × {abs(t.e):.3g}")
            area = d.ground_area_m2()
            if area:
                lines.append(f"{area / 10_000:,.1f} ha")
        else:
            lines.append("not georeferenced (areas in pixels)")
        if d.preview_scale > 1.01:
            lines.append(f"preview at 1:{d.preview_scale:.3g}")
        self.image_label.setText("<br>".join(lines))
        self.polygon_units(d)


def _heading(text: str) -> QLabel:
    lab = QLabel(text.upper())
    lab.setProperty("heading", True)
    return lab


def _info(text: str) -> QLabel:
    lab = QLabel(text)
    lab.setWordWrap(True)
    lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return lab
