"""Test builders: configs, tenancy views, and admission requests derived from captured fixtures."""

from __future__ import annotations

import base64
import copy
import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from webhook.admission.decide import Decision, decide
from webhook.admission.review import AdmissionRequest, AdmissionReview
from webhook.config.model import ENFORCEMENT_LABEL, Config, parse_config
from webhook.tenancy.claims import OBJECT_SOURCE, TenantEntry
from webhook.tenancy.gatewaypods import GatewayPods, index_gateway_pods
from webhook.tenancy.view import TenancyView, static_view

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = REPO / "examples" / "config.yaml"
__all__ = ["ENFORCEMENT_LABEL", "EXAMPLE_CONFIG"]


# AdmissionReviews captured from a real kube-apiserver by `make capture-fixtures`
# (tests/fixtures/capture.py; tests/fixtures/admission/README.md says how and against what).
FIXTURES = REPO / "tests" / "fixtures" / "admission"


# Captured fixtures the tests derive from.
VS_CREATE = "virtualservice-create-short-host.json"  # tenant-a/reviews, hosts [reviews]
VS_CREATE_TWIN = "virtualservice-create-kubectl-create.json"  # tenant-a/details, not dry-run
VS_CREATE_DRYRUN = "virtualservice-create-dryrun-short-host.json"  # tenant-a/details, dry-run
VS_UPDATE = "virtualservice-update-exportto-weights.json"  # tenant-a/reviews, with oldObject
VS_UPDATE_DRYRUN = "virtualservice-update-dryrun-exportto-star.json"
VS_DELETE = "virtualservice-delete.json"  # tenant-b/reviews-hijack
VS_DELETE_DRYRUN = "virtualservice-delete-dryrun.json"
VS_V1ALPHA3 = "virtualservice-create-v1alpha3-cross-tenant-host.json"  # tenant-b
VS_V1BETA1 = "virtualservice-create-server-side-apply-v1beta1.json"  # tenant-b, SSA
DR_CREATE = "destinationrule-create-subsets-exportto.json"  # tenant-a/reviews
DR_UPDATE = "destinationrule-update-add-subset.json"
SE_CREATE = "serviceentry-create-external-dns.json"  # tenant-a/external-api
NS_CREATE = "namespace-create-tenant-b.json"  # Namespace tenant-b, labelled tenant=tenant-b
NS_CREATE_UNLABELLED = "namespace-create-kubectl-create-no-labels.json"  # Namespace scratch
NS_UPDATE = "namespace-update-add-label.json"  # Namespace tenant-b gets env=dev
POD_CREATE = "pod-create-plain.json"  # tenant-a/plain
POD_UPDATE = "pod-update-label.json"  # tenant-a/plain gets team=alpha
# The edge (README: The rules: the edge)
GW_CREATE = "gateway-create-https-credential.json"  # Istio Gateway tenant-a/public-gateway
HTTPROUTE_CREATE = "httproute-create-parentref.json"  # tenant-a/reviews, parent tenant-a-gateway
HTTPROUTE_CREATE_DRYRUN = "httproute-create-dryrun-parentref.json"  # the same, dry-run
SIDECAR_CREATE = "sidecar-create-egress-hosts.json"  # tenant-a/default, ./* and istio-system/*
# (group, resource, kind) for retarget()
ISTIO_GATEWAY = ("networking.istio.io", "gateways", "Gateway")
ISTIO_SIDECAR = ("networking.istio.io", "sidecars", "Sidecar")

# Who sends requests. The fixtures were captured as kubernetes-admin in system:masters.
ADMIN = {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}
TENANT_USER = {"username": "alice@example.com", "groups": ["tenant-a-devs", "system:authenticated"]}

NAMESPACES: dict[str, dict[str, str]] = {
    "tenant-a": {"tenant": "tenant-a"},
    "tenant-a-dev": {"tenant": "tenant-a"},
    "tenant-b": {"tenant": "tenant-b"},
    "tenant-c": {"tenant": "tenant-c"},
    "istio-system": {},
    "kube-system": {},
    # Labelled, but not with the tenant label: still a platform namespace.
    "legacy": {"team": "ops"},
}

