"""Live tenancy data from the API server: list+watch caches that publish immutable snapshots."""

from __future__ import annotations

import functools
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Generic, TypeVar

import kubernetes.client
import kubernetes.config
from kubernetes.client.exceptions import ApiException

from webhook.audit.judging import audited_kinds
from webhook.cluster import discovery
from webhook.cluster.client import describe_error, reason_of
from webhook.cluster.discovery import ResourceNotServed
from webhook.cluster.routes import (
    GATEWAY_API_GROUP,
    GATEWAY_ROUTES,
    LiveRouteIndex,
    RouteIndex,
    RoutingResource,
    route_keys,
)
from webhook.tenancy import snapshot
from webhook.tenancy.snapshot import CacheState, Change, ErrorAction, slim

log = logging.getLogger(__name__)

T = TypeVar("T")

ISTIO_GROUP = "networking.istio.io"
# Served-version preference when discovery names no preferredVersion we can use.
VIRTUALSERVICE_VERSIONS = ("v1", "v1beta1", "v1alpha3")

# The API footprint of the caches requests read, as ClusterRole rules. Discovery (/apis) is
# open to every authenticated client through the built-in system:discovery role.
_CACHE_RBAC: tuple[Mapping[str, Sequence[str]], ...] = (
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": [ISTIO_GROUP],
        "resources": ["virtualservices"],
        "verbs": ["get", "list", "watch"],
    },
    {
        "apiGroups": [GATEWAY_API_GROUP],
        "resources": [r.plural for r in GATEWAY_ROUTES],
        "verbs": ["get", "list", "watch"],
    },
)


def _audit_rbac() -> tuple[Mapping[str, Sequence[str]], ...]:
    """Read access to the audited kinds the caches above do not read already."""
    covered = {(g, r) for rule in _CACHE_RBAC for g in rule["apiGroups"] for r in rule["resources"]}
    by_group: dict[str, list[str]] = {}
    for kind in audited_kinds():
        if (kind.group, kind.resource) not in covered:
            resources = by_group.setdefault(kind.group, [])
            if kind.resource not in resources:
                resources.append(kind.resource)
    return tuple(
        {"apiGroups": [group], "resources": resources, "verbs": ["get", "list", "watch"]}
        for group, resources in by_group.items()
    )


# The whole read-only footprint of serve --kubeconfig/--in-cluster: the caches requests read,
# and the audit's watches (webhook.cluster.auditwatch). deploy/base/rbac.yaml grants exactly it.
REQUIRED_RBAC: tuple[Mapping[str, Sequence[str]], ...] = (*_CACHE_RBAC, *_audit_rbac())

ListCall = Callable[..., Any]
Labels = Mapping[str, str]

_EMPTY_LABELS: Labels = MappingProxyType({})
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class WatchTuning:
    """Timeouts and retry pacing shared by the watch caches."""

    watch_timeout: int = 300  # server-side timeoutSeconds of one watch request
    request_timeout: float = 30.0  # read timeout of list and discovery requests
    connect_timeout: float = 10.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    quick_end: float = 1.0  # a watch that ends sooner than this with no events is a stall
    page_size: int = 500
    # Discovery re-checks for a resource that is not served yet back off up to this.
    discovery_cap: float = 60.0


@dataclass(frozen=True)
class CacheStatus:
    """Health counters of one watch cache, read without locks."""

    resource: str
    synced: bool
    items: int
    resource_version: str
    relists: int
    reconnects: int
    consecutive_failures: int
    failing_since: float | None  # unix time the current failure streak began
    failing_for: float | None  # seconds that streak has lasted
    last_success: float | None  # unix time of the last good list, watch start or event
    last_error: str | None
    waiting: str | None = None  # why the watch has not started: its resource is not served

    @property
    def restarts(self) -> int:
        return self.relists + self.reconnects


