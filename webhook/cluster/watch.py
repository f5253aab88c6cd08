"""Live tenancy data from the API server: list+watch caches that publish immutable snapshots."""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import kubernetes.client
import kubernetes.config
from kubernetes.client.exceptions import ApiException

from webhook.cluster import discovery
from webhook.cluster.client import describe_error, reason_of
from webhook.cluster.discovery import ResourceNotServed
from webhook.cluster.rest import ApiClient
from webhook.memory import return_freed
from webhook.tenancy import snapshot
from webhook.tenancy.snapshot import CacheState, Change, ErrorAction

log = logging.getLogger(__name__)

T = TypeVar("T")

ListCall = Callable[..., Any]


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


class _Expired(Exception):
    """The resourceVersion (or continue token) is gone: list again."""


class WatchError(Exception):
    """The server reported an error inside a watch stream."""


def _status_text(status: Mapping[str, Any]) -> str:
    return f"{status.get('code')} {status.get('reason')}: {status.get('message')}"


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
    value and must not raise. `keep`, when given, says which objects are cached at all: one it
    refuses is treated as absent (never stored, and removed when a change makes it refused), so
    a cache of the few objects that matter among many costs memory for those few only; it must
    not raise either. `on_change` sees every effective change, in the watch thread, before the
    new snapshot is published, so derived indexes stay in step.
    """

    def __init__(
        self,
        resource: str,
        connect: Callable[[], ListCall],
        convert: Callable[[Mapping[str, Any]], T],
        *,
        on_change: Callable[[Sequence[Change[T]]], None] | None = None,
        keep: Callable[[Mapping[str, Any]], bool] | None = None,
        tuning: WatchTuning | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.resource = resource
        self._connect = connect
        self._convert = convert
        self._keep = keep
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
                    # The pages read and the state the list replaced are garbage now (at
                    # 10,000 Tenants several times what the cache keeps): give it back.
                    return_freed()
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
            keep = self._keep
            for obj in body.get("items") or ():
                if isinstance(obj, Mapping) and (keep is None or keep(obj)):
                    items[snapshot.object_key(obj.get("metadata") or {})] = self._convert(obj)
            metadata = body.get("metadata") or {}
            resource_version = str(metadata.get("resourceVersion") or "")
            token = metadata.get("continue") or None
            if not token:
                break
            if self._stop.is_set():
                return
        if not resource_version:
            raise WatchError("list response carries no resourceVersion to watch from")
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
            raise WatchError(f"{what} response is not a JSON object")
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
            raise WatchError("watch event is not a JSON object")
        event_type, obj = event.get("type"), event.get("object")
        if not isinstance(event_type, str) or not isinstance(obj, Mapping):
            raise WatchError("watch event without type or object")
        if event_type == snapshot.ERROR:
            if snapshot.classify_error(obj) is ErrorAction.RELIST:
                raise _Expired(f"watch ERROR event {_status_text(obj)}")
            raise WatchError(f"watch ERROR event {_status_text(obj)}")
        metadata = obj.get("metadata") or {}
        resource_version = str(metadata.get("resourceVersion") or "")
        with self._write_lock:
            state = self._state
            if event_type == snapshot.BOOKMARK:
                new = snapshot.apply_event(state, event_type, "", None, resource_version)
            else:
                key = snapshot.object_key(metadata)
                if (
                    event_type != snapshot.DELETED
                    and self._keep is not None
                    and not self._keep(obj)
                ):
                    # Not cached: for the cache the object is (now) absent.
                    event_type = snapshot.DELETED
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


# The generated CoreV1Api call that lists each core resource a cache reads, in every namespace.
_CORE_LISTS = {
    "namespaces": "list_namespace",
    "services": "list_service_for_all_namespaces",
    "pods": "list_pod_for_all_namespaces",
}

# What a metadata-only list and watch ask for, as client-go's metadata informers do: each
# object's metadata (PartialObjectMetadata), not its spec and status. A server that cannot
# answer so falls back to whole objects (the last type), which carry the same metadata.
METADATA_LIST_ACCEPT = (
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
)
METADATA_WATCH_ACCEPT = (
    "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
)


def metadata_only(call: ListCall) -> ListCall:
    """`call` (a collection's list function) asking for the objects' metadata only."""

    def list_metadata(**kwargs: Any) -> Any:
        accept = METADATA_WATCH_ACCEPT if kwargs.get("watch") else METADATA_LIST_ACCEPT
        # A new dict each call: the generated client adds its own headers to the one it gets.
        return call(**kwargs, _headers={"Accept": accept})

    return list_metadata


def connect_served(
    api_client: ApiClient,
    group: str,
    resource: str,
    tuning: WatchTuning,
    versions: dict[str, str],
    log_as: str,
) -> ListCall:
    """The list function of `resource` in the version discovery finds it served in (the core
    group: v1), for a WatchCache's `connect`; ResourceNotServed while it is not. `versions`
    remembers the version under `log_as`, and a new one is logged."""
    version = "v1"
    if group:
        timeouts = (tuning.connect_timeout, tuning.request_timeout)
        version = discovery.resource_version(api_client, group, resource, timeouts)
        if version != versions.get(log_as):
            log.info("watching %s/%s", log_as, version)
    call = list_call(api_client, group, version, resource)
    versions[log_as] = version
    return call


def list_call(api_client: ApiClient, group: str, version: str, resource: str) -> ListCall:
    """The client's list function of a collection in every namespace, for a WatchCache's
    `connect`; a core resource without one is not served (ResourceNotServed)."""
    if not group:
        method = _CORE_LISTS.get(resource)
        if method is None:
            raise ResourceNotServed(f"no list call known for core resource {resource}")
        call: ListCall = getattr(kubernetes.client.CoreV1Api(api_client), method)
        return call
    custom = kubernetes.client.CustomObjectsApi(api_client)
    return functools.partial(custom.list_cluster_custom_object, group, version, resource)
