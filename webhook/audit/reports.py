"""PolicyReport calls of the audit (wgpolicyk8s.io/v1alpha2): is it served, which reports does
tenant-guard keep, server-side apply, delete, through the cluster door (webhook.cluster.rest),
with tenant-guard's field manager. Blocking: call from a thread."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from webhook.audit.judging import DIGEST_ANNOTATION, MANAGED_BY_LABEL, MANAGER, REPORT_NAME
from webhook.cluster.rest import ApiClient, RestClient

GROUP = "wgpolicyk8s.io"
VERSION = "v1alpha2"
RESOURCE = "policyreports"
SELECTOR = f"{MANAGED_BY_LABEL}={MANAGER}"

# What `serve --policy-reports` needs on top (deploy/components/policy-reports grants it):
# list (the reports kept, at start and now and then), create and patch (server-side apply is
# authorized as both when it creates), delete (reports of namespaces that left tenancy).
POLICY_REPORT_RBAC: tuple[Mapping[str, Sequence[str]], ...] = (
    {"apiGroups": [GROUP], "resources": [RESOURCE], "verbs": ["list", "create", "patch", "delete"]},
)


class PolicyReportApi:
    """The PolicyReports tenant-guard writes, one per tenant namespace."""

    def __init__(self, api_client: ApiClient) -> None:
        self._api = RestClient(api_client)

    def close(self) -> None:
        self._api.close()

    def served(self) -> bool:
        """Whether the API server serves policyreports in wgpolicyk8s.io/v1alpha2."""
        return RESOURCE in self._api.served(GROUP, VERSION)

    def kept(self) -> dict[str, str]:
        """namespace -> digest annotation of each report tenant-guard keeps ("" if none)."""
        listed = self._api.list_metadata(GROUP, VERSION, RESOURCE, SELECTOR)
        return {
            namespace: str((meta.get("annotations") or {}).get(DIGEST_ANNOTATION) or "")
            for (namespace, name), meta in listed.items()
            if name == REPORT_NAME
        }

    def apply(self, body: Mapping[str, Any]) -> None:
        self._api.server_side_apply(GROUP, VERSION, RESOURCE, body, MANAGER)

    def delete(self, namespace: str) -> bool:
        """Delete the namespace's report; False when it was already gone."""
        return self._api.delete_object(GROUP, VERSION, RESOURCE, namespace, REPORT_NAME)
