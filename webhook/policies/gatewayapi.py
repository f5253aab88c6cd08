"""Gateway API (SPEC.md §8): route hostnames and parents, Gateway and ListenerSet listeners."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.config.model import Config
from webhook.policies.common import (
    ShapeError,
    Violation,
    list_at,
    mapping_at,
    show,
    string_list_at,
)
from webhook.policies.ownership import EDGE, collision_problem, host_problem
from webhook.tenancy.view import TenancyView

GROUP = "gateway.networking.k8s.io"
# Routes that carry no hostnames: on a shared listener they take the whole port.
PORT_ROUTES = frozenset({"TCPRoute", "UDPRoute"})
# Parents that accept hostnames, and so may be shared by name in sharedParentRefs.
_LISTENER_PARENTS = frozenset({"Gateway", "ListenerSet"})


@dataclass(frozen=True)
class Parent:
    """A parentRef as Gateway API reads it: defaults filled in."""

    group: str
    kind: str
    namespace: str
    name: str

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def read_parent(ref: object, field: str, namespace: str) -> Parent:
    """A parentRef with its defaults: group gateway.networking.k8s.io, kind Gateway, the
    namespace of the object that holds it."""
    if not isinstance(ref, dict):
        raise ShapeError(field, "an object", ref)
    values = {}
    for key in ("group", "kind", "namespace", "name"):
        value = ref.get(key)
        if value is not None and not isinstance(value, str):
            raise ShapeError(f"{field}.{key}", "a string", value)
        values[key] = value
    if not values["name"]:
        raise ShapeError(f"{field}.name", "a parent's name", values["name"])
    group = GROUP if values["group"] is None else values["group"]
    return Parent(
        group,
        values["kind"] or "Gateway",
        values["namespace"] or namespace,
        values["name"] or "",
    )


def is_shared(parent: Parent, config: Config) -> bool:
    return (
        parent.group == GROUP
        and parent.kind in _LISTENER_PARENTS
        and parent.ref in config.shared_parent_refs
    )


def parent_problem(
    parent: Parent, field: str, namespace: str, tenant: str, view: TenancyView, config: Config
) -> Violation | None:
    """A parent outside the tenant's namespaces that is not shared with every tenant."""
    if parent.namespace == namespace or view.tenant_of(parent.namespace, config) == tenant:
        return None
    if is_shared(parent, config):
        return None
    owner = view.tenant_of(parent.namespace, config)
    whose = f"tenant {show(owner)}" if owner else "the platform"
    shared = ", ".join(config.shared_parent_refs) or "none configured"
    return Violation(
        "parent-ref",
        field,
        show(parent.ref),
        f"is a {parent.kind} in namespace {show(parent.namespace)} of {whose}, not shared "
        "with other tenants",
        f"attach to a parent in your tenant's namespaces or a shared one ({shared})",
        owner or "platform",
    )


# --- routes ----------------------------------------------------------------------------------


def check_route(
    obj: Mapping[str, Any],
    kind: str,
    namespace: str,
    name: str,
    tenant: str,
    view: TenancyView,
    config: Config,
) -> list[Violation]:
    """HTTPRoute, GRPCRoute, TLSRoute (hostnames) and TCPRoute, UDPRoute (none)."""
    spec = mapping_at(obj, "spec", "spec")
    hostnames = None if kind in PORT_ROUTES else string_list_at(spec, "hostnames", "spec.hostnames")
    violations: list[Violation] = []
    shared: list[str] = []
    for index, ref in enumerate(list_at(spec, "parentRefs", "spec.parentRefs")):
        field = f"spec.parentRefs[{index}]"
        parent = read_parent(ref, field, namespace)
        refused = parent_problem(parent, field, namespace, tenant, view, config)
        if refused is not None:
            violations.append(refused)
        elif is_shared(parent, config):
            if kind in PORT_ROUTES:
                violations.append(
                    Violation(
                        "shared-parent",
                        field,
                        show(parent.ref),
                        f"is shared by every tenant: a {kind} takes the whole port of the "
                        "listener it attaches to",
                        f"attach the {kind} to a Gateway in your tenant's namespaces",
                        "platform",
                    )
                )
            shared.append(parent.ref)
    if shared and kind not in PORT_ROUTES and not hostnames:
        violations.append(
            Violation(
                "shared-parent",
                "spec.hostnames",
                "absent" if hostnames is None else "[]",
                f"leaves a route on the shared parent {show(shared[0])} without hostnames: it "
                "would take every hostname its listener accepts, paths of other tenants' hosts "
                "too",
                "list the host names this route serves",
                "platform",
            )
        )
    for index, raw in enumerate(hostnames or []):
        field = f"spec.hostnames[{index}]"
        problem = host_problem(raw, namespace, tenant, view, config, EDGE)
        if problem is None:
            problem = collision_problem(raw, namespace, name, tenant, view, config, kind=kind)
        if problem is not None:
            violations.append(problem.at(field, show(raw)))
    return violations


# --- Gateway and ListenerSet -----------------------------------------------------------------


def check_listeners(
    obj: Mapping[str, Any],
    kind: str,
    namespace: str,
    tenant: str,
    view: TenancyView,
    config: Config,
) -> list[Violation]:
    """A Gateway's or ListenerSet's listeners publish their hostnames; a ListenerSet's parent
    follows the route rule, and on a shared parent every listener names its hostname."""
    spec = mapping_at(obj, "spec", "spec")
    violations: list[Violation] = []
    shared_parent: str | None = None
    if kind == "ListenerSet":
        parent = read_parent(spec.get("parentRef"), "spec.parentRef", namespace)
        refused = parent_problem(parent, "spec.parentRef", namespace, tenant, view, config)
        if refused is not None:
            violations.append(refused)
        elif is_shared(parent, config):
            shared_parent = parent.ref
    for index, listener in enumerate(list_at(spec, "listeners", "spec.listeners")):
        field = f"spec.listeners[{index}]"
        if not isinstance(listener, dict):
            raise ShapeError(field, "an object", listener)
        hostname = listener.get("hostname")
        if hostname is None:
            if shared_parent is not None:
                violations.append(
                    Violation(
                        "shared-parent",
                        f"{field}.hostname",
                        "absent",
                        f"leaves a listener on the shared parent {show(shared_parent)} open "
                        "to every hostname on its port, other tenants' too",
                        "set the host name this listener serves",
                        "platform",
                    )
                )
            continue
        if not isinstance(hostname, str):
            raise ShapeError(f"{field}.hostname", "a string", hostname)
        problem = host_problem(hostname, namespace, tenant, view, config, EDGE)
        if problem is not None:
            violations.append(problem.at(f"{field}.hostname", show(hostname)))
    return violations
