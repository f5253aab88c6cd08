"""Pure list/watch state machine: cache snapshots, watch events, error classification, backoff."""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, NamedTuple, TypeVar

T = TypeVar("T")
K = TypeVar("K")
M = TypeVar("M")

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
BOOKMARK = "BOOKMARK"
ERROR = "ERROR"

HTTP_GONE = 410
# Reasons the API server gives when a resourceVersion or continue token is no longer served.
_EXPIRED_REASONS = frozenset({"Expired", "Gone"})


class RouteRef(NamedTuple):
    """An object that routes a host, as the collision index holds it."""

    kind: str  # VirtualService, HTTPRoute, ...: collisions are judged across APIs
    namespace: str
    name: str


class ErrorAction(enum.Enum):
    """What a watcher does after an error."""

    RELIST = "relist"
    RECONNECT = "reconnect"


@dataclass(frozen=True)
class CacheState(Generic[T]):
    """One immutable view of a watched collection."""

    items: Mapping[str, T]
    resource_version: str
    synced: bool


@dataclass(frozen=True)
class Change(Generic[T]):
    """One key whose value changed; None stands for absent."""

    key: str
    old: T | None
    new: T | None


def empty_state() -> CacheState[Any]:
    """The state before the first list: nothing known, not synced."""
    return CacheState(items=MappingProxyType({}), resource_version="", synced=False)


def object_key(metadata: Mapping[str, Any]) -> str:
    """`namespace/name` for namespaced objects, `name` for cluster-scoped ones."""
    name = str(metadata.get("name") or "")
    namespace = metadata.get("namespace")
    return f"{namespace}/{name}" if namespace else name


def relist(items: Mapping[str, T], resource_version: str) -> CacheState[T]:
    """The state after a complete list: it replaces everything known before."""
    return CacheState(
        items=MappingProxyType(dict(items)), resource_version=resource_version, synced=True
    )


def apply_event(
    state: CacheState[T],
    event_type: str,
    obj_key: str,
    value: T | None,
    resource_version: str,
) -> CacheState[T]:
    """The state after one watch event.

    ADDED and MODIFIED are both upserts: after a relist or a resumed watch the server may
    repeat an object, and the last write is what the cluster holds. An empty
    `resource_version` keeps the previous one. ERROR events are not state changes; classify
    them with `classify_error` instead.
    """
    new_rv = resource_version or state.resource_version
    if event_type == BOOKMARK:
        return CacheState(state.items, new_rv, state.synced)
    if event_type in (ADDED, MODIFIED):
        if value is None:
            raise ValueError(f"{event_type} event for {obj_key!r} carries no value")
        items = dict(state.items)
        items[obj_key] = value
        return CacheState(MappingProxyType(items), new_rv, state.synced)
    if event_type == DELETED:
        if obj_key not in state.items:
            return CacheState(state.items, new_rv, state.synced)
        items = dict(state.items)
        del items[obj_key]
        return CacheState(MappingProxyType(items), new_rv, state.synced)
    raise ValueError(f"unexpected watch event type {event_type!r}")


def event_change(state: CacheState[T], event_type: str, obj_key: str, value: T | None) -> Change[T]:
    """The change an ADDED/MODIFIED/DELETED event makes to `state` (for derived indexes)."""
    new = None if event_type == DELETED else value
    return Change(obj_key, state.items.get(obj_key), new)


def diff(old: Mapping[str, T], new: Mapping[str, T]) -> list[Change[T]]:
    """Changes that turn `old` into `new`, sorted by key, unchanged keys left out."""
    changes: list[Change[T]] = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if before != after or (key in old) != (key in new):
            changes.append(Change(key, before, after))
    return changes


def rv_is_newer(candidate: str, current: str) -> bool | None:
    """Whether `candidate` is a later resourceVersion than `current`; None when unknowable.

    The API treats resourceVersions as opaque, but etcd-backed servers issue increasing
    integers; the comparison is only used to avoid resurrecting a deleted object.
    """
    if not current:
        return True
    if not (candidate.isdigit() and current.isdigit()):
        return None
    return int(candidate) > int(current)


def remember(state: CacheState[T], obj_key: str, value: T, object_rv: str) -> CacheState[T]:
    """Insert an object fetched outside the watch (a GET on a cache miss).

    Only a missing key is filled, and only when the watch has not yet reached the object's
    resourceVersion: if it has, the object's absence means a later DELETED, which wins. The
    cache's own resourceVersion is left alone because the watch resumes from it.
    """
    if obj_key in state.items or rv_is_newer(object_rv, state.resource_version) is False:
        return state
    items = dict(state.items)
    items[obj_key] = value
    return CacheState(MappingProxyType(items), state.resource_version, state.synced)


def classify_status(code: int | None, reason: str | None) -> ErrorAction:
    """410 Gone / reason Expired means the resourceVersion is too old: list again."""
    if code == HTTP_GONE or (reason in _EXPIRED_REASONS):
        return ErrorAction.RELIST
    return ErrorAction.RECONNECT


def classify_error(status: object) -> ErrorAction:
    """Classify the `object` of a watch ERROR event (normally a metav1.Status)."""
    if not isinstance(status, Mapping):
        return ErrorAction.RECONNECT
    code = status.get("code")
    reason = status.get("reason")
    return classify_status(
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        reason if isinstance(reason, str) else None,
    )


def backoff_delay(attempt: int, base: float, cap: float, rand: float) -> float:
    """Delay before retry number `attempt` (0-based): exponential, capped, with jitter.

    The upper bound doubles per attempt up to `cap`; the delay is drawn from its upper half
    ("equal jitter") so that retries spread out but never collapse to zero. `rand` is a
    uniform number in [0, 1] supplied by the caller.
    """
    if base <= 0 or cap <= 0:
        return 0.0
    exponent = min(max(attempt, 0), 62)
    ceiling = min(cap, base * float(2**exponent))
    jitter = min(max(rand, 0.0), 1.0)
    return ceiling / 2 + ceiling / 2 * jitter


def reindex(
    index: Mapping[K, frozenset[M]],
    moves: Iterable[tuple[M, Collection[K], Collection[K]]],
) -> dict[K, frozenset[M]]:
    """A reverse index (key -> members) after members moved from old keys to new keys.

    Each move is (member, keys before, keys after). The index is copied once, so a relist
    with many changes costs one copy, not one per change.
    """
    result = dict(index)
    for member, before, after in moves:
        old_keys, new_keys = set(before), set(after)
        for key in old_keys - new_keys:
            remaining = result.get(key, frozenset()) - {member}
            if remaining:
                result[key] = remaining
            else:
                result.pop(key, None)
        for key in new_keys - old_keys:
            result[key] = result.get(key, frozenset()) | {member}
    return result


# What a cache keeps of an object's metadata: what judging reads (the audit) beside the spec
# (the host index); the rest, managedFields above all, is dropped.
_METADATA_KEYS = ("name", "generateName", "namespace", "uid", "labels", "annotations")


def slim(obj: Mapping[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """What the watch caches keep of a stored object: apiVersion, kind, some metadata, spec.

    List items of built-in kinds carry no apiVersion or kind, so the caller's are the default.
    """
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    kept: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion") or api_version,
        "kind": obj.get("kind") or kind,
        "metadata": {k: metadata[k] for k in _METADATA_KEYS if k in metadata},
    }
    if "spec" in obj:
        kept["spec"] = obj["spec"]
    return kept
