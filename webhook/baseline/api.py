"""API calls of the tenant baseline: discovery, server-side apply, listing and deleting, for
objects of any kind (core, NetworkPolicies, Istio's CRDs), through the cluster door
(webhook.cluster.rest). Blocking: call from a thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from webhook.cluster.rest import RestClient

FIELD_MANAGER = "tenant-guard"

# What the baseline needs on the kinds it writes (deploy/components/baseline grants it).
# `create` beside `patch`: a server-side apply that creates the object is authorized as both.
BASELINE_RBAC: tuple[Mapping[str, Sequence[str]], ...] = (
    {
        "apiGroups": ["security.istio.io"],
        "resources": ["authorizationpolicies", "peerauthentications"],
        "verbs": ["list", "create", "patch", "delete"],
    },
    {
        "apiGroups": ["networking.istio.io"],
        "resources": ["sidecars"],
        "verbs": ["list", "create", "patch", "delete"],
    },
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["networkpolicies"],
        "verbs": ["list", "create", "patch", "delete"],
    },
    {
        "apiGroups": [""],
        "resources": ["resourcequotas", "limitranges"],
        "verbs": ["list", "create", "patch", "delete"],
    },
)


class BaselineApi(RestClient):
    """Objects of any kind the baseline writes, addressed by group, version and resource
    (discovery of what is served is RestClient.served)."""

    def list_objects(
        self, group: str, version: str, resource: str, label_selector: str, page_size: int = 500
    ) -> dict[tuple[str, str], str]:
        """(namespace, name) -> resourceVersion of every object matching the selector (paged)."""
        listed = self.list_metadata(group, version, resource, label_selector, page_size)
        return {key: str(meta.get("resourceVersion") or "") for key, meta in listed.items()}

    def apply(
        self, group: str, version: str, resource: str, body: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """Server-side apply `body` (field manager tenant-guard, force) and return the object."""
        return self.server_side_apply(group, version, resource, body, FIELD_MANAGER)

    def delete(self, group: str, version: str, resource: str, namespace: str, name: str) -> bool:
        """Delete the object; False when it was already gone."""
        return self.delete_object(group, version, resource, namespace, name)


def resource_version(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    return str(metadata.get("resourceVersion") or "") if isinstance(metadata, Mapping) else ""
