"""Report calls of the audit, in either report API (wg-policy `PolicyReport`,
wgpolicyk8s.io/v1alpha2, or OpenReports `Report`, openreports.io/v1alpha1): which are served,
which reports tenant-guard keeps, server-side apply, delete, through the cluster door
(webhook.cluster.rest), with tenant-guard's field manager. Blocking: call from a thread."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from webhook.audit.judging import (
    DIGEST_ANNOTATION,
    MANAGED_BY_LABEL,
    MANAGER,
    REPORT_FORMATS,
    REPORT_NAME,
    ReportFormat,
    report_candidates,
)
from webhook.cluster.rest import ApiClient, RestClient

SELECTOR = f"{MANAGED_BY_LABEL}={MANAGER}"

# What `serve --policy-reports` needs on top (deploy/components/policy-reports grants it), in
# both APIs, whichever it writes: list (the reports kept, at start and now and then, and those
# left in the API not written to), create and patch (server-side apply is authorized as both
# when it creates), delete (reports of namespaces that left tenancy, and of the other API).
POLICY_REPORT_RBAC: tuple[Mapping[str, Sequence[str]], ...] = tuple(
    {
        "apiGroups": [f.group],
        "resources": [f.resource],
        "verbs": ["list", "create", "patch", "delete"],
    }
    for f in REPORT_FORMATS
)


class PolicyReportApi:
    """The reports tenant-guard writes, one per tenant namespace, in the API `wanted` says
    (`auto`: the newer of those served; `openreports` or `wgpolicy`: that one)."""

    def __init__(self, api_client: ApiClient, wanted: str = "auto") -> None:
        self._api = RestClient(api_client)
        self.wanted = wanted
        self.candidates = report_candidates(wanted)

    def close(self) -> None:
        self._api.close()

    def served(self) -> list[ReportFormat]:
        """Which of the APIs tenant-guard may write are served (one discovery call each)."""
        return [f for f in REPORT_FORMATS if f.resource in self._api.served(f.group, f.version)]

    def kept(self, report: ReportFormat) -> dict[str, str]:
        """namespace -> digest annotation of each report tenant-guard keeps ("" if none)."""
        listed = self._api.list_metadata(report.group, report.version, report.resource, SELECTOR)
        return {
            namespace: str((meta.get("annotations") or {}).get(DIGEST_ANNOTATION) or "")
            for (namespace, name), meta in listed.items()
            if name == REPORT_NAME
        }

    def apply(self, report: ReportFormat, body: Mapping[str, Any]) -> None:
        self._api.server_side_apply(report.group, report.version, report.resource, body, MANAGER)

    def delete(self, report: ReportFormat, namespace: str) -> bool:
        """Delete the namespace's report; False when it was already gone."""
        return self._api.delete_object(
            report.group, report.version, report.resource, namespace, REPORT_NAME
        )
