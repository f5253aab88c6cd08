"""JSON Patch (RFC 6902) operations for a set of values to write into an object."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

Path = tuple[str | int, ...]
Operation = dict[str, Any]


@functools.lru_cache(maxsize=1024)  # the same few paths are written for every pod; bounded
def pointer(path: Path) -> str:
    """RFC 6901: `~` becomes `~0` and `/` becomes `~1` in each token."""
    return "".join("/" + str(token).replace("~", "~0").replace("/", "~1") for token in path)


def set_values(document: Mapping[str, Any], updates: Iterable[tuple[Path, Any]]) -> list[Operation]:
    """The operations that give each path its value, and nothing else.

    A value already in place yields no operation. A missing (or null) parent is added whole,
    with every update below it, because JSON Patch cannot add below a member that is absent.
    Cheaper than diffing whole objects: only the written paths are visited.
    """
    operations: list[Operation] = []
    missing: dict[Path, dict[str, Any]] = {}  # first absent container -> what goes in it
    # Paths share their parents (a pod's annotations): each parent is walked to once.
    parents: dict[Path, tuple[Any, int]] = {}
    for path, value in updates:
        parent = path[:-1]
        walked = parents.get(parent)
        if walked is None:
            walked = parents[parent] = _walk(document, parent)
        node, absent = walked
        if absent >= 0:
            _nest(missing.setdefault(path[: absent + 1], {}), path[absent + 1 :], value)
            continue
        current = _child(node, path[-1])
        if current != value:
            op = "replace" if current is not None else "add"
            operations.append({"op": op, "path": pointer(path), "value": value})
    operations += [
        {"op": "add", "path": pointer(path), "value": value} for path, value in missing.items()
    ]
    return operations


def _walk(document: Mapping[str, Any], path: Path) -> tuple[Any, int]:
    """(the node at `path`, -1), or (None, the depth of its first absent or null container)."""
    node: Any = document
    for depth, token in enumerate(path):
        # A JSON object and a string key, the usual step, without a call (see _child).
        if type(node) is dict and type(token) is str:
            child = node.get(token)
        else:
            child = _child(node, token)
        if child is None:
            return None, depth
        node = child
    return node, -1


def _child(node: Any, token: str | int) -> Any:
    # dict first: a JSON object is one, and testing the Mapping ABC alone costs far more.
    if isinstance(node, (dict, Mapping)) and isinstance(token, str):
        return node.get(token)
    if isinstance(node, list) and isinstance(token, int) and 0 <= token < len(node):
        return node[token]
    return None


def _nest(target: dict[str, Any], rest: Path, value: Any) -> None:
    for token in rest[:-1]:
        target = target.setdefault(str(token), {})
    target[str(rest[-1])] = value
