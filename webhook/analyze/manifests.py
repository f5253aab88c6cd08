"""Manifests as documents: files, directories and stdin split into objects with positions.

Each document keeps the file it came from, its ordinal among the file's non-empty documents
(1-based, what a person counts) and its first line, so every report can point at it. A document
that cannot be read becomes a Document with an error instead of stopping the run: the other
documents are still judged, and the error is reported with its file and document number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

STDIN = "-"
SUFFIXES = (".yaml", ".yml", ".json")
# kustomize's own build inputs, not objects to apply; `kustomize build` output is the input.
KUSTOMIZATION_FILES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})

# libyaml when PyYAML has it: several times faster on large inputs (pre-commit, CI).
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# A line that starts a YAML document (`---`, optionally followed by content) or ends one
# (`...`). YAML forbids these at column 0 inside any scalar, so splitting on them is exact.
_MARKER = re.compile(r"^(---|\.\.\.)(?:[ \t].*)?$")
_INLINE_START = re.compile(r"^---[ \t]+[^\s#]")
_CONTENT = re.compile(r"^[ \t]*[^\s#]")


@dataclass(frozen=True)
class Document:
    """One object read from the input, or the reason it could not be read."""

    source: str  # the file as given on the command line (or under a directory), or "-"
    index: int  # 1-based ordinal among the source's non-empty documents; 0: the whole file
    line: int  # 1-based first line of the document
    obj: Mapping[str, Any] | None = None
    item: int | None = None  # 0-based position inside a List document
    error: str | None = None

    @property
    def where(self) -> str:
        what = f"{self.source}, document {self.index}" if self.index else self.source
        if self.item is not None:
            what += f", item {self.item}"
        return f"{what} (line {self.line})"


class InputError(Exception):
    """A path that cannot be read at all (missing, unreadable)."""


def files_of(paths: Iterable[str]) -> list[str]:
    """The files to read, in order: files as given, directories walked recursively for
    *.yaml, *.yml and *.json (sorted; hidden directories and kustomization files skipped)."""
    files: list[str] = []
    for given in paths:
        if given == STDIN:
            files.append(STDIN)
            continue
        path = Path(given)
        if path.is_dir():
            files += [str(found) for found in _walk(path)]
        elif path.exists():
            files.append(given)
        else:
            raise InputError(f"{given}: no such file or directory")
    return files


def _walk(directory: Path) -> Iterator[Path]:
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            yield from _walk(entry)
        elif entry.suffix in SUFFIXES and entry.name not in KUSTOMIZATION_FILES:
            yield entry


def read_text(source: str, stdin: TextIO) -> str:
    if source == STDIN:
        return stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: cannot read: {exc}") from None


def documents(source: str, text: str) -> list[Document]:
    """Every object in one file's text: JSON (one value or a stream of them) or YAML (one or
    more documents). `List` objects are expanded into their items."""
    if source.endswith(".json") or (source == STDIN and text.lstrip()[:1] in ("{", "[")):
        parsed = _json_documents(source, text)
        if parsed is not None:
            return parsed
    return _yaml_documents(source, text)


def _json_documents(source: str, text: str) -> list[Document] | None:
    """A stream of JSON values (`kubectl get -o json` gives one; some tools give several).
    None when the text is not JSON at all, so that stdin can fall back to YAML."""
    decoder = json.JSONDecoder()
    found: list[Document] = []
    position = _skip_space(text, 0)
    while position < len(text):
        line = text.count("\n", 0, position) + 1
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            if source == STDIN and not found:
                return None
            error = f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            found.append(Document(source, len(found) + 1, line, error=error))
            return found
        found += _objects(source, len(found) + 1, line, value)
        position = _skip_space(text, end)
    return found


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _yaml_documents(source: str, text: str) -> list[Document]:
    found: list[Document] = []
    for index, (line, chunk) in enumerate(_chunks(text), 1):
        try:
            value = yaml.load(chunk, Loader=_Loader)
        except yaml.YAMLError as exc:
            found.append(
                Document(source, index, line, error=f"not valid YAML: {_brief(exc, line)}")
            )
            continue
        found += _objects(source, index, line, value)
    return found


def _chunks(text: str) -> Iterator[tuple[int, str]]:
    """(first line, text) of each non-empty YAML document, its text starting at that line, so
    YAML's error marks are offsets from it."""
    lines = text.splitlines(keepends=True)
    start = 0
    for number, line in enumerate([*lines, "---\n"]):
        if _MARKER.match(line.rstrip("\r\n")):
            chunk = lines[start:number]
            first = next((i for i, text in enumerate(chunk) if _CONTENT.match(text)), None)
            if first is not None:
                yield start + first + 1, "".join(chunk[first:])
            # `--- {inline: document}` begins on the marker's own line; otherwise after it.
            start = number if _INLINE_START.match(line) else number + 1


def _brief(exc: yaml.YAMLError, first_line: int) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return str(problem)
    return f"{problem} (line {first_line + mark.line}, column {mark.column + 1})"


def _objects(source: str, index: int, line: int, value: Any) -> list[Document]:
    if value is None:
        return []
    if not isinstance(value, dict):
        error = f"not a Kubernetes object: a {_type_name(value)}, not a mapping"
        return [Document(source, index, line, error=error)]
    kind = value.get("kind")
    items = value.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        return _list_items(source, index, line, value, kind, items)
    return [Document(source, index, line, value)]


def _list_items(
    source: str, index: int, line: int, value: Mapping[str, Any], kind: str, items: list[Any]
) -> list[Document]:
    # `kubectl get -o json` items carry apiVersion and kind; a typed list from the raw API
    # (VirtualServiceList) leaves them out, implied by the list's own.
    implied_kind = kind.removesuffix("List") if kind != "List" else None
    found: list[Document] = []
    for position, item in enumerate(items):
        if isinstance(item, dict) and implied_kind and "kind" not in item:
            item = {"apiVersion": value.get("apiVersion"), "kind": implied_kind, **item}
        if isinstance(item, dict):
            found.append(Document(source, index, line, item, item=position))
        else:
            error = f"List item is a {_type_name(item)}, not an object"
            found.append(Document(source, index, line, item=position, error=error))
    return found


def _type_name(value: object) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )
