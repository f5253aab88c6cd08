"""The live tenancy view's caches: namespaces (name -> labels), the objects that route
hostnames (VirtualServices, Gateway API routes) with the host index they feed, and the gateway
pods (webhook.tenancy.gateways), kept by webhook.cluster's list+watch machinery. One cache per
kind (KindCaches): the audit reads the VirtualService and route caches too.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from webhook.cluster import discovery
from webhook.cluster.client import describe_error
from webhook.cluster.rest import ApiClient, ClusterApiError, RestClient, api_path
from webhook.cluster.watch import (
    CacheStatus,
    KindCaches,
    ListCall,
    Subscriber,
    WatchCache,
    WatchError,
    WatchTuning,
    connect_served,
    list_call,
)
from webhook.tenancy import tenants as tenant_objects
from webhook.tenancy.gatewaypods import GatewayPods
from webhook.tenancy.gateways import GATEWAY_POD_RBAC, GatewayPodWatch
from webhook.tenancy.routes import (
    GATEWAY_API_GROUP,
    GATEWAY_ROUTES,
    LiveRouteIndex,
    RouteIndex,
    RoutingResource,
    route_keys,
)
from webhook.tenancy.snapshot import slim
from webhook.tenancy.tenants import TenantRecord

log = logging.getLogger(__name__)

ISTIO_GROUP = "networking.istio.io"
# Served-version preference when discovery names no preferredVersion we can use.
VIRTUALSERVICE_VERSIONS = ("v1", "v1beta1", "v1alpha3")

# The API footprint of the caches requests read, as ClusterRole rules. Discovery (/apis) is
# open to every authenticated client through the built-in system:discovery role.
TENANCY_RBAC: tuple[Mapping[str, Sequence[str]], ...] = (
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
    *GATEWAY_POD_RBAC,
)

# Tenant objects (SPEC.md §12), granted by deploy/components/tenants: read for the watch
# cache, and patch on the status subresource only, which the Lease holder writes.
TENANT_RBAC: tuple[Mapping[str, Sequence[str]], ...] = (
    {
        "apiGroups": [tenant_objects.GROUP],
        "resources": [tenant_objects.PLURAL],
        "verbs": ["get", "list", "watch"],
    },
    {
        "apiGroups": [tenant_objects.GROUP],
        "resources": [f"{tenant_objects.PLURAL}/status"],
        "verbs": ["patch"],
    },
)


Labels = Mapping[str, str]

_EMPTY_LABELS: Labels = MappingProxyType({})
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class NamespaceLookupError(Exception):
    """A direct namespace GET failed; the caller must fail closed with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def choose_version(preferred: str | None, served: Sequence[str]) -> str | None:
    """The VirtualService version to use: the server's preferred one, else the first known."""
    if preferred:
        return preferred
    for version in VIRTUALSERVICE_VERSIONS:
        if version in served:
            return version
    return None


def _namespace_labels(obj: Mapping[str, Any]) -> Labels:
    labels = (obj.get("metadata") or {}).get("labels")
    if not isinstance(labels, Mapping) or not labels:
        return _EMPTY_LABELS
    return MappingProxyType({str(k): str(v) for k, v in labels.items()})


