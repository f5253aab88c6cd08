"""Admission decisions: dispatch a request to its policies and build the response. Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from webhook.admission.patch import Path as PatchPath
from webhook.admission.patch import set_values
from webhook.admission.review import AdmissionRequest, allow, deny
from webhook.config.model import Config, Enforcement
from webhook.policies import gatewayapi as gatewayapi_policy
from webhook.policies import istiogateway as istio_gateway_policy
from webhook.policies import managed as managed_policy
from webhook.policies import namespace as namespace_policy
from webhook.policies import pod as pod_policy
from webhook.policies import service as service_policy
from webhook.policies import sidecar as sidecar_policy
from webhook.policies import tenant as tenant_policy
from webhook.policies import virtualservice as vs_policy
from webhook.policies.common import (
    ShapeError,
    Subject,
    Violation,
    mapping_at,
    show,
    string_list_at,
)
from webhook.policies.exportto import check_export_to, default_export_to
from webhook.tenancy.view import TenancyView

Endpoint = Literal["validate", "mutate"]
ISTIO = "networking.istio.io"
GATEWAY_API = gatewayapi_policy.GROUP
GATEWAY_API_EXPERIMENTAL = gatewayapi_policy.EXPERIMENTAL_GROUP
TENANT_GROUP = "tenant-guard.io"


@dataclass
class Decision:
    """A response and what it was based on, for logs and metrics.

    Nothing changes a decision once made; it is not a frozen dataclass because one is made
    for every request and a frozen one costs several times as much to construct."""

    response: dict[str, Any]
    allowed: bool
    kind: str
    tenant: str | None = None
    violations: list[Violation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    patched: bool = False
    reason: str = ""  # why it was decided without policies: delete, platform namespace, ...


@dataclass
class Context:
    """One request's arguments for its kind's policies. Not frozen: it is made for every
    request and read only by the adapters below, and a frozen dataclass costs several times
    as much to construct."""

    request: AdmissionRequest
    subject: Subject
    obj: Mapping[str, Any]
    tenant: str | None
    view: TenancyView
    config: Config


Validator = Callable[[Context], list[Violation]]
Updates = list[tuple[PatchPath, Any]]  # (path in the object, value to write)
Mutator = Callable[[Context], tuple[Updates, list[str]]]  # (updates, warnings)


@dataclass(frozen=True)
class Kind:
    """How tenant-guard handles one resource: the kind its objects must carry, and policies."""

    kind: str
    validate: Validator | None = None
    mutate: Mutator | None = None
    # Namespaces are judged whatever their tenancy; everything else only in tenant namespaces.
    tenant_scoped: bool = True
    # The kind its objects carry, when `kind` has to say more (two APIs have a Gateway).
    object_kind: str = ""
    # What judging it cannot know without a cluster's gateway pods (analyze says so offline).
    without_cluster: str = ""
    # DELETE is allowed without a look unless the kind says otherwise (a Tenant in use).
    validate_delete: Validator | None = None


# --- per-kind policy adapters ----------------------------------------------------------------


def _validate_virtualservice(ctx: Context) -> list[Violation]:
    assert ctx.tenant is not None and ctx.subject.namespace is not None
    return vs_policy.check(
        ctx.obj, ctx.subject.namespace, ctx.subject.name, ctx.tenant, ctx.view, ctx.config
    )


def _validate_istio_gateway(ctx: Context) -> list[Violation]:
    assert ctx.tenant is not None and ctx.subject.namespace is not None
    return istio_gateway_policy.check(
        ctx.obj, ctx.subject.namespace, ctx.tenant, ctx.view, ctx.config
    )


def _validate_sidecar(ctx: Context) -> list[Violation]:
    assert ctx.tenant is not None and ctx.subject.namespace is not None
    return sidecar_policy.check(ctx.obj, ctx.subject.namespace, ctx.tenant, ctx.view, ctx.config)


def _validate_route(ctx: Context) -> list[Violation]:
    assert ctx.tenant is not None and ctx.subject.namespace is not None
    return gatewayapi_policy.check_route(
        ctx.obj,
        ctx.subject.kind,
        ctx.subject.namespace,
        ctx.subject.name,
        ctx.tenant,
        ctx.view,
        ctx.config,
    )


def _validate_listeners(ctx: Context) -> list[Violation]:
    assert ctx.tenant is not None and ctx.subject.namespace is not None
    return gatewayapi_policy.check_listeners(
        ctx.obj,
        str(ctx.obj.get("kind")),  # Gateway, ListenerSet or XListenerSet, checked already
        ctx.subject.namespace,
        ctx.tenant,
        ctx.view,
        ctx.config,
    )


def _validate_export_to(tilde: bool) -> Validator:
    def validate(ctx: Context) -> list[Violation]:
        assert ctx.subject.namespace is not None
        spec = mapping_at(ctx.obj, "spec", "spec")
        export_to = string_list_at(spec, "exportTo", "spec.exportTo")
        return check_export_to(export_to, ctx.subject.namespace, tilde=tilde)

    return validate


def _mutate_export_to(ctx: Context) -> tuple[Updates, list[str]]:
    """Fill an absent or empty exportTo so a tenant never has to write it (SPEC.md §4)."""
    assert ctx.tenant is not None and ctx.subject.namespace is not None
    spec = mapping_at(ctx.obj, "spec", "spec")
    if string_list_at(spec, "exportTo", "spec.exportTo"):
        return [], []
    if ctx.subject.kind == "VirtualService":
        value = vs_policy.default_export(
            ctx.obj, ctx.subject.namespace, ctx.tenant, ctx.view, ctx.config
        )
    else:
        value = default_export_to(ctx.subject.namespace, ())
    return [(("spec", "exportTo"), value)], [
        f"{ctx.subject.ref}: spec.exportTo set to {show(value)} (tenant-local default)"
    ]


def _validate_pod(ctx: Context) -> list[Violation]:
    if ctx.request.operation != "UPDATE":
        return []
    assert ctx.tenant is not None
    return pod_policy.check_update(ctx.obj, _old_object(ctx.request), ctx.tenant, ctx.config)


def _mutate_pod(ctx: Context) -> tuple[Updates, list[str]]:
    if ctx.request.operation != "CREATE":
        return [], []
    assert ctx.tenant is not None
    bounds = ctx.view.proxy_bounds(ctx.tenant, ctx.config)
    mutation = pod_policy.mutate(ctx.obj, ctx.subject.ref, ctx.tenant, ctx.config, bounds)
    return list(mutation.updates), mutation.warnings


def _validate_namespace(ctx: Context) -> list[Violation]:
    old = _old_object(ctx.request) if ctx.request.operation == "UPDATE" else None
    user = ctx.request.user_info
    return namespace_policy.check(ctx.obj, old, user.username, user.groups, ctx.config, ctx.view)


def _mutate_namespace(ctx: Context) -> tuple[Updates, list[str]]:
    """An owner's new namespace gets its tenant's label (SPEC.md §12)."""
    if ctx.request.operation != "CREATE":
        return [], []
    user = ctx.request.user_info
    updates, warnings = namespace_policy.owner_label(
        ctx.obj, ctx.subject.ref, user.username, user.groups, ctx.config, ctx.view
    )
    return list(updates), warnings


def _validate_service(ctx: Context) -> list[Violation]:
    assert ctx.subject.namespace is not None
    return service_policy.check(ctx.obj, ctx.subject.namespace, ctx.config)


def _validate_tenant(ctx: Context) -> list[Violation]:
    return tenant_policy.check(ctx.obj, ctx.subject.name, ctx.view, ctx.config)


def _validate_tenant_delete(ctx: Context) -> list[Violation]:
    return tenant_policy.check_delete(ctx.subject.name, ctx.view, ctx.config)


def _old_object(request: AdmissionRequest) -> Mapping[str, Any]:
    if request.old_object is None:
        raise ShapeError("oldObject", "the stored object on UPDATE", None)
    return request.old_object


# A static table: (API group, resource) -> handling. Dispatch is on group and resource, never
# on version, so v1, v1beta1 and v1alpha3 Istio requests are judged alike.
KINDS: Mapping[tuple[str, str], Kind] = {
    (ISTIO, "virtualservices"): Kind("VirtualService", _validate_virtualservice, _mutate_export_to),
    (ISTIO, "destinationrules"): Kind(
        "DestinationRule", _validate_export_to(False), _mutate_export_to
    ),
    (ISTIO, "serviceentries"): Kind("ServiceEntry", _validate_export_to(True), _mutate_export_to),
    ("", "pods"): Kind("Pod", _validate_pod, _mutate_pod),
    ("", "services"): Kind("Service", _validate_service),
    ("", "namespaces"): Kind(
        "Namespace", _validate_namespace, _mutate_namespace, tenant_scoped=False
    ),
    # The edge (SPEC.md §8, §11).
    (ISTIO, "gateways"): Kind(
        "Gateway", _validate_istio_gateway, without_cluster=istio_gateway_policy.WITHOUT_CLUSTER
    ),
    (ISTIO, "sidecars"): Kind("Sidecar", _validate_sidecar),
    (GATEWAY_API, "httproutes"): Kind("HTTPRoute", _validate_route),
    (GATEWAY_API, "grpcroutes"): Kind("GRPCRoute", _validate_route),
    (GATEWAY_API, "tlsroutes"): Kind("TLSRoute", _validate_route),
    (GATEWAY_API, "tcproutes"): Kind("TCPRoute", _validate_route),
    (GATEWAY_API, "udproutes"): Kind("UDPRoute", _validate_route),
    # kubectl's name for it: messages, logs and metrics must not confuse it with Istio's.
    (GATEWAY_API, "gateways"): Kind(
        f"Gateway.{GATEWAY_API}", _validate_listeners, object_kind="Gateway"
    ),
    (GATEWAY_API, "listenersets"): Kind("ListenerSet", _validate_listeners),
    # The experimental channel's name for ListenerSet before Gateway API v1.5, judged alike.
    (GATEWAY_API_EXPERIMENTAL, "xlistenersets"): Kind("XListenerSet", _validate_listeners),
    # Tenants as objects (SPEC.md §12): cluster-scoped, judged whatever the namespaces.
    (TENANT_GROUP, "tenants"): Kind(
        "Tenant",
        _validate_tenant,
        tenant_scoped=False,
        validate_delete=_validate_tenant_delete,
    ),
}


# --- the decision ----------------------------------------------------------------------------


def decide(
    request: AdmissionRequest, endpoint: Endpoint, view: TenancyView, config: Config
) -> Decision:
    """The answer to one admission request. Pure: no I/O, no clock, no globals."""
    # Each field of a pydantic model costs more to read than a local: read them once.
    uid = request.uid
    group, plural = request.resource.group, request.resource.resource
    sub_resource = request.sub_resource
    operation = request.operation
    if not sub_resource and managed_policy.covers(group, plural):
        managed = _decide_managed(request, view, config)
        if managed is not None:
            return managed
    handling = KINDS.get((group, plural))
    if handling is None or sub_resource:
        what = "/".join(p for p in (group or "core", plural, sub_resource) if p)
        return _refuse(
            uid,
            request.kind.kind,
            f"tenant-guard has no policy for {what}; the webhook "
            "configuration should not send it here, so it is not admitted",
        )
    if operation == "DELETE":
        if handling.validate_delete is not None and endpoint == "validate":
            return _decide_delete(request, handling, view, config)
        return Decision(allow(uid), True, handling.kind, reason="delete")
    if operation != "CREATE" and operation != "UPDATE":
        return _refuse(uid, handling.kind, f"operation {operation} is not handled")

    obj = request.obj
    if obj is None:
        return _refuse(uid, handling.kind, f"{operation} request without an object")
    problem = _kind_mismatch(obj, group, handling.object_kind or handling.kind) or (
        _metadata_problem(obj)
    )
    if problem:
        return _refuse(uid, handling.kind, problem)

    namespace = request.namespace
    tenant = view.tenant_of(namespace, config)
    subject = Subject(
        handling.kind, namespace if handling.tenant_scoped else None, _object_name(request, obj)
    )
    user = request.user_info
    if config.exempt.includes(user.username, user.groups):
        return Decision(allow(uid), True, handling.kind, tenant, reason="exempt")
    if handling.tenant_scoped and (tenant is None or namespace is None):
        return Decision(allow(uid), True, handling.kind, None, reason="platform namespace")

    ctx = Context(request, subject, obj, tenant, view, config)
    try:
        if endpoint == "mutate":
            return _mutate(ctx, handling)
        return _validate(ctx, handling)
    except ShapeError as exc:
        return _refuse(
            uid,
            handling.kind,
            f"{subject.ref}: the object does not have the shape of a {handling.kind}: {exc}",
            tenant,
        )


def _validate(ctx: Context, handling: Kind) -> Decision:
    uid = ctx.request.uid
    violations = handling.validate(ctx) if handling.validate else []
    if not violations:
        return Decision(allow(uid), True, handling.kind, ctx.tenant)
    ref = ctx.subject.ref
    mode = (
        ctx.config.enforcement
        if not handling.tenant_scoped
        else ctx.view.enforcement_of(ctx.subject.namespace, ctx.config)
    )
    if mode is Enforcement.WARN:
        warnings = [f"tenant-guard (warn mode): {v.brief(ref)}" for v in violations]
        return Decision(
            allow(uid, warnings),
            True,
            handling.kind,
            ctx.tenant,
            violations,
            warnings,
            reason="warn mode",
        )
    return Decision(
        deny(uid, denial_message(ref, violations)), False, handling.kind, ctx.tenant, violations
    )


def _mutate(ctx: Context, handling: Kind) -> Decision:
    uid = ctx.request.uid
    if handling.mutate is None:
        return Decision(allow(uid), True, handling.kind, ctx.tenant)
    updates, warnings = handling.mutate(ctx)
    patch = set_values(ctx.obj, updates)
    return Decision(
        allow(uid, warnings, patch),
        True,
        handling.kind,
        ctx.tenant,
        warnings=warnings,
        patched=bool(patch),
    )


def _decide_delete(
    request: AdmissionRequest, handling: Kind, view: TenancyView, config: Config
) -> Decision:
    """DELETE of a kind that must be looked at (a Tenant): the stored object is `oldObject`."""
    uid = request.uid
    user = request.user_info
    if config.exempt.includes(user.username, user.groups):
        return Decision(allow(uid), True, handling.kind, reason="exempt")
    stored = request.old_object or {}
    subject = Subject(handling.kind, None, _object_name(request, stored))
    ctx = Context(request, subject, stored, subject.name, view, config)
    assert handling.validate_delete is not None
    return _validate(ctx, Kind(handling.kind, handling.validate_delete, tenant_scoped=False))


def _decide_managed(
    request: AdmissionRequest, view: TenancyView, config: Config
) -> Decision | None:
    """Objects tenant-guard manages (SPEC.md §11), judged before anything else, DELETE included.

    None: nothing to object to here, and the kind has policies of its own that come next.
    """
    uid, kind = request.uid, request.kind.kind
    handling = KINDS.get((request.resource.group, request.resource.resource))
    namespace = request.namespace
    tenant = view.tenant_of(namespace, config)
    deleting = request.operation == "DELETE"
    # On DELETE the API server sends `object: null` and the stored object as `oldObject`.
    obj = None if deleting else request.obj
    stored = request.old_object
    user = request.user_info
    violations: list[Violation] = []
    try:
        if not (
            managed_policy.is_managed(obj, "") or managed_policy.is_managed(stored, "oldObject.")
        ):
            return None  # not about a managed object: the kind's own handling decides
        if tenant is not None:
            violations = managed_policy.check(
                request.operation, obj, stored, user.username, user.groups, config
            )
    except ShapeError as exc:
        return _refuse(uid, kind, f"the object does not have the shape of a {kind}: {exc}")
    if violations:
        subject = Subject(kind, namespace, _object_name(request, obj or stored or {}))
        ctx = Context(request, subject, obj or stored or {}, tenant, view, config)
        # Like the namespace label guards: the global mode only, never the namespace's own.
        return _validate(ctx, Kind(kind, lambda _: violations, tenant_scoped=False))
    if deleting or handling is None:
        reason = "delete" if deleting else "managed object, no violation"
        return Decision(allow(uid), True, kind, tenant, reason=reason)
    return None


def denial_message(ref: str, violations: list[Violation]) -> str:
    """Every violation at once, each readable on its own (ArgoCD shows this as the sync error)."""
    if len(violations) == 1:
        return violations[0].render(ref)
    lines = [f"{len(violations)} tenant-guard violations:"]
    lines += [f"({n}) {v.render(ref)}" for n, v in enumerate(violations, 1)]
    return "\n".join(lines)


def _refuse(uid: str, kind: str, message: str, tenant: str | None = None) -> Decision:
    """A request that could not be checked is denied, never allowed (fail closed)."""
    return Decision(
        deny(uid, message, code=400, reason="BadRequest"),
        False,
        kind,
        tenant,
        reason="not checkable",
    )


def _kind_mismatch(obj: Mapping[str, Any], group: str, kind: str) -> str | None:
    # A crafted request can name one resource and carry another; check what it carries.
    api_version = obj.get("apiVersion")
    actual_group = api_version.rpartition("/")[0] if isinstance(api_version, str) else None
    if obj.get("kind") != kind or actual_group != group:
        return (
            f"the object is {obj.get('kind')!r} of apiVersion {api_version!r}, but the "
            f"request is for {kind} of group {group or 'core'!r}"
        )
    return None


def _metadata_problem(obj: Mapping[str, Any]) -> str | None:
    # Every rule reads names and labels from metadata: an object without a usable one is not
    # checkable, whatever its kind.
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        return f"the object's metadata must be an object, got {show(metadata)}"
    return None


def _object_name(request: AdmissionRequest, obj: Mapping[str, Any]) -> str:
    # Mutating webhooks see no name for generateName objects: show the prefix.
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    name = request.name or metadata.get("name")
    if isinstance(name, str) and name:
        return name
    prefix = metadata.get("generateName")
    return f"{prefix}<generated>" if isinstance(prefix, str) else "<unnamed>"
