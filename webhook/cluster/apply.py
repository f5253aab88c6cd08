"""API calls of the tenant baseline: discovery, server-side apply, listing and deleting.

Core kinds go through CoreV1Api; every other group through CustomObjectsApi, whose calls are
plain /apis/<group>/<version>/... requests and so serve NetworkPolicies as well as Istio's CRDs.
Bodies and answers are raw JSON, as in webhook.cluster.certs. Blocking: call from a thread.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import kubernetes.client

from webhook.cluster import discovery
from webhook.cluster.certs import ClusterApiError, _api_call, _api_json

FIELD_MANAGER = "tenant-guard"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML, so the body is sent as JSON

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

# The generated CoreV1Api method stem of each core resource the baseline writes.
_CORE_METHODS = {"resourcequotas": "resource_quota", "limitranges": "limit_range"}


class BaselineApi:
    """Objects of any kind the baseline writes, addressed by group, version and resource."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        *,
        connect_timeout: float = 10.0,
        request_timeout: float = 30.0,
    ) -> None:
        self._client = api_client
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._custom = kubernetes.client.CustomObjectsApi(api_client)
        self._timeout = (connect_timeout, request_timeout)

    def close(self) -> None:
        client: Any = self._client  # close() carries no annotations
        client.close()

    def _options(self) -> dict[str, Any]:
        return {"_preload_content": False, "_request_timeout": self._timeout}

    def served(self, group: str, version: str) -> frozenset[str]:
        """The resources the API server serves in group/version; empty when it serves none
        (a CRD not installed yet)."""
        where = f"{group}/{version}" if group else version
        return _api_call(
            f"discovering {where}",
            lambda: discovery.served_resources(self._client, group, version, self._timeout),
        )

    def list_objects(
        self, group: str, version: str, resource: str, label_selector: str, page_size: int = 500
    ) -> dict[tuple[str, str], str]:
        """(namespace, name) -> resourceVersion of every object matching the selector (paged)."""
        listed = self.list_metadata(group, version, resource, label_selector, page_size)
        return {key: str(meta.get("resourceVersion") or "") for key, meta in listed.items()}

    def list_metadata(
        self, group: str, version: str, resource: str, label_selector: str, page_size: int = 500
    ) -> dict[tuple[str, str], Mapping[str, Any]]:
        """(namespace, name) -> metadata of every object matching the selector (paged)."""
        what = f"listing {resource}.{group or 'core'}/{version}"
        if group:
            method = functools.partial(
                self._custom.list_cluster_custom_object, group, version, resource
            )
        else:
            method = getattr(self._core, f"list_{_CORE_METHODS[resource]}_for_all_namespaces")
        out: dict[tuple[str, str], Mapping[str, Any]] = {}
        token: str | None = None
        while True:
            page: dict[str, Any] = {"label_selector": label_selector, "limit": page_size}
            if token:
                page["_continue"] = token
            body = _api_json(what, lambda: method(**page, **self._options()))  # noqa: B023
            for item in body.get("items") or ():
                metadata = item.get("metadata") if isinstance(item, Mapping) else None
                if isinstance(metadata, Mapping):
                    key = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
                    out[key] = metadata
            token = (body.get("metadata") or {}).get("continue") or None
            if not token:
                return out

    def apply(
        self, group: str, version: str, resource: str, body: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """Server-side apply `body` (field manager tenant-guard, force) and return the object.

        force: fields another manager took over (a tenant's edit that slipped through, an
        operator's kubectl) are taken back; that is what restoring drift means.
        """
        metadata = body["metadata"]
        namespace, name = str(metadata["namespace"]), str(metadata["name"])
        what = f"applying {resource}.{group or 'core'} {namespace}/{name}"
        options = {
            "field_manager": FIELD_MANAGER,
            "force": True,
            "_content_type": APPLY_PATCH,
            **self._options(),
        }
        call: Callable[[], Any]
        if group:
            call = lambda: self._custom.patch_namespaced_custom_object(  # noqa: E731
                group, version, namespace, resource, name, dict(body), **options
            )
        else:
            method = getattr(self._core, f"patch_namespaced_{_CORE_METHODS[resource]}")
            call = lambda: method(name, namespace, dict(body), **options)  # noqa: E731
        return _api_json(what, call)

    def delete(self, group: str, version: str, resource: str, namespace: str, name: str) -> bool:
        """Delete the object; False when it was already gone."""
        what = f"deleting {resource}.{group or 'core'} {namespace}/{name}"
        call: Callable[[], Any]
        if group:
            call = lambda: self._custom.delete_namespaced_custom_object(  # noqa: E731
                group, version, namespace, resource, name, **self._options()
            )
        else:
            method = getattr(self._core, f"delete_namespaced_{_CORE_METHODS[resource]}")
            call = lambda: method(name, namespace, **self._options())  # noqa: E731
        try:
            _api_json(what, call)
        except ClusterApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True


def resource_version(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    return str(metadata.get("resourceVersion") or "") if isinstance(metadata, Mapping) else ""
