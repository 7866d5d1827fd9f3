"""File > Open from PACS: pick a server, search, browse studies and series, open one.

Searching and listing series run in a worker thread (``JobRunner``), so the window stays
responsive. Opening hands the choice to the viewer's ``open_remote``: its series table lists the
series at once and the images arrive in the per-user cache with progress and Cancel.
"""

from __future__ import annotations

from typing import Any

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from mprviewer.gui.worker import JobRunner

NEW_SERVER = "(new server)"
MODALITIES = ("", "CT", "MR", "PT", "NM", "US", "CR", "DX", "XA", "MG", "SC")
_STUDY_ROLE = Qt.UserRole
_SERIES_ROLE = Qt.UserRole + 1


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 else value


class PacsDialog(QDialog):
    """Saved servers, a search form, a study/series tree and an Open button."""

    opened = pyqtSignal(str)  # the StudyInstanceUID handed to the window to retrieve

    def __init__(self, main_window: Any = None, parent: QWidget | None = None) -> None:
        if parent is None and isinstance(main_window, QWidget):
            parent = main_window
        super().__init__(parent)
        self.main_window = main_window
        self.setWindowTitle("Open from PACS")
        self.resize(980, 620)
        self.searcher = JobRunner(self, show_dialog=False)
        self.searcher.finished.connect(self._on_search_result)
        self.searcher.failed.connect(self._show_error)
        self._build()
        self._load_saved_servers()

    # -- layout ------------------------------------------------------------------------
    def _build(self) -> None:
        server_box = QGroupBox("Server")
        form = QFormLayout(server_box)
        self.server_combo = QComboBox()
        self.server_combo.currentIndexChanged.connect(self._server_chosen)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("a name to save it under")
        self.address_edit = QLineEdit()
        self.address_edit.setPlaceholderText(
            "http://host:8042/dicom-web   or   dimse://AET@host:104?calling=MYAET")
        self.user_edit = QLineEdit()
        self.user_edit.setPlaceholderText("optional")
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.Password)
        self.password_edit.setPlaceholderText("optional (or a bearer token below)")
        self.token_edit = QLineEdit()
        self.token_edit.setEchoMode(QLineEdit.Password)
        self.token_edit.setPlaceholderText("optional bearer token")
        row = QHBoxLayout()
        row.addWidget(self.server_combo, 1)
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save_server)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_server)
        row.addWidget(self.save_button)
        row.addWidget(self.remove_button)
        form.addRow("Saved", row)
        form.addRow("Name", self.name_edit)
        form.addRow("Address", self.address_edit)
        form.addRow("User", self.user_edit)
        form.addRow("Password", self.password_edit)
        form.addRow("Token", self.token_edit)

        search_box = QGroupBox("Search")
        grid = QFormLayout(search_box)
        self.patient_edit = QLineEdit()
        self.patient_edit.setPlaceholderText("name or prefix, * and ? allowed")
        self.patient_id_edit = QLineEdit()
        self.modality_combo = QComboBox()
        self.modality_combo.setEditable(True)
        self.modality_combo.addItems(MODALITIES)
        self.date_edit = QLineEdit()
        self.date_edit.setPlaceholderText("YYYYMMDD or YYYYMMDD-YYYYMMDD")
        self.accession_edit = QLineEdit()
        for edit in (self.patient_edit, self.patient_id_edit, self.date_edit,
                     self.accession_edit, self.address_edit):
            edit.returnPressed.connect(self.search)
        grid.addRow("Patient", self.patient_edit)
        grid.addRow("Patient ID", self.patient_id_edit)
        grid.addRow("Modality", self.modality_combo)
        grid.addRow("Study date", self.date_edit)
        grid.addRow("Accession", self.accession_edit)
        self.search_button = QPushButton("Search")
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)
        grid.addRow("", self.search_button)

        top = QHBoxLayout()
        top.addWidget(server_box, 1)
        top.addWidget(search_box, 1)

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Date", "Patient", "Patient ID", "Modality", "Description",
                                   "Images", "UID"])
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.tree.itemExpanded.connect(self._expand_study)
        self.tree.itemDoubleClicked.connect(lambda *_: self.open_selected())
        self.tree.itemSelectionChanged.connect(self._update_buttons)

        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.open_button = QPushButton("Open")
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self.open_selected)
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status_label, 1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)

    # -- servers -----------------------------------------------------------------------
    def _load_saved_servers(self, select: str = "") -> None:
        from mprviewer.pacs import PacsError, saved_servers

        try:
            self._saved = {s.name: s for s in saved_servers()}
        except PacsError as exc:
            self._saved = {}
            self._set_status(str(exc), error=True)
        self.server_combo.blockSignals(True)
        self.server_combo.clear()
        self.server_combo.addItems([*self._saved, NEW_SERVER])
        index = self.server_combo.findText(select) if select else 0
        self.server_combo.setCurrentIndex(max(index, 0))
        self.server_combo.blockSignals(False)
        self._server_chosen()

    def _server_chosen(self) -> None:
        server = self._saved.get(self.server_combo.currentText())
        self.name_edit.setText(server.name if server else "")
        self.address_edit.setText(server.address if server else "")
        self.user_edit.setText((server.username or "") if server else "")
        self.password_edit.setText((server.password or "") if server else "")
        self.token_edit.setText((server.token or "") if server else "")
        self.remove_button.setEnabled(server is not None)

    def current_server(self) -> Any:
        """The server the form describes (raises PacsError for a bad address)."""
        from dataclasses import replace

        from mprviewer.pacs import parse_server

        server = parse_server(self.address_edit.text().strip(),
                              name=self.name_edit.text().strip())
        saved = self._saved.get(self.server_combo.currentText())
        if saved is not None and saved.address == server.address:
            server = replace(server, calling_aet=saved.calling_aet, verify=saved.verify,
                             timeout=saved.timeout)
        user = self.user_edit.text().strip() or None
        password = self.password_edit.text() or None
        token = self.token_edit.text().strip() or None
        if user or token:
            server = server.with_credentials(username=user, password=password, token=token)
        return server

    def save_server(self) -> None:
        from mprviewer.pacs import PacsError
        from mprviewer.pacs.servers import save_server

        try:
            server = self.current_server()
            if not server.name:
                raise PacsError("give the server a name to save it")
            path = save_server(server)
        except PacsError as exc:
            self._show_error(exc)
            return
        self._load_saved_servers(select=server.name)
        self._set_status(f"Saved {server.label} in {path}.")

    def remove_server(self) -> None:
        from mprviewer.pacs.servers import remove_saved_server

        name = self.server_combo.currentText()
        if name in self._saved and remove_saved_server(name):
            self._load_saved_servers()
            self._set_status(f"Removed {name}.")

    # -- search ------------------------------------------------------------------------
    def query(self) -> Any:
        from mprviewer.pacs import StudyQuery

        return StudyQuery(
            patient_name=self.patient_edit.text().strip() or None,
            patient_id=self.patient_id_edit.text().strip() or None,
            modality=self.modality_combo.currentText().strip() or None,
            date=self.date_edit.text().strip() or None,
            accession=self.accession_edit.text().strip() or None,
        )

    def search(self) -> None:
        """Search studies in the background; the tree fills when the answer is in."""
        from mprviewer.pacs import PacsError, search_studies

        try:
            server, query = self.current_server(), self.query()
        except PacsError as exc:
            self._show_error(exc)
            return
        self._server = server
        self._set_status(f"Searching {server.label}…")
        self.search_button.setEnabled(False)
        self.searcher.start(lambda _p, _c: ("studies", None, search_studies(server, query)))

    def _expand_study(self, item: QTreeWidgetItem) -> None:
        study = item.data(0, _STUDY_ROLE)
        if study is None or item.data(0, _SERIES_ROLE) == "loaded" or self.searcher.busy:
            return
        from mprviewer.pacs import search_series

        server = self._server
        item.setData(0, _SERIES_ROLE, "loading")
        self._set_status(f"Listing the series of {study.patient_name or study.study_uid}…")
        self.searcher.start(lambda _p, _c: ("series", item, search_series(server, study.study_uid)))

    def _on_search_result(self, result: Any) -> None:
        kind, item, rows = result
        self.search_button.setEnabled(True)
        if kind == "studies":
            self._fill_studies(rows)
        else:
            self._fill_series(item, rows)
        self._update_buttons()

    def _fill_studies(self, studies: list[Any]) -> None:
        self.tree.clear()
        for study in studies:
            item = QTreeWidgetItem([
                _date(study.date), study.patient_name, study.patient_id,
                "/".join(study.modalities), study.description,
                "" if study.num_instances is None else str(study.num_instances), study.study_uid,
            ])
            item.setData(0, _STUDY_ROLE, study)
            item.setChildIndicatorPolicy(QTreeWidgetItem.ShowIndicator)
            self.tree.addTopLevelItem(item)
        count = len(studies)
        self._set_status(f"{count} {'study' if count == 1 else 'studies'} on {self._server.label}."
                         + (" Expand a study to see its series." if count else ""))
        if count:
            self.tree.setCurrentItem(self.tree.topLevelItem(0))

    def _fill_series(self, item: QTreeWidgetItem, series_list: list[Any]) -> None:
        item.takeChildren()
        item.setData(0, _SERIES_ROLE, "loaded")
        for series in series_list:
            child = QTreeWidgetItem([
                _date(series.date), f"#{'' if series.number is None else series.number}", "",
                series.modality, series.description,
                "" if series.num_instances is None else str(series.num_instances),
                series.series_uid,
            ])
            child.setData(0, _SERIES_ROLE, series)
            item.addChild(child)
        item.setExpanded(True)
        self._set_status(f"{len(series_list)} series.")

    # -- open --------------------------------------------------------------------------
    def _selection(self) -> tuple[Any, Any] | None:
        item = self.tree.currentItem()
        if item is None:
            return None
        series = item.data(0, _SERIES_ROLE)
        if not isinstance(series, str) and series is not None:
            return item.parent().data(0, _STUDY_ROLE), series
        study = item.data(0, _STUDY_ROLE)
        return (study, None) if study is not None else None

    def _update_buttons(self) -> None:
        self.open_button.setEnabled(self._selection() is not None)

    def open_selected(self) -> None:
        """Hand the chosen study (or series) to the viewer, which retrieves and opens it."""
        chosen = self._selection()
        if chosen is None:
            return
        study, series = chosen
        series_uid = series.series_uid if series is not None else None
        self.main_window.open_remote(
            self._server, study.study_uid, series_uid, self._listed(study, series))
        self.opened.emit(study.study_uid)
        self.accept()

    def _listed(self, study: Any, series: Any) -> list[Any] | None:
        """The series the tree already shows for this choice (None: not listed yet)."""
        if series is not None:
            return [series]
        for n in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(n)
            if item.data(0, _STUDY_ROLE) is study and item.data(0, _SERIES_ROLE) == "loaded":
                return [item.child(c).data(0, _SERIES_ROLE) for c in range(item.childCount())]
        return None

    # -- messages ----------------------------------------------------------------------
    def _set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setStyleSheet("color: #b00020;" if error else "")
        self.status_label.setText(text)

    def _show_error(self, exc: object) -> None:
        self.search_button.setEnabled(True)
        self._update_buttons()
        from mprviewer.errors import MprviewerError
        from mprviewer.io.remote import strip_credentials

        text = str(exc) if isinstance(exc, MprviewerError) else f"Unexpected error: {exc!r}"
        self._set_status(strip_credentials(text), error=True)

    def done(self, result: int) -> None:
        self.searcher.shutdown()
        super().done(result)


