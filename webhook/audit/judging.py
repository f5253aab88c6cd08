"""The in-server audit's judging (SPEC.md §10): stored objects in, violations out. Pure.

The verdicts come from webhook.analyze.judge's Analyzer, the engine of `tenant-guard analyze`
and of the one-shot `tenant-guard audit`, so the three say the same thing about an object.
This module only decides which stored objects are audited, keeps what judging needs of them,
and turns verdicts into what the audit publishes: the violations gauge and the reports
(wg-policy PolicyReports or OpenReports Reports).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.admission.decide import KINDS
from webhook.analyze.judge import Analyzer, Result, Status, tenancy_view
from webhook.analyze.manifests import Document
from webhook.config.model import Config
from webhook.tenancy.claims import TenantIndex
from webhook.tenancy.gatewaypods import GatewayPods
from webhook.tenancy.routing import RouteIndex

# Not audited, though tenant-scoped or judged: a Pod's admission is a mutation (nothing to
# find in a stored Pod that a CREATE would deny), and a Namespace's rule is about who changes
# its label, which a stored object cannot tell.
NOT_AUDITED = frozenset({("", "pods"), ("", "namespaces")})

POLICY = "tenant-guard"
REPORT_NAME = "tenant-guard"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "tenant-guard"
TENANT_LABEL = "tenant-guard.io/tenant"
DIGEST_ANNOTATION = "tenant-guard.io/report-digest"


@dataclass(frozen=True)
class AuditedKind:
    """A resource the audit watches and judges."""

    group: str
    resource: str
    kind: str  # the webhook's name for it (metrics, messages): Gateway.gateway.networking.k8s.io
    object_kind: str  # what its objects carry in `kind`

    @property
    def name(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


def audited_kinds() -> tuple[AuditedKind, ...]:
    """The tenant-scoped kinds of the admission dispatch table, Pods left out (see above)."""
    return tuple(
        AuditedKind(group, resource, handling.kind, handling.object_kind or handling.kind)
        for (group, resource), handling in KINDS.items()
        if handling.tenant_scoped and (group, resource) not in NOT_AUDITED
    )


@dataclass(frozen=True)
class ReportFormat:
    """One of the two report APIs Policy Reporter and similar UIs read (SPEC.md §10)."""

    name: str  # as --policy-reports names it
    group: str
    version: str
    resource: str
    kind: str
    crd: str  # the CRD's common name, for messages

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def served_as(self) -> str:
        return f"{self.api_version} {self.resource}"


# OpenReports is the successor (Kyverno and Kubewarden are moving to it): preferred when both
# are served.
OPENREPORTS = ReportFormat(
    "openreports", "openreports.io", "v1alpha1", "reports", "Report", "OpenReports"
)
WGPOLICY = ReportFormat(
    "wgpolicy", "wgpolicyk8s.io", "v1alpha2", "policyreports", "PolicyReport", "PolicyReport"
)
REPORT_FORMATS = (OPENREPORTS, WGPOLICY)  # in order of preference
AUTO = "auto"


def report_format(wanted: str, served: Iterable[ReportFormat]) -> ReportFormat | None:
    """The API reports go to: the one named (`openreports` or `wgpolicy`) if it is served,
    else with `auto` the newer of those served; None when the one(s) it may be are not."""
    available = set(served)
    return next((f for f in report_candidates(wanted) if f in available), None)


def report_candidates(wanted: str) -> tuple[ReportFormat, ...]:
    """The formats `wanted` may write (both for `auto`)."""
    return tuple(f for f in REPORT_FORMATS if wanted in (AUTO, f.name))


@dataclass(frozen=True)
class ObjectRef:
    """The object a violation is about, as a PolicyReport names it."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class AuditViolation:
    """One violation of one stored object."""

    tenant: str
    kind: str  # the webhook's name of the kind, as in the admission metrics
    rule: str
    message: str  # the webhook's own line for it
    field: str
    value: str
    warn: bool  # the namespace is in warn mode: admission would admit it with a warning
    ref: ObjectRef


def tenant_namespaces(namespaces: Mapping[str, Mapping[str, str]], config: Config) -> set[str]:
    return {name for name, labels in namespaces.items() if labels.get(config.tenant_label)}


def stored_document(kind: AuditedKind, obj: Mapping[str, Any]) -> Document:
    """A stored object as the Analyzer's input (no file, no line)."""
    return Document(kind.name, 0, 0, dict(obj))


class Judge:
    """Judges stored objects, a chunk at a time, against one config, tenancy, route index and
    gateway pod index (those of the moment the pass began; no gateway pods: the selectors are
    judged against sharedGatewayWorkloads only)."""

    def __init__(
        self,
        config: Config,
        namespaces: Mapping[str, Mapping[str, str]],
        routes: RouteIndex,
        gateway_pods: GatewayPods | None = None,
        tenants: TenantIndex | None = None,
    ) -> None:
        self.config = config
        self.tenants = {
            name: labels[config.tenant_label]
            for name, labels in namespaces.items()
            if labels.get(config.tenant_label)
        }
        self._analyzer = Analyzer(
            config, tenancy_view(namespaces, (), routes, gateway_pods, tenants)
        )
        self.judged = 0  # objects judged so far (those in tenant namespaces)

    def selected(self, obj: Mapping[str, Any]) -> bool:
        """Whether the object is in a tenant namespace (the others are admitted untouched)."""
        metadata = obj.get("metadata")
        return isinstance(metadata, Mapping) and metadata.get("namespace") in self.tenants

    def judge(self, items: Iterable[tuple[AuditedKind, Mapping[str, Any]]]) -> list[AuditViolation]:
        found: list[AuditViolation] = []
        for kind, obj in items:
            if self.selected(obj):
                tenant = self.tenants[obj["metadata"]["namespace"]]
                self.judged += 1
                verdict = self._analyzer.judge(stored_document(kind, obj))
                found += violations_of(kind, obj, tenant, verdict)
        return found


