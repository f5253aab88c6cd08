"""VirtualService: hosts (judged by webhook.policies.ownership), gateway bindings (SPEC.md §3),
exportTo (§4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from webhook.config.model import Config
from webhook.policies import destinations
from webhook.policies.common import (
    Violation,
    list_at,
    mapping_at,
    objects_at,
    show,
    string_list_at,
)
from webhook.policies.exportto import check_export_to, default_export_to
from webhook.policies.ownership import collision_problem, host_problem
from webhook.tenancy.view import TenancyView


class Gateways(NamedTuple):
    """The gateway bindings of a VirtualService, judged (for every request: a named tuple)."""

    violations: tuple[Violation, ...]
    allowed_namespaces: frozenset[str]  # namespaces of bound gateways it may export to


_UNBOUND = Gateways((), frozenset())  # no spec.gateways: the mesh only, nothing to judge


def check(
    obj: Mapping[str, Any],
    namespace: str,
    name: str,
    tenant: str,
    view: TenancyView,
    config: Config,
) -> list[Violation]:
    spec = mapping_at(obj, "spec", "spec")
    hosts = string_list_at(spec, "hosts", "spec.hosts") or []
    bound = string_list_at(spec, "gateways", "spec.gateways") or []
    gateways = judge_gateways(bound, namespace, tenant, view, config)
    violations = check_hosts(hosts, namespace, name, tenant, view, config)
    violations += gateways.violations
    if destinations.is_gateway_bound(bound):
        violations += check_sni_hosts(spec, namespace, tenant, view, config)
        violations += check_shared_tcp(spec, bound, namespace, config)
        violations += destinations.check(spec, namespace, tenant, view, config)
    violations += check_export_to(
        string_list_at(spec, "exportTo", "spec.exportTo"),
        namespace,
        gateway_namespaces=gateways.allowed_namespaces,
    )
    return violations


def default_export(
    obj: Mapping[str, Any], namespace: str, tenant: str, view: TenancyView, config: Config
) -> list[str]:
    spec = mapping_at(obj, "spec", "spec")
    gateways = string_list_at(spec, "gateways", "spec.gateways") or []
    allowed = judge_gateways(gateways, namespace, tenant, view, config).allowed_namespaces
    return default_export_to(namespace, allowed)


# --- hosts -----------------------------------------------------------------------------------


def check_hosts(
    hosts: list[str],
    namespace: str,
    name: str,
    tenant: str,
    view: TenancyView,
    config: Config,
) -> list[Violation]:
    violations: list[Violation] = []
    for index, raw in enumerate(hosts):
        problem = host_problem(raw, namespace, tenant, view, config)
        if problem is None:
            problem = collision_problem(raw, namespace, name, tenant, view, config)
        if problem is not None:
            violations.append(problem.at(f"spec.hosts[{index}]", show(raw)))
    return violations


def check_sni_hosts(
    spec: Mapping[str, Any], namespace: str, tenant: str, view: TenancyView, config: Config
) -> list[Violation]:
    """On a gateway, `tls[].match[].sniHosts` become the SNI names of the gateway's filter
    chains. Istio's own validation wants them within spec.hosts, but tenant-guard does not rely
    on istiod's webhook being installed: each one must be the tenant's, as a host is."""
    violations: list[Violation] = []
    for where, rule in objects_at(spec, "tls", "spec.tls"):
        for at, match in objects_at(rule, "match", f"{where}.match"):
            for host_index, raw in enumerate(
                string_list_at(match, "sniHosts", f"{at}.sniHosts") or []
            ):
                problem = host_problem(raw, namespace, tenant, view, config)
                if problem is not None:
                    violations.append(problem.at(f"{at}.sniHosts[{host_index}]", show(raw)))
    return violations


def check_shared_tcp(
    spec: Mapping[str, Any], bound: list[str], namespace: str, config: Config
) -> list[Violation]:
    """TCP routes on a shared gateway. A TCP route matches no host: on a gateway server that
    is plain TCP, or TLS terminated by the gateway, Istio takes the first VirtualService's TCP
    route for the whole server, every host of it, other tenants' too (as a TCPRoute on a shared
    Gateway API parent takes the whole port)."""
    if not list_at(spec, "tcp", "spec.tcp"):
        return []
    shared = config.shared_gateway_set
    return [
        Violation(
            "shared-gateway",
            f"spec.gateways[{index}]",
            show(ref),
            "is shared by every tenant: the routes of spec.tcp would take the whole of each TCP "
            "or TLS-terminating server they match on it, other tenants' hosts too",
            "route HTTP by host, or TLS by SNI (spec.tls[].match[].sniHosts), on the shared "
            "gateway, or bind the TCP routes to a gateway of your tenant",
            "platform",
        )
        for index, ref in enumerate(bound)
        if ref != "mesh" and "/".join(resolve_gateway(ref, namespace)) in shared
    ]


# --- gateways --------------------------------------------------------------------------------


def resolve_gateway(ref: str, namespace: str) -> tuple[str, str]:
    """(namespace, name) of a gateway reference as Istio reads it.

    `ns/name` is explicit; a bare name is in the VirtualService's namespace; the legacy dotted
    form `name.ns[.svc.<domain>]` names namespace `ns`.
    """
    if "/" in ref:
        gateway_namespace, _, gateway_name = ref.partition("/")
        return gateway_namespace, gateway_name
    if "." in ref:
        gateway_name, gateway_namespace = ref.split(".")[:2]
        return gateway_namespace, gateway_name
    return namespace, ref


def judge_gateways(
    gateways: list[str], namespace: str, tenant: str, view: TenancyView, config: Config
) -> Gateways:
    if not gateways:
        return _UNBOUND
    violations: list[Violation] = []
    allowed: set[str] = set()
    shared = config.shared_gateway_set
    for index, ref in enumerate(gateways):
        if ref == "mesh":
            continue
        gateway_namespace, gateway_name = resolve_gateway(ref, namespace)
        if gateway_namespace == namespace:
            continue
        if (
            f"{gateway_namespace}/{gateway_name}" in shared
            or view.tenant_of(gateway_namespace, config) == tenant
        ):
            allowed.add(gateway_namespace)
            continue
        owner = view.tenant_of(gateway_namespace, config)
        whose = f"tenant {show(owner)}" if owner else "the platform"
        shared_list = ", ".join(config.shared_gateways) or "none configured"
        violations.append(
            Violation(
                "gateway",
                f"spec.gateways[{index}]",
                show(ref),
                f"is a gateway in namespace {show(gateway_namespace)} of {whose}, "
                "not shared with other tenants",
                f"bind to mesh, a gateway in your tenant's namespaces, or a shared gateway "
                f"({shared_list})",
                owner or "platform",
            )
        )
    return Gateways(tuple(violations), frozenset(allowed))
