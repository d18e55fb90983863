"""What the window shows: layers (input, colour mask, overlay), one or two panes, zoom and the read-out."""

from __future__ import annotations

from PySide6.QtCore import QTimer

from terraseg.gui.views import ImageView


class ViewingMixin:
    def layer(self) -> str:
        for k, a in self.act_layer.items():
            if a.isChecked():
                return k
        return "overlay"

    def set_layer(self, key: str) -> None:
        if self.act_side.isChecked() and key == "input":
            key = "overlay"  # the input is always on the left when side by side
        self.act_layer[key].setChecked(True)
        self._apply_layers()

    def toggle_result(self) -> None:
        """Space: flip the single view between the input and the result."""
        if self.act_side.isChecked():
            self.act_side.setChecked(False)
            self._layout_changed()
        self.set_layer("input" if self.layer() != "input" else "overlay")

    def _layout_changed(self) -> None:
        side = self.act_side.isChecked()
        self.left.setVisible(side)
        self.act_layer["input"].setEnabled(not side)
        if side and self.layer() == "input":
            self.act_layer["overlay"].setChecked(True)
        self._apply_layers()
        if self.image_doc is not None:
            QTimer.singleShot(0, lambda: self.sync.sync_from(self.result_view))

    def _apply_layers(self) -> None:
        layer = self.layer()
        op = self.opacity.value() / 100.0
        self.opacity_label.setText(f"{self.opacity.value()} %")
        has = self.result_view.has_mask()
        if layer == "input" or not has:
            self.result_view.set_layers(base=True, mask=False)
        elif layer == "mask":
            self.result_view.set_layers(base=False, mask=True, opacity=1.0)
        else:
            self.result_view.set_layers(base=True, mask=True, opacity=op)
        self.opacity.setEnabled(layer == "overlay")
        title = {"input": "Input", "mask": "Colour mask", "overlay": "Overlay"}[layer]
        if not has and layer != "input":
            title += " (no prediction yet)"
        self.right.set_title(title)
        self._save_view_settings()

    def fit_views(self) -> None:
        """Fit the whole image in the result pane (always visible); the input pane follows."""
        self.result_view.fit()

    def _active_view(self) -> ImageView:
        return self.result_view

    def _actual_pixels(self) -> None:
        self.result_view.actual_pixels()

    def _on_hover(self, x: float, y: float) -> None:
        if x < 0 or self.image_doc is None:
            self.hover_label.setText("")
            return
        xi, yi = int(x), int(y)
        text = f"x {xi:,}  y {yi:,}"
        d = self.image_doc
        if d.georeferenced:
            gx, gy = d.transform @ (xi + 0.5, yi + 0.5)
            text += f"  ({gx:,.2f}, {gy:,.2f})"
        if self.result is not None and self.model_doc is not None:
            shown = self.result.classes_preview  # the classes at display resolution, as on screen
            c = int(shown[min(int(y * shown.shape[0] / d.height), shown.shape[0] - 1),
                          min(int(x * shown.shape[1] / d.width), shown.shape[1] - 1)])
            names = self.model_doc.meta.classes
            text += f"  ·  {names[c] if c < len(names) else 'nodata'}"
        self.hover_label.setText(text)
