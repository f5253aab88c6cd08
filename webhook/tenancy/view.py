"""Tenancy: which tenant each namespace belongs to, as a frozen view a decision reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from webhook.config.model import ENFORCEMENT_LABEL, Config, Enforcement
from webhook.tenancy.gatewaypods import GatewayPods
from webhook.tenancy.snapshot import RouteRef

_EMPTY: Mapping[str, frozenset[RouteRef]] = MappingProxyType({})


@dataclass(frozen=True)
class TenancyView:
    """What a decision needs to know about the cluster, frozen for the length of a request.

    `namespaces` maps a namespace to its labels; a namespace missing from it is unknown, which
    counts as a platform namespace. `routes` maps a routed host (see hosts.route_key) to the
    objects (kind, namespace, name) that route it, whichever API; it is empty offline.
    `gateway_pods` are the cluster's gateway pods, which an Istio Gateway's selector is judged
    against; None when there is no cluster to read them from (offline, `analyze` without
    `--kubeconfig`), which is not the same as a cluster without gateway pods.
    """

    namespaces: Mapping[str, Mapping[str, str]]
    routes: Mapping[str, frozenset[RouteRef]] = field(default_factory=lambda: _EMPTY)
    gateway_pods: GatewayPods | None = None

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
        """The namespace label overrides the global mode (migration: warn first, then enforce)."""
        labels = self.namespaces.get(namespace or "") or {}
        override = labels.get(ENFORCEMENT_LABEL)
        if override in (Enforcement.WARN.value, Enforcement.ENFORCE.value):
            return Enforcement(override)
        return config.enforcement


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
