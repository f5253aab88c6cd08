"""A fake Kubernetes API server that speaks enough HTTP for the real client: discovery, and
list (paged), watch, get, create, replace, server-side apply and delete of whatever it serves.

One store keeps the objects of every resource, by (group, plural), whether or not the
resource is served (etcd keeps custom resources while their CRD is away). Served are:
Namespaces; VirtualServices and the Gateway API routes that carry hostnames, each in the
versions a test chooses (a route can start being served later: a CRD installed late); the
kinds every API server serves (BUILT_IN_KINDS); and any kind a test serves with serve_kind()
or add_object().

Secrets (GET/POST/PUT, with resourceVersion preconditions) and webhook configurations
(GET/PATCH) are kept apart, for the certificate manager."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import queue
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ISTIO_GROUP = "networking.istio.io"
NAMESPACES = "namespaces"
VIRTUALSERVICES = "virtualservices"
GATEWAY_GROUP = "gateway.networking.k8s.io"
HTTPROUTES = "httproutes"
GRPCROUTES = "grpcroutes"
TLSROUTES = "tlsroutes"
GATEWAY_ROUTE_KINDS = {HTTPROUTES: "HTTPRoute", GRPCROUTES: "GRPCRoute", TLSROUTES: "TLSRoute"}
# A full install: the standard channel's routes, and TLSRoute only in an older version, so that
# discovery must look past the group's preferred version to find it.
DEFAULT_GATEWAY_ROUTES: Mapping[str, Sequence[str]] = {
    HTTPROUTES: ("v1", "v1beta1"),
    GRPCROUTES: ("v1",),
    TLSROUTES: ("v1alpha2",),
}
# (group, version, plural, kind) served by every API server, without CRDs (besides Namespaces).
BUILT_IN_KINDS = (
    ("", "v1", "pods", "Pod"),
    ("", "v1", "resourcequotas", "ResourceQuota"),
    ("", "v1", "limitranges", "LimitRange"),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    ("coordination.k8s.io", "v1", "leases", "Lease"),
)

_OBJECT_PATH = re.compile(
    r"(?:/api/(?P<core_version>v1)|/apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<namespace>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?"
)
_DISCOVERY_PATH = re.compile(r"/api/(?P<core_version>v1)|/apis/(?P<group>[^/]+)/(?P<version>[^/]+)")
_SECRETS_PATH = re.compile(r"/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?")
WEBHOOK_KINDS = {
    "validatingwebhookconfigurations": "ValidatingWebhookConfiguration",
    "mutatingwebhookconfigurations": "MutatingWebhookConfiguration",
}
_WEBHOOK_PATH = re.compile(
    r"/apis/admissionregistration\.k8s\.io/v1/(validatingwebhookconfigurations|"
    r"mutatingwebhookconfigurations)/([^/]+)"
)
_WATCH_POLL = 0.05
_HANG_LIMIT = 30.0

Resource = tuple[str, str]  # (group, plural): what the store keeps objects by
_NAMESPACES: Resource = ("", NAMESPACES)
_VIRTUALSERVICES: Resource = (ISTIO_GROUP, VIRTUALSERVICES)
_GATEWAY_ROUTES: tuple[Resource, ...] = tuple((GATEWAY_GROUP, r) for r in GATEWAY_ROUTE_KINDS)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    query: Mapping[str, str]
    accept: str = ""

    @property
    def is_watch(self) -> bool:
        return self.query.get("watch") in ("true", "1")

    @property
    def metadata_only(self) -> bool:
        """The client asked for PartialObjectMetadata (a metadata-only list or watch)."""
        return _wants_metadata(self.accept)


@dataclass(frozen=True)
class AppliedPatch:
    """A server-side apply request as received."""

    path: str
    content_type: str
    query: Mapping[str, str]
    body: Any


@dataclass
class _Watcher:
    resource: Resource
    namespace: str | None  # None: every namespace
    bookmarks: bool
    metadata_only: bool = False  # PartialObjectMetadata events
    events: queue.SimpleQueue[tuple[str, dict[str, Any] | None]] = field(
        default_factory=queue.SimpleQueue
    )

    @property
    def plural(self) -> str:
        return self.resource[1]

    def sees(self, obj: Mapping[str, Any]) -> bool:
        return self.namespace in (None, obj["metadata"].get("namespace"))

    def render(self, obj: Mapping[str, Any], target: _Target) -> dict[str, Any]:
        if self.metadata_only and "metadata" in obj and obj.get("kind") != "Status":
            return {**_partial(obj), "metadata": obj["metadata"]}
        return _render(obj, target.api_version, target.kind)


@dataclass
class _Collection:
    """The stored objects of one resource, by "namespace/name" (or name), and who last wrote
    each (whose fields an apply without force conflicts with); the events a watch from a
    resourceVersion replays; and the faults its next watch meets. A write stores a new dict:
    stored objects are never changed in place."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    managers: dict[str, str] = field(default_factory=dict)
    log: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    compacted: int = 0
    expire_next_watch: bool = False
    fail_next_watch: int | None = None


