"""API calls of the tenant baseline: discovery, server-side apply, listing and deleting, for
objects of any kind (core, NetworkPolicies, Istio's CRDs), through the cluster door
(webhook.cluster.rest). Blocking: call from a thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from webhook.cluster.rest import ApiClient, RestClient

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


class BaselineApi:
    """Objects of any kind the baseline writes, addressed by group, version and resource."""

    def __init__(
        self,
        api_client: ApiClient,
        *,
        connect_timeout: float = 10.0,
        request_timeout: float = 30.0,
    ) -> None:
        self._rest = RestClient(
            api_client, connect_timeout=connect_timeout, request_timeout=request_timeout
        )

    def close(self) -> None:
        self._rest.close()

    def served(self, group: str, version: str) -> frozenset[str]:
        """The resources the API server serves in group/version; empty when it serves none
        (a CRD not installed yet)."""
        return self._rest.served(group, version)

    def list_objects(
        self, group: str, version: str, resource: str, label_selector: str, page_size: int = 500
    ) -> dict[tuple[str, str], str]:
        """(namespace, name) -> resourceVersion of every object matching the selector (paged)."""
        listed = self._rest.list_metadata(group, version, resource, label_selector, page_size)
        return {key: str(meta.get("resourceVersion") or "") for key, meta in listed.items()}

    def apply(
        self, group: str, version: str, resource: str, body: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """Server-side apply `body` (field manager tenant-guard, force) and return the object."""
        return self._rest.apply(group, version, resource, body, FIELD_MANAGER)

    def delete(self, group: str, version: str, resource: str, namespace: str, name: str) -> bool:
        """Delete the object; False when it was already gone."""
        return self._rest.delete_object(group, version, resource, namespace, name)


def resource_version(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    return str(metadata.get("resourceVersion") or "") if isinstance(metadata, Mapping) else ""
