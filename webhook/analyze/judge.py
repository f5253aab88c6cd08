"""Judging objects with the webhook's own decide(): the request admission would get, its answer.

Nothing here knows a rule. Each object becomes the AdmissionRequest the API server would send
(CREATE, or UPDATE when the live object is known), goes through the mutating decision first and
the validating one on the mutated object, as admission runs them, and the answers are kept. The
kinds judged are whatever `admission.KINDS` holds; the pod templates of workload kinds get the
Pod decisions as a preview of what their Pods will meet.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from webhook.admission.decide import KINDS, Decision, Kind, decide
from webhook.admission.review import AdmissionRequest
from webhook.analyze.manifests import Document
from webhook.config.model import Config
from webhook.policies.common import Subject, Violation
from webhook.tenancy import tenants as tenant_objects
from webhook.tenancy.claims import TenantEntry, TenantIndex
from webhook.tenancy.gatewaypods import GatewayPods
from webhook.tenancy.routing import index_routes, merge_indexes, routing_resource
from webhook.tenancy.snapshot import RouteRef
from webhook.tenancy.view import TenancyView

NOT_CHECKABLE = "not-checkable"  # the rule id of a request the webhook refuses to judge

# Where each workload kind keeps the template of the Pods it creates.
WORKLOAD_TEMPLATES: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("apps", "Deployment"): ("spec", "template"),
    ("apps", "StatefulSet"): ("spec", "template"),
    ("apps", "DaemonSet"): ("spec", "template"),
    ("apps", "ReplicaSet"): ("spec", "template"),
    ("batch", "Job"): ("spec", "template"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}

# (group, resource, namespace or "", name) of an object as it is stored in the cluster.
ObjectKey = tuple[str, str, str, str]


class Status(StrEnum):
    ALLOWED = "allowed"
    WARNED = "warned"  # admitted with warnings: a violation in a namespace in warn mode
    DENIED = "denied"
    NOT_JUDGED = "not-judged"  # a kind tenant-guard has no policy for
    UNREADABLE = "unreadable"  # the document could not be parsed into an object


@dataclass(frozen=True)
class Finding:
    """One violation as the webhook reported it."""

    rule: str
    field: str
    value: str
    message: str  # the webhook's own line: object, field, value, problem, fix
    owner: str | None = None


@dataclass(frozen=True)
class Change:
    """One value admission writes into the object (from the mutating webhook's patch)."""

    field: str  # readable path: metadata.labels["tenant"]
    value: Any


@dataclass(frozen=True)
class Result:
    """The verdict on one object of the input."""

    document: Document
    status: Status
    kind: str | None = None
    api_version: str | None = None
    namespace: str | None = None
    name: str | None = None
    operation: str | None = None  # CREATE, or UPDATE against the live object
    tenant: str | None = None
    reason: str = ""  # why no policy ran (platform namespace, exempt, ...) or what was judged
    message: str = ""  # the webhook's answer: the denial message, or why it is unreadable
    findings: tuple[Finding, ...] = ()
    warnings: tuple[str, ...] = ()  # what kubectl would print as warnings on the write
    changes: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind or 'object'} {where}{self.name or '<unnamed>'}"


@dataclass(frozen=True)
class Identity:
    """Who the requests come from: it matters for `exempt` and for the label guards."""

    username: str | None = None
    groups: tuple[str, ...] = ("system:authenticated",)


def judged_kinds(kinds: Mapping[tuple[str, str], Kind] = KINDS) -> dict[tuple[str, str], str]:
    """(API group, kind) -> resource, derived from the dispatch table, so that every kind the
    webhook judges is judged here too. Keyed by the kind the objects carry: a Gateway API
    Gateway says `Gateway`, though the webhook names it Gateway.gateway.networking.k8s.io."""
    return {
        (group, handling.object_kind or handling.kind): resource
        for (group, resource), handling in kinds.items()
    }


