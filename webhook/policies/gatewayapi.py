"""Gateway API (SPEC.md §8): route hostnames and parents, Gateway and ListenerSet listeners,
and the Services a Gateway's addresses link it to."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.config.model import Config
from webhook.policies.common import (
    ShapeError,
    Violation,
    list_at,
    mapping_at,
    objects_at,
    show,
    string_list_at,
)
from webhook.policies.ownership import EDGE, Problem, collision_problem, host_problem
from webhook.tenancy.hosts import Form, HostError, classify, is_wildcard, normalise
from webhook.tenancy.view import TenancyView

GROUP = "gateway.networking.k8s.io"
# The experimental channel's group: before Gateway API v1.5 it held ListenerSet as
# XListenerSet (v1alpha1), the version Istio implemented first.
EXPERIMENTAL_GROUP = "gateway.networking.x-k8s.io"
# Routes that carry no hostnames: on a shared listener they take the whole port.
PORT_ROUTES = frozenset({"TCPRoute", "UDPRoute"})
# The kinds that attach listeners to a parent Gateway (spec.parentRef).
LISTENER_SETS = frozenset({"ListenerSet", "XListenerSet"})
# Parents that accept hostnames, and so may be shared by name in sharedParentRefs.
_LISTENER_PARENTS = frozenset(
    {(GROUP, "Gateway"), (GROUP, "ListenerSet"), (EXPERIMENTAL_GROUP, "XListenerSet")}
)


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
        parent.group,
        parent.kind,
    ) in _LISTENER_PARENTS and parent.ref in config.shared_parent_refs


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


# --- Gateway, ListenerSet and XListenerSet --------------------------------------------------


def check_listeners(
    obj: Mapping[str, Any],
    kind: str,
    namespace: str,
    tenant: str,
    view: TenancyView,
    config: Config,
) -> list[Violation]:
    """A Gateway's or ListenerSet's listeners publish their hostnames; a ListenerSet's parent
    follows the route rule, and on a shared parent every listener names its hostname. A
    Gateway's addresses may link it only to Services of its own tenant."""
    spec = mapping_at(obj, "spec", "spec")
    violations: list[Violation] = []
    shared_parent: str | None = None
    if kind == "Gateway":
        violations += check_addresses(spec, namespace, tenant, view, config)
    if kind in LISTENER_SETS:
        parent = read_parent(spec.get("parentRef"), "spec.parentRef", namespace)
        refused = parent_problem(parent, "spec.parentRef", namespace, tenant, view, config)
        if refused is not None:
            violations.append(refused)
        elif is_shared(parent, config):
            shared_parent = parent.ref
    for field, listener in objects_at(spec, "listeners", "spec.listeners"):
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


# --- a Gateway linked to existing pods ------------------------------------------------------

ADDRESS_RULE = "gateway-address"
HOSTNAME_ADDRESS = "Hostname"


def check_addresses(
    spec: Mapping[str, Any], namespace: str, tenant: str, view: TenancyView, config: Config
) -> list[Violation]:
    """Istio's manual deployment: a Gateway whose addresses hold a Hostname is not given pods
    of its own; Istio programs the pods of the Service (or ServiceEntry) of that host name with
    the Gateway's listeners. Only a Service in a namespace of the Gateway's tenant may be named,
    or a tenant would program the platform's shared ingress pods, or another tenant's."""
    violations: list[Violation] = []
    for field, address in objects_at(spec, "addresses", "spec.addresses"):
        address_type = address.get("type")
        if address_type is not None and not isinstance(address_type, str):
            raise ShapeError(f"{field}.type", "a string", address_type)
        value = address.get("value")
        if not isinstance(value, str):
            raise ShapeError(f"{field}.value", "a string", value)
        if not _names_a_host(address_type, value):
            continue
        problem = address_problem(value, namespace, tenant, view, config)
        if problem is not None:
            violations.append(problem.at(f"{field}.value", show(value)))
    return violations


def _names_a_host(address_type: str | None, value: str) -> bool:
    """Whether Istio reads the address as the host name of a Service.

    Istio takes an address without a type as a Hostname (the CRD's default, IPAddress, is
    filled in by the API server, but a stand-in CRD or an old one may not default it), so an
    untyped value is judged unless it is an IP address. The type is compared without case:
    refusing `hostname` costs nothing, guessing wrong about an implementation would.
    """
    if address_type is not None:
        return address_type.lower() == HOSTNAME_ADDRESS.lower()
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return True
    return False


def address_problem(
    raw: str, namespace: str, tenant: str, view: TenancyView, config: Config
) -> Problem | None:
    """Why a Gateway in `namespace` of `tenant` may not be linked to the Service `raw` names:
    every form a Service host name takes (`name` in the Gateway's namespace, `name.ns`,
    `name.ns.svc`, `name.ns.svc.<clusterDomain>`, any case, a trailing dot)."""
    fix = (
        "leave spec.addresses out (Istio then deploys this Gateway's own pods), or name a "
        f"Service in a namespace of tenant {show(tenant)} (e.g. my-gateway, "
        f"my-gateway.{namespace}.svc.{config.domain})"
    )
    try:
        host = normalise(raw)
    except HostError as exc:
        return Problem(
            "host-invalid",
            f"is not a valid host name: {exc}",
            f"name a Service, e.g. my-gateway.{namespace}.svc.{config.domain}",
        )
    if is_wildcard(host):
        return Problem(
            ADDRESS_RULE,
            "is a wildcard: a Gateway address names the one Service whose pods it programs",
            fix,
            "nobody",
        )
    form = classify(host, namespace, config.domain, view.is_namespace)
    if form.form is Form.SHORT:
        return None  # Istio reads a short name as a Service of the Gateway's own namespace
    if form.form is Form.SERVICE:
        assert form.namespace is not None
        owner = view.tenant_of(form.namespace, config)
        if owner == tenant:
            return None
        whose = f"tenant {show(owner)}" if owner else "the platform"
        return Problem(
            ADDRESS_RULE,
            f"names a Service of namespace {show(form.namespace)} of {whose}: Istio would "
            "program that Service's pods with this Gateway's listeners",
            fix,
            owner or "platform",
        )
    return Problem(
        ADDRESS_RULE,
        "is not a Service in a namespace of this tenant: Istio would program the pods of "
        "whatever Service or ServiceEntry has this host name with this Gateway's listeners",
        fix,
        "platform",
    )
