"""Label sets: the fixed labels of a labeling project, with colours and number-key hotkeys.

A label set is a small JSON document (``"format": "mprviewer-labelset"``) validated against
``schema/labelset-v1.schema.json``. Two are built in: ``ich`` (the five intracranial
haemorrhage subtypes of the RSNA 2019 dataset plus ``any``, which is derived: set on an image
whenever another label is) and ``anomaly`` (one label, "Bleeding", free text allowed, as in
the original tool). No Qt, no VTK.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from mprviewer.errors import AnnotationError

FORMAT_NAME = "mprviewer-labelset"
FORMAT_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("schema") / "labelset-v1.schema.json"
MAX_FILE_BYTES = 1024 * 1024
DEFAULT_COLOURS = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4",
                   "#46f0f0", "#f032e6", "#bcf60c")


class LabelSetError(AnnotationError):
    """A label set that cannot be used (bad JSON, schema, duplicate keys or hotkeys)."""


@dataclass(frozen=True)
class Label:
    """One label of a set."""

    key: str
    name: str
    colour: str
    hotkey: int | None = None
    derived: bool = False


@dataclass(frozen=True)
class LabelSet:
    """The labels a project allows; ``free_text`` also allows labels typed by the reader."""

    name: str
    labels: tuple[Label, ...]
    free_text: bool = False
    description: str = ""

    @property
    def keys(self) -> list[str]:
        return [label.key for label in self.labels]

    @property
    def markable(self) -> list[Label]:
        """Labels a reader sets by hand (derived ones follow from these)."""
        return [label for label in self.labels if not label.derived]

    @property
    def derived(self) -> list[Label]:
        return [label for label in self.labels if label.derived]

    def get(self, key: str) -> Label | None:
        """The label with this key, or with this display name (case-insensitive)."""
        for label in self.labels:
            if label.key == key:
                return label
        folded = key.casefold()
        for label in self.labels:
            if folded in (label.key.casefold(), label.name.casefold()):
                return label
        return None

    def by_hotkey(self, digit: int) -> Label | None:
        return next((label for label in self.labels if label.hotkey == digit), None)

    def check_markable(self, key: str) -> str:
        """The stored label for what the reader asked for; raise naming an unknown label."""
        text = " ".join(str(key).split())
        label = self.get(text)
        if label is not None:
            if label.derived:
                raise LabelSetError(
                    f"label {label.key!r} is derived: it is set on an image whenever another "
                    f"label is; mark one of {', '.join(lab.key for lab in self.markable)}")
            return label.key
        if self.free_text and text and len(text) <= 200:
            return text
        raise LabelSetError(
            f"unknown label {text!r}: the label set {self.name!r} has "
            f"{', '.join(lab.key for lab in self.markable)}"
            + ("" if not self.free_text else " (free text of 1-200 characters is allowed)"))

    def as_dict(self) -> dict[str, Any]:
        """The JSON document of this set (what ``from_dict`` reads back)."""
        labels = []
        for label in self.labels:
            item: dict[str, Any] = {"key": label.key, "name": label.name,
                                    "colour": label.colour}
            if label.hotkey is not None:
                item["hotkey"] = label.hotkey
            if label.derived:
                item["derived"] = True
            labels.append(item)
        doc: dict[str, Any] = {"format": FORMAT_NAME, "version": FORMAT_VERSION,
                               "name": self.name, "free_text": self.free_text, "labels": labels}
        if self.description:
            doc["description"] = self.description
        return doc

    @classmethod
    def from_dict(cls, doc: Any, source: str = "label set") -> LabelSet:
        """Validate a document against the schema and the rules the schema cannot say."""
        import jsonschema

        errors = list(_validator().iter_errors(doc))
        if errors:
            err = jsonschema.exceptions.best_match(errors)
            raise LabelSetError(f"{source}: {err.message[:200]} (at {err.json_path})")
        _unique(source, "key", [str(item["key"]) for item in doc["labels"]], fold=True)
        _unique(source, "hotkey", [item["hotkey"] for item in doc["labels"] if "hotkey" in item])
        labels = tuple(
            Label(key=item["key"], name=item["name"],
                  colour=item.get("colour", DEFAULT_COLOURS[n % len(DEFAULT_COLOURS)]).lower(),
                  hotkey=item.get("hotkey"), derived=bool(item.get("derived", False)))
            for n, item in enumerate(doc["labels"]))
        if all(label.derived for label in labels):
            raise LabelSetError(f"{source}: every label is derived; at least one must be "
                                "set by the reader")
        return cls(name=doc["name"], labels=labels, free_text=bool(doc.get("free_text", False)),
                   description=str(doc.get("description", "")))


def _unique(source: str, what: str, values: Iterable[Any], fold: bool = False) -> None:
    seen: dict[Any, Any] = {}
    for value in values:
        norm = value.casefold() if fold and isinstance(value, str) else value
        if norm in seen:
            raise LabelSetError(f"{source}: duplicate {what} {value!r} (given twice, "
                                f"as {seen[norm]!r} and {value!r}); each {what} must be unique")
        seen[norm] = value


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


BUILT_IN: Mapping[str, dict[str, Any]] = {
    "ich": {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "name": "ich",
        "description": "Intracranial haemorrhage subtypes of the RSNA 2019 dataset; 'any' is "
                       "set on an image whenever a subtype is.",
        "free_text": False,
        "labels": [
            {"key": "epidural", "name": "Epidural", "colour": "#e6194b", "hotkey": 1},
            {"key": "intraparenchymal", "name": "Intraparenchymal", "colour": "#3cb44b",
             "hotkey": 2},
            {"key": "intraventricular", "name": "Intraventricular", "colour": "#4363d8",
             "hotkey": 3},
            {"key": "subarachnoid", "name": "Subarachnoid", "colour": "#f58231", "hotkey": 4},
            {"key": "subdural", "name": "Subdural", "colour": "#911eb4", "hotkey": 5},
            {"key": "any", "name": "Any haemorrhage", "colour": "#ffe119", "derived": True},
        ],
    },
    "anomaly": {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "name": "anomaly",
        "description": "One label, as in the original tool; other labels may be typed.",
        "free_text": True,
        "labels": [{"key": "Bleeding", "name": "Bleeding", "colour": "#ff3030", "hotkey": 1}],
    },
}


def built_in(name: str) -> LabelSet:
    """One of the shipped label sets by name (``ich`` or ``anomaly``)."""
    if name not in BUILT_IN:
        raise LabelSetError(f"no built-in label set {name!r}: use {', '.join(BUILT_IN)} or a "
                            "JSON file")
    return LabelSet.from_dict(BUILT_IN[name], source=f"built-in label set {name!r}")


def load_label_set(spec: str | Path) -> LabelSet:
    """A built-in set by name, or a label set JSON file."""
    text = str(spec)
    if text in BUILT_IN:
        return built_in(text)
    path = Path(text).expanduser()
    if not path.is_file():
        raise LabelSetError(f"{text}: neither a built-in label set ({', '.join(BUILT_IN)}) "
                            "nor a label set file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise LabelSetError(f"{path}: larger than {MAX_FILE_BYTES // 1024} KB; not a label set")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as exc:
        raise LabelSetError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise LabelSetError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except ValueError as exc:
        raise LabelSetError(f"{path}: {exc}") from None
    return LabelSet.from_dict(doc, source=str(path))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the JSON key {key!r} appears twice in one object")
        out[key] = value
    return out