def analyze(
    docs: Sequence[Document],
    config: Config,
    namespaces: Mapping[str, Mapping[str, str]],
    *,
    live_routes: Mapping[str, frozenset[RouteRef]] | None = None,
    live: Mapping[ObjectKey, Mapping[str, Any]] | None = None,
    gateway_pods: GatewayPods | None = None,
    default_namespace: str = "default",
    identity: Identity | None = None,
    live_tenants: Iterable[Mapping[str, Any]] = (),
) -> list[Result]:
    """Judge the input against known namespaces (overlaid by the input's own) and routes, and
    the tenants of the config, of the cluster (`live_tenants`) and of the input's own Tenant
    objects (SPEC.md §12; an input Tenant replaces the cluster's of its name).

    Two tenants' routes in one input (VirtualServices or Gateway API routes) for one host
    collide, as the second would once the first is applied; so the routing objects are judged
    again against the routes of those the first pass admitted (a denied one never reaches the
    cluster, so it cannot collide with anything).
    """

    tenants = tenant_index(config, (*live_tenants, *input_tenants(docs)))

    def analyzer(routes: Mapping[str, frozenset[RouteRef]]) -> Analyzer:
        view = tenancy_view(namespaces, docs, routes, gateway_pods, tenants)
        return Analyzer(
            config, view, default_namespace=default_namespace, identity=identity, live=live
        )

    results = analyzer(live_routes or {}).judge_all(docs)
    admitted = (r.document.obj for r in results if r.status in (Status.ALLOWED, Status.WARNED))
    routes = index_routes((o for o in admitted if o is not None), config.domain, default_namespace)
    if not routes:
        return results
    second = analyzer(merge_indexes(live_routes or {}, routes))
    return [
        second.judge(r.document)
        if r.document.obj is not None and routing_resource(r.document.obj) is not None
        else r
        for r in results
    ]


def namespace_labels(docs: Iterable[Document]) -> dict[str, dict[str, str]]:
    """Labels of the Namespace objects in the input: a GitOps repository often creates the
    namespace together with its contents."""
    found: dict[str, dict[str, str]] = {}
    for doc in docs:
        obj = doc.obj
        if obj is None or obj.get("kind") != "Namespace" or obj.get("apiVersion") != "v1":
            continue
        metadata = obj.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        if not isinstance(name, str) or not isinstance(metadata, Mapping):
            continue
        labels = metadata.get("labels")
        found[name] = (
            {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}
        )
    return found


def input_tenants(docs: Iterable[Document]) -> list[Mapping[str, Any]]:
    """The input's Tenant objects (tenant-guard.io), in input order."""
    return [
        doc.obj
        for doc in docs
        if doc.obj is not None
        and doc.obj.get("kind") == tenant_objects.KIND
        and str(doc.obj.get("apiVersion", "")).startswith(f"{tenant_objects.GROUP}/")
    ]


def tenant_index(config: Config, tenants: Iterable[Mapping[str, Any]]) -> TenantIndex | None:
    """The config's tenants with these Tenant objects added (a later one of a name replaces an
    earlier one; the config's own names shadow them); None when there are none."""
    entries: dict[str, TenantEntry | None] = {}
    for obj in tenants:
        record = tenant_objects.read_tenant(obj, config)
        if record.name and record.name not in config.tenants:
            entries[record.name] = record.entry
    if not entries:
        return None
    index, _ = config.claims.apply(entries.items())
    return index


def tenancy_view(
    namespaces: Mapping[str, Mapping[str, str]],
    docs: Iterable[Document],
    routes: Mapping[str, frozenset[RouteRef]] | None = None,
    gateway_pods: GatewayPods | None = None,
    tenants: TenantIndex | None = None,
) -> TenancyView:
    """The cluster as the input would leave it: known namespaces, overlaid by the input's own;
    the cluster's gateway pods when it was read (None: without a cluster); `tenants` the tenants
    in force (None: the config's)."""
    merged = {name: MappingProxyType(dict(labels)) for name, labels in namespaces.items()}
    merged.update(
        (name, MappingProxyType(labels)) for name, labels in namespace_labels(docs).items()
    )
    return TenancyView(
        MappingProxyType(merged), MappingProxyType(dict(routes or {})), gateway_pods, tenants
    )


