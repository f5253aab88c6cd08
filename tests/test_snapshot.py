"""Table tests for the pure list/watch state machine in webhook.tenancy.snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest

from webhook.tenancy import snapshot
from webhook.tenancy.snapshot import CacheState, Change, ErrorAction


def state(items: Mapping[str, int], rv: str = "10", synced: bool = True) -> CacheState[int]:
    return CacheState(MappingProxyType(dict(items)), rv, synced)


def test_empty_state_is_unsynced_and_empty() -> None:
    empty = snapshot.empty_state()
    assert (dict(empty.items), empty.resource_version, empty.synced) == ({}, "", False)


@pytest.mark.parametrize(
    ("items", "rv"),
    [
        pytest.param({}, "1", id="empty-list"),
        pytest.param({"a": 1, "ns/b": 2}, "57", id="mixed-scope-keys"),
    ],
)
def test_relist_replaces_everything_and_marks_synced(items: dict[str, int], rv: str) -> None:
    result = snapshot.relist(items, rv)
    assert dict(result.items) == items
    assert result.resource_version == rv
    assert result.synced


def test_relist_result_is_immutable_and_detached() -> None:
    source = {"a": 1}
    result = snapshot.relist(source, "5")
    source["b"] = 2
    assert dict(result.items) == {"a": 1}
    with pytest.raises(TypeError):
        result.items["c"] = 3  # type: ignore[index]


@pytest.mark.parametrize(
    ("before", "event_type", "key", "value", "rv", "items", "expected_rv"),
    [
        pytest.param({}, "ADDED", "a", 1, "11", {"a": 1}, "11", id="added-new"),
        pytest.param({"a": 1}, "ADDED", "a", 2, "11", {"a": 2}, "11", id="added-existing-upserts"),
        pytest.param({"a": 1}, "MODIFIED", "a", 5, "12", {"a": 5}, "12", id="modified"),
        pytest.param({}, "MODIFIED", "a", 5, "12", {"a": 5}, "12", id="modified-unknown-upserts"),
        pytest.param({"a": 1, "b": 2}, "DELETED", "a", None, "13", {"b": 2}, "13", id="deleted"),
        pytest.param({"b": 2}, "DELETED", "a", None, "13", {"b": 2}, "13", id="deleted-unknown"),
        pytest.param({"a": 1}, "BOOKMARK", "", None, "99", {"a": 1}, "99", id="bookmark-only-rv"),
        pytest.param({"a": 1}, "MODIFIED", "a", 2, "", {"a": 2}, "10", id="empty-rv-keeps-old"),
    ],
)
def test_apply_event(
    before: dict[str, int],
    event_type: str,
    key: str,
    value: int | None,
    rv: str,
    items: dict[str, int],
    expected_rv: str,
) -> None:
    old = state(before)
    result = snapshot.apply_event(old, event_type, key, value, rv)
    assert dict(result.items) == items
    assert result.resource_version == expected_rv
    assert result.synced
    assert dict(old.items) == before  # the previous snapshot is untouched


def test_bookmark_keeps_the_same_items_object() -> None:
    old = state({"a": 1})
    assert snapshot.apply_event(old, "BOOKMARK", "", None, "11").items is old.items


@pytest.mark.parametrize(
    ("event_type", "value"),
    [
        pytest.param("ERROR", None, id="error-is-not-a-state-change"),
        pytest.param("SYNC", 1, id="unknown-type"),
        pytest.param("ADDED", None, id="added-without-value"),
    ],
)
def test_apply_event_rejects(event_type: str, value: int | None) -> None:
    with pytest.raises(ValueError):
        snapshot.apply_event(state({}), event_type, "a", value, "11")


@pytest.mark.parametrize(
    ("metadata", "key"),
    [
        pytest.param({"name": "default"}, "default", id="cluster-scoped"),
        pytest.param({"name": "vs", "namespace": "team-a"}, "team-a/vs", id="namespaced"),
        pytest.param({"name": "x", "namespace": ""}, "x", id="empty-namespace"),
    ],
)
def test_object_key(metadata: dict[str, Any], key: str) -> None:
    assert snapshot.object_key(metadata) == key


@pytest.mark.parametrize(
    ("old", "new", "changes"),
    [
        pytest.param({"a": 1}, {"a": 1}, [], id="unchanged"),
        pytest.param({}, {"a": 1}, [Change("a", None, 1)], id="added"),
        pytest.param({"a": 1}, {}, [Change("a", 1, None)], id="removed"),
        pytest.param(
            {"a": 1, "b": 2},
            {"b": 3, "c": 4},
            [Change("a", 1, None), Change("b", 2, 3), Change("c", None, 4)],
            id="mixed-sorted-by-key",
        ),
    ],
)
def test_diff(old: dict[str, int], new: dict[str, int], changes: list[Change[int]]) -> None:
    assert snapshot.diff(old, new) == changes


@pytest.mark.parametrize(
    ("event_type", "value", "change"),
    [
        pytest.param("ADDED", 2, Change("a", 1, 2), id="added-over-existing"),
        pytest.param("DELETED", 7, Change("a", 1, None), id="deleted-ignores-value"),
    ],
)
def test_event_change(event_type: str, value: int, change: Change[int]) -> None:
    assert snapshot.event_change(state({"a": 1}), event_type, "a", value) == change


@pytest.mark.parametrize(
    ("before", "cache_rv", "object_rv", "after"),
    [
        pytest.param({}, "10", "12", {"ns": 1}, id="miss-newer-than-watch"),
        pytest.param({}, "", "12", {"ns": 1}, id="before-first-list"),
        pytest.param({}, "10", "abc", {"ns": 1}, id="opaque-rv"),
        pytest.param({}, "20", "12", {}, id="watch-already-past-it-means-deleted"),
        pytest.param({"ns": 9}, "10", "12", {"ns": 9}, id="present-is-not-overwritten"),
    ],
)
def test_remember(
    before: dict[str, int], cache_rv: str, object_rv: str, after: dict[str, int]
) -> None:
    result = snapshot.remember(state(before, rv=cache_rv), "ns", 1, object_rv)
    assert dict(result.items) == after
    assert result.resource_version == cache_rv


@pytest.mark.parametrize(
    ("status", "action"),
    [
        pytest.param(
            {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"},
            ErrorAction.RELIST,
            id="410-expired",
        ),
        pytest.param({"code": 410, "reason": "Gone"}, ErrorAction.RELIST, id="410-gone"),
        pytest.param({"code": 410}, ErrorAction.RELIST, id="410-without-reason"),
        pytest.param({"reason": "Expired"}, ErrorAction.RELIST, id="expired-without-code"),
        pytest.param(
            {"code": 500, "reason": "InternalError"}, ErrorAction.RECONNECT, id="500-internal"
        ),
        pytest.param(
            {"code": 504, "reason": "Timeout", "message": "Too large resource version"},
            ErrorAction.RECONNECT,
            id="504-too-large-rv",
        ),
        pytest.param({"code": 403, "reason": "Forbidden"}, ErrorAction.RECONNECT, id="403"),
        pytest.param({"code": "410"}, ErrorAction.RECONNECT, id="code-as-string-is-not-trusted"),
        pytest.param({"code": True}, ErrorAction.RECONNECT, id="code-bool"),
        pytest.param("garbage", ErrorAction.RECONNECT, id="not-a-status"),
        pytest.param(None, ErrorAction.RECONNECT, id="missing-object"),
    ],
)
def test_classify_error(status: object, action: ErrorAction) -> None:
    assert snapshot.classify_error(status) is action


@pytest.mark.parametrize(
    ("code", "reason", "action"),
    [
        pytest.param(410, None, ErrorAction.RELIST, id="http-410"),
        pytest.param(500, "Expired", ErrorAction.RELIST, id="expired-reason"),
        pytest.param(0, None, ErrorAction.RECONNECT, id="transport-error"),
        pytest.param(None, None, ErrorAction.RECONNECT, id="nothing-known"),
    ],
)
def test_classify_status(code: int | None, reason: str | None, action: ErrorAction) -> None:
    assert snapshot.classify_status(code, reason) is action


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        pytest.param(0, 0.0, 0.5, id="first-attempt-lower-bound"),
        pytest.param(0, 1.0, 1.0, id="first-attempt-upper-bound"),
        pytest.param(1, 0.0, 1.0, id="doubles"),
        pytest.param(3, 1.0, 8.0, id="third-retry-upper"),
        pytest.param(10, 1.0, 30.0, id="capped"),
        pytest.param(10, 0.0, 15.0, id="capped-lower-half"),
        pytest.param(10_000, 0.5, 22.5, id="huge-attempt-no-overflow"),
        pytest.param(-3, 1.0, 1.0, id="negative-attempt-is-first"),
        pytest.param(2, 7.0, 4.0, id="rand-clamped-high"),
        pytest.param(2, -1.0, 2.0, id="rand-clamped-low"),
    ],
)
def test_backoff_delay(attempt: int, rand: float, expected: float) -> None:
    assert snapshot.backoff_delay(attempt, base=1.0, cap=30.0, rand=rand) == pytest.approx(expected)


@pytest.mark.parametrize("attempt", range(0, 12))
@pytest.mark.parametrize("rand", [0.0, 0.25, 0.999, 1.0])
def test_backoff_delay_bounds(attempt: int, rand: float) -> None:
    delay = snapshot.backoff_delay(attempt, base=0.5, cap=20.0, rand=rand)
    ceiling = min(20.0, 0.5 * 2**attempt)
    assert ceiling / 2 <= delay <= ceiling


def test_backoff_delay_disabled_by_zero_base() -> None:
    assert snapshot.backoff_delay(5, base=0.0, cap=10.0, rand=0.5) == 0.0


@pytest.mark.parametrize(
    ("candidate", "current", "newer"),
    [
        pytest.param("11", "10", True, id="numeric-newer"),
        pytest.param("9", "10", False, id="numeric-older"),
        pytest.param("10", "10", False, id="equal"),
        pytest.param("100", "99", True, id="compares-as-integers"),
        pytest.param("5", "", True, id="nothing-listed-yet"),
        pytest.param("abc", "10", None, id="opaque"),
    ],
)
def test_rv_is_newer(candidate: str, current: str, newer: bool | None) -> None:
    assert snapshot.rv_is_newer(candidate, current) is newer


A = ("team-a", "vs1")
B = ("team-b", "vs2")


@pytest.mark.parametrize(
    ("index", "moves", "expected"),
    [
        pytest.param({}, [(A, (), ("h1", "h2"))], {"h1": {A}, "h2": {A}}, id="add-member"),
        pytest.param(
            {"h1": frozenset({A}), "h2": frozenset({A})},
            [(A, ("h1", "h2"), ("h2", "h3"))],
            {"h2": {A}, "h3": {A}},
            id="move-hosts",
        ),
        pytest.param(
            {"h1": frozenset({A, B})},
            [(A, ("h1",), ())],
            {"h1": {B}},
            id="remove-one-of-two",
        ),
        pytest.param({"h1": frozenset({A})}, [(A, ("h1",), ())], {}, id="last-member-drops-key"),
        pytest.param(
            {"h1": frozenset({A})},
            [(B, (), ("h1",)), (A, ("h1",), ())],
            {"h1": {B}},
            id="batch",
        ),
        pytest.param({}, [(A, ("h9",), ())], {}, id="remove-unknown-is-harmless"),
    ],
)
def test_reindex(
    index: dict[str, frozenset[tuple[str, str]]],
    moves: list[tuple[tuple[str, str], tuple[str, ...], tuple[str, ...]]],
    expected: dict[str, set[tuple[str, str]]],
) -> None:
    before = dict(index)
    result = snapshot.reindex(index, moves)
    assert {k: set(v) for k, v in result.items()} == expected
    assert index == before  # a fresh dict is returned; the published one is not touched
