"""Gateway pods (SPEC.md §8): which pods an Istio Gateway can program, the index of their labels
that a Gateway's selector is matched against, and whether istiod confines selectors to the
Gateway's own namespace (PILOT_SCOPE_GATEWAY_TO_NAMESPACE). Pure.

A pod is a gateway pod when its metadata says so, in any of the ways Istio deploys gateways:

* the annotation `inject.istio.io/templates` names the `gateway` template: Istio's `gateway`
  Helm chart and its documented "gateway injection" Deployments (the injector then turns the
  pod's `istio-proxy` container into a router);
* the label `gateway.networking.k8s.io/gateway-name` (or `istio.io/gateway-name`, its older
  name) or `gateway.istio.io/managed`: the pods Istio deploys for a Gateway API Gateway
  (waypoints included, which errs on the side of caution);
* the label `istio`: what istioctl's and the operator's ingress and egress gateways carry
  (`istio: ingressgateway`), the chart's selector label, and what Istio's documentation tells
  Gateways to select on.

Only metadata is read, so the cache can list and watch pods as PartialObjectMetadata. A proxy
started by hand in router mode without any of these marks is not recognised (see README).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from webhook.tenancy import snapshot

INJECT_TEMPLATES_ANNOTATION = "inject.istio.io/templates"
GATEWAY_TEMPLATE = "gateway"
GATEWAY_API_LABELS = (
    "gateway.networking.k8s.io/gateway-name",
    "istio.io/gateway-name",
    "gateway.istio.io/managed",
)
ISTIO_LABEL = "istio"
# istiod's pods, whose environment says how it matches Gateway selectors.
ISTIOD_LABEL = ("app", "istiod")
ISTIOD_SELECTOR = "app=istiod"
ISTIOD_CONTAINER = "discovery"
REVISION_LABEL = "istio.io/rev"
SCOPE_ENV = "PILOT_SCOPE_GATEWAY_TO_NAMESPACE"

Labels = Mapping[str, str]
LabelItem = tuple[str, str]
_NO_PODS: frozenset[str] = frozenset()


def _labels(metadata: Mapping[str, Any]) -> Mapping[str, Any]:
    labels = metadata.get("labels")
    return labels if isinstance(labels, Mapping) else {}


def gateway_mark(metadata: Mapping[str, Any]) -> str | None:
    """What makes the pod with this metadata a gateway pod (for messages and tests), or None
    when it is not one. istiod's own pods (label `istio: pilot`) are not gateways."""
    labels = _labels(metadata)
    if is_istiod(metadata):
        return None
    annotations = metadata.get("annotations")
    templates = (
        annotations.get(INJECT_TEMPLATES_ANNOTATION) if isinstance(annotations, Mapping) else None
    )
    if isinstance(templates, str) and GATEWAY_TEMPLATE in (t.strip() for t in templates.split(",")):
        return f"annotation {INJECT_TEMPLATES_ANNOTATION}={templates}"
    for key in GATEWAY_API_LABELS:
        if key in labels:
            return f"label {key}"
    if ISTIO_LABEL in labels:
        return f"label {ISTIO_LABEL}"
    return None


def is_gateway_pod(metadata: Mapping[str, Any]) -> bool:
    return gateway_mark(metadata) is not None


def is_istiod(metadata: Mapping[str, Any]) -> bool:
    key, value = ISTIOD_LABEL
    return _labels(metadata).get(key) == value


def pod_labels(metadata: Mapping[str, Any]) -> Labels:
    """A pod's labels as a selector is matched against them (strings only, frozen)."""
    return MappingProxyType(
        {str(k): str(v) for k, v in _labels(metadata).items() if isinstance(v, str)}
    )


