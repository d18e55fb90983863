"""Saving from the window: dialogs beside the image, the CLI's files and names (``saving``)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog

from terraseg.errors import TerrasegError


class SavingMixin:
    def choose_save_all(self) -> None:
        if self.result is None:
            self.show_error("Nothing to save yet: run a prediction first.")
            return
        folder = QFileDialog.getExistingDirectory(self, "Save all results into folder", self._save_start_dir())
        if folder:
            self.save_all(folder)

    def choose_save_one(self, kind: str) -> None:
        from terraseg.gui.saving import default_name, file_filter

        if self.result is None:
            self.show_error("Nothing to save yet: run a prediction first.")
            return
        start = str(Path(self._save_start_dir()) / default_name(kind, self.image_doc))
        path, _ = QFileDialog.getSaveFileName(self, self.act_save[kind].text().rstrip("…"), start,
                                              file_filter(kind, self.image_doc))
        if path:
            self.save_one(kind, path)

    def save_one(self, kind: str, path: str | Path) -> Path | None:
        from terraseg.gui import saving

        if self.result is None:
            self.show_error("Nothing to save yet: run a prediction first.")
            return None
        out = None

        def write() -> None:
            nonlocal out
            out = saving.save(kind, Path(path), self._save_context())

        if not self._saving(write, f"{path}: cannot write the file"):
            return None
        self._remember_dir("save_dir", out)
        self.statusBar().showMessage(f"Saved {out}", 6000)
        return out

    def save_all(self, folder: str | Path) -> dict[str, Path]:
        from terraseg.gui import saving

        if self.result is None:
            self.show_error("Nothing to save yet: run a prediction first.")
            return {}
        folder = Path(folder)
        out: dict[str, Path] = {}

        def write() -> None:
            ctx = self._save_context()
            for kind, path in saving.output_files(folder, self.image_doc).items():
                if kind == "polygons" and not saving.can_save_polygons():
                    continue
                out[kind] = saving.save(kind, path, ctx)

        if not self._saving(write, f"{folder}: cannot write the results"):
            return out
        self.settings.setValue("paths/save_dir", str(folder))
        self.statusBar().showMessage(f"Saved {len(out)} files to {folder}", 6000)
        return out

    def _saving(self, write, os_problem: str) -> bool:
        """Run ``write()`` under a wait cursor; a failure becomes one error dialog (after the cursor is
        restored) and ``False``."""
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            write()
        except TerrasegError as exc:
            error = str(exc)
        except OSError as exc:
            error = f"{os_problem} ({exc.strerror or exc})"
        else:
            error = None
        finally:
            QApplication.restoreOverrideCursor()
        if error is not None:
            self.show_error(error, "Cannot save")
        return error is None

    def _save_context(self):
        from terraseg.gui.saving import SaveContext

        return SaveContext(image_doc=self.image_doc, meta=self.model_doc.meta, result=self.result,
                           min_area=self.min_area.value(), simplify=self.simplify.value())

    def _save_start_dir(self) -> str:
        """Save dialogs open beside the image (where `terraseg predict --out .` would write), else the last folder."""
        if self.image_doc is not None:
            folder = self.image_doc.path.resolve().parent
            if os.access(folder, os.W_OK):
                return str(folder)
        return self._dir("save_dir")
