"""Sidecar (SPEC.md §11): a tenant's Sidecar may not widen discovery beyond its tenant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.config.model import Config
from webhook.policies.common import (
    Violation,
    list_at,
    mapping_at,
    objects_at,
    show,
    string_list_at,
)
from webhook.tenancy.view import TenancyView

RULE = "sidecar-egress"


def check(
    obj: Mapping[str, Any], namespace: str, tenant: str, view: TenancyView, config: Config
) -> list[Violation]:
    spec = mapping_at(obj, "spec", "spec")
    egress = list_at(spec, "egress", "spec.egress")
    if not egress and not mapping_at(spec, "workloadSelector", "spec.workloadSelector"):
        # A namespace-wide Sidecar without egress falls back to the mesh-wide default; one
        # with a workloadSelector inherits the namespace's Sidecar, so it widens nothing.
        return [
            Violation(
                RULE,
                "spec.egress",
                "absent" if spec.get("egress") is None else "[]",
                "on a namespace-wide Sidecar imports the mesh-wide default, every namespace",
                f"list spec.egress[0].hosts, e.g. {show(_example(config))}",
            )
        ]
    violations: list[Violation] = []
    for where, listener in objects_at(spec, "egress", "spec.egress"):
        hosts = string_list_at(listener, "hosts", f"{where}.hosts") or []
        for host_index, entry in enumerate(hosts):
            violation = entry_problem(
                entry, f"{where}.hosts[{host_index}]", namespace, tenant, view, config
            )
            if violation is not None:
                violations.append(violation)
    return violations


def entry_problem(
    entry: str, field: str, namespace: str, tenant: str, view: TenancyView, config: Config
) -> Violation | None:
    """An egress host `namespace/host`: the namespace part decides what the proxy imports."""
    source, slash, _ = entry.partition("/")
    if slash and (
        source in (".", "~", namespace)
        or source in config.shared_namespaces
        or view.tenant_of(source, config) == tenant
    ):
        return None
    if not slash:
        problem, owner = "is not of the form namespace/host", None
    elif source == "*":
        problem, owner = "imports the services of every namespace of the mesh", "nobody"
    else:
        other = view.tenant_of(source, config)
        whose = f"tenant {show(other)}" if other else "the platform, not shared"
        problem, owner = f"imports namespace {show(source)} of {whose}", other or "platform"
    return Violation(
        RULE,
        field,
        show(entry),
        problem,
        f"import only your tenant's namespaces (./*) or shared ones "
        f"({', '.join(config.shared_namespaces) or 'none configured'})",
        owner,
    )


def _example(config: Config) -> list[str]:
    return ["./*", *(f"{shared}/*" for shared in config.shared_namespaces)]
