"""Istio Gateway (SPEC.md §8): the hosts its servers publish, and the gateway pods it programs:
the platform's shared ones (`sharedGatewayWorkloads`) and, in a cluster, the live gateway pods
of every namespace (webhook.tenancy.gatewaypods)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.config.model import Config
from webhook.policies.common import (
    Violation,
    mapping_at,
    objects_at,
    show,
    string_list_at,
    string_map_at,
)
from webhook.policies.ownership import EDGE, host_problem
from webhook.tenancy.view import TenancyView

# What a judgement without the cluster's gateway pods leaves open (`analyze` offline says it).
WITHOUT_CLUSTER = (
    "spec.selector is judged against sharedGatewayWorkloads only: without a cluster "
    "(--kubeconfig) tenant-guard cannot know whether it matches gateway pods in other "
    "tenants' namespaces, which admission in the cluster denies"
)


def check(
    obj: Mapping[str, Any],
    namespace: str,
    tenant: str,
    view: TenancyView,
    config: Config,
) -> list[Violation]:
    spec = mapping_at(obj, "spec", "spec")
    selector = string_map_at(spec, "selector", "spec.selector")
    violations = check_selector(selector, spec.get("selector") is None, tenant, view, config)
    for where, server in objects_at(spec, "servers", "spec.servers"):
        hosts = string_list_at(server, "hosts", f"{where}.hosts") or []
        for host_index, entry in enumerate(hosts):
            violations += check_server_host(
                entry, f"{where}.hosts[{host_index}]", namespace, tenant, view, config
            )
    return violations


def check_server_host(
    entry: str, field: str, namespace: str, tenant: str, view: TenancyView, config: Config
) -> list[Violation]:
    """A server host `[namespace/]host`: the namespace part says whose VirtualServices the
    gateway takes, the host part what it publishes."""
    violations: list[Violation] = []
    source, slash, host = entry.rpartition("/")
    if slash and source not in (".", namespace):
        owner = view.tenant_of(source, config) if source != "*" else None
        if source == "*" or owner != tenant:
            violations.append(
                Violation(
                    "gateway-host-namespace",
                    field,
                    show(entry),
                    _namespace_problem(source, owner),
                    f"write {show('./' + host)} or name a namespace of tenant {show(tenant)}",
                    "nobody" if source == "*" else owner or "platform",
                )
            )
    problem = host_problem(host, namespace, tenant, view, config, EDGE)
    if problem is not None:
        violations.append(problem.at(field, show(entry)))
    return violations


def _namespace_problem(source: str, owner: str | None) -> str:
    if source == "*":
        return "binds VirtualServices of every namespace of the mesh to this gateway"
    whose = f"tenant {show(owner)}" if owner else "the platform"
    return f"binds VirtualServices of namespace {show(source)} of {whose} to this gateway"


def check_selector(
    selector: Mapping[str, str], absent: bool, tenant: str, view: TenancyView, config: Config
) -> list[Violation]:
    """Istio applies a Gateway to the gateway pods its selector matches in every namespace, so
    a selector must match none outside the tenant's namespaces: not the platform's shared ones
    (`sharedGatewayWorkloads`, which offline is all that is known), and in a cluster none of
    the live gateway pods of the platform or of another tenant."""
    if not selector:
        return [
            Violation(
                "gateway-selector",
                "spec.selector",
                "absent" if absent else show(dict(selector)),
                "matches every gateway pod of the mesh, including the platform's shared ones",
                f"select only tenant {show(tenant)}'s own gateway pods, by a label they alone "
                "carry",
                "platform",
            )
        ]
    violations: list[Violation] = []
    shared = next(
        (
            labels
            for labels in config.shared_gateway_workloads
            if all(labels.get(key) == value for key, value in selector.items())
        ),
        None,
    )
    if shared is not None:
        violations.append(
            Violation(
                "gateway-selector",
                "spec.selector",
                show(dict(selector)),
                f"matches the platform's shared gateway pods ({_labels(shared)})",
                f"select only tenant {show(tenant)}'s own gateway pods, by a label they "
                "alone carry; bind VirtualServices to a shared gateway instead "
                f"({', '.join(config.shared_gateways) or 'none configured'})",
                "platform",
            )
        )
    # The shared pods' violation says it already for the platform's namespaces.
    return violations + _live_matches(selector, tenant, view, config, shared is None)


# How many namespaces' violations one selector gets at most; the last names how many more.
MAX_NAMESPACES = 5
_MAX_PODS = 2


def _live_matches(
    selector: Mapping[str, str],
    tenant: str,
    view: TenancyView,
    config: Config,
    platform_too: bool,
) -> list[Violation]:
    pods = view.gateway_pods
    if pods is None:  # no cluster to ask: the shared workloads above are all that is known
        return []
    value = show(dict(selector))
    if not pods.synced:
        return [
            Violation(
                "gateway-selector-unchecked",
                "spec.selector",
                value,
                "cannot be checked yet: tenant-guard has not finished listing the cluster's "
                "gateway pods, so it cannot tell whose pods this selector matches",
                "retry in a moment",
            )
        ]
    found: dict[str, list[str]] = {}
    for key in pods.matching(selector):
        namespace, _, name = key.partition("/")
        owner = view.tenant_of(namespace, config)
        if owner == tenant or (owner is None and not platform_too):
            continue
        found.setdefault(namespace, []).append(name)
    violations: list[Violation] = []
    namespaces = sorted(found)
    for position, namespace in enumerate(namespaces[:MAX_NAMESPACES], 1):
        owner = view.tenant_of(namespace, config)
        whose = f"tenant {show(owner)}" if owner else "the platform"
        problem = (
            f"matches gateway pods in namespace {show(namespace)} of {whose} "
            f"({_pods(found[namespace])})"
        )
        if position == MAX_NAMESPACES and len(namespaces) > MAX_NAMESPACES:
            problem += f", and gateway pods in {len(namespaces) - MAX_NAMESPACES} more namespaces"
        violations.append(
            Violation(
                "gateway-selector",
                "spec.selector",
                value,
                problem,
                f"select only tenant {show(tenant)}'s own gateway pods, by a label they alone "
                "carry (Istio applies a Gateway to the gateway pods its selector matches in "
                "every namespace)",
                owner or "platform",
            )
        )
    return violations


def _pods(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_PODS])
    more = len(names) - _MAX_PODS
    return (
        f"pod {shown}"
        if len(names) == 1
        else f"pods {shown}" + (f" and {more} more" if more > 0 else "")
    )


def _labels(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(labels.items()))
