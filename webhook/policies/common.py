"""What every policy shares: violations, how values are shown, and shape checks."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from json.encoder import encode_basestring_ascii
from typing import Any, NamedTuple

_SHOWN_MAX = 120


def show(value: object) -> str:
    """A value as it appears in a message: JSON-quoted, ASCII-only, and not too long."""
    if type(value) is str:
        # Most values shown are strings, and lists of them (hosts, exportTo): json.dumps
        # would build an encoder per call only to call this same function on each.
        text = encode_basestring_ascii(value)
    elif type(value) is list and all(type(item) is str for item in value):
        text = f"[{', '.join(map(encode_basestring_ascii, value))}]"
    else:
        try:
            text = json.dumps(value, ensure_ascii=True, separators=(", ", ": "))
        except RecursionError:  # a hand-made object nested deeper than the encoder goes
            return "(a value nested too deep to show)"
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 3] + "..."


def label_path(map_name: str, key: str) -> str:
    """`metadata.labels["example.com/team"]`: a readable field path for a map key."""
    return f"metadata.{map_name}[{show(key)}]"


class Violation(NamedTuple):
    """One broken rule, with everything a person needs to fix it in one round.

    A named tuple, immutable as a frozen dataclass is, and several times cheaper to make:
    a denial makes one per violation, on the request path."""

    rule: str  # stable name, for metrics and logs: host-ownership, export-to, ...
    field: str  # `spec.hosts[1]`
    value: str  # the offending value as shown (see show())
    problem: str  # "belongs to tenant \"tenant-b\""
    fix: str
    owner: str | None = None  # who owns the value, for ownership rules

    def render(self, ref: str) -> str:
        # As brief() and the fix, in one string: a denial renders every violation.
        if not self.value:
            return f"{ref}: {self.field} {self.problem}. Fix: {self.fix}"
        return f"{ref}: {self.field} {self.value} {self.problem}. Fix: {self.fix}"

    def brief(self, ref: str) -> str:
        if not self.value:  # a problem with a field as a whole (a Tenant's spec.proxy)
            return f"{ref}: {self.field} {self.problem}"
        return f"{ref}: {self.field} {self.value} {self.problem}"


class Subject(NamedTuple):
    """The object under review, as messages name it (made once per request: a named tuple
    costs a fraction of a frozen dataclass to construct)."""

    kind: str
    namespace: str | None
    name: str

    @property
    def ref(self) -> str:
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else (f"{self.kind} {self.name}")
        )


class ShapeError(ValueError):
    """The object does not have the shape of its declared kind."""

    def __init__(self, field: str, expected: str, value: object) -> None:
        super().__init__(f"{field} must be {expected}, got {show(value)}")
        self.field = field


def mapping_at(obj: Mapping[str, Any], key: str, field: str) -> Mapping[str, Any]:
    """obj[key] as a mapping; absent or null reads as empty."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ShapeError(field, "an object", value)
    return value


def string_map_at(obj: Mapping[str, Any], key: str, field: str) -> Mapping[str, str]:
    """A labels/annotations-style map of strings; absent or null reads as empty."""
    value = mapping_at(obj, key, field)
    for map_key, item in value.items():
        if not isinstance(item, str):
            raise ShapeError(f"{field}[{show(map_key)}]", "a string", item)
    return value


def string_list_at(obj: Mapping[str, Any], key: str, field: str) -> list[str] | None:
    """obj[key] as a list of strings, or None when absent or null."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise ShapeError(field, "a list of strings", value)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ShapeError(f"{field}[{index}]", "a string", item)
    return value


def list_at(obj: Mapping[str, Any], key: str, field: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ShapeError(field, "a list", value)
    return value


def objects_at(
    obj: Mapping[str, Any], key: str, field: str
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(`field[i]`, item) of each item of the list obj[key], every item an object; absent or
    null reads as empty."""
    for index, item in enumerate(list_at(obj, key, field)):
        where = f"{field}[{index}]"
        if not isinstance(item, dict):
            raise ShapeError(where, "an object", item)
        yield where, item
