"""The objects that route hostnames, and the collision index they make: one table for the live
watches (webhook.cluster) and for analyze/audit, so both index the same kinds alike. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from webhook.tenancy.hosts import route_key
from webhook.tenancy.snapshot import RouteRef

ISTIO_GROUP = "networking.istio.io"
GATEWAY_API_GROUP = "gateway.networking.k8s.io"

RouteIndex = Mapping[str, frozenset[RouteRef]]


@dataclass(frozen=True)
class RoutingResource:
    """A kind whose objects route the hostnames listed in `spec.<hosts_field>`."""

    kind: str
    group: str
    plural: str
    hosts_field: str

    @property
    def resource(self) -> str:
        return f"{self.plural}.{self.group}"


VIRTUALSERVICES = RoutingResource("VirtualService", ISTIO_GROUP, "virtualservices", "hosts")
# The Gateway API routes that carry hostnames (TCPRoute and UDPRoute have none).
GATEWAY_ROUTES = (
    RoutingResource("HTTPRoute", GATEWAY_API_GROUP, "httproutes", "hostnames"),
    RoutingResource("GRPCRoute", GATEWAY_API_GROUP, "grpcroutes", "hostnames"),
    RoutingResource("TLSRoute", GATEWAY_API_GROUP, "tlsroutes", "hostnames"),
)
ROUTING_RESOURCES = (VIRTUALSERVICES, *GATEWAY_ROUTES)
_BY_KIND = {(r.group, r.kind): r for r in ROUTING_RESOURCES}


def routing_resource(obj: Mapping[str, Any]) -> RoutingResource | None:
    """The routing kind of a manifest (by apiVersion group and kind), or None."""
    api_version = obj.get("apiVersion")
    if not isinstance(api_version, str):
        return None
    return _BY_KIND.get((api_version.rpartition("/")[0], str(obj.get("kind"))))


def routed_hosts(obj: Mapping[str, Any], hosts_field: str) -> list[str]:
    """The strings of `spec.<hosts_field>`; anything of another shape routes nothing."""
    spec = obj.get("spec")
    hosts = spec.get(hosts_field) if isinstance(spec, Mapping) else None
    return [h for h in hosts if isinstance(h, str)] if isinstance(hosts, list) else []


def index_routes(
    objects: Iterable[Mapping[str, Any]], cluster_domain: str, default_namespace: str = "default"
) -> dict[str, frozenset[RouteRef]]:
    """The collision index (hosts.route_key -> objects) of the routing objects among
    `objects`, as the live watches keep it."""
    index: dict[str, set[RouteRef]] = {}
    for obj in objects:
        routing = routing_resource(obj)
        if routing is None:
            continue
        metadata = obj.get("metadata")
        metadata = metadata if isinstance(metadata, Mapping) else {}
        namespace = str(metadata.get("namespace") or default_namespace)
        ref = RouteRef(routing.kind, namespace, str(metadata.get("name") or ""))
        for host in routed_hosts(obj, routing.hosts_field):
            key = route_key(host, namespace, cluster_domain)
            if key is not None:
                index.setdefault(key, set()).add(ref)
    return {key: frozenset(refs) for key, refs in index.items()}


def merge_indexes(*indexes: RouteIndex) -> dict[str, frozenset[RouteRef]]:
    merged: dict[str, frozenset[RouteRef]] = {}
    for index in indexes:
        for key, refs in index.items():
            merged[key] = merged.get(key, frozenset()) | refs
    return merged