# --- the index -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayPods:
    """The cluster's gateway pods ("namespace/name" -> labels), indexed by label.

    `synced` is False until the pods have been listed once: until then nobody can say which
    pods a selector matches. Offline there is no GatewayPods at all (the view holds None).
    """

    pods: Mapping[str, Labels] = field(default_factory=lambda: MappingProxyType({}))
    by_label: Mapping[LabelItem, frozenset[str]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    synced: bool = True

    def matching(self, selector: Mapping[str, str]) -> list[str]:
        """The pods whose labels hold every key=value of `selector` (all of them for an empty
        selector, as Istio reads it), sorted."""
        if not selector:
            return sorted(self.pods)
        members = sorted((self.by_label.get(item, _NO_PODS) for item in selector.items()), key=len)
        return sorted(members[0].intersection(*members[1:]))


NOT_LISTED = GatewayPods(synced=False)


def index_gateway_pods(pods: Mapping[str, Labels], synced: bool = True) -> GatewayPods:
    """The index of these pods, built whole (a one-shot read)."""
    return updated(GatewayPods(synced=synced), pods.items())


def gateway_pods_of(objects: Iterable[Mapping[str, Any]]) -> GatewayPods:
    """The index of the gateway pods among listed pods (whole or metadata only)."""
    pods: dict[str, Labels] = {}
    for obj in objects:
        metadata = obj.get("metadata")
        if isinstance(metadata, Mapping) and is_gateway_pod(metadata):
            pods[snapshot.object_key(metadata)] = pod_labels(metadata)
    return index_gateway_pods(pods)


def updated(index: GatewayPods, changes: Iterable[tuple[str, Labels | None]]) -> GatewayPods:
    """The index after pods changed: (pod key, its labels now, None when it is gone or no
    longer a gateway pod). The maps are copied once for all the changes."""
    pods = dict(index.pods)
    moves: list[tuple[str, frozenset[LabelItem], frozenset[LabelItem]]] = []
    for key, labels in changes:
        old = frozenset(pods[key].items()) if key in pods else frozenset()
        if labels is None:
            pods.pop(key, None)
        else:
            pods[key] = labels
        new = frozenset(labels.items()) if labels is not None else frozenset()
        if old != new:
            moves.append((key, old, new))
    by_label = (
        MappingProxyType(snapshot.reindex(index.by_label, moves)) if moves else index.by_label
    )
    return GatewayPods(MappingProxyType(pods), by_label, index.synced)


def namespace_of(pod_key: str) -> str:
    return pod_key.partition("/")[0]


# --- istiod's PILOT_SCOPE_GATEWAY_TO_NAMESPACE ----------------------------------------------


class Scope(enum.Enum):
    """How istiod matches a Gateway's selector."""

    NAMESPACE = "namespace"  # PILOT_SCOPE_GATEWAY_TO_NAMESPACE true: the Gateway's namespace only
    MESH = "mesh"  # unset or false (istiod's default): gateway pods in every namespace
    UNKNOWN = "unknown"  # set in a way tenant-guard cannot read (valueFrom, envFrom)


# strconv.ParseBool, which istiod reads boolean settings with; anything else is logged by
# istiod and replaced by the default (false).
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


@dataclass(frozen=True)
class IstiodSetting:
    """PILOT_SCOPE_GATEWAY_TO_NAMESPACE as one istiod pod runs with it."""

    pod: str  # namespace/name
    revision: str
    scope: Scope
    how: str  # how it is set, for the text: `="true"`, "not set", "from a ConfigMap"...


def istiod_setting(pod: Mapping[str, Any]) -> IstiodSetting:
    """The setting of one istiod pod, read from its `discovery` container's environment as the
    kubelet would give it: the last `env` entry of the name wins, and `envFrom` sources come
    under any `env` entry."""
    metadata = pod.get("metadata") if isinstance(pod.get("metadata"), Mapping) else {}
    assert isinstance(metadata, Mapping)
    key = f"{metadata.get('namespace') or ''}/{metadata.get('name') or ''}"
    revision = str(_labels(metadata).get(REVISION_LABEL) or "default")
    spec = pod.get("spec") if isinstance(pod.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    containers = [c for c in spec.get("containers") or () if isinstance(c, Mapping)]
    container = next((c for c in containers if c.get("name") == ISTIOD_CONTAINER), None)
    if container is None:
        return IstiodSetting(key, revision, Scope.UNKNOWN, f"no {ISTIOD_CONTAINER} container")
    entries = [e for e in container.get("env") or () if isinstance(e, Mapping)]
    entry = next((e for e in reversed(entries) if e.get("name") == SCOPE_ENV), None)
    if entry is None:
        if container.get("envFrom"):
            return IstiodSetting(key, revision, Scope.UNKNOWN, "possibly set through envFrom")
        return IstiodSetting(key, revision, Scope.MESH, "not set (istiod's default: false)")
    if "valueFrom" in entry and "value" not in entry:
        return IstiodSetting(key, revision, Scope.UNKNOWN, "set from valueFrom, not readable")
    value = str(entry.get("value") or "")
    shown = f'="{value}"'
    if value in _TRUE:
        return IstiodSetting(key, revision, Scope.NAMESPACE, shown)
    if value in _FALSE:
        return IstiodSetting(key, revision, Scope.MESH, shown)
    return IstiodSetting(key, revision, Scope.MESH, f"{shown}, not a boolean (istiod uses false)")


@dataclass(frozen=True)
class ScopeReport:
    """What the istiod pods say, as one line for /readyz, the log and `scope` for metrics."""

    scope: Scope
    text: str
    settings: tuple[IstiodSetting, ...] = ()


def scope_report(settings: Sequence[IstiodSetting]) -> ScopeReport:
    """Every istiod pod's setting summed up: scoped only when every one is (a Gateway of a
    revision that is not scoped still matches pods mesh-wide)."""
    if not settings:
        return ScopeReport(
            Scope.UNKNOWN,
            f"istiod: no pod labelled {ISTIOD_SELECTOR} found, so whether it runs with "
            f"{SCOPE_ENV} is unknown (an istiod outside this cluster?); Gateway selectors are "
            "judged by tenant-guard's rules alone",
        )
    ordered = tuple(sorted(settings, key=lambda s: (s.revision, s.pod)))
    scopes = {s.scope for s in ordered}
    pods = "; ".join(f"{s.pod} (revision {s.revision}): {s.how}" for s in ordered)
    if scopes == {Scope.NAMESPACE}:
        return ScopeReport(
            Scope.NAMESPACE,
            f"istiod runs with {SCOPE_ENV}=true ({pods}): Istio matches a Gateway's selector "
            "only against gateway pods in the Gateway's own namespace, which closes "
            "cross-namespace selector attacks by itself; tenant-guard's selector rules stay on",
            ordered,
        )
    if Scope.MESH in scopes:
        return ScopeReport(
            Scope.MESH,
            f"istiod runs without {SCOPE_ENV}=true ({pods}): a Gateway's selector matches "
            "gateway pods in every namespace, and tenant-guard's selector rules are what keeps "
            f"tenants off each other's gateway pods (set {SCOPE_ENV}=true on istiod to close "
            "this in Istio as well)",
            ordered,
        )
    return ScopeReport(
        Scope.UNKNOWN,
        f"istiod: whether it runs with {SCOPE_ENV} cannot be read ({pods}); Gateway selectors "
        "are judged by tenant-guard's rules alone",
        ordered,
    )
