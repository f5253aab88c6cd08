"""Tenancy from a live cluster: the watch caches of webhook.cluster as a TenancySource."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from webhook.cluster import load_api_client
from webhook.config.model import Config
from webhook.metrics import Metrics
from webhook.tenancy.hosts import route_key
from webhook.tenancy.routing import GATEWAY_ROUTES
from webhook.tenancy.view import TenancyUnavailable, TenancyView
from webhook.tenancy.watches import ClusterView, NamespaceLookupError

log = logging.getLogger("tenant_guard.live")

# A cache miss costs one GET; it must stay well inside the webhook's timeoutSeconds (5 s).
LOOKUP_TIMEOUT_SECONDS = 2.0


class ClusterTenancy:
    """Requests read the caches' current snapshots; a namespace the cache has not seen yet
    (created a moment ago, as ArgoCD does in one sync) costs one direct GET, and if that fails
    the request is denied (fail closed), never judged as a platform namespace. Until the
    namespace and VirtualService caches have listed once, every request is refused (503)."""

    def __init__(
        self, cluster: ClusterView, lookup_timeout: float = LOOKUP_TIMEOUT_SECONDS
    ) -> None:
        self.cluster = cluster
        self.lookup_timeout = lookup_timeout
        self._view = TenancyView(cluster.namespaces, cluster.routes, cluster.gateway_pods)

    @classmethod
    def connect(
        cls,
        *,
        kubeconfig: str | None,
        in_cluster: bool,
        current_config: Callable[[], Config],
        metrics: Metrics | None = None,
    ) -> ClusterTenancy:
        if current_config().namespaces is not None:
            log.warning(
                "the config's namespaces: map is ignored in a cluster; namespace labels "
                "are read live"
            )
        cluster = ClusterView(
            load_api_client(kubeconfig=kubeconfig, in_cluster=in_cluster),
            host_key=lambda namespace, host: route_key(host, namespace, current_config().domain),
        )
        cluster.start()
        tenancy = cls(cluster)
        if metrics is not None:
            tenancy.export_metrics(metrics)
        return tenancy

    def export_metrics(self, metrics: Metrics) -> None:
        def stat(name: str) -> Callable[[], float]:
            return lambda: float(self.cluster.stats()[name])

        routes = tuple(route.plural for route in GATEWAY_ROUTES)
        for resource in ("namespaces", "virtualservices", *routes, "pods"):
            metrics.cache_size.labels(resource).set_function(stat(f"{resource}_items"))
            metrics.watch_restarts.labels(resource).set_function(stat(f"{resource}_restarts"))

    def _current(self) -> TenancyView:
        cluster = self.cluster
        namespaces, routes, pods = cluster.namespaces, cluster.routes, cluster.gateway_pods
        view = self._view
        if (
            view.namespaces is not namespaces
            or view.routes is not routes
            or view.gateway_pods is not pods
        ):
            # Snapshots are immutable and swapped whole, so identity says whether they changed.
            view = self._view = TenancyView(namespaces, routes, pods)
        return view

    async def view_for(self, namespace: str | None) -> TenancyView:
        if not self.cluster.listed:
            # Judging with a half-listed cache would miss owners and collisions: refuse instead.
            raise TenancyUnavailable(
                "its namespace and VirtualService caches have not finished their first list "
                "(tenant-guard is starting)"
            )
        view = self._current()
        if namespace is None or namespace in view.namespaces:
            return view
        try:
            await asyncio.to_thread(self.cluster.lookup_namespace, namespace, self.lookup_timeout)
        except NamespaceLookupError as exc:
            raise TenancyUnavailable(str(exc)) from exc
        return self._current()

    def readiness(self) -> tuple[bool, list[str]]:
        return self.cluster.readiness()

    def close(self) -> None:
        self.cluster.stop()