def open_pacs_dialog(main_window: Any) -> PacsDialog:
    """Show the Open from PACS dialog for ``main_window`` (non-modal) and return it."""
    dialog = PacsDialog(main_window)
    dialog.setAttribute(Qt.WA_DeleteOnClose, True)
    dialog.show()
    dialog.raise_()
    return dialog


def send_to_pacs(parent: QWidget | None, datasets: list[Any], server_spec: str = "") -> bool:
    """Ask which server, then store the datasets (the marks' KOS) there; True when stored.

    Runs on the GUI thread with a busy cursor: a KOS is a few kilobytes.
    """
    from PyQt5.QtWidgets import QApplication, QInputDialog

    from mprviewer.io.remote import strip_credentials, url_label
    from mprviewer.pacs import PacsError, saved_servers, send_datasets

    try:
        names = [s.name for s in saved_servers()]
    except PacsError:
        names = []
    if not server_spec:
        spec, ok = QInputDialog.getItem(
            parent, "Send to PACS", "Saved server name or address:", names or [""], 0, True)
        if not ok or not spec.strip():
            return False
        server_spec = spec.strip()
    QApplication.setOverrideCursor(Qt.WaitCursor)
    try:
        count = send_datasets(server_spec, datasets)
    except PacsError as exc:
        QApplication.restoreOverrideCursor()
        QMessageBox.warning(parent, "Send to PACS", strip_credentials(str(exc)))
        return False
    QApplication.restoreOverrideCursor()
    QMessageBox.information(parent, "Send to PACS",
                            f"Stored {count} object(s) on {url_label(server_spec)}.")
    return True
