"""A fake Kubernetes API server that speaks enough HTTP for the real client's list/watch/get."""

from __future__ import annotations

import contextlib
import json
import queue
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ISTIO_GROUP = "networking.istio.io"
NAMESPACES = "namespaces"
VIRTUALSERVICES = "virtualservices"

_NAMESPACE_PATH = re.compile(r"/api/v1/namespaces/([^/]+)")
_VS_PATH = re.compile(rf"/apis/{re.escape(ISTIO_GROUP)}/([^/]+)/virtualservices")
_WATCH_POLL = 0.05
_HANG_LIMIT = 30.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    query: Mapping[str, str]

    @property
    def is_watch(self) -> bool:
        return self.query.get("watch") in ("true", "1")


@dataclass
class _Watcher:
    resource: str
    bookmarks: bool
    events: queue.SimpleQueue[tuple[str, dict[str, Any] | None]] = field(
        default_factory=queue.SimpleQueue
    )


@dataclass
class _Collection:
    kind: str
    namespaced: bool
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    compacted: int = 0
    expire_next_watch: bool = False
    fail_next_watch: int | None = None


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _key(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeApiServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.fake._track(self.connection, add=False)

    def do_GET(self) -> None:
        self.server.fake._dispatch(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_json(self, code: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_chunked(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def write_event(self, event_type: str, obj: Mapping[str, Any]) -> None:
        data = json.dumps({"type": event_type, "object": obj}).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def abort(self) -> None:
        # Closing mid-stream without the terminating chunk is what a dropped connection looks like.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class FakeApiServer:
    """Namespaces and VirtualServices over HTTP on 127.0.0.1, with fault injection.

    Resource versions are one counter across both collections, as in etcd.
    """

    def __init__(
        self,
        *,
        istio_versions: Sequence[str] = ("v1", "v1beta1", "v1alpha3"),
        preferred_version: str | None = "v1",
    ) -> None:
        self.istio_versions = tuple(istio_versions)
        self.preferred_version = preferred_version
        # "hang" (never answer) or an HTTP status code for GET /api/v1/namespaces/<name>.
        self.namespace_get_fault: str | int | None = None
        self.namespace_get_delay = 0.0
        # Every watch ends right after its headers, as a misbehaving proxy might do.
        self.end_watches_immediately = False
        self._lock = threading.Lock()
        self._rv = 100
        self._collections = {
            NAMESPACES: _Collection("Namespace", namespaced=False),
            VIRTUALSERVICES: _Collection("VirtualService", namespaced=True),
        }
        self._watchers: list[_Watcher] = []
        self._requests: list[RecordedRequest] = []
        self._pages: dict[str, list[dict[str, Any]]] = {}
        self._page_rv: dict[str, int] = {}
        self._connections: set[socket.socket] = set()
        self._held: list[tuple[str, str, dict[str, Any]]] | None = None
        self._expire_next_continue = False
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeApiServer:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.fake = self
        self.port = server.server_address[1]
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection; the store is kept for a restart."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def restart(self) -> None:
        self.start()

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- objects -----------------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._rv)

    def add_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> str:
        return self._write(NAMESPACES, "ADDED", _namespace(name, labels))

    def update_namespace(self, name: str, labels: Mapping[str, str] | None) -> str:
        return self._write(NAMESPACES, "MODIFIED", _namespace(name, labels))

    def delete_namespace(self, name: str) -> str:
        return self._write(NAMESPACES, "DELETED", _namespace(name, None))

    def add_virtualservice(self, namespace: str, name: str, hosts: Iterable[str]) -> str:
        return self._write(VIRTUALSERVICES, "ADDED", _virtualservice(namespace, name, hosts))

    def update_virtualservice(self, namespace: str, name: str, hosts: Iterable[str]) -> str:
        return self._write(VIRTUALSERVICES, "MODIFIED", _virtualservice(namespace, name, hosts))

    def delete_virtualservice(self, namespace: str, name: str) -> str:
        return self._write(VIRTUALSERVICES, "DELETED", _virtualservice(namespace, name, ()))

    def _write(self, resource: str, event_type: str, obj: dict[str, Any]) -> str:
        with self._lock:
            coll = self._collections[resource]
            meta = obj["metadata"]
            key = _key(meta.get("namespace"), meta["name"])
            if event_type == "DELETED":
                obj = coll.objects.pop(key)
            elif event_type == "ADDED" and key in coll.objects:
                raise ValueError(f"{resource} {key} already exists")
            elif event_type == "MODIFIED" and key not in coll.objects:
                raise ValueError(f"{resource} {key} does not exist")
            self._rv += 1
            obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self._rv)}}
            if event_type != "DELETED":
                coll.objects[key] = obj
            coll.log.append((self._rv, event_type, obj))
            if self._held is not None:
                self._held.append((resource, event_type, obj))
            else:
                self._notify(resource, event_type, obj)
            return str(self._rv)

    def _notify(self, resource: str, event_type: str, obj: dict[str, Any]) -> None:
        for watcher in self._watchers:
            if watcher.resource == resource:
                watcher.events.put((event_type, obj))

    # --- faults ------------------------------------------------------------------------------

    def expire_next_watch(self, resource: str) -> None:
        """The next watch gets a 200 stream holding one ERROR event with a 410 Status."""
        with self._lock:
            self._collections[resource].expire_next_watch = True

    def fail_next_watch(self, resource: str, code: int = 410) -> None:
        """The next watch request is answered with an HTTP error status (no stream)."""
        with self._lock:
            self._collections[resource].fail_next_watch = code

    def compact(self, resource: str) -> None:
        """Forget history: any watch from a resourceVersion before now gets 410 Expired."""
        with self._lock:
            self._collections[resource].compacted = self._rv

    def expire_open_watches(self, resource: str) -> None:
        """Send an ERROR 410 event down every open watch of `resource`, then end it."""
        self._broadcast(resource, "ERROR", _status(410, "Expired", "too old resource version"))

    def fail_open_watches(self, resource: str, code: int = 500) -> None:
        """Send a non-410 ERROR event down every open watch of `resource`, then end it."""
        self._broadcast(resource, "ERROR", _status(code, "InternalError", "injected watch error"))

    def send_bookmark(self, resource: str) -> str:
        """Send a BOOKMARK at the current resourceVersion to watches that allow bookmarks."""
        with self._lock:
            rv = str(self._rv)
        kind = self._collections[resource].kind
        self._broadcast(resource, "BOOKMARK", {"kind": kind, "metadata": {"resourceVersion": rv}})
        return rv

    def drop_watches(self, resource: str | None = None) -> int:
        """Cut open watch connections without the closing chunk; returns how many."""
        with self._lock:
            targets = [w for w in self._watchers if resource in (None, w.resource)]
        for watcher in targets:
            watcher.events.put(("DROP", None))
        return len(targets)

    def expire_next_continue(self) -> None:
        """The next list request that carries a continue token gets 410 Expired."""
        with self._lock:
            self._expire_next_continue = True

    def hold_watch_events(self) -> None:
        """Open watches stop receiving events (a lagging watch) until release_watch_events()."""
        with self._lock:
            self._held = []

    def release_watch_events(self) -> None:
        with self._lock:
            held, self._held = self._held or [], None
            for resource, event_type, obj in held:
                self._notify(resource, event_type, obj)

    def _broadcast(self, resource: str, event_type: str, obj: dict[str, Any]) -> None:
        with self._lock:
            for watcher in self._watchers:
                if watcher.resource == resource and (event_type != "BOOKMARK" or watcher.bookmarks):
                    watcher.events.put((event_type, obj))

    # --- inspection --------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str, *, watch: bool | None = None) -> list[RecordedRequest]:
        return [
            r for r in self.requests if r.path == path and (watch is None or r.is_watch == watch)
        ]

    def count(self, path: str, *, watch: bool | None = None) -> int:
        return len(self.requests_to(path, watch=watch))

    def open_watches(self, resource: str) -> int:
        with self._lock:
            return sum(1 for w in self._watchers if w.resource == resource)

    # --- HTTP --------------------------------------------------------------------------------

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _dispatch(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        path = parts.path.rstrip("/") or "/"
        with self._lock:
            self._requests.append(RecordedRequest("GET", path, query))
        if self._stopping.is_set():
            handler.abort()
            return
        if path == "/apis":
            groups = [self._api_group()] if self.istio_versions else []
            handler.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        elif path == f"/apis/{ISTIO_GROUP}":
            if self.istio_versions:
                handler.send_json(200, self._api_group())
            else:
                handler.send_json(404, _status(404, "NotFound", "the server could not find it"))
        elif path == "/api/v1/namespaces":
            self._collection(handler, NAMESPACES, "v1", query)
        elif match := _NAMESPACE_PATH.fullmatch(path):
            self._get_namespace(handler, match.group(1))
        elif (match := _VS_PATH.fullmatch(path)) and match.group(1) in self.istio_versions:
            self._collection(handler, VIRTUALSERVICES, f"{ISTIO_GROUP}/{match.group(1)}", query)
        else:
            handler.send_json(404, _status(404, "NotFound", "the server could not find it"))

    def _api_group(self) -> dict[str, Any]:
        versions = [
            {"groupVersion": f"{ISTIO_GROUP}/{v}", "version": v} for v in self.istio_versions
        ]
        group: dict[str, Any] = {"kind": "APIGroup", "apiVersion": "v1", "name": ISTIO_GROUP}
        group["versions"] = versions
        if self.preferred_version:
            group["preferredVersion"] = {
                "groupVersion": f"{ISTIO_GROUP}/{self.preferred_version}",
                "version": self.preferred_version,
            }
        return group

    def _get_namespace(self, handler: _Handler, name: str) -> None:
        fault = self.namespace_get_fault
        if fault == "hang":
            deadline = time.monotonic() + _HANG_LIMIT
            while time.monotonic() < deadline and self.namespace_get_fault == "hang":
                if self._stopping.wait(_WATCH_POLL):
                    break
            handler.abort()
            return
        if isinstance(fault, int):
            handler.send_json(fault, _status(fault, "InternalError", "injected failure"))
            return
        if self.namespace_get_delay:
            time.sleep(self.namespace_get_delay)
        with self._lock:
            obj = self._collections[NAMESPACES].objects.get(name)
        if obj is None:
            handler.send_json(404, _status(404, "NotFound", f'namespaces "{name}" not found'))
        else:
            handler.send_json(200, _render(obj, "v1", "Namespace"))

    def _collection(
        self, handler: _Handler, resource: str, api_version: str, query: Mapping[str, str]
    ) -> None:
        if query.get("watch") in ("true", "1"):
            self._watch(handler, resource, api_version, query)
        else:
            self._list(handler, resource, api_version, query)

    def _list(
        self, handler: _Handler, resource: str, api_version: str, query: Mapping[str, str]
    ) -> None:
        coll = self._collections[resource]
        token = query.get("continue")
        limit = int(query.get("limit") or 0)
        with self._lock:
            if token:
                snapshot_id, _, offset_text = token.partition(":")
                expired, self._expire_next_continue = self._expire_next_continue, False
                if expired or snapshot_id not in self._pages:
                    gone = _status(410, "Expired", "the provided continue parameter is too old")
                    handler.send_json(410, gone)
                    return
                items, rv = self._pages[snapshot_id], self._page_rv[snapshot_id]
                offset = int(offset_text)
            else:
                items = [coll.objects[k] for k in sorted(coll.objects)]
                rv, offset = self._rv, 0
                snapshot_id = str(len(self._page_rv) + 1)
                self._pages[snapshot_id] = items
                self._page_rv[snapshot_id] = rv
        page = items[offset : offset + limit] if limit else items[offset:]
        metadata: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit and offset + limit < len(items):
            metadata["continue"] = f"{snapshot_id}:{offset + limit}"
        handler.send_json(
            200,
            {
                "kind": f"{coll.kind}List",
                "apiVersion": api_version,
                "metadata": metadata,
                "items": [_render(obj, api_version, coll.kind) for obj in page],
            },
        )

    def _watch(
        self, handler: _Handler, resource: str, api_version: str, query: Mapping[str, str]
    ) -> None:
        coll = self._collections[resource]
        since_text = query.get("resourceVersion") or "0"
        since = int(since_text) if since_text.isdigit() else 0
        timeout = float(query.get("timeoutSeconds") or 1800)
        watcher = _Watcher(resource, bookmarks=query.get("allowWatchBookmarks") == "true")
        with self._lock:
            failure, coll.fail_next_watch = coll.fail_next_watch, None
            expired = coll.expire_next_watch or 0 < since < coll.compacted
            coll.expire_next_watch = False
            if since == 0:
                # "any version": synthetic ADDED events for the current state, as the real server.
                backlog = [("ADDED", obj) for _, obj in sorted(coll.objects.items())]
            else:
                backlog = [(t, obj) for rv, t, obj in coll.log if rv > since]
            if failure is None and not expired:
                self._watchers.append(watcher)
        if failure is not None:
            handler.send_json(failure, _status(failure, "Expired", "injected watch failure"))
            return
        try:
            handler.start_chunked()
            if expired:
                message = f"too old resource version: {since} ({coll.compacted})"
                handler.write_event("ERROR", _status(410, "Expired", message))
                handler.end_chunked()
                return
            if self.end_watches_immediately:
                handler.end_chunked()
                return
            for event_type, obj in backlog:
                handler.write_event(event_type, _render(obj, api_version, coll.kind))
            self._stream(handler, watcher, api_version, coll.kind, time.monotonic() + timeout)
        except OSError:
            handler.close_connection = True
        finally:
            with self._lock:
                if watcher in self._watchers:
                    self._watchers.remove(watcher)

    def _stream(
        self, handler: _Handler, watcher: _Watcher, api_version: str, kind: str, deadline: float
    ) -> None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                handler.end_chunked()
                return
            try:
                event_type, obj = watcher.events.get(timeout=min(remaining, _WATCH_POLL))
            except queue.Empty:
                if self._stopping.is_set():
                    handler.abort()
                    return
                continue
            if event_type == "DROP" or obj is None:
                handler.abort()
                return
            if event_type in ("ERROR", "BOOKMARK"):
                handler.write_event(event_type, obj)
            else:
                handler.write_event(event_type, _render(obj, api_version, kind))
            if event_type == "ERROR":
                handler.end_chunked()
                return


def _render(obj: Mapping[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, **obj}


def _namespace(name: str, labels: Mapping[str, str] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "uid": f"uid-{name}"}
    if labels:
        metadata["labels"] = dict(labels)
    return {
        "metadata": metadata,
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _virtualservice(namespace: str, name: str, hosts: Iterable[str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
        "spec": {"hosts": list(hosts), "http": [{"route": [{"destination": {"host": "backend"}}]}]},
    }