def violations_of(
    kind: AuditedKind, obj: Mapping[str, Any], tenant: str, result: Result
) -> list[AuditViolation]:
    """The violations in one verdict: a denial's, or a warn-mode admission's."""
    if result.status not in (Status.DENIED, Status.WARNED):
        return []
    metadata = obj.get("metadata") or {}
    ref = ObjectRef(
        str(obj.get("apiVersion") or ""),
        str(obj.get("kind") or kind.object_kind),
        str(metadata.get("namespace") or ""),
        str(metadata.get("name") or ""),
        str(metadata.get("uid") or ""),
    )
    warn = result.status is Status.WARNED
    return [
        AuditViolation(tenant, kind.kind, f.rule, f.message, f.field, f.value, warn, ref)
        for f in result.findings
    ]


def judge_all(
    objects: Iterable[tuple[AuditedKind, Mapping[str, Any]]],
    config: Config,
    namespaces: Mapping[str, Mapping[str, str]],
    routes: RouteIndex,
    gateway_pods: GatewayPods | None = None,
) -> list[AuditViolation]:
    """One whole pass at once (the server judges in chunks with Judge, pausing between them)."""
    return Judge(config, namespaces, routes, gateway_pods).judge(objects)


# --- what the audit publishes ----------------------------------------------------------------

GaugeKey = tuple[str, str, str]  # tenant, kind, rule


def violation_counts(violations: Iterable[AuditViolation]) -> dict[GaugeKey, int]:
    """tenant_guard_audit_violations: violations by (tenant, kind, rule)."""
    return dict(Counter((v.tenant, v.kind, v.rule) for v in violations))


def policy_report(
    namespace: str,
    tenant: str,
    violations: Sequence[AuditViolation],
    report: ReportFormat = WGPOLICY,
) -> dict[str, Any]:
    """The report of one tenant namespace, as applied: a wg-policy PolicyReport
    (wgpolicyk8s.io/v1alpha2) or an OpenReports Report (openreports.io/v1alpha1), which have
    the same summary and results.

    No timestamps: a report whose violations did not change is the same report, so it is not
    written again. Its digest (an annotation) is what tells, even after a restart.
    """
    ordered = sorted(violations, key=lambda v: (v.ref.kind, v.ref.name, v.rule, v.field, v.message))
    results = [_result(v) for v in ordered]
    warned = sum(1 for v in ordered if v.warn)
    body: dict[str, Any] = {
        "apiVersion": report.api_version,
        "kind": report.kind,
        "metadata": {
            "name": REPORT_NAME,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGER, TENANT_LABEL: tenant},
        },
        "summary": {
            "pass": 0,
            "fail": len(ordered) - warned,
            "warn": warned,
            "error": 0,
            "skip": 0,
        },
        "results": results,
    }
    if report is OPENREPORTS:
        # Report-level source: every result comes from one engine (the wg-policy API has no
        # such field; each result names it there, and here too for the UIs that read that).
        body["source"] = POLICY
    body["metadata"]["annotations"] = {DIGEST_ANNOTATION: report_digest(body)}
    return body


def report_digest(body: Mapping[str, Any]) -> str:
    """A digest of what the report says (summary, results, labels), not of its metadata."""
    content = {
        "labels": (body.get("metadata") or {}).get("labels"),
        "summary": body.get("summary"),
        "results": body.get("results"),
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _result(violation: AuditViolation) -> dict[str, Any]:
    ref = violation.ref
    resource = {"apiVersion": ref.api_version, "kind": ref.kind, "namespace": ref.namespace}
    resource["name"] = ref.name
    if ref.uid:
        resource["uid"] = ref.uid
    properties = {k: v for k, v in (("field", violation.field), ("value", violation.value)) if v}
    result: dict[str, Any] = {
        "policy": POLICY,
        "rule": violation.rule,
        "result": "warn" if violation.warn else "fail",
        "message": violation.message,
        "source": POLICY,
        "scored": True,
        "resources": [resource],
    }
    if properties:
        result["properties"] = properties
    return result


def reports_by_namespace(
    violations: Iterable[AuditViolation],
    namespaces: Mapping[str, Mapping[str, str]],
    config: Config,
    report: ReportFormat = WGPOLICY,
) -> dict[str, dict[str, Any]]:
    """namespace -> its report, for every tenant namespace (an empty one when it has no
    violation, so a namespace whose violations were fixed shows a clean report)."""
    grouped: dict[str, list[AuditViolation]] = {}
    for violation in violations:
        grouped.setdefault(violation.ref.namespace, []).append(violation)
    return {
        name: policy_report(
            name, namespaces[name][config.tenant_label], grouped.get(name, []), report
        )
        for name in sorted(tenant_namespaces(namespaces, config))
    }