class NamespaceLookupError(Exception):
    """A direct namespace GET failed; the caller must fail closed with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Expired(Exception):
    """The resourceVersion (or continue token) is gone: list again."""


class _WatchError(Exception):
    """The server reported an error inside a watch stream."""


def _status_text(status: Mapping[str, Any]) -> str:
    return f"{status.get('code')} {status.get('reason')}: {status.get('message')}"


def choose_version(preferred: str | None, served: Sequence[str]) -> str | None:
    """The VirtualService version to use: the server's preferred one, else the first known."""
    if preferred:
        return preferred
    for version in VIRTUALSERVICE_VERSIONS:
        if version in served:
            return version
    return None


def _iter_lines(resp: Any) -> Iterator[bytes]:
    # The apiserver writes one JSON event per line; chunk boundaries need not match lines.
    buffer = bytearray()
    for chunk in resp.stream(amt=None, decode_content=True):
        buffer.extend(chunk)
        while (end := buffer.find(b"\n")) >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            if line.strip():
                yield line
    if bytes(buffer).strip():
        yield bytes(buffer)


def _close(resp: Any) -> None:
    try:
        resp.close()
        resp.release_conn()
    except Exception:  # closing a broken connection has nothing left to report
        log.debug("closing a watch response failed", exc_info=True)


def _unblock(resp: Any) -> None:
    # Closing a socket does not wake a thread blocked reading it; shutting it down does.
    try:
        shutdown = getattr(resp, "shutdown", None)
        if callable(shutdown):
            shutdown()
            return
        sock = getattr(getattr(resp, "connection", None), "sock", None)
        if sock is not None:
            sock.shutdown(2)
    except Exception:
        log.debug("shutting down a watch socket failed", exc_info=True)