class Analyzer:
    """Judges documents one at a time against one config and one tenancy view."""

    def __init__(
        self,
        config: Config,
        view: TenancyView,
        *,
        default_namespace: str = "default",
        identity: Identity | None = None,
        live: Mapping[ObjectKey, Mapping[str, Any]] | None = None,
    ) -> None:
        self.config = config
        self.view = view
        self.default_namespace = default_namespace
        self.identity = identity or Identity()
        self.live = live or {}
        self._resources = judged_kinds()
        self._user = {"username": self.identity.username, "groups": list(self.identity.groups)}
        self._count = 0

    def judge_all(self, docs: Iterable[Document]) -> list[Result]:
        return [self.judge(doc) for doc in docs]

    def judge(self, doc: Document) -> Result:
        if doc.obj is None:
            return Result(doc, Status.UNREADABLE, message=doc.error or "unreadable")
        obj = doc.obj
        problem = _not_an_object(obj)
        if problem:
            return Result(doc, Status.UNREADABLE, message=problem)
        api_version, kind = str(obj["apiVersion"]), str(obj["kind"])
        group, _, version = api_version.rpartition("/")
        metadata = obj["metadata"]
        name = metadata.get("name") if isinstance(metadata.get("name"), str) else None
        namespace = metadata.get("namespace") or self.default_namespace
        base = Result(doc, Status.ALLOWED, kind, api_version, str(namespace), name)
        resource = self._resources.get((group, kind))
        if resource is not None:
            handling = KINDS[(group, resource)]
            scope = namespace if handling.tenant_scoped else None
            base = Result(doc, Status.ALLOWED, kind, api_version, scope, name)
            # The API server sends a Namespace's own name as the request's namespace.
            request_namespace = name if kind == "Namespace" else scope
            live = self.live.get((group, resource, request_namespace or "", name or ""))
            gvr = (group, version, resource)
            return self._admit(base, obj, gvr, handling, live, request_namespace)
        template_path = WORKLOAD_TEMPLATES.get((group, kind))
        pod_resource = self._resources.get(("", "Pod"))
        if template_path is not None and pod_resource is not None:
            return self._preview_pods(base, obj, template_path, pod_resource)
        what = f"{kind} ({group or 'core'})"
        return Result(
            doc,
            Status.NOT_JUDGED,
            kind,
            api_version,
            str(namespace),
            name,
            reason=f"tenant-guard has no policy for {what}",
        )

    # --- one object through both webhooks -----------------------------------------------------

    def _admit(
        self,
        base: Result,
        obj: Mapping[str, Any],
        gvr: tuple[str, str, str],
        handling: Kind,
        live: Mapping[str, Any] | None,
        request_namespace: str | None,
    ) -> Result:
        request = self._request(obj, gvr, handling.kind, base.name, request_namespace, live)
        notes = self._namespace_notes(base.namespace, handling)
        mutated = decide(request, "mutate", self.view, self.config)
        if not mutated.allowed:
            notes += self._cluster_notes(handling, mutated)
            return self._denied(base, request, mutated, handling, notes)
        patch = _patch_of(mutated)
        if patch:
            request = request.model_copy(update={"obj": apply_patch(obj, patch)})
        validated = decide(request, "validate", self.view, self.config)
        changes = tuple(changes_of(patch))
        notes += self._cluster_notes(handling, validated)
        if not validated.allowed:
            return self._denied(base, request, validated, handling, notes, mutated, changes)
        ref = _subject(handling, base, obj).ref
        findings = tuple(_finding(v, ref) for v in validated.violations)
        return replace(
            base,
            status=Status.WARNED if findings else Status.ALLOWED,
            operation=request.operation,
            tenant=validated.tenant,
            reason=validated.reason or mutated.reason,
            findings=findings,
            warnings=(*mutated.warnings, *validated.warnings),
            changes=changes,
            notes=notes,
        )

    def _denied(
        self,
        base: Result,
        request: AdmissionRequest,
        decision: Decision,
        handling: Kind,
        notes: tuple[str, ...],
        mutated: Decision | None = None,
        changes: tuple[Change, ...] = (),
    ) -> Result:
        status = decision.response["response"].get("status") or {}
        message = str(status.get("message", ""))
        if decision.violations:
            ref = _subject(handling, base, request.obj or {}).ref
            findings = tuple(_finding(v, ref) for v in decision.violations)
        else:  # refused as not checkable: wrong shape, wrong kind
            findings = (Finding(NOT_CHECKABLE, "", "", message),)
        return replace(
            base,
            status=Status.DENIED,
            operation=request.operation,
            tenant=decision.tenant,
            reason=decision.reason,
            message=message,
            findings=findings,
            warnings=tuple(mutated.warnings) if mutated else (),
            changes=changes,
            notes=notes,
        )

    def _preview_pods(
        self, base: Result, obj: Mapping[str, Any], path: Sequence[str], pod_resource: str
    ) -> Result:
        template: Any = obj
        for key in path:
            template = template.get(key) if isinstance(template, Mapping) else None
        field_path = ".".join(path)
        if not isinstance(template, Mapping):
            return replace(base, reason=f"no pod template at {field_path}: nothing to preview")
        metadata = template.get("metadata")
        pod_metadata: dict[str, Any] = dict(metadata) if isinstance(metadata, Mapping) else {}
        # The controller names its Pods after the workload; admission sees only the prefix.
        pod_metadata.pop("name", None)
        pod_metadata["generateName"] = f"{base.name}-"
        pod_metadata["namespace"] = base.namespace
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": pod_metadata,
            "spec": template.get("spec"),
        }
        handling = KINDS[("", pod_resource)]
        verdict = self._admit(
            replace(base, kind="Pod", api_version="v1", name=None),
            pod,
            ("", "v1", pod_resource),
            handling,
            None,
            base.namespace,
        )
        return replace(
            verdict,
            kind=base.kind,
            api_version=base.api_version,
            name=base.name,
            reason=f"pod template ({field_path}): what its Pods get at admission"
            + (f"; {verdict.reason}" if verdict.reason else ""),
        )

    def _request(
        self,
        obj: Mapping[str, Any],
        gvr: tuple[str, str, str],
        kind: str,
        name: str | None,
        namespace: str | None,
        live: Mapping[str, Any] | None,
    ) -> AdmissionRequest:
        group, version, resource = gvr
        self._count += 1
        return AdmissionRequest.model_validate(
            {
                "uid": f"tenant-guard-analyze-{self._count}",
                "kind": {"group": group, "version": version, "kind": kind},
                "resource": {"group": group, "version": version, "resource": resource},
                "name": name,
                "namespace": namespace,
                "operation": "UPDATE" if live is not None else "CREATE",
                "userInfo": self._user,
                "object": obj,
                "oldObject": live,
                "dryRun": True,
            }
        )

    def _cluster_notes(self, handling: Kind, decision: Decision) -> tuple[str, ...]:
        """What the verdict could not take into account without the cluster's gateway pods,
        when the tenant rules were applied at all."""
        judged = decision.tenant is not None and decision.reason in ("", "warn mode")
        if handling.without_cluster and self.view.gateway_pods is None and judged:
            return (handling.without_cluster,)
        return ()

    def _namespace_notes(self, namespace: str | None, handling: Kind) -> tuple[str, ...]:
        if not handling.tenant_scoped or namespace is None or self.view.is_namespace(namespace):
            return ()
        return (
            f"namespace {namespace!r} is unknown (not in the config's namespaces map, the "
            "input, or the cluster): judged as a platform namespace, where tenant rules do not "
            "apply",
        )