BASE_CONFIG: dict[str, Any] = {
    "tenantLabel": "tenant",
    "clusterDomain": "cluster.local",
    "enforcement": "enforce",
    "unclaimedHosts": "deny",
    "sharedGateways": ["istio-system/public-gateway"],
    "sharedGatewayWorkloads": [{"istio": "ingressgateway", "app": "istio-ingressgateway"}],
    "sharedParentRefs": ["infra/shared-gateway"],
    "sharedNamespaces": ["istio-system"],
    "labelAdmins": {"groups": ["system:masters"], "users": []},
    "exempt": {"groups": [], "users": []},
    "proxyDefaults": {"cpu": "100m", "cpuLimit": "500m", "memory": "128Mi", "memoryLimit": "256Mi"},
    "tenants": {
        "tenant-a": {
            "hosts": ["a.example.com", "*.a.example.com", "shop.example.com"],
            "proxy": {"cpuLimit": "1"},
        },
        "tenant-b": {"hosts": ["shop.example.org", "*.b.example.com"]},
        "tenant-c": {"hosts": []},
    },
    "namespaces": NAMESPACES,
}


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


KEEP: Any = _Marker("KEEP")  # leave this part of the fixture as captured
ABSENT: Any = _Marker("ABSENT")  # remove the key


# --- configs and views -----------------------------------------------------------------------


def config_data(**changes: Any) -> dict[str, Any]:
    """BASE_CONFIG with top-level keys replaced (ABSENT removes a key)."""
    data = copy.deepcopy(BASE_CONFIG)
    for key, value in changes.items():
        if value is ABSENT:
            data.pop(key, None)
        else:
            data[key] = copy.deepcopy(value)
    return data


@functools.lru_cache(maxsize=1)
def default_config() -> Config:
    return parse_config(config_data())


def make_config(**changes: Any) -> Config:
    """A Config built with parse_config from BASE_CONFIG plus top-level changes."""
    return parse_config(config_data(**changes)) if changes else default_config()


def make_view(
    namespaces: Mapping[str, Mapping[str, str]] | None = None,
    *,
    labels: Mapping[str, Mapping[str, str]] | None = None,
    routes: Mapping[str, Iterable[tuple[str, str]]] | None = None,
    gateway_pods: Mapping[str, Mapping[str, str]] | GatewayPods | None = None,
) -> TenancyView:
    """A frozen view of NAMESPACES (or `namespaces`), extra `labels` merged per namespace,
    `routes` {route_key: [(namespace, name), ...]} for collision checks, and the cluster's
    `gateway_pods` {"namespace/name": labels} (None: offline, no cluster to read them from)."""
    merged = {name: dict(values) for name, values in (namespaces or NAMESPACES).items()}
    for name, extra in (labels or {}).items():
        merged.setdefault(name, {}).update(extra)
    view = static_view(merged)
    if routes is None and gateway_pods is None:
        return view
    pods = gateway_pods
    if pods is not None and not isinstance(pods, GatewayPods):
        pods = index_gateway_pods(pods)
    return TenancyView(
        namespaces=view.namespaces,
        routes={key: frozenset(refs) for key, refs in (routes or {}).items()},
        gateway_pods=pods,
    )


# --- admission requests ----------------------------------------------------------------------


@functools.cache
def _fixture_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def load_review(fixture: str, *, mutating: bool = False) -> dict[str, Any]:
    """A fresh copy of a captured AdmissionReview (the mutating webhook's copy if asked)."""
    path = FIXTURES / "mutating" / fixture if mutating else FIXTURES / fixture
    return json.loads(_fixture_text(path))


_OPTIONS = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}


def derive(
    fixture: str,
    *,
    mutating: bool = False,
    namespace: Any = KEEP,
    name: Any = KEEP,
    operation: Any = KEEP,
    spec: Any = KEEP,
    labels: Any = KEEP,
    annotations: Any = KEEP,
    old_spec: Any = KEEP,
    old_labels: Any = KEEP,
    old_annotations: Any = KEEP,
    user: Any = KEEP,
    dry_run: Any = KEEP,
    uid: Any = KEEP,
) -> dict[str, Any]:
    """A captured AdmissionReview with the given parts changed (labels/annotations ABSENT or
    None remove the map). UPDATE without a captured oldObject copies the object first; DELETE
    moves the object to oldObject, as the API server sends it."""
    review = load_review(fixture, mutating=mutating)
    request = review["request"]
    objects = [o for o in (request.get("object"), request.get("oldObject")) if o]
    namespaced = request["kind"]["kind"] != "Namespace"
    if namespace is not KEEP:
        request["namespace"] = namespace
        for obj in objects:
            if namespaced:
                obj["metadata"]["namespace"] = namespace
    if name is not KEEP:
        request["name"] = name
        for obj in objects:
            obj["metadata"]["name"] = name
    if operation is not KEEP:
        request["operation"] = operation
        request.setdefault("options", {})["kind"] = _OPTIONS.get(operation, "")
        if operation == "UPDATE" and request.get("oldObject") is None:
            request["oldObject"] = copy.deepcopy(request["object"])
        if operation == "CREATE":
            request["oldObject"] = None
    if request.get("object") is not None:
        _change(request["object"], spec, labels, annotations)
    if any(part is not KEEP for part in (old_spec, old_labels, old_annotations)):
        if request.get("oldObject") is None:
            request["oldObject"] = copy.deepcopy(request["object"])
        _change(request["oldObject"], old_spec, old_labels, old_annotations)
    if request["operation"] == "DELETE" and request.get("object") is not None:
        request["oldObject"] = request.get("oldObject") or request["object"]
        request["object"] = None
    if user is not KEEP:
        request["userInfo"] = copy.deepcopy(user)
    if dry_run is not KEEP:
        request["dryRun"] = dry_run
    if uid is not KEEP:
        request["uid"] = uid
    return review