class WatchCache(Generic[T]):
    """List + watch one collection in a daemon thread and publish an immutable snapshot.

    `connect()` runs before every list and returns the client's list function for the
    collection (it may run discovery first). If it raises ResourceNotServed the cache waits:
    it re-checks with backoff up to `discovery_cap`, counted neither as a failure nor as a
    relist, and reports why in `status().waiting`. `convert` turns a raw object into the cached
    value and must not raise. `on_change` sees every effective change, in the watch thread,
    before the new snapshot is published, so derived indexes stay in step.
    """

    def __init__(
        self,
        resource: str,
        connect: Callable[[], ListCall],
        convert: Callable[[Mapping[str, Any]], T],
        *,
        on_change: Callable[[Sequence[Change[T]]], None] | None = None,
        tuning: WatchTuning | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.resource = resource
        self._connect = connect
        self._convert = convert
        self._on_change = on_change
        self._tuning = tuning or WatchTuning()
        self._rand = rand
        self._state: CacheState[T] = snapshot.empty_state()
        # Writers (the watch thread, cache-miss lookups) serialise; readers never lock.
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None
        self._resp: Any = None
        self._watch_opened: float | None = None  # monotonic time the open watch connected
        self._stalls = 0
        self._relists = 0
        self._reconnects = 0
        self._failures = 0
        self._failing_since: tuple[float, float] | None = None  # (monotonic, unix)
        self._last_success: float | None = None
        self._last_error: str | None = None
        self._waiting: str | None = None
        self._waits = 0

    @property
    def state(self) -> CacheState[T]:
        return self._state

    @property
    def items(self) -> Mapping[str, T]:
        return self._state.items

    @property
    def synced(self) -> bool:
        return self._state.synced

    def status(self) -> CacheStatus:
        state, failing, opened = self._state, self._failing_since, self._watch_opened
        now = time.monotonic()
        failures = self._failures
        if opened is not None and now - opened >= self._tuning.quick_end:
            # A watch that has stayed open is healthy even if it has delivered nothing yet.
            failing, failures = None, 0
        return CacheStatus(
            resource=self.resource,
            synced=state.synced,
            items=len(state.items),
            resource_version=state.resource_version,
            relists=self._relists,
            reconnects=self._reconnects,
            consecutive_failures=failures,
            failing_since=failing[1] if failing else None,
            failing_for=now - failing[0] if failing else None,
            last_success=self._last_success,
            last_error=self._last_error,
            waiting=self._waiting,
        )

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"watch cache for {self.resource} already started")
        self._thread = threading.Thread(
            target=self._run, name=f"watch-{self.resource}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        resp = self._resp
        if resp is not None:
            _unblock(resp)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def remember(self, key: str, value: T, object_rv: str) -> None:
        """Add an object read outside the watch, unless the watch already knows better."""
        with self._write_lock:
            self._state = snapshot.remember(self._state, key, value, object_rv)

    # --- the watch thread -------------------------------------------------------------------

    def _run(self) -> None:
        call: ListCall | None = None
        listed = False
        first_list = True
        first_watch = True
        while not self._stop.is_set():
            try:
                if not listed or call is None:
                    if not first_list and self._waiting is None:
                        self._relists += 1
                    first_list = False
                    call = self._connect()
                    self._served()
                    self._list(call)
                    listed, first_watch = True, True
                else:
                    if not first_watch:
                        self._reconnects += 1
                    first_watch = False
                    self._watch(call)
            except ResourceNotServed as exc:
                if self._stop.is_set():
                    break
                self._wait_for_resource(str(exc))
            except _Expired as exc:
                if self._stop.is_set():
                    break
                log.info("%s: %s; listing again", self.resource, exc)
                listed = False
                self._stall(str(exc))
            except Exception as exc:
                if self._stop.is_set():
                    break
                if isinstance(exc, ApiException) and exc.status == 404:
                    listed = False  # the resource went away (CRD deleted): discover it again
                self._fail(describe_error(exc))
                self._pause(self._failures - 1)
        self._resp = None

    def _list(self, call: ListCall) -> None:
        tuning = self._tuning
        items: dict[str, T] = {}
        resource_version = ""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "limit": tuning.page_size,
                "_preload_content": False,
                "_request_timeout": (tuning.connect_timeout, tuning.request_timeout),
            }
            if token:
                kwargs["_continue"] = token
            body = self._request_json(call, kwargs, "list")
            for obj in body.get("items") or ():
                if isinstance(obj, Mapping):
                    items[snapshot.object_key(obj.get("metadata") or {})] = self._convert(obj)
            metadata = body.get("metadata") or {}
            resource_version = str(metadata.get("resourceVersion") or "")
            token = metadata.get("continue") or None
            if not token:
                break
            if self._stop.is_set():
                return
        if not resource_version:
            raise _WatchError("list response carries no resourceVersion to watch from")
        with self._write_lock:
            old = self._state
            new = snapshot.relist(items, resource_version)
            changes = snapshot.diff(old.items, new.items)
            if changes and self._on_change is not None:
                self._on_change(changes)
            self._state = new
        self._synced.set()
        self._succeed()
        log.info("%s: listed %d at resourceVersion %s", self.resource, len(items), resource_version)

    def _request_json(self, call: ListCall, kwargs: dict[str, Any], what: str) -> Mapping[str, Any]:
        try:
            resp = call(**kwargs)
        except ApiException as exc:
            if snapshot.classify_status(exc.status, reason_of(exc)) is ErrorAction.RELIST:
                raise _Expired(f"{what}: {describe_error(exc)}") from exc
            raise
        try:
            body = json.loads(resp.data)
        finally:
            resp.release_conn()
        if not isinstance(body, Mapping):
            raise _WatchError(f"{what} response is not a JSON object")
        return body

    def _watch(self, call: ListCall) -> None:
        tuning = self._tuning
        resource_version = self._state.resource_version
        try:
            resp = call(
                watch=True,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=tuning.watch_timeout,
                _preload_content=False,
                # The server closes the stream after timeout_seconds; the read timeout only
                # catches a connection that died silently, so it must outlast that.
                _request_timeout=(tuning.connect_timeout, tuning.watch_timeout + 30.0),
            )
        except ApiException as exc:
            if snapshot.classify_status(exc.status, reason_of(exc)) is ErrorAction.RELIST:
                raise _Expired(f"watch: {describe_error(exc)}") from exc
            raise
        self._resp = resp
        opened = self._watch_opened = time.monotonic()
        events = 0
        try:
            if self._stop.is_set():
                return
            for line in _iter_lines(resp):
                self._handle(json.loads(line))
                events += 1
                if self._stop.is_set():
                    return
        finally:
            self._resp = self._watch_opened = None
            _close(resp)
            lasted = time.monotonic() - opened
            if lasted >= tuning.quick_end:
                self._stalls = 0
                self._succeed()
        if not self._stop.is_set() and not events and lasted < tuning.quick_end:
            self._stall(f"watch stream ended after {lasted:.2f}s without events")
        # Otherwise a normal end (timeout_seconds elapsed): resume at once from the last RV.

    def _handle(self, event: object) -> None:
        if not isinstance(event, Mapping):
            raise _WatchError("watch event is not a JSON object")
        event_type, obj = event.get("type"), event.get("object")
        if not isinstance(event_type, str) or not isinstance(obj, Mapping):
            raise _WatchError("watch event without type or object")
        if event_type == snapshot.ERROR:
            if snapshot.classify_error(obj) is ErrorAction.RELIST:
                raise _Expired(f"watch ERROR event {_status_text(obj)}")
            raise _WatchError(f"watch ERROR event {_status_text(obj)}")
        metadata = obj.get("metadata") or {}
        resource_version = str(metadata.get("resourceVersion") or "")
        with self._write_lock:
            state = self._state
            if event_type == snapshot.BOOKMARK:
                new = snapshot.apply_event(state, event_type, "", None, resource_version)
            else:
                key = snapshot.object_key(metadata)
                value = None if event_type == snapshot.DELETED else self._convert(obj)
                change = snapshot.event_change(state, event_type, key, value)
                new = snapshot.apply_event(state, event_type, key, value, resource_version)
                if self._on_change is not None and change.old != change.new:
                    self._on_change([change])
            self._state = new
        self._stalls = 0
        self._succeed()

    def _succeed(self) -> None:
        self._failures = 0
        self._failing_since = None
        self._last_success = time.time()

    def _fail(self, text: str) -> None:
        self._failures += 1
        self._last_error = text
        if self._failing_since is None:
            self._failing_since = (time.monotonic(), time.time())
        log.warning("%s: %s (failure %d in a row)", self.resource, text, self._failures)

    def _stall(self, text: str) -> None:
        # One expiry or empty short stream is routine; repeats without progress are a fault.
        self._stalls += 1
        if self._stalls >= 2:
            self._fail(text)
            self._pause(self._stalls - 2)

    def _wait_for_resource(self, text: str) -> None:
        if text != self._waiting:
            log.info("%s: %s; waiting for it to be served", self.resource, text)
        self._waiting = text
        self._waits += 1
        tuning = self._tuning
        delay = snapshot.backoff_delay(
            self._waits - 1, tuning.backoff_base, tuning.discovery_cap, self._rand()
        )
        self._stop.wait(delay)

    def _served(self) -> None:
        if self._waiting is not None:
            log.info("%s: now served; starting the watch", self.resource)
        self._waiting = None
        self._waits = 0

    def _pause(self, attempt: int) -> None:
        tuning = self._tuning
        delay = snapshot.backoff_delay(
            attempt, tuning.backoff_base, tuning.backoff_cap, self._rand()
        )
        self._stop.wait(delay)


