"""Tenancy: which tenant each namespace belongs to, as a frozen view a decision reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from webhook.config.model import ENFORCEMENT_LABEL, Bound, Config, Enforcement
from webhook.tenancy.claims import TenantIndex
from webhook.tenancy.gatewaypods import GatewayPods
from webhook.tenancy.snapshot import RouteRef

_EMPTY: Mapping[str, frozenset[RouteRef]] = MappingProxyType({})
# A mode by its text, as a label or a Tenant writes it: what any other text means is decided
# by the next level (a dict look-up, where Enum values and Enum(...) cost a call each).
_MODES: Mapping[str | None, Enforcement] = MappingProxyType(
    {mode.value: mode for mode in Enforcement}
)


@dataclass(frozen=True)
class TenancyView:
    """What a decision needs to know about the cluster, frozen for the length of a request.

    `namespaces` maps a namespace to its labels; a namespace missing from it is unknown, which
    counts as a platform namespace. `routes` maps a routed host (see hosts.route_key) to the
    objects (kind, namespace, name) that route it, whichever API; it is empty offline.
    `gateway_pods` are the cluster's gateway pods, which an Istio Gateway's selector is judged
    against; None when there is no cluster to read them from (offline, `analyze` without
    `--kubeconfig`), which is not the same as a cluster without gateway pods.
    `tenants` is every tenant in force with its claims, the config file's and the Tenant
    objects' (SPEC.md §12); None means the config's alone. `members` maps a tenant to its
    namespaces under the config's tenant label (kept live in a cluster); None: from
    `namespaces`.
    """

    namespaces: Mapping[str, Mapping[str, str]]
    routes: Mapping[str, frozenset[RouteRef]] = field(default_factory=lambda: _EMPTY)
    gateway_pods: GatewayPods | None = None
    tenants: TenantIndex | None = None
    members: Members | None = None

    def directory(self, config: Config) -> TenantIndex:
        """The tenants in force and who holds each claim."""
        return self.tenants if self.tenants is not None else config.claims

    def proxy_bounds(self, tenant: str, config: Config) -> Mapping[str, Bound]:
        return config.bounds_for(self.directory(config).entry(tenant))

    def namespaces_of(self, tenant: str, config: Config) -> frozenset[str]:
        """The namespaces that carry the tenant label with this tenant's name."""
        if self.members is not None and self.members.label == config.tenant_label:
            return self.members.of(tenant)
        label = config.tenant_label
        return frozenset(
            ns for ns, labels in self.namespaces.items() if labels.get(label) == tenant
        )

    def tenant_of(self, namespace: str | None, config: Config) -> str | None:
        if namespace is None:
            return None
        labels = self.namespaces.get(namespace)
        if not labels:
            return None
        return labels.get(config.tenant_label) or None

    def is_namespace(self, name: str) -> bool:
        return name in self.namespaces

    def enforcement_of(self, namespace: str | None, config: Config) -> Enforcement:
        """The namespace label overrides the tenant's mode (a Tenant's spec.enforcement), which
        overrides the global one (migration: warn first, then enforce)."""
        labels = self.namespaces.get(namespace or "") or {}
        override = _MODES.get(labels.get(ENFORCEMENT_LABEL))
        if override is not None:
            return override
        tenant = labels.get(config.tenant_label)
        if tenant:
            entry = self.directory(config).entry(tenant)
            if entry is not None:
                mode = _MODES.get(entry.enforcement)
                if mode is not None:
                    return mode
        return config.enforcement


class Members(Protocol):
    """tenant -> its namespaces, as an index kept under one tenant label."""

    @property
    def label(self) -> str: ...

    def of(self, tenant: str) -> frozenset[str]: ...


class TenancyUnavailable(Exception):
    """The tenancy of a namespace could not be determined; the request must fail closed."""


class TenancySource(Protocol):
    """Where views come from: the config file offline, watch caches in a cluster."""

    async def view_for(self, namespace: str | None) -> TenancyView:
        """A view that knows `namespace` if it exists; raise TenancyUnavailable if unsure."""
        ...

    def readiness(self) -> tuple[bool, list[str]]: ...


def static_view(namespaces: Mapping[str, Mapping[str, str]] | None) -> TenancyView:
    frozen = {name: MappingProxyType(dict(labels)) for name, labels in (namespaces or {}).items()}
    return TenancyView(MappingProxyType(frozen))


class StaticTenancy:
    """Offline tenancy: the current config's `namespaces:` map stands in for the cluster."""

    def __init__(self, current_config: Callable[[], Config]) -> None:
        self._current_config = current_config
        self._config: Config | None = None
        self._view = static_view({})

    async def view_for(self, namespace: str | None) -> TenancyView:
        config = self._current_config()
        if config is not self._config:  # rebuilt once per config (re)load, not per request
            self._view = static_view(config.namespaces)
            self._config = config
        return self._view

    def readiness(self) -> tuple[bool, list[str]]:
        return True, []
