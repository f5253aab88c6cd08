"""Destinations of a VirtualService bound to a gateway (SPEC.md §8): it may publish only its
own tenant's services, or another tenant's internal service would be reachable from outside
under this tenant's hostname."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from webhook.config.model import Config
from webhook.policies.common import ShapeError, Violation, mapping_at, objects_at, show
from webhook.policies.ownership import ROUTING, host_problem
from webhook.tenancy.hosts import Form, HostError, classify, normalise
from webhook.tenancy.view import TenancyView

RULE = "gateway-destination"


def is_gateway_bound(gateways: list[str]) -> bool:
    return any(gateway != "mesh" for gateway in gateways)


def check(
    spec: Mapping[str, Any], namespace: str, tenant: str, view: TenancyView, config: Config
) -> list[Violation]:
    violations: list[Violation] = []
    for field, host in _destination_hosts(spec):
        violation = destination_problem(host, field, namespace, tenant, view, config)
        if violation is not None:
            violations.append(violation)
    for where, route in objects_at(spec, "http", "spec.http"):
        delegate = mapping_at(route, "delegate", f"{where}.delegate")
        target = delegate.get("namespace")
        if target is None or target == namespace:
            continue
        field = f"{where}.delegate.namespace"
        if not isinstance(target, str):
            raise ShapeError(field, "a string", target)
        owner = view.tenant_of(target, config)
        if owner != tenant:
            whose = f"tenant {show(owner)}" if owner else "the platform"
            violations.append(
                Violation(
                    RULE,
                    field,
                    show(target),
                    f"is a namespace of {whose}: its VirtualServices would be published on "
                    "this gateway",
                    f"delegate only to namespaces of tenant {show(tenant)}",
                    owner or "platform",
                )
            )
    return violations


def destination_problem(
    raw: str, field: str, namespace: str, tenant: str, view: TenancyView, config: Config
) -> Violation | None:
    """An in-cluster destination (§3 forms) judged by the host engine; names outside the
    cluster are not restricted."""
    try:
        form = classify(normalise(raw), namespace, config.domain, view.is_namespace).form
    except HostError:
        form = None  # the engine says why
    if form is Form.EXTERNAL:
        return None
    problem = host_problem(raw, namespace, tenant, view, config, ROUTING)
    if problem is None:
        return None
    if problem.rule != "host-invalid":
        problem = problem._replace(
            rule=RULE,
            problem=f"{problem.problem}: a VirtualService bound to a gateway would publish it",
        )
    return problem.at(field, show(raw))


def _destination_hosts(spec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, host) of every destination: http route, mirror and mirrors; tcp and tls route."""
    for section in ("http", "tcp", "tls"):
        for where, rule in objects_at(spec, section, f"spec.{section}"):
            for route_field, route in objects_at(rule, "route", f"{where}.route"):
                yield _destination_of(route, route_field)
            if section != "http":
                continue
            mirror = mapping_at(rule, "mirror", f"{where}.mirror")
            if mirror:
                yield _host_of(mirror, f"{where}.mirror")
            for mirror_field, item in objects_at(rule, "mirrors", f"{where}.mirrors"):
                yield _destination_of(item, mirror_field)


def _destination_of(item: Mapping[str, Any], where: str) -> tuple[str, str]:
    destination = mapping_at(item, "destination", f"{where}.destination")
    return _host_of(destination, f"{where}.destination")


def _host_of(destination: Mapping[str, Any], where: str) -> tuple[str, str]:
    host = destination.get("host")
    if not isinstance(host, str):
        raise ShapeError(f"{where}.host", "a string", host)
    return f"{where}.host", host