CacheKey = tuple[str, str]  # (API group, resource)
Subscriber = Callable[[Sequence[Change[Any]]], None]


class KindCaches:
    """One WatchCache per watched kind, whoever reads it.

    The first reader of a kind creates its cache (`cache()`: how to list it, what to keep of
    each object); a later reader gets the same cache and `subscribe()`s to its changes. So the
    API server serves one list and one watch per kind, and the process keeps one copy of it.
    Whoever created a cache starts and stops it.
    """

    def __init__(self) -> None:
        self._caches: dict[CacheKey, WatchCache[Any]] = {}
        self._subscribers: dict[CacheKey, list[Subscriber]] = {}
        self._lock = threading.Lock()

    def cache(
        self, group: str, resource: str, create: Callable[[Subscriber], WatchCache[Any]]
    ) -> tuple[WatchCache[Any], bool]:
        """(the kind's cache, whether this call created it); `create` gets the callback
        that tells every subscriber about each change."""
        key = (group, resource)
        with self._lock:
            existing = self._caches.get(key)
            if existing is not None:
                return existing, False
            subscribers = self._subscribers.setdefault(key, [])

            def tell(changes: Sequence[Change[Any]]) -> None:
                for subscriber in tuple(subscribers):
                    subscriber(changes)

            created = self._caches[key] = create(tell)
            return created, True

    def subscribe(self, group: str, resource: str, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.setdefault((group, resource), []).append(subscriber)

    def watched(self) -> dict[CacheKey, str]:
        """(group, resource) -> the cache's name, for every kind watched."""
        return {key: cache.resource for key, cache in self._caches.items()}


def _namespace_labels(obj: Mapping[str, Any]) -> Labels:
    labels = (obj.get("metadata") or {}).get("labels")
    if not isinstance(labels, Mapping) or not labels:
        return _EMPTY_LABELS
    return MappingProxyType({str(k): str(v) for k, v in labels.items()})


class ClusterView:
    """Namespaces (name -> labels) and routed hosts (host key -> the VirtualServices and
    Gateway API routes that route it), kept live.

    Readers use `namespaces` and `routes`: plain attribute reads of immutable mappings.
    Readiness depends on the namespace and VirtualService caches only; a Gateway API route
    watch whose resource is not served waits for it and is reported without failing.
    """

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        *,
        host_key: Callable[[str, str], str | None],
        stale_after: float = 60.0,
        tuning: WatchTuning | None = None,
        max_lookups: int = 8,
        caches: KindCaches | None = None,
    ) -> None:
        self._api = api_client
        # The VirtualService and route caches keep slim objects, not only their host keys, so
        # the audit reads the same caches (webhook.cluster.auditwatch) instead of its own.
        self.caches = caches if caches is not None else KindCaches()
        self._stale_after = stale_after
        self._tuning = tuning or WatchTuning()
        self._route_index = LiveRouteIndex()
        self._vs_version: str | None = None
        self._route_versions: dict[str, str] = {}
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._lookup_slots = threading.BoundedSemaphore(max_lookups)
        self._lookups: dict[str, Future[Labels | None]] = {}
        self._lookups_lock = threading.Lock()
        self._namespace_cache: WatchCache[Labels] = self._own(
            "",
            "namespaces",
            lambda tell: WatchCache(
                "namespaces",
                lambda: self._core.list_namespace,
                _namespace_labels,
                on_change=tell,
                tuning=self._tuning,
            ),
        )
        self._vs_cache: WatchCache[Mapping[str, Any]] = self._own(
            ISTIO_GROUP,
            "virtualservices",
            lambda tell: WatchCache(
                f"virtualservices.{ISTIO_GROUP}",
                self._connect_virtualservices,
                lambda obj: slim(obj, f"{ISTIO_GROUP}/{self._vs_version}", "VirtualService"),
                on_change=tell,
                tuning=self._tuning,
            ),
        )
        self.caches.subscribe(
            ISTIO_GROUP,
            "virtualservices",
            self._route_index.updater(
                "VirtualService",
                functools.partial(route_keys, hosts_field="hosts", host_key=host_key),
            ),
        )
        self._gateway_caches: dict[str, WatchCache[Mapping[str, Any]]] = {}
        for route in GATEWAY_ROUTES:
            self._gateway_caches[route.plural] = self._own(
                route.group,
                route.plural,
                functools.partial(self._gateway_route_cache, route),
            )
            self.caches.subscribe(
                route.group,
                route.plural,
                self._route_index.updater(
                    route.kind,
                    functools.partial(route_keys, hosts_field=route.hosts_field, host_key=host_key),
                ),
            )

    def _own(
        self, group: str, resource: str, create: Callable[[Subscriber], WatchCache[Any]]
    ) -> WatchCache[Any]:
        cache, created = self.caches.cache(group, resource, create)
        if not created:
            raise RuntimeError(f"{cache.resource} is already watched: the tenancy view owns it")
        return cache

    def _gateway_route_cache(self, route: RoutingResource, tell: Subscriber) -> WatchCache[Any]:
        def convert(obj: Mapping[str, Any]) -> Mapping[str, Any]:
            version = self._route_versions.get(route.plural, "")
            return slim(obj, f"{route.group}/{version}", route.kind)

        return WatchCache(
            route.resource,
            functools.partial(self._connect_gateway_route, route),
            convert,
            on_change=tell,
            tuning=self._tuning,
        )

    @property
    def namespaces(self) -> Mapping[str, Labels]:
        return self._namespace_cache.items

    @property
    def routes(self) -> RouteIndex:
        return self._route_index.current

    @property
    def virtualservice_version(self) -> str | None:
        """The networking.istio.io version watched, once discovery has run."""
        return self._vs_version

    @property
    def gateway_route_versions(self) -> Mapping[str, str]:
        """plural -> the gateway.networking.k8s.io version watched, for the routes served."""
        return MappingProxyType(dict(self._route_versions))

    def _caches(self) -> tuple[WatchCache[Any], ...]:
        return (self._namespace_cache, self._vs_cache, *self._gateway_caches.values())

    def start(self) -> None:
        for cache in self._caches():
            cache.start()

    def stop(self, timeout: float = 5.0) -> None:
        for cache in self._caches():
            cache.stop(0)
        deadline = time.monotonic() + timeout
        for cache in self._caches():
            cache.stop(max(0.0, deadline - time.monotonic()))

    def wait_synced(self, timeout: float) -> bool:
        """Block until the namespace and VirtualService caches have listed once (startup and
        tests only; requests never wait, and the Gateway API route watches may be waiting)."""
        deadline = time.monotonic() + timeout
        return self._namespace_cache.wait_synced(timeout) and self._vs_cache.wait_synced(
            max(0.0, deadline - time.monotonic())
        )

    def readiness(self) -> tuple[bool, list[str]]:
        """(ready, detail): not ready while the namespace or VirtualService cache is; the
        Gateway API route watches only add detail (waiting for their CRD, or failing)."""
        reasons = [
            reason
            for cache in (self._namespace_cache, self._vs_cache)
            if (reason := self._cache_problem(cache.status())) is not None
        ]
        notes: list[str] = []
        for cache in self._gateway_caches.values():
            status = cache.status()
            if status.waiting is not None:
                notes.append(
                    f"{status.resource}: watch waiting, {status.waiting} (is its CRD "
                    "installed?); collisions with these routes are not checked until it starts"
                )
            elif (problem := self._cache_problem(status)) is not None:
                notes.append(f"{problem} (collisions with these routes may be missed)")
        return not reasons, reasons + notes

    def _cache_problem(self, status: CacheStatus) -> str | None:
        if not status.synced:
            reason = f"{status.resource}: initial list not complete"
            if status.last_error:
                reason += f" (last error: {status.last_error})"
            return reason
        if (
            status.failing_for is not None
            and status.failing_since is not None
            and status.failing_for > self._stale_after
        ):
            since = datetime.fromtimestamp(status.failing_since, UTC).isoformat(timespec="seconds")
            return (
                f"{status.resource}: watch failing since {since} "
                f"({status.failing_for:.0f}s, limit {self._stale_after:g}s); "
                f"last error: {status.last_error}"
            )
        return None

    def stats(self) -> dict[str, int | float]:
        out: dict[str, int | float] = {}
        caches: list[tuple[str, WatchCache[Any]]] = [
            ("namespaces", self._namespace_cache),
            ("virtualservices", self._vs_cache),
            *self._gateway_caches.items(),
        ]
        for label, cache in caches:
            status = cache.status()
            out[f"{label}_items"] = status.items
            out[f"{label}_synced"] = int(status.synced)
            out[f"{label}_restarts"] = status.restarts
            out[f"{label}_relists"] = status.relists
            out[f"{label}_reconnects"] = status.reconnects
            out[f"{label}_consecutive_failures"] = status.consecutive_failures
            out[f"{label}_last_success_timestamp"] = status.last_success or 0.0
            out[f"{label}_waiting"] = int(status.waiting is not None)
        out["routes_hosts"] = len(self.routes)
        return out

    def cache_status(self) -> tuple[CacheStatus, CacheStatus]:
        return self._namespace_cache.status(), self._vs_cache.status()

    def gateway_route_status(self) -> dict[str, CacheStatus]:
        """plural -> status of each Gateway API route watch."""
        return {plural: cache.status() for plural, cache in self._gateway_caches.items()}

    # --- namespace cache misses ---------------------------------------------------------------

    def lookup_namespace(self, name: str, timeout: float = 2.0) -> Labels | None:
        """Labels of a namespace the cache may not have seen yet, by a direct GET.

        Returns None when it does not exist. Raises NamespaceLookupError on any other
        failure, including `timeout`; concurrent lookups of one name share one request.
        Blocking: call it from a worker thread, not the event loop.
        """
        cached = self.namespaces.get(name)
        if cached is not None:
            return cached
        if not _DNS_LABEL.fullmatch(name):
            return None  # not a valid namespace name, so no such namespace can exist
        future = self._lookup_future(name, timeout)
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            raise NamespaceLookupError(
                f"reading namespace {name!r} from the API server took longer than {timeout:g}s"
            ) from None

    def _lookup_future(self, name: str, timeout: float) -> Future[Labels | None]:
        with self._lookups_lock:
            future = self._lookups.get(name)
            if future is not None:
                return future
            if not self._lookup_slots.acquire(blocking=False):
                raise NamespaceLookupError(
                    "too many namespace lookups in flight; the API server is not answering"
                )
            future = Future()
            self._lookups[name] = future
        threading.Thread(
            target=self._fetch_namespace,
            args=(name, timeout, future),
            name=f"lookup-namespace-{name}",
            daemon=True,
        ).start()
        return future

    def _fetch_namespace(self, name: str, timeout: float, future: Future[Labels | None]) -> None:
        try:
            # Without preloading the client returns the raw HTTP response, not the model.
            resp: Any = self._core.read_namespace(
                name, _preload_content=False, _request_timeout=timeout
            )
            try:
                obj = json.loads(resp.data)
            finally:
                resp.release_conn()
            if not isinstance(obj, Mapping):
                raise ValueError("namespace response is not a JSON object")
            labels = _namespace_labels(obj)
            rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            self._namespace_cache.remember(name, labels, rv)
            future.set_result(labels)
        except ApiException as exc:
            if exc.status == 404:
                future.set_result(None)
            else:
                future.set_exception(
                    NamespaceLookupError(f"reading namespace {name!r}: {describe_error(exc)}")
                )
        except Exception as exc:
            future.set_exception(
                NamespaceLookupError(f"reading namespace {name!r}: {describe_error(exc)}")
            )
        finally:
            with self._lookups_lock:
                self._lookups.pop(name, None)
                self._lookup_slots.release()

    # --- VirtualServices ---------------------------------------------------------------------

    def _connect_virtualservices(self) -> ListCall:
        version = self._discover_virtualservice_version()
        if version != self._vs_version:
            log.info("watching virtualservices.%s/%s", ISTIO_GROUP, version)
        self._vs_version = version
        custom = kubernetes.client.CustomObjectsApi(self._api)
        call: ListCall = functools.partial(
            custom.list_cluster_custom_object, ISTIO_GROUP, version, "virtualservices"
        )
        return call

    def _discover_virtualservice_version(self) -> str:
        tuning = self._tuning
        group = discovery.api_group(
            self._api, ISTIO_GROUP, (tuning.connect_timeout, tuning.request_timeout)
        )
        if group is None:
            raise _WatchError(f"API group {ISTIO_GROUP} is not served (is Istio installed?)")
        preferred, served = discovery.served_versions(group)
        version = choose_version(preferred, served)
        if version is None:
            raise _WatchError(f"{ISTIO_GROUP} serves no known version: {served}")
        return version

    # --- Gateway API routes ------------------------------------------------------------------

    def _connect_gateway_route(self, route: RoutingResource) -> ListCall:
        tuning = self._tuning
        version = discovery.resource_version(
            self._api, route.group, route.plural, (tuning.connect_timeout, tuning.request_timeout)
        )
        if version != self._route_versions.get(route.plural):
            log.info("watching %s/%s", route.resource, version)
        self._route_versions[route.plural] = version
        custom = kubernetes.client.CustomObjectsApi(self._api)
        call: ListCall = functools.partial(
            custom.list_cluster_custom_object, route.group, version, route.plural
        )
        return call