def _change(obj: dict[str, Any], spec: Any, labels: Any, annotations: Any) -> None:
    if spec is not KEEP:
        obj["spec"] = copy.deepcopy(spec)
    for key, value in (("labels", labels), ("annotations", annotations)):
        if value is KEEP:
            continue
        if value is ABSENT or value is None:
            obj["metadata"].pop(key, None)
        else:
            obj["metadata"][key] = dict(value)


def retarget(
    review: dict[str, Any], group: str, resource: str, kind: str, version: str | None = None
) -> dict[str, Any]:
    """The review as the API server would send it for another resource of the same shape
    (a GRPCRoute from the captured HTTPRoute, say): kind, resource and object re-labelled."""
    request = review["request"]
    version = version or request["kind"]["version"]
    request["kind"] = {"group": group, "version": version, "kind": kind}
    request["resource"] = {"group": group, "version": version, "resource": resource}
    request["requestKind"] = dict(request["kind"])
    request["requestResource"] = dict(request["resource"])
    for obj in (request.get("object"), request.get("oldObject")):
        if obj:
            obj["kind"] = kind
            obj["apiVersion"] = f"{group}/{version}"
    return review


GATEWAY_API = "gateway.networking.k8s.io"
GATEWAY_API_EXPERIMENTAL = "gateway.networking.x-k8s.io"
_GATEWAY_API_RESOURCES = {
    "HTTPRoute": "httproutes",
    "GRPCRoute": "grpcroutes",
    "TLSRoute": "tlsroutes",
    "TCPRoute": "tcproutes",
    "UDPRoute": "udproutes",
    "Gateway": "gateways",
    "ListenerSet": "listenersets",
}
# The experimental channel's own group (before Gateway API v1.5): kind -> (resource, version).
_EXPERIMENTAL_RESOURCES = {"XListenerSet": ("xlistenersets", "v1alpha1")}


def gateway_api_review(
    kind: str,
    spec: Any,
    *,
    version: str | None = None,
    fixture: str = HTTPROUTE_CREATE,
    **changes: Any,
) -> dict[str, Any]:
    """A Gateway API review derived from the captured HTTPRoute CREATE (only HTTPRoutes were
    captured): same envelope, user and options; kind, resource, version and spec as given.
    XListenerSet goes to the experimental group, gateway.networking.x-k8s.io/v1alpha1."""
    review = derive(fixture, spec=spec, **changes)
    if kind in _EXPERIMENTAL_RESOURCES:
        resource, default_version = _EXPERIMENTAL_RESOURCES[kind]
        return retarget(
            review, GATEWAY_API_EXPERIMENTAL, resource, kind, version or default_version
        )
    return retarget(review, GATEWAY_API, _GATEWAY_API_RESOURCES[kind], kind, version or "v1")


def request_of(review: Mapping[str, Any]) -> AdmissionRequest:
    """Parse a review the way the server does (AdmissionReview.model_validate)."""
    return AdmissionReview.model_validate(review).request


def make_request(fixture: str, **changes: Any) -> AdmissionRequest:
    return request_of(derive(fixture, **changes))


def vs_spec(
    hosts: Iterable[str],
    *,
    gateways: Iterable[str] | None = None,
    export_to: Any = ABSENT,
) -> dict[str, Any]:
    """A VirtualService spec; exportTo is omitted unless given."""
    spec: dict[str, Any] = {"hosts": list(hosts)}
    if gateways is not None:
        spec["gateways"] = list(gateways)
    if export_to is not ABSENT:
        spec["exportTo"] = export_to if export_to is None else list(export_to)
    spec["http"] = [{"route": [{"destination": {"host": "reviews"}}]}]
    return spec


def vs_request(
    hosts: Iterable[str],
    *,
    gateways: Iterable[str] | None = None,
    export_to: Any = (".",),
    namespace: str = "tenant-a",
    name: str = "reviews",
    fixture: str = VS_CREATE,
    **changes: Any,
) -> AdmissionRequest:
    """A VirtualService request derived from a captured one; exportTo ["."] unless told, so
    host and gateway tests are not also about exportTo."""
    spec = vs_spec(hosts, gateways=gateways, export_to=export_to)
    return make_request(fixture, namespace=namespace, name=name, spec=spec, **changes)


