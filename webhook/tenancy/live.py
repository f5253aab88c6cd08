"""Tenancy from a live cluster: the watch caches of webhook.cluster as a TenancySource."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prometheus_client import Gauge

from webhook.cluster import load_api_client
from webhook.config.model import Config
from webhook.metrics import Metrics
from webhook.tenancy import tenants as tenant_objects
from webhook.tenancy.hosts import route_key
from webhook.tenancy.registry import LiveTenants, TenantMembers
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
    namespace, VirtualService and Tenant caches have listed once, every request is refused
    (503)."""

    def __init__(
        self,
        cluster: ClusterView,
        lookup_timeout: float = LOOKUP_TIMEOUT_SECONDS,
        tenants: LiveTenants | None = None,
        members: TenantMembers | None = None,
    ) -> None:
        self.cluster = cluster
        self.lookup_timeout = lookup_timeout
        self.tenants = tenants
        self.members = members
        self._view = self._build_view()

    def _build_view(self) -> TenancyView:
        return TenancyView(
            self.cluster.namespaces,
            self.cluster.routes,
            self.cluster.gateway_pods,
            self.tenants.current if self.tenants is not None else None,
            self.members,
        )

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
        live = LiveTenants(current_config)
        cluster = ClusterView(
            load_api_client(kubeconfig=kubeconfig, in_cluster=in_cluster),
            host_key=lambda namespace, host: route_key(host, namespace, current_config().domain),
            read_tenant=lambda obj: tenant_objects.read_tenant(obj, current_config()),
        )
        members = TenantMembers(current_config().tenant_label, on_change=live.mark_dirty)
        cluster.caches.subscribe("", "namespaces", members.on_namespace_changes)
        cluster.caches.subscribe(
            tenant_objects.GROUP, tenant_objects.PLURAL, live.on_tenant_changes
        )
        cluster.start()
        tenancy = cls(cluster, tenants=live, members=members)
        if metrics is not None:
            tenancy.export_metrics(metrics)
        return tenancy

    def export_metrics(self, metrics: Metrics) -> None:
        def stat(name: str) -> Callable[[], float]:
            return lambda: float(self.cluster.stats()[name])

        live = self.tenants
        if live is not None:
            Gauge(
                "tenant_guard_tenants",
                "Tenants in force (config file and Tenant objects together)",
                registry=metrics.registry,
            ).set_function(lambda: float(len(live.current)))
            Gauge(
                "tenant_guard_tenant_index_updates",
                "Changes of Tenant objects applied to the tenant index in place",
                registry=metrics.registry,
            ).set_function(lambda: float(live.updates))
            Gauge(
                "tenant_guard_tenant_index_update_cpu_seconds",
                "CPU time the last Tenant change cost the tenant index (applied in place)",
                registry=metrics.registry,
            ).set_function(lambda: live.last_update_cpu)
        routes = tuple(route.plural for route in GATEWAY_ROUTES)
        tenants = ("tenants",) if self.cluster.tenant_status() is not None else ()
        for resource in ("namespaces", "virtualservices", *routes, "pods", *tenants):
            metrics.cache_size.labels(resource).set_function(stat(f"{resource}_items"))
            metrics.watch_restarts.labels(resource).set_function(stat(f"{resource}_restarts"))

    def _current(self) -> TenancyView:
        cluster = self.cluster
        namespaces, routes, pods = cluster.namespaces, cluster.routes, cluster.gateway_pods
        tenants = self.tenants.current if self.tenants is not None else None
        view = self._view
        if (
            view.namespaces is not namespaces
            or view.routes is not routes
            or view.gateway_pods is not pods
            or view.tenants is not tenants
        ):
            # Snapshots are immutable and swapped whole, so identity says whether they changed.
            view = self._view = TenancyView(namespaces, routes, pods, tenants, self.members)
        return view

    async def follow_config(self, interval: float = 0.5) -> None:
        """Rebase the Tenants on each reloaded config (a background task of the server)."""
        if self.tenants is None:
            return
        while True:
            try:
                await asyncio.to_thread(self.tenants.rebase_if_needed)
            except Exception:
                log.exception("rebasing the Tenants on the reloaded config failed")
            await asyncio.sleep(interval)

    async def view_for(self, namespace: str | None) -> TenancyView:
        if not self.cluster.listed:
            # Judging with a half-listed cache would miss owners, collisions and claims.
            raise TenancyUnavailable(
                "its namespace, VirtualService and Tenant caches have not finished their first "
                "list (tenant-guard is starting)"
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
