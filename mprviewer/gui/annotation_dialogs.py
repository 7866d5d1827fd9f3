"""File menu entries for annotations: export (with a preview), import, DICOM KOS export.

Export shows the JSON exactly as it will be written, in the chosen format, and, for the
original format, what it cannot hold (other labels, other planes, points, rulers, ROIs,
hematoma volumes, notes), before
anything is saved. No file is replaced without asking. Import merges into the open marks as
one undoable change; a file made for another study or other series says so and asks first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QFontDatabase
from PyQt5.QtWidgets import (
    QAction,
    QApplication,
    QButtonGroup,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from mprviewer.errors import AnnotationError
from mprviewer.model.annotation_files import (
    ExportReport,
    export_report,
    import_into,
    read_annotation_file,
    to_json_text,
    write_annotation_file,
)

EXPORT_DIR_KEY = "annotations/export_dir"
FORMAT_KEY = "annotations/format"
FORMAT_TEXT = {
    "original": "Original: {series: {Anomaly, Slices}}, one label of acquired slices per series",
    "full": "Full: every label, plane, point and note, with image UIDs (versioned)",
}


def _settings() -> Any:
    from mprviewer.gui.open_dialogs import settings

    return settings()


def _remembered(key: str, default: str) -> str:
    try:
        return str(_settings().value(key, default) or default)
    except Exception:
        return default


def _remember(key: str, value: str) -> None:
    try:
        store = _settings()
        store.setValue(key, value)
        store.sync()
    except Exception:  # settings are a convenience, never a reason to fail an export
        pass


def _default_folder(controller: Any) -> Path:
    remembered = _remembered(EXPORT_DIR_KEY, "")
    if remembered and Path(remembered).is_dir():
        return Path(remembered)
    folder = getattr(controller.window.study, "root_folder", None)
    return Path(folder) if folder is not None else Path.home()


def _safe_stem(text: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text).strip("._")
    return keep[:60] or "study"


def ask_overwrite(parent: QWidget, path: Path) -> bool:
    """Ask before replacing a file (the reader may have picked the wrong name)."""
    answer = QMessageBox.question(
        parent, "Replace file?",
        f"{path} already exists.\n\nReplace it with the exported annotations?",
        QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
    return answer == QMessageBox.Yes


def show_info(parent: QWidget, title: str, text: str, details: str = "",
              warning: bool = False) -> QMessageBox:
    """A message box that does not block the event loop (closed with its parent)."""
    box = QMessageBox(QMessageBox.Warning if warning else QMessageBox.Information, title, text,
                      QMessageBox.Ok, parent)
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WA_DeleteOnClose)
    box.open()
    return box


# -- export --------------------------------------------------------------------------------
class ExportDialog(QDialog):
    """Choose the format, read the JSON that will be written, then save it."""

    def __init__(self, controller: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setWindowTitle("Export annotations")
        self.resize(720, 620)
        self.confirm_overwrite: Callable[[Path], bool] = lambda p: ask_overwrite(self, p)
        self.saved_path: Path | None = None
        self.saved_report: ExportReport | None = None

        self.format_group = QButtonGroup(self)
        formats = QVBoxLayout()
        for fmt in ("original", "full"):
            button = QRadioButton(FORMAT_TEXT[fmt], self)
            button.setProperty("fmt", fmt)
            self.format_group.addButton(button)
            formats.addWidget(button)
        wanted = _remembered(FORMAT_KEY, "original")
        for button in self.format_group.buttons():
            button.setChecked(button.property("fmt") == wanted)
        self.format_group.buttonToggled.connect(lambda *_: self.refresh())

        # Every series of the study, checked: unmarked ones are written as read and clean
        # ("Slices": ""), as the original tool exported them; unchecking leaves one out.
        from PyQt5.QtWidgets import QListWidget, QListWidgetItem

        self.series_list = QListWidget(self)
        self.series_list.setMaximumHeight(130)
        self.series_list.setToolTip("Series to write; unmarked ones are written as read with "
                                    "no anomaly (\"Slices\": \"\")")
        self._study_refs = controller.study_refs() if controller.aset is not None else []
        from mprviewer.model.annotation_files import export_series

        for sa in (export_series(controller.aset, self._study_refs)
                   if controller.aset is not None else []):
            marked = bool(sa.entries or sa.points)
            item = QListWidgetItem(f"{sa.label}" + ("" if marked else "   (no marks)"))
            item.setData(Qt.UserRole, sa.name or sa.uid)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked)
            self.series_list.addItem(item)
        self.series_list.itemChanged.connect(lambda _item: self.refresh())

        self.report_label = QLabel("", self)
        self.report_label.setWordWrap(True)
        self.report_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.report_label.setStyleSheet(
            "QLabel { background: #4a3a10; color: #ffd27a; padding: 6px; border-radius: 3px; }")
        self.preview = QPlainTextEdit(self)
        self.preview.setReadOnly(True)
        self.preview.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.preview.setFont(QFontDatabase.systemFont(QFontDatabase.FixedFont))

        self.save_button = QPushButton("Save…", self)
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self.ask_save)
        copy_button = QPushButton("Copy", self)
        copy_button.setToolTip("Copy the JSON text to the clipboard")
        copy_button.clicked.connect(lambda: QApplication.clipboard().setText(self.text()))
        close_button = QPushButton("Close", self)
        close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(copy_button)
        buttons.addStretch(1)
        buttons.addWidget(close_button)
        buttons.addWidget(self.save_button)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Format", self))
        layout.addLayout(formats)
        layout.addWidget(QLabel("Series to write", self))
        layout.addWidget(self.series_list)
        layout.addWidget(self.report_label)
        layout.addWidget(QLabel("Preview of the file", self))
        layout.addWidget(self.preview, 1)
        layout.addLayout(buttons)
        controller.changed.connect(self.refresh)
        self.refresh()

    @property
    def fmt(self) -> str:
        button = self.format_group.checkedButton()
        return str(button.property("fmt")) if button is not None else "full"

    def set_format(self, fmt: str) -> None:
        for button in self.format_group.buttons():
            if button.property("fmt") == fmt:
                button.setChecked(True)

    def included(self) -> list[str]:
        """Names of the checked series."""
        out = []
        for n in range(self.series_list.count()):
            item = self.series_list.item(n)
            if item.checkState() == Qt.Checked:
                out.append(str(item.data(Qt.UserRole)))
        return out

    def set_included(self, names: list[str]) -> None:
        for n in range(self.series_list.count()):
            item = self.series_list.item(n)
            item.setCheckState(Qt.Checked if item.data(Qt.UserRole) in names else Qt.Unchecked)

    def _choice(self) -> dict[str, Any]:
        return {"study": self._study_refs, "include": self.included()}

    def text(self) -> str:
        aset = self.controller.aset
        return to_json_text(aset, self.fmt, **self._choice()) if aset is not None else ""

    def report(self) -> ExportReport | None:
        aset = self.controller.aset
        return export_report(aset, self.fmt, **self._choice()) if aset is not None else None

    def refresh(self) -> None:
        text = self.text()
        if self.preview.toPlainText() != text:
            self.preview.setPlainText(text)
        report = self.report()
        if report is not None and not report.complete:
            lines = "\n".join(f"• {n}" for n in report.not_written)
            self.report_label.setText(
                "The original format holds one label of acquired slices per series. "
                f"These marks will NOT be in the file (choose Full to keep them):\n{lines}")
            self.report_label.setVisible(True)
        else:
            self.report_label.setVisible(False)
        self.save_button.setEnabled(self.controller.aset is not None)

    def default_path(self) -> Path:
        ref = self.controller.ref
        study = self.controller.window.study
        label = str(getattr(study, "source_label", "") or "")
        stem = _safe_stem(Path(label).stem if label else (ref.name if ref is not None else ""))
        suffix = "-annotations.json" if self.fmt == "original" else "-annotations-full.json"
        return _default_folder(self.controller) / f"{stem}{suffix}"

    def ask_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export annotations", str(self.default_path()), "JSON (*.json)",
            options=QFileDialog.DontConfirmOverwrite)
        if path:
            if not Path(path).suffix:
                path += ".json"
            self.save_to(Path(path))

    def save_to(self, path: Path) -> ExportReport | None:
        """Write the previewed text to ``path`` (asking before replacing a file)."""
        aset = self.controller.aset
        if aset is None:
            return None
        path = Path(path)
        overwrite = False
        if path.exists():
            if not self.confirm_overwrite(path):
                return None
            overwrite = True
        try:
            report = write_annotation_file(aset, path, self.fmt, overwrite=overwrite,
                                           **self._choice())
        except AnnotationError as exc:
            show_info(self, "Export failed", str(exc), warning=True)
            return None
        _remember(EXPORT_DIR_KEY, str(path.parent))
        _remember(FORMAT_KEY, self.fmt)
        self.saved_path, self.saved_report = path, report
        self.controller.message.emit(
            f"Exported {len(report.written)} series to {path}"
            + ("" if report.complete else f"; {len(report.not_written)} mark(s) not written"),
            not report.complete)
        if not report.complete:
            show_info(self.parentWidget() or self, "Exported, with marks left out",
                      f"Saved {path} in the original format. Some marks are not in it.",
                      str(report), warning=True)
        self.accept()
        return report

    def done(self, result: int) -> None:
        with contextlib.suppress(TypeError):
            self.controller.changed.disconnect(self.refresh)
        super().done(result)


# -- import --------------------------------------------------------------------------------
def import_file(controller: Any, path: str | Path, confirm: Callable[[str], bool]) -> str | None:
    """Merge an annotation file into the open marks; returns the summary, or None when the
    reader declined. ``confirm(question)`` is asked when the file is for another study or
    names series the open study does not have. Raises AnnotationError on a bad file."""
    aset = controller.aset
    if aset is None:
        raise AnnotationError("open the study the annotations belong to before importing them.")
    other = read_annotation_file(path)
    questions = []
    if other.study_uid and aset.study_uid and other.study_uid != aset.study_uid:
        questions.append(f"The file is for study {other.study_uid}, but the open study is "
                         f"{aset.study_uid}.")
    known = controller.known_series()
    unknown = [sa.label for sa in other.series if not any(
        (sa.uid and sa.uid == uid) or (sa.name and sa.name in (name, uid)) for uid, name in known
    )]
    if unknown and known:
        names = ", ".join(repr(n) for n in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        questions.append(f"It has marks for series the open study does not have: {names}.")
    force = bool(questions)
    if force and not confirm(" ".join(questions) + "\n\nImport these marks anyway?"):
        return None
    summary = import_into(aset, path, refs=controller.study_refs(), force=force)
    controller.message.emit(f"Imported {Path(path).name}: {summary} (Ctrl+Z undoes)", False)
    return summary


def ask_import(controller: Any) -> None:
    window = controller.window
    if controller.aset is None:
        show_info(window, "Import annotations", "Open the study first; the imported marks are "
                  "added to its marks.")
        return
    path, _ = QFileDialog.getOpenFileName(window, "Import annotations",
                                          str(_default_folder(controller)),
                                          "JSON (*.json);;All files (*)")
    if not path:
        return

    def confirm(question: str) -> bool:
        return QMessageBox.question(window, "Import annotations", question,
                                    QMessageBox.Yes | QMessageBox.No,
                                    QMessageBox.No) == QMessageBox.Yes

    try:
        import_file(controller, path, confirm)
    except AnnotationError as exc:
        show_info(window, "Cannot import", str(exc), warning=True)


# -- DICOM key object selection --------------------------------------------------------------
def export_kos(controller: Any, path: str | Path, overwrite: bool = False) -> list[str]:
    """Write the marked acquisition-plane images as a KOS document; returns the marks that
    could not be referenced (other planes, unknown images)."""
    from mprviewer.io.kos import select_images, write_kos

    aset = controller.aset
    if aset is None:
        raise AnnotationError("open a study and mark slices before exporting key images.")
    refs = list(controller.refs.values())
    skipped = select_images(aset, refs).skipped
    write_kos(aset, refs, path, overwrite=overwrite, reader=aset.reader)
    return skipped


def ask_export_kos(controller: Any) -> None:
    window = controller.window
    if controller.aset is None:
        show_info(window, "Export key images", "Open a study and mark slices first.")
        return
    default = _default_folder(controller) / "key-images.dcm"
    path, _ = QFileDialog.getSaveFileName(window, "Export key images (DICOM KOS)", str(default),
                                          "DICOM (*.dcm)", options=QFileDialog.DontConfirmOverwrite)
    if not path:
        return
    target = Path(path)
    if target.exists() and not ask_overwrite(window, target):
        return
    try:
        skipped = export_kos(controller, target, overwrite=target.exists())
    except AnnotationError as exc:
        show_info(window, "Cannot export key images", str(exc), warning=True)
        return
    _remember(EXPORT_DIR_KEY, str(target.parent))
    if skipped:
        show_info(window, "Key images exported",
                  f"Saved {target}. Some marks are not stored images of the acquisition plane "
                  "and are not referenced:", "\n".join(skipped))
    controller.message.emit(f"Key images saved to {target}", False)


def ask_send_kos(controller: Any) -> None:
    """Build the key-image document and store it on a PACS the user picks."""
    from mprviewer.gui.pacs_dialog import send_to_pacs
    from mprviewer.io.kos import write_kos

    window = controller.window
    if controller.aset is None or controller.aset.is_empty:
        show_info(window, "Send key images", "Open a study and mark slices first.")
        return
    try:
        kos = write_kos(controller.aset, list(controller.refs.values()),
                        reader=controller.aset.reader)
    except AnnotationError as exc:
        show_info(window, "Cannot build key images", str(exc), warning=True)
        return
    if send_to_pacs(window, [kos]):
        controller.message.emit("Key images sent to the PACS", False)


def open_export_dialog(controller: Any) -> ExportDialog:
    dialog = ExportDialog(controller, controller.window)
    dialog.setAttribute(Qt.WA_DeleteOnClose)
    dialog.open()
    return dialog


def install_file_actions(controller: Any) -> dict[str, QAction]:
    """Export / Import / KOS entries in the window's File menu."""
    window = controller.window
    specs = (
        ("export", "&Export Annotations…", "Ctrl+E", lambda: open_export_dialog(controller),
         "Save the marks as JSON, with a preview"),
        ("import", "&Import Annotations…", "Ctrl+I", lambda: ask_import(controller),
         "Add marks from a JSON file (original or full format)"),
        ("kos", "Export &Key Images (DICOM KOS)…", None, lambda: ask_export_kos(controller),
         "Save the marked images as a DICOM Key Object Selection document"),
        ("send", "Send Key Images to &PACS…", None, lambda: ask_send_kos(controller),
         "Store the marked images' key object document on a PACS (STOW-RS or C-STORE)"),
    )
    actions: dict[str, QAction] = {}
    for name, text, shortcut, slot, tip in specs:
        action = QAction(text, window)
        if shortcut:
            action.setShortcut(shortcut)
        action.setStatusTip(tip)
        action.triggered.connect(lambda _=False, s=slot: s())
        window.add_file_action(action)
        actions[name] = action
    return actions