def service_review(
    annotations: Mapping[str, str] | None,
    *,
    namespace: str = "tenant-a",
    name: str = "reviews",
    operation: str = "CREATE",
) -> dict[str, Any]:
    """A core Service review. No Service was captured, so it is derived from a captured Pod
    CREATE: same envelope, user and options; the resource, kind and object are a Service's."""
    review = load_review(POD_CREATE)
    request = review["request"]
    request["kind"] = {"group": "", "version": "v1", "kind": "Service"}
    request["resource"] = {"group": "", "version": "v1", "resource": "services"}
    request["requestKind"] = dict(request["kind"])
    request["requestResource"] = dict(request["resource"])
    request["namespace"] = namespace
    request["name"] = name
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 9080, "protocol": "TCP", "targetPort": 9080}],
            "type": "ClusterIP",
        },
    }
    request["object"] = obj
    request["oldObject"] = None
    if operation != "CREATE":
        request["operation"] = operation
        request["options"]["kind"] = _OPTIONS[operation]
        request["oldObject"] = copy.deepcopy(obj)
        if operation == "DELETE":
            request["object"] = None
    return review


# --- decisions -------------------------------------------------------------------------------


def validate(
    request: AdmissionRequest, view: TenancyView | None = None, config: Config | None = None
) -> Decision:
    return decide(request, "validate", view or make_view(), config or default_config())


def mutate(
    request: AdmissionRequest, view: TenancyView | None = None, config: Config | None = None
) -> Decision:
    return decide(request, "mutate", view or make_view(), config or default_config())


def message_of(decision: Decision) -> str:
    return str(decision.response["response"].get("status", {}).get("message", ""))


def without_uid(decision: Decision) -> dict[str, Any]:
    """The response with its uid removed, to compare the answers to two requests."""
    response = copy.deepcopy(decision.response)
    response["response"].pop("uid", None)
    return response


def patch_of(decision: Decision) -> list[dict[str, Any]] | None:
    """The decoded JSONPatch of a mutating response, or None when there is none."""
    response = decision.response["response"]
    if "patch" not in response:
        return None
    assert response["patchType"] == "JSONPatch"
    patch: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return patch


# --- Tenant objects --------------------------------------------------------------------------

TENANTS_GROUP = "tenant-guard.io"


def tenant_review(
    name: str,
    spec: Any,
    *,
    operation: str = "CREATE",
    old_spec: Any = None,
    user: Any = KEEP,
    dry_run: Any = KEEP,
) -> dict[str, Any]:
    """A Tenant review derived from the captured Namespace reviews (the cluster-scoped kind
    that was captured): the envelope, user and options as captured; kind, resource and object
    a Tenant's. DELETE carries the stored Tenant as oldObject and no object, as sent."""
    fixture = "namespace-delete.json" if operation == "DELETE" else "namespace-create-tenant-a.json"
    review = derive(fixture, name=name, user=user, dry_run=dry_run)
    if operation == "UPDATE":
        review["request"]["operation"] = "UPDATE"
        review["request"]["options"] = {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}
    request = review["request"]
    request.pop("namespace", None)
    retarget(review, TENANTS_GROUP, "tenants", "Tenant", "v1alpha1")
    metadata = {"name": name, "uid": "4c5d1e0a-0000-4000-8000-000000000001", "generation": 1}
    tenant = {"apiVersion": f"{TENANTS_GROUP}/v1alpha1", "kind": "Tenant", "metadata": metadata}
    if operation == "DELETE":
        request["object"] = None
        request["oldObject"] = {**tenant, "spec": spec}
    else:
        request["object"] = {**tenant, "spec": spec}
        request["oldObject"] = {**tenant, "spec": old_spec} if operation == "UPDATE" else None
    return review


def tenant_entry(
    name: str, *hosts: str, created: str = "2026-01-01T00:00:00Z", **fields: Any
) -> TenantEntry:
    """A Tenant object's entry, as the watch cache reads one."""
    return TenantEntry(name, tuple(hosts), source=OBJECT_SOURCE, created=created, **fields)


def view_with_tenants(*entries: Any, config: Config | None = None, **view: Any) -> TenancyView:
    """make_view() with Tenant objects added to the config's tenants."""
    base = make_view(**view)
    index, _ = (config or default_config()).claims.apply([(e.name, e) for e in entries])
    return TenancyView(base.namespaces, base.routes, tenants=index)