@dataclass(frozen=True)
class _Target:
    """What a request path names: a served resource in one version, in one namespace or all,
    and one object of it or the collection."""

    group: str
    version: str
    plural: str
    kind: str
    namespace: str | None
    name: str | None

    @property
    def resource(self) -> Resource:
        return self.group, self.plural

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        assert self.name is not None
        return _key(self.namespace, self.name)


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
        if self.server.fake.no_delay:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.fake._track(self.connection, add=False)

    def do_GET(self) -> None:
        self.server.fake._dispatch(self)

    def do_POST(self) -> None:
        self.server.fake._dispatch_write(self, "POST")

    def do_PUT(self) -> None:
        self.server.fake._dispatch_write(self, "PUT")

    def do_PATCH(self) -> None:
        self.server.fake._dispatch_write(self, "PATCH")

    def do_DELETE(self) -> None:
        self.server.fake._dispatch_write(self, "DELETE")

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

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
    """The API over HTTP on 127.0.0.1, with fault injection.

    Resource versions are one counter across all resources, as in etcd. `gateway_routes`
    maps each route resource to the versions it is served in (absent: its CRD is not
    installed); the group's versions are listed in the order first named there, and the
    preferred one is `gateway_preferred_version` or else the first.
    """

    def __init__(
        self,
        *,
        istio_versions: Sequence[str] = ("v1", "v1beta1", "v1alpha3"),
        preferred_version: str | None = "v1",
        gateway_routes: Mapping[str, Sequence[str]] = DEFAULT_GATEWAY_ROUTES,
        gateway_preferred_version: str | None = None,
    ) -> None:
        self.istio_versions = tuple(istio_versions)
        self.preferred_version = preferred_version
        self._gateway_routes = {r: tuple(v) for r, v in gateway_routes.items() if v}
        self.gateway_preferred_version = gateway_preferred_version
        # "hang" (never answer) or an HTTP status code for GET /api/v1/namespaces/<name>.
        self.namespace_get_fault: str | int | None = None
        self.namespace_get_delay = 0.0
        # Every watch ends right after its headers, as a misbehaving proxy might do.
        self.end_watches_immediately = False
        # TCP_NODELAY on accepted connections. Headers and body go out in separate writes, so
        # without it Nagle's algorithm meets the client's delayed ACK and a response can wait
        # ~40 ms. Off by default: the watch-cache tests were tuned with that pacing.
        self.no_delay = False
        self._lock = threading.Lock()
        self._rv = 100
        # The one object store. The resources the watch faults are for are there from the
        # start (faults name them by plural); any other is added when served or written.
        self._store: dict[Resource, _Collection] = {
            resource: _Collection()
            for resource in (_NAMESPACES, _VIRTUALSERVICES, *_GATEWAY_ROUTES)
        }
        # What is served besides Namespaces, VirtualServices (in istio_versions) and the
        # Gateway API routes (in _gateway_routes): (group, version) -> plural -> kind.
        self._served_kinds: dict[tuple[str, str], dict[str, str]] = {}
        for group, version, plural, kind in BUILT_IN_KINDS:
            self._served_kinds.setdefault((group, version), {})[plural] = kind
        self._applies: list[AppliedPatch] = []
        self._watchers: list[_Watcher] = []
        self._requests: list[RecordedRequest] = []
        # The items and resourceVersion of the latest paged list of each (resource, namespace,
        # label selector): its continue tokens are offsets into that snapshot.
        self._pages: dict[tuple[Resource, str | None, str], tuple[int, list[dict[str, Any]]]] = {}
        self._connections: set[socket.socket] = set()
        self._held: list[tuple[Resource, str, dict[str, Any]]] | None = None
        self._expire_next_continue = False
        self._secrets: dict[str, dict[str, Any]] = {}
        self._webhook_configs: dict[tuple[str, str], dict[str, Any]] = {}
        # Paths answered 403 Forbidden (any method), as RBAC with resourceNames would.
        self.forbidden_paths: set[str] = set()
        self._faults: dict[tuple[str, str], list[int]] = {}
        self._secret_read_barrier: threading.Barrier | None = None
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig that points the real client (or `serve --kubeconfig`) at this fake."""
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "fake",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "me", "user": {"token": "t"}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "me"}}],
                }
            )
        )
        return path

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
        return self._write(_NAMESPACES, "ADDED", _namespace(name, labels))

    def update_namespace(self, name: str, labels: Mapping[str, str] | None) -> str:
        return self._write(_NAMESPACES, "MODIFIED", _namespace(name, labels))

    def delete_namespace(self, name: str) -> str:
        return self._write(_NAMESPACES, "DELETED", _namespace(name, None))

    def add_virtualservice(self, namespace: str, name: str, hosts: Iterable[str]) -> str:
        return self._write(_VIRTUALSERVICES, "ADDED", _virtualservice(namespace, name, hosts))

    def update_virtualservice(self, namespace: str, name: str, hosts: Iterable[str]) -> str:
        return self._write(_VIRTUALSERVICES, "MODIFIED", _virtualservice(namespace, name, hosts))

    def delete_virtualservice(self, namespace: str, name: str) -> str:
        return self._write(_VIRTUALSERVICES, "DELETED", _virtualservice(namespace, name, ()))

    # Gateway API routes: stored whether or not their resource is served, as etcd keeps CRs.

    def serve_gateway_route(self, resource: str, versions: Sequence[str]) -> None:
        """Start serving `resource` in `versions` (its CRD appears), or stop with ()."""
        with self._lock:
            routes = dict(self._gateway_routes)
            if versions:
                routes[resource] = tuple(versions)
            else:
                routes.pop(resource, None)
            self._gateway_routes = routes

    def add_route(
        self, resource: str, namespace: str, name: str, hostnames: Iterable[str] | None
    ) -> str:
        return self._write((GATEWAY_GROUP, resource), "ADDED", _route(namespace, name, hostnames))

    def update_route(
        self, resource: str, namespace: str, name: str, hostnames: Iterable[str] | None
    ) -> str:
        route = _route(namespace, name, hostnames)
        return self._write((GATEWAY_GROUP, resource), "MODIFIED", route)

    def delete_route(self, resource: str, namespace: str, name: str) -> str:
        return self._write((GATEWAY_GROUP, resource), "DELETED", _route(namespace, name, ()))

    # Any kind: served once registered (built-in ones from the start, CRDs when a test
    # "installs" them), stored whether served or not.

    def serve_kind(self, group: str, version: str, plural: str, kind: str) -> None:
        """Serve a kind from now on (installing its CRD)."""
        with self._lock:
            self._served_kinds.setdefault((group, version), {})[plural] = kind
            self._collection((group, plural))

    def put_object(
        self, group: str, plural: str, obj: Mapping[str, Any], manager: str = "kubectl"
    ) -> str:
        """Write an object directly as `manager` (someone else's edit); its resourceVersion."""
        with self._lock:
            return self._put((group, plural), copy.deepcopy(dict(obj)), manager)

    def load_objects(self, group: str, plural: str, objects: Iterable[dict[str, Any]]) -> str:
        """Store many objects as they are, without copying them (they may share parts; they
        must never be changed in place) and without watch events: the state of a big cluster
        before anything watches it. Each gets a resourceVersion; the last one is returned."""
        with self._lock:
            coll = self._collection((group, plural))
            for obj in objects:
                meta = obj["metadata"]
                self._rv += 1
                key = _key(meta.get("namespace"), meta["name"])
                coll.objects[key] = {**obj, "metadata": {**meta, "resourceVersion": str(self._rv)}}
            return str(self._rv)

    def add_object(self, group: str, plural: str, obj: Mapping[str, Any]) -> str:
        """Store an object that carries its apiVersion and kind, and serve its kind in that
        version from now on (a fixture's object of a kind the cluster has)."""
        version = str(obj["apiVersion"]).rpartition("/")[2]
        self.serve_kind(group, version, plural, str(obj["kind"]))
        return self.put_object(group, plural, obj)

    def stored_object(
        self, group: str, plural: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        with self._lock:
            obj = self._collection((group, plural)).objects.get(_key(namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def stored_objects(self, group: str, plural: str) -> dict[tuple[str, str], dict[str, Any]]:
        """(namespace, name) -> object, for every stored object of the kind."""
        with self._lock:
            return {
                (obj["metadata"].get("namespace", ""), obj["metadata"]["name"]): copy.deepcopy(obj)
                for obj in self._collection((group, plural)).objects.values()
            }

    def remove_object(self, group: str, plural: str, namespace: str, name: str) -> None:
        with self._lock:
            self._remove((group, plural), _key(namespace, name))

    @property
    def applies(self) -> list[AppliedPatch]:
        """Every server-side apply request received, in order."""
        with self._lock:
            return list(self._applies)

    def _write(self, resource: Resource, event_type: str, obj: dict[str, Any]) -> str:
        """A test's ADDED, MODIFIED or DELETED, which must fit what is stored."""
        meta = obj["metadata"]
        key = _key(meta.get("namespace"), meta["name"])
        with self._lock:
            stored = key in self._collection(resource).objects
            if event_type == "ADDED" and stored:
                raise ValueError(f"{resource[1]} {key} already exists")
            if event_type == "MODIFIED" and not stored:
                raise ValueError(f"{resource[1]} {key} does not exist")
            if event_type == "DELETED":
                self._remove(resource, key)  # KeyError when it does not exist
                return str(self._rv)
            return self._put(resource, obj)

    # The store's writes and their events (lock held).

    def _collection(self, resource: Resource) -> _Collection:
        return self._store.setdefault(resource, _Collection())

    def _named(self, plural: str) -> _Collection:
        """The collection of the one resource with this plural (faults name it so)."""
        found = [coll for (_, p), coll in self._store.items() if p == plural]
        if len(found) != 1:
            raise KeyError(f"{len(found)} stored resources are called {plural!r}")
        return found[0]

    def _put(self, resource: Resource, obj: dict[str, Any], manager: str = "kubectl") -> str:
        """Store `obj` (created or replaced) at a new resourceVersion, as written by `manager`.
        It keeps the uid it had, else gets the one it carries or a made-up one."""
        coll = self._collection(resource)
        meta = obj["metadata"]
        namespace, name = meta.get("namespace"), meta["name"]
        key = _key(namespace, name)
        old = coll.objects.get(key)
        made_up = "-".join(("uid", *resource, *([namespace] if namespace else []), name))
        uid = (old or obj)["metadata"].get("uid") or made_up
        self._rv += 1
        stored = {**obj, "metadata": {**meta, "resourceVersion": str(self._rv), "uid": uid}}
        coll.objects[key] = stored
        coll.managers[key] = manager
        self._event(resource, "ADDED" if old is None else "MODIFIED", stored)
        return str(self._rv)

    def _remove(self, resource: Resource, key: str) -> None:
        """Delete a stored object (KeyError if there is none) at a new resourceVersion."""
        coll = self._collection(resource)
        gone = coll.objects.pop(key)
        coll.managers.pop(key, None)
        self._rv += 1
        gone = {**gone, "metadata": {**gone["metadata"], "resourceVersion": str(self._rv)}}
        self._event(resource, "DELETED", gone)

    def _event(self, resource: Resource, event_type: str, obj: dict[str, Any]) -> None:
        self._collection(resource).log.append((self._rv, event_type, obj))
        if self._held is not None:
            self._held.append((resource, event_type, obj))
        else:
            self._notify(resource, event_type, obj)

    def _notify(self, resource: Resource, event_type: str, obj: dict[str, Any]) -> None:
        for watcher in self._watchers:
            if watcher.resource == resource and watcher.sees(obj):
                watcher.events.put((event_type, obj))

    # --- faults ------------------------------------------------------------------------------
    # A resource is named by its plural here (those of the resources watched are unique).

    def expire_next_watch(self, resource: str) -> None:
        """The next watch gets a 200 stream holding one ERROR event with a 410 Status."""
        with self._lock:
            self._named(resource).expire_next_watch = True

    def fail_next_watch(self, resource: str, code: int = 410) -> None:
        """The next watch request is answered with an HTTP error status (no stream)."""
        with self._lock:
            self._named(resource).fail_next_watch = code

    def compact(self, resource: str) -> None:
        """Forget history: any watch from a resourceVersion before now gets 410 Expired."""
        with self._lock:
            self._named(resource).compacted = self._rv

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
        self._broadcast(resource, "BOOKMARK", {"metadata": {"resourceVersion": rv}})
        return rv

    def drop_watches(self, resource: str | None = None) -> int:
        """Cut open watch connections without the closing chunk; returns how many."""
        with self._lock:
            targets = [w for w in self._watchers if resource in (None, w.plural)]
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

    def _broadcast(self, plural: str, event_type: str, obj: dict[str, Any]) -> None:
        with self._lock:
            for watcher in self._watchers:
                if watcher.plural == plural and (event_type != "BOOKMARK" or watcher.bookmarks):
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
            return sum(1 for w in self._watchers if w.plural == resource)

    # --- Secrets and webhook configurations -------------------------------------------------

    def put_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, bytes],
        secret_type: str = "kubernetes.io/tls",
    ) -> str:
        """Create or overwrite a Secret directly (no preconditions); returns its resourceVersion."""
        obj = {
            "metadata": {"name": name, "namespace": namespace},
            "type": secret_type,
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        }
        with self._lock:
            return self._store_secret(f"{namespace}/{name}", obj)

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            obj = self._secrets.get(f"{namespace}/{name}")
            return copy.deepcopy(obj) if obj is not None else None

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes]:
        obj = self.secret(namespace, name)
        if obj is None:
            raise KeyError(f"no Secret {namespace}/{name}")
        return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}

    def add_webhook_configuration(
        self, resource: str, name: str, webhooks: Iterable[str], ca_bundle: bytes | None = None
    ) -> str:
        """A Validating/MutatingWebhookConfiguration (`resource` is the plural) with these
        webhook names, each pointing at service tenant-guard/tenant-guard."""
        hooks: list[dict[str, Any]] = []
        for hook in webhooks:
            client_config: dict[str, Any] = {
                "service": {"name": "tenant-guard", "namespace": "tenant-guard", "port": 443}
            }
            if ca_bundle is not None:
                client_config["caBundle"] = base64.b64encode(ca_bundle).decode()
            hooks.append(
                {
                    "name": hook,
                    "clientConfig": client_config,
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                }
            )
        with self._lock:
            self._rv += 1
            metadata = {"name": name, "uid": f"uid-{name}", "resourceVersion": str(self._rv)}
            self._webhook_configs[resource, name] = {"metadata": metadata, "webhooks": hooks}
            return str(self._rv)

    def delete_webhook_configuration(self, resource: str, name: str) -> None:
        with self._lock:
            del self._webhook_configs[resource, name]

    def webhook_configuration(self, resource: str, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._webhook_configs[resource, name])

    def ca_bundles(self, resource: str, name: str) -> dict[str, bytes]:
        """webhook name -> decoded caBundle (b"" when unset)."""
        hooks = self.webhook_configuration(resource, name)["webhooks"]
        return {
            h["name"]: base64.b64decode(h.get("clientConfig", {}).get("caBundle", ""))
            for h in hooks
        }

    def fail_next(self, method: str, path: str, code: int, times: int = 1) -> None:
        """The next `times` requests `method path` get HTTP `code` with a Status body."""
        with self._lock:
            self._faults.setdefault((method, path), []).extend([code] * times)

    def hold_secret_reads(self, parties: int) -> None:
        """The next `parties` Secret GETs wait for each other, so racers all see the same."""
        self._secret_read_barrier = threading.Barrier(parties, timeout=10)

    def _store_secret(self, key: str, obj: dict[str, Any]) -> str:
        old = self._secrets.get(key)
        self._rv += 1
        meta = {**obj["metadata"], "resourceVersion": str(self._rv)}
        meta["uid"] = (old or {}).get("metadata", {}).get("uid") or f"uid-secret-{key}"
        meta.setdefault("creationTimestamp", "2024-01-01T00:00:00Z")
        self._secrets[key] = {**obj, "metadata": meta}
        return str(self._rv)

    def _dispatch_write(self, handler: _Handler, method: str) -> None:
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        path = parts.path.rstrip("/") or "/"
        body = handler.read_body()
        with self._lock:
            self._requests.append(RecordedRequest(method, path, query))
        if self._stopping.is_set():
            handler.abort()
            return
        if self._answer_fault(handler, method, path):
            return
        try:
            obj = json.loads(body or b"null")
        except ValueError:
            handler.send_json(400, _status(400, "BadRequest", "body is not JSON"))
            return
        secrets = _SECRETS_PATH.fullmatch(path)
        webhook = _WEBHOOK_PATH.fullmatch(path)
        if secrets and method == "POST" and not secrets.group(2):
            self._create_secret(handler, secrets.group(1), obj)
        elif secrets and method == "PUT" and secrets.group(2):
            self._replace_secret(handler, secrets.group(1), secrets.group(2), obj)
        elif webhook and method == "PATCH":
            content_type = handler.headers.get("Content-Type") or ""
            self._patch_webhook(handler, webhook.group(1), webhook.group(2), obj, content_type)
        elif not self._write_object(handler, method, path, query, obj):
            handler.send_json(405, _status(405, "MethodNotAllowed", f"{method} {path}"))

    def _answer_fault(self, handler: _Handler, method: str, path: str) -> bool:
        with self._lock:
            queued = self._faults.get((method, path))
            code = queued.pop(0) if queued else None
        if code is None and path in self.forbidden_paths:
            code = 403
        if code is None:
            return False
        reason = {403: "Forbidden", 409: "Conflict", 404: "NotFound"}.get(code, "InternalError")
        handler.send_json(code, _status(code, reason, f"injected {code} for {method} {path}"))
        return True

    def _get_secret(self, handler: _Handler, namespace: str, name: str) -> None:
        barrier = self._secret_read_barrier
        if barrier is not None:
            with contextlib.suppress(threading.BrokenBarrierError):
                if barrier.wait() == 0:
                    self._secret_read_barrier = None
        with self._lock:
            obj = copy.deepcopy(self._secrets.get(f"{namespace}/{name}"))
        if obj is None:
            handler.send_json(404, _status(404, "NotFound", f'secrets "{name}" not found'))
        else:
            handler.send_json(200, _render(obj, "v1", "Secret"))

    def _create_secret(self, handler: _Handler, namespace: str, obj: Any) -> None:
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        if not isinstance(meta, dict):
            meta = {}
        name = meta.get("name")
        if not isinstance(name, str) or meta.get("namespace", namespace) != namespace:
            handler.send_json(400, _status(400, "BadRequest", "metadata.name/namespace"))
            return
        with self._lock:
            key = f"{namespace}/{name}"
            if key in self._secrets:
                message = f'secrets "{name}" already exists'
                handler.send_json(409, _status(409, "AlreadyExists", message))
                return
            meta = {k: v for k, v in meta.items() if k != "resourceVersion"}
            stored = {**obj, "metadata": {**meta, "namespace": namespace}}
            stored.pop("apiVersion", None)
            stored.pop("kind", None)
            self._store_secret(key, stored)
            out = copy.deepcopy(self._secrets[key])
        handler.send_json(201, _render(out, "v1", "Secret"))

    def _replace_secret(self, handler: _Handler, namespace: str, name: str, obj: Any) -> None:
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        if not isinstance(meta, dict) or meta.get("name") != name:
            handler.send_json(400, _status(400, "BadRequest", "metadata.name must match"))
            return
        with self._lock:
            key = f"{namespace}/{name}"
            current = self._secrets.get(key)
            if current is None:
                handler.send_json(404, _status(404, "NotFound", f'secrets "{name}" not found'))
                return
            wanted_rv = meta.get("resourceVersion")
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                message = (
                    f'Operation cannot be fulfilled on secrets "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again"
                )
                handler.send_json(409, _status(409, "Conflict", message))
                return
            if obj.get("type", "Opaque") != current.get("type", "Opaque"):
                message = f'Secret "{name}" is invalid: type: Invalid value: field is immutable'
                handler.send_json(422, _status(422, "Invalid", message))
                return
            stored = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
            stored["metadata"] = {
                **meta,
                "namespace": namespace,
                "creationTimestamp": current["metadata"].get("creationTimestamp"),
            }
            self._store_secret(key, stored)
            out = copy.deepcopy(self._secrets[key])
        handler.send_json(200, _render(out, "v1", "Secret"))

    def _get_webhook(self, handler: _Handler, resource: str, name: str) -> None:
        with self._lock:
            obj = copy.deepcopy(self._webhook_configs.get((resource, name)))
        if obj is None:
            message = f'{resource}.admissionregistration.k8s.io "{name}" not found'
            handler.send_json(404, _status(404, "NotFound", message))
        else:
            api_version = "admissionregistration.k8s.io/v1"
            handler.send_json(200, _render(obj, api_version, WEBHOOK_KINDS[resource]))

    def _patch_webhook(
        self, handler: _Handler, resource: str, name: str, patch: Any, content_type: str
    ) -> None:
        kind = content_type.split(";")[0].strip()
        if kind != "application/strategic-merge-patch+json" or not isinstance(patch, dict):
            message = f"the fake only takes strategic merge patch objects, not {kind!r}"
            handler.send_json(415, _status(415, "UnsupportedMediaType", message))
            return
        with self._lock:
            current = self._webhook_configs.get((resource, name))
            if current is None:
                message = f'{resource}.admissionregistration.k8s.io "{name}" not found'
                handler.send_json(404, _status(404, "NotFound", message))
                return
            wanted_rv = (patch.get("metadata") or {}).get("resourceVersion")
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                message = (
                    f"Operation cannot be fulfilled on {resource}.admissionregistration.k8s.io "
                    f'"{name}": the object has been modified; please apply your changes to the '
                    "latest version and try again"
                )
                handler.send_json(409, _status(409, "Conflict", message))
                return
            merged = _strategic_merge(current, patch)
            merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            if merged != current:  # as the real server: a no-op patch keeps the version
                self._rv += 1
                merged["metadata"]["resourceVersion"] = str(self._rv)
                self._webhook_configs[resource, name] = merged
            out = copy.deepcopy(self._webhook_configs[resource, name])
        api_version = "admissionregistration.k8s.io/v1"
        handler.send_json(200, _render(out, api_version, WEBHOOK_KINDS[resource]))

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
        accept = handler.headers.get("Accept") or ""
        with self._lock:
            self._requests.append(RecordedRequest("GET", path, query, accept))
        if self._stopping.is_set():
            handler.abort()
            return
        if self._answer_fault(handler, "GET", path):
            return
        if path == "/apis":
            groups = [self._api_group()] if self.istio_versions else []
            if self._gateway_routes:
                groups.append(self._gateway_group())
            groups += self._kind_groups()
            handler.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        elif path == f"/apis/{ISTIO_GROUP}":
            if self.istio_versions:
                handler.send_json(200, self._api_group())
            else:
                handler.send_json(404, _status(404, "NotFound", "the server could not find it"))
        elif (match := _SECRETS_PATH.fullmatch(path)) and match.group(2):
            self._get_secret(handler, match.group(1), match.group(2))
        elif match := _WEBHOOK_PATH.fullmatch(path):
            self._get_webhook(handler, match.group(1), match.group(2))
        elif match := _DISCOVERY_PATH.fullmatch(path):
            version = match.group("version") or match.group("core_version")
            self._discovery(handler, match.group("group") or "", version)
        elif target := self._target(path):
            self._read(handler, target, query)
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

    def _gateway_group(self) -> dict[str, Any]:
        versions: list[str] = []
        for served in self._gateway_routes.values():
            versions += [v for v in served if v not in versions]
        preferred = self.gateway_preferred_version or versions[0]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": GATEWAY_GROUP,
            "versions": [{"groupVersion": f"{GATEWAY_GROUP}/{v}", "version": v} for v in versions],
            "preferredVersion": {
                "groupVersion": f"{GATEWAY_GROUP}/{preferred}",
                "version": preferred,
            },
        }

    def _kind_groups(self) -> list[dict[str, Any]]:
        """The groups of the kinds served by serve_kind (other than Istio's and Gateway API's,
        whose versions are listed above), as /apis lists them."""
        with self._lock:
            versions: dict[str, list[str]] = {}
            for group, version in self._served_kinds:
                if group not in ("", ISTIO_GROUP, GATEWAY_GROUP):
                    versions.setdefault(group, []).append(version)
        return [
            {
                "kind": "APIGroup",
                "apiVersion": "v1",
                "name": group,
                "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in served],
                "preferredVersion": {"groupVersion": f"{group}/{served[0]}", "version": served[0]},
            }
            for group, served in versions.items()
        ]

    def _served(self, group: str, version: str) -> dict[str, str]:
        """plural -> kind of what /api/v1 or /apis/<group>/<version> serves now (lock held)."""
        served = dict(self._served_kinds.get((group, version), {}))
        if (group, version) == ("", "v1"):
            served[NAMESPACES] = "Namespace"
        if group == ISTIO_GROUP and version in self.istio_versions:
            served[VIRTUALSERVICES] = "VirtualService"
        if group == GATEWAY_GROUP:
            for plural, versions in self._gateway_routes.items():
                if version in versions:
                    served[plural] = GATEWAY_ROUTE_KINDS[plural]
        return served

    def _target(self, path: str) -> _Target | None:
        """What a path of a served resource names, else None."""
        match = _OBJECT_PATH.fullmatch(path)
        if match is None:
            return None
        group = match.group("group") or ""
        version = match.group("version") or match.group("core_version")
        plural = match.group("plural")
        with self._lock:
            kind = self._served(group, version).get(plural)
        if kind is None:
            return None
        return _Target(group, version, plural, kind, match.group("namespace"), match.group("name"))

    def _discovery(self, handler: _Handler, group: str, version: str) -> None:
        """/api/v1 or /apis/<group>/<version>: the resources served there."""
        with self._lock:
            served = self._served(group, version)
        if not served:
            handler.send_json(404, _status(404, "NotFound", "the server could not find it"))
            return
        resources = [
            {
                "name": plural,
                "singularName": kind.lower(),
                "namespaced": plural != NAMESPACES,
                "kind": kind,
                "verbs": ["delete", "get", "list", "patch", "create", "update", "watch"],
            }
            for plural, kind in served.items()
        ]
        group_version = f"{group}/{version}" if group else version
        body = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version}
        handler.send_json(200, {**body, "resources": resources})

    def _read(self, handler: _Handler, target: _Target, query: Mapping[str, str]) -> None:
        if target.name is None and query.get("watch") in ("true", "1"):
            self._watch(handler, target, query)
            return
        if target.name is None:
            self._list(handler, target, query)
            return
        if target.resource == _NAMESPACES and self._namespace_fault(handler):
            return
        with self._lock:
            obj = self._collection(target.resource).objects.get(target.key)
        if obj is None:
            message = f'{target.plural} "{target.name}" not found'
            handler.send_json(404, _status(404, "NotFound", message))
        else:
            handler.send_json(200, _render(obj, target.api_version, target.kind))

    def _namespace_fault(self, handler: _Handler) -> bool:
        """namespace_get_fault and namespace_get_delay, on a GET of one Namespace; whether the
        fault answered it."""
        fault = self.namespace_get_fault
        if fault == "hang":
            deadline = time.monotonic() + _HANG_LIMIT
            while time.monotonic() < deadline and self.namespace_get_fault == "hang":
                if self._stopping.wait(_WATCH_POLL):
                    break
            handler.abort()
            return True
        if isinstance(fault, int):
            handler.send_json(fault, _status(fault, "InternalError", "injected failure"))
            return True
        if self.namespace_get_delay:
            time.sleep(self.namespace_get_delay)
        return False

    def _list(self, handler: _Handler, target: _Target, query: Mapping[str, str]) -> None:
        """A page of the objects in one namespace or all, matching the label selector. The first
        page takes a snapshot; a continue token is the offset of the next item in it."""
        selector = query.get("labelSelector") or ""
        token = query.get("continue")
        limit = int(query.get("limit") or 0)
        snapshot_key = (target.resource, target.namespace, selector)
        with self._lock:
            if token:
                expired, self._expire_next_continue = self._expire_next_continue, False
                snapshot = self._pages.get(snapshot_key)
                if expired or snapshot is None or not token.isdigit():
                    gone = _status(410, "Expired", "the provided continue parameter is too old")
                    handler.send_json(410, gone)
                    return
                (rv, items), offset = snapshot, int(token)
            else:
                wanted = _selector(selector)
                objects = self._collection(target.resource).objects
                items = [
                    obj
                    for _, obj in sorted(objects.items())
                    if target.namespace in (None, obj["metadata"].get("namespace"))
                    and wanted(obj["metadata"].get("labels") or {})
                ]
                rv, offset = self._rv, 0
                self._pages[snapshot_key] = rv, items
        page = items[offset : offset + limit] if limit else items[offset:]
        metadata: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit and offset + limit < len(items):
            metadata["continue"] = str(offset + limit)
        if _wants_metadata(handler.headers.get("Accept") or ""):
            body = {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1"}
            handler.send_json(
                200, {**body, "metadata": metadata, "items": [_partial(o) for o in page]}
            )
            return
        # Items carry no apiVersion and kind of their own, as in the real server's lists of
        # built-in kinds (those of custom resources carry them): clients must not count on them.
        body = {"kind": f"{target.kind}List", "apiVersion": target.api_version}
        handler.send_json(200, {**body, "metadata": metadata, "items": [_bare(o) for o in page]})

    def _watch(self, handler: _Handler, target: _Target, query: Mapping[str, str]) -> None:
        since_text = query.get("resourceVersion") or "0"
        since = int(since_text) if since_text.isdigit() else 0
        timeout = float(query.get("timeoutSeconds") or 1800)
        bookmarks = query.get("allowWatchBookmarks") == "true"
        partial = _wants_metadata(handler.headers.get("Accept") or "")
        watcher = _Watcher(target.resource, target.namespace, bookmarks, partial)
        with self._lock:
            coll = self._collection(target.resource)
            failure, coll.fail_next_watch = coll.fail_next_watch, None
            expired = coll.expire_next_watch or 0 < since < coll.compacted
            coll.expire_next_watch = False
            if since == 0:
                # "any version": synthetic ADDED events for the current state, as the real server.
                backlog = [("ADDED", obj) for _, obj in sorted(coll.objects.items())]
            else:
                backlog = [(t, obj) for rv, t, obj in coll.log if rv > since]
            backlog = [(t, obj) for t, obj in backlog if watcher.sees(obj)]
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
                handler.write_event(event_type, watcher.render(obj, target))
            self._stream(handler, watcher, target, time.monotonic() + timeout)
        except OSError:
            handler.close_connection = True
        finally:
            with self._lock:
                if watcher in self._watchers:
                    self._watchers.remove(watcher)

    def _stream(
        self, handler: _Handler, watcher: _Watcher, target: _Target, deadline: float
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
            if event_type == "ERROR":
                handler.write_event(event_type, obj)
                handler.end_chunked()
                return
            handler.write_event(event_type, watcher.render(obj, target))

    def _write_object(
        self, handler: _Handler, method: str, path: str, query: Mapping[str, str], body: Any
    ) -> bool:
        target = self._target(path)
        if target is None:
            return False
        content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip()
        with self._lock:
            if method == "POST" and target.name is None:
                code, answer = self._create_object(target, body)
            elif method == "PUT" and target.name is not None:
                code, answer = self._replace_object(target, body)
            elif method == "PATCH" and target.name is not None:
                self._applies.append(
                    AppliedPatch(path, content_type, dict(query), copy.deepcopy(body))
                )
                code, answer = self._apply_object(target, content_type, query, body)
            elif method == "DELETE" and target.name is not None:
                code, answer = self._delete_object(target)
            else:
                code, answer = 405, _status(405, "MethodNotAllowed", f"{method} {path}")
        if code < 300 and answer.get("kind") != "Status":
            answer = _render(answer, target.api_version, target.kind)
        handler.send_json(code, answer)
        return True

    # The writes' checks and answers (lock held).

    def _create_object(self, target: _Target, body: Any) -> tuple[int, dict[str, Any]]:
        meta = body.get("metadata") if isinstance(body, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str):
            return 400, _status(400, "BadRequest", "metadata.name is required")
        objects = self._collection(target.resource).objects
        key = _key(target.namespace, name)
        if key in objects:
            return 409, _status(409, "AlreadyExists", f'{target.plural} "{name}" already exists')
        self._put(target.resource, _placed(body, target.namespace, name), "create")
        return 201, objects[key]

    def _replace_object(self, target: _Target, body: Any) -> tuple[int, dict[str, Any]]:
        assert target.name is not None
        objects = self._collection(target.resource).objects
        current = objects.get(target.key)
        if current is None:
            return 404, _status(404, "NotFound", f'{target.plural} "{target.name}" not found')
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            message = (
                f'Operation cannot be fulfilled on {target.plural} "{target.name}": the object '
                "has been modified"
            )
            return 409, _status(409, "Conflict", message)
        self._put(target.resource, _placed(body, target.namespace, target.name), "update")
        return 200, objects[target.key]

    def _apply_object(
        self, target: _Target, content_type: str, query: Mapping[str, str], body: Any
    ) -> tuple[int, dict[str, Any]]:
        """Enough server-side apply for the baseline: the applied fields win over the stored
        ones (other fields are kept), a no-op keeps the resourceVersion, and applying over
        another manager's write without force is a 409 Conflict."""
        assert target.name is not None
        if content_type != "application/apply-patch+yaml":
            message = f"the fake only takes server-side apply patches, not {content_type!r}"
            return 415, _status(415, "UnsupportedMediaType", message)
        manager = query.get("fieldManager")
        if not manager:
            return 422, _status(422, "Invalid", "fieldManager is required for apply patch")
        if not isinstance(body, dict):
            return 400, _status(400, "BadRequest", "an apply patch is an object")
        coll = self._collection(target.resource)
        current = coll.objects.get(target.key)
        merged = _apply_merge(current or {}, _placed(body, target.namespace, target.name))
        if current is not None and merged == current:
            return 200, current
        owner = coll.managers.get(target.key)
        if current is not None and owner != manager and query.get("force") != "true":
            message = f'Apply failed with 1 conflict: conflict with "{owner}"'
            return 409, _status(409, "Conflict", message)
        self._put(target.resource, merged, manager)
        return (201 if current is None else 200), coll.objects[target.key]

    def _delete_object(self, target: _Target) -> tuple[int, dict[str, Any]]:
        if target.key not in self._collection(target.resource).objects:
            return 404, _status(404, "NotFound", f'{target.plural} "{target.name}" not found')
        self._remove(target.resource, target.key)
        return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}


def _render(obj: Mapping[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, **obj}


def _wants_metadata(accept: str) -> bool:
    # The first media type a client names is the one it prefers (client-go lists the
    # PartialObjectMetadata ones first, with plain JSON as the fallback).
    return "as=PartialObjectMetadata" in accept.split(",")[0]


def _partial(obj: Mapping[str, Any]) -> dict[str, Any]:
    """`obj` as a metadata-only client gets it (PartialObjectMetadata)."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata") or {},
    }


def _bare(obj: Mapping[str, Any]) -> dict[str, Any]:
    """`obj` without apiVersion and kind."""
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}


def _placed(obj: Mapping[str, Any], namespace: str | None, name: str) -> dict[str, Any]:
    """A written object as stored: without apiVersion and kind (the path says them), at the
    path's namespace and name."""
    placed = _bare(obj)
    placed["metadata"] = {**(obj.get("metadata") or {}), "name": name}
    if namespace:
        placed["metadata"]["namespace"] = namespace
    return placed


def _strategic_merge(current: Any, patch: Any, key: str = "") -> Any:
    """Enough of strategic merge patch for webhook configurations: objects merge, null deletes,
    `webhooks` merge by name, other lists are replaced."""
    if isinstance(current, dict) and isinstance(patch, dict):
        out = copy.deepcopy(current)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = _strategic_merge(out.get(k), v, k)
        return out
    if key == "webhooks" and isinstance(current, list) and isinstance(patch, list):
        merged = copy.deepcopy(current)
        index = {item.get("name"): i for i, item in enumerate(merged) if isinstance(item, dict)}
        for item in patch:
            if isinstance(item, dict) and item.get("name") in index:
                i = index[item["name"]]
                merged[i] = _strategic_merge(merged[i], item)
            else:
                merged.append(copy.deepcopy(item))
        return merged
    return copy.deepcopy(patch)


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


def _route(namespace: str, name: str, hostnames: Iterable[str] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"parentRefs": [{"name": "gateway"}], "rules": [{}]}
    if hostnames is not None:
        spec["hostnames"] = list(hostnames)
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
        "spec": spec,
    }


def _apply_merge(current: Any, applied: Any) -> Any:
    if isinstance(current, dict) and isinstance(applied, dict):
        out = copy.deepcopy(current)
        for key, value in applied.items():
            out[key] = _apply_merge(out.get(key), value)
        return out
    return copy.deepcopy(applied)


def _selector(text: str) -> Callable[[Mapping[str, str]], bool]:
    """A label selector of `key=value` and `key` (exists) terms, as the baseline sends."""
    terms = [t.strip() for t in text.split(",") if t.strip()]

    def matches(labels: Mapping[str, str]) -> bool:
        for term in terms:
            key, eq, value = term.partition("=")
            if (eq and labels.get(key) != value) or (not eq and key not in labels):
                return False
        return True

    return matches