class ClusterView:
    """Namespaces (name -> labels), routed hosts (host key -> the VirtualServices and
    Gateway API routes that route it) and the gateway pods, kept live.

    Readers use `namespaces`, `routes` and `gateway_pods`: plain attribute reads of immutable
    snapshots. Readiness depends on the namespace, VirtualService and pod caches; a Gateway API
    route watch whose resource is not served waits for it and is reported without failing.
    """

    def __init__(
        self,
        api_client: ApiClient,
        *,
        host_key: Callable[[str, str], str | None],
        stale_after: float = 60.0,
        tuning: WatchTuning | None = None,
        max_lookups: int = 8,
        caches: KindCaches | None = None,
        istiod_settle: float = 1.0,
        read_tenant: Callable[[Mapping[str, Any]], TenantRecord] | None = None,
    ) -> None:
        self._api = api_client
        # The VirtualService and route caches keep slim objects, not only their host keys, so
        # the audit reads the same caches (webhook.audit.watches) instead of its own.
        self.caches = caches if caches is not None else KindCaches()
        self._stale_after = stale_after
        self._tuning = tuning or WatchTuning()
        self._route_index = LiveRouteIndex()
        self._vs_version: str | None = None
        self._route_versions: dict[str, str] = {}
        self._rest = RestClient(api_client)
        self._lookup_slots = threading.BoundedSemaphore(max_lookups)
        self._lookups: dict[str, Future[Labels | None]] = {}
        self._lookups_lock = threading.Lock()
        self._namespace_cache: WatchCache[Labels] = self._own(
            "",
            "namespaces",
            lambda tell: WatchCache(
                "namespaces",
                lambda: list_call(self._api, "", "v1", "namespaces"),
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
        # Tenant objects, when a reader is given (serve, audit): the CRD may be absent, and
        # then the watch waits for it, as the Gateway API route watches do.
        self._tenant_version: dict[str, str] = {}
        self._tenant_cache: WatchCache[TenantRecord] | None = None
        if read_tenant is not None:
            self._tenant_cache = self._own(
                tenant_objects.GROUP,
                tenant_objects.PLURAL,
                lambda tell: WatchCache(
                    f"{tenant_objects.PLURAL}.{tenant_objects.GROUP}",
                    lambda: connect_served(
                        self._api,
                        tenant_objects.GROUP,
                        tenant_objects.PLURAL,
                        self._tuning,
                        self._tenant_version,
                        tenant_objects.PLURAL,
                    ),
                    read_tenant,
                    on_change=tell,
                    tuning=self._tuning,
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
        self.gateway_pod_watch = GatewayPodWatch(
            api_client, self.caches, tuning=self._tuning, istiod_settle=istiod_settle
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
    def gateway_pods(self) -> GatewayPods:
        return self.gateway_pod_watch.gateway_pods

    @property
    def virtualservice_version(self) -> str | None:
        """The networking.istio.io version watched, once discovery has run."""
        return self._vs_version

    @property
    def gateway_route_versions(self) -> Mapping[str, str]:
        """plural -> the gateway.networking.k8s.io version watched, for the routes served."""
        return MappingProxyType(dict(self._route_versions))

    @property
    def tenant_records(self) -> Mapping[str, TenantRecord]:
        """name -> the stored Tenant as read (empty without the CRD)."""
        return self._tenant_cache.items if self._tenant_cache is not None else MappingProxyType({})

    def tenant_status(self) -> CacheStatus | None:
        return self._tenant_cache.status() if self._tenant_cache is not None else None

    def _caches(self) -> tuple[WatchCache[Any], ...]:
        tenants = (self._tenant_cache,) if self._tenant_cache is not None else ()
        return (self._namespace_cache, self._vs_cache, *tenants, *self._gateway_caches.values())

    def start(self) -> None:
        for cache in self._caches():
            cache.start()
        self.gateway_pod_watch.start()

    def stop(self, timeout: float = 5.0) -> None:
        for cache in self._caches():
            cache.stop(0)
        self.gateway_pod_watch.stop(0)
        deadline = time.monotonic() + timeout
        for cache in self._caches():
            cache.stop(max(0.0, deadline - time.monotonic()))
        self.gateway_pod_watch.stop(max(0.0, deadline - time.monotonic()))

    @property
    def listed(self) -> bool:
        """Whether the caches every decision reads have listed once: before that, a view of
        them misses namespaces and routes that exist, and every Tenant's claim (an unclaimed
        host would pass with unclaimedHosts: allow). A Tenant watch waiting for its CRD counts
        as listed: without the CRD there are no Tenants, and tenants come from the config."""
        tenants = self._tenant_cache
        return (
            self._namespace_cache.synced
            and self._vs_cache.synced
            and (tenants is None or tenants.synced or tenants.status().waiting is not None)
        )

    def _readiness_caches(self) -> tuple[WatchCache[Any], ...]:
        return (self._namespace_cache, self._vs_cache, self.gateway_pod_watch.cache)

    def wait_synced(self, timeout: float) -> bool:
        """Block until the namespace, VirtualService and pod caches have listed once (startup
        and tests only; requests never wait, and the Gateway API route watches may be
        waiting)."""
        deadline = time.monotonic() + timeout
        return all(
            cache.wait_synced(max(0.0, deadline - time.monotonic()))
            for cache in self._readiness_caches()
        )

    def readiness(self) -> tuple[bool, list[str]]:
        """(ready, detail): not ready while the namespace, VirtualService or pod cache is (an
        Istio Gateway's selector cannot be judged without the pods), nor while a served Tenant
        CRD's cache is; the Gateway API route watches only add detail (waiting for their CRD,
        or failing), and so does istiod's scope setting."""
        reasons = [
            reason
            for cache in self._readiness_caches()
            if (reason := self._cache_problem(cache.status())) is not None
        ]
        notes: list[str] = []
        if self._tenant_cache is not None:
            # Served, the Tenants' claims are part of every decision: not ready until listed.
            # Not served, tenants come from the config alone, which is a valid setup.
            status = self._tenant_cache.status()
            if status.waiting is not None:
                notes.append(
                    f"{status.resource}: watch waiting, {status.waiting} (is the Tenant CRD "
                    "installed?); tenants come from the config file only until it starts"
                )
            elif (problem := self._cache_problem(status)) is not None:
                reasons.append(problem)
        for cache in self._gateway_caches.values():
            status = cache.status()
            if status.waiting is not None:
                notes.append(
                    f"{status.resource}: watch waiting, {status.waiting} (is its CRD "
                    "installed?); collisions with these routes are not checked until it starts"
                )
            elif (problem := self._cache_problem(status)) is not None:
                notes.append(f"{problem} (collisions with these routes may be missed)")
        notes += self.gateway_pod_watch.notes()
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
            ("pods", self.gateway_pod_watch.cache),
        ]
        if self._tenant_cache is not None:
            caches.append(("tenants", self._tenant_cache))
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
        out["gateway_pods"] = len(self.gateway_pods.pods)
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
        what = f"reading namespace {name!r}"
        try:
            path = api_path("", "v1", "namespaces", None, name)
            obj = self._rest.get(what, path, timeout=(timeout, timeout))
            if obj is None:
                future.set_result(None)
                return
            labels = _namespace_labels(obj)
            rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            self._namespace_cache.remember(name, labels, rv)
            future.set_result(labels)
        except ClusterApiError as exc:
            future.set_exception(NamespaceLookupError(str(exc)))
        except Exception as exc:
            future.set_exception(NamespaceLookupError(f"{what}: {describe_error(exc)}"))
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
        return list_call(self._api, ISTIO_GROUP, version, "virtualservices")

    def _discover_virtualservice_version(self) -> str:
        tuning = self._tuning
        group = discovery.api_group(
            self._api, ISTIO_GROUP, (tuning.connect_timeout, tuning.request_timeout)
        )
        if group is None:
            raise WatchError(f"API group {ISTIO_GROUP} is not served (is Istio installed?)")
        preferred, served = discovery.served_versions(group)
        version = choose_version(preferred, served)
        if version is None:
            raise WatchError(f"{ISTIO_GROUP} serves no known version: {served}")
        return version

    # --- Gateway API routes ------------------------------------------------------------------

    def _connect_gateway_route(self, route: RoutingResource) -> ListCall:
        return connect_served(
            self._api, route.group, route.plural, self._tuning, self._route_versions, route.plural
        )