def exit_code(results: Iterable[Result]) -> int:
    """0 clean, 1 when any object would be denied, 2 when any input could not be read."""
    statuses = {result.status for result in results}
    if Status.UNREADABLE in statuses:
        return 2
    return 1 if Status.DENIED in statuses else 0


# --- patches ---------------------------------------------------------------------------------


def _patch_of(decision: Decision) -> list[dict[str, Any]]:
    encoded = decision.response["response"].get("patch")
    if not encoded:
        return []
    patch: list[dict[str, Any]] = json.loads(base64.b64decode(encoded))
    return patch


def _tokens(pointer: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def apply_patch(obj: Mapping[str, Any], patch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A copy of `obj` with the webhook's add/replace operations applied
    (webhook.admission.patch makes no other kind), so the validating decision sees the object
    as admission would. Only the containers on the patched paths are copied; the rest is shared
    with `obj`."""
    result: dict[str, Any] = dict(obj)
    copied = {id(result)}
    for operation in patch:
        tokens = _tokens(str(operation["path"]))
        node: Any = result
        for token in tokens[:-1]:
            key: Any = int(token) if isinstance(node, list) else token
            child = node[key]
            if id(child) not in copied:
                child = list(child) if isinstance(child, list) else dict(child)
                copied.add(id(child))
                node[key] = child
            node = child
        last = tokens[-1]
        value = copy.deepcopy(operation["value"])
        if isinstance(node, list):
            if operation["op"] == "add":
                node.insert(len(node) if last == "-" else int(last), value)
            else:
                node[int(last)] = value
        else:
            node[last] = value
    return result


def changes_of(patch: Iterable[Mapping[str, Any]]) -> list[Change]:
    """The patch as readable field assignments; a map added whole is shown key by key."""
    changes: list[Change] = []
    for operation in patch:
        tokens = _tokens(str(operation["path"]))
        value = operation.get("value")
        if isinstance(value, dict) and tokens[-1:] in (["labels"], ["annotations"]):
            changes += [Change(_field([*tokens, key]), item) for key, item in value.items()]
        else:
            changes.append(Change(_field(tokens), value))
    return changes


def _field(tokens: Sequence[str]) -> str:
    text = ""
    for position, token in enumerate(tokens):
        in_map = position > 0 and tokens[position - 1] in ("labels", "annotations")
        if token.isdigit() and not in_map:
            text += f"[{token}]"
        elif not in_map and token.replace("-", "").replace("_", "").isalnum():
            text += f".{token}" if text else token
        else:
            text += f"[{json.dumps(token)}]"
    return text


# --- helpers ---------------------------------------------------------------------------------


def _not_an_object(obj: Mapping[str, Any]) -> str | None:
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj.get(key):
            return f"not a Kubernetes object: no {key}"
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return f"{obj['kind']} without metadata"
    if not any(
        isinstance(metadata.get(k), str) and metadata.get(k) for k in ("name", "generateName")
    ):
        return f"{obj['kind']} without metadata.name"
    namespace = metadata.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        return f"{obj['kind']}: metadata.namespace is not a string"
    return None


def _subject(handling: Kind, base: Result, obj: Mapping[str, Any]) -> Subject:
    name = base.name
    if not name:
        metadata = obj.get("metadata")
        prefix = metadata.get("generateName") if isinstance(metadata, Mapping) else None
        name = f"{prefix}<generated>" if isinstance(prefix, str) else "<unnamed>"
    return Subject(handling.kind, base.namespace if handling.tenant_scoped else None, name)


def _finding(violation: Violation, ref: str) -> Finding:
    return Finding(
        violation.rule,
        violation.field,
        violation.value,
        violation.render(ref),
        violation.owner,
    )
