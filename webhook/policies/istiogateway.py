"""Istio Gateway (SPEC.md §8): the hosts its servers publish, and the gateway pods it programs."""

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


def check(
    obj: Mapping[str, Any],
    namespace: str,
    tenant: str,
    view: TenancyView,
    config: Config,
) -> list[Violation]:
    spec = mapping_at(obj, "spec", "spec")
    selector = string_map_at(spec, "selector", "spec.selector")
    violations = check_selector(selector, spec.get("selector") is None, tenant, config)
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
    selector: Mapping[str, str], absent: bool, tenant: str, config: Config
) -> list[Violation]:
    """Istio applies a Gateway to the pods its selector matches in every namespace, so a
    selector that matches the platform's gateway pods reprograms the shared ingress."""
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
    for labels in config.shared_gateway_workloads:
        if all(labels.get(key) == value for key, value in selector.items()):
            return [
                Violation(
                    "gateway-selector",
                    "spec.selector",
                    show(dict(selector)),
                    f"matches the platform's shared gateway pods ({_labels(labels)})",
                    f"select only tenant {show(tenant)}'s own gateway pods, by a label they "
                    "alone carry; bind VirtualServices to a shared gateway instead "
                    f"({', '.join(config.shared_gateways) or 'none configured'})",
                    "platform",
                )
            ]
    return []


def _labels(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(labels.items()))
