"""One-shot, read-only API reads for `analyze --kubeconfig` and `audit`: paged lists, GETs.

Objects come back as plain JSON mappings (no client models), for any group and resource, so
the kinds read follow the admission dispatch table without a generated method per kind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from webhook.cluster import discovery
from webhook.cluster.client import describe_error, status_message
from webhook.cluster.rest import api_path
from webhook.cluster.watch import METADATA_LIST_ACCEPT

PAGE_SIZE = 500
TIMEOUT_SECONDS = 30.0


class ClusterReadError(Exception):
    """A read the caller needs failed (other than 404); the message says which and why."""


class ClusterReader:
    """Reads objects as JSON through the official client's connection, auth and TLS."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        *,
        page_size: int = PAGE_SIZE,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._api = api_client
        self._page_size = page_size
        self._timeout = timeout

    def preferred_versions(self) -> dict[str, str]:
        """API group -> the version the server prefers, from discovery (`/apis`)."""
        body = self._get("/apis", {})
        versions: dict[str, str] = {}
        for group in (body or {}).get("groups") or ():
            preferred = (group.get("preferredVersion") or {}).get("version")
            served = [v.get("version") for v in group.get("versions") or ()]
            version = preferred or (served[0] if served else None)
            if isinstance(group.get("name"), str) and isinstance(version, str):
                versions[group["name"]] = version
        return versions

    def served_version(self, group: str, resource: str) -> str | None:
        """The version to read `resource` of `group` in, as the watches choose it: the group's
        preferred version when it lists the resource, else the newest served one that does
        (TLSRoute is served in an alpha version of a group whose preferred version is v1).
        None when no version serves it."""
        try:
            timeouts = (self._timeout, self._timeout)
            return discovery.resource_version(self._api, group, resource, timeouts)
        except discovery.ResourceNotServed:
            return None
        except Exception as exc:
            what = f"discovering {resource}.{group}"
            raise ClusterReadError(f"{what}: {describe_error(exc)}") from None

    def list(
        self,
        group: str,
        version: str,
        resource: str,
        namespace: str | None = None,
        *,
        metadata_only: bool = False,
    ) -> list[dict[str, Any]] | None:
        """Every object of a resource (in one namespace, or in all), a page at a time; None
        when the server does not serve the resource. Items get their apiVersion and kind,
        which list responses of built-in types leave out. `metadata_only`: each object's
        metadata (PartialObjectMetadata), as the pod watch reads them."""
        path = api_path(group, version, resource, namespace)
        accept = METADATA_LIST_ACCEPT if metadata_only else "application/json"
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = {"limit": str(self._page_size)}
            if token:
                query["continue"] = token
            body = self._get(path, query, accept)
            if body is None:
                return None
            kind = str(body.get("kind") or "").removesuffix("List")
            api_version = str(
                body.get("apiVersion") or (f"{group}/{version}" if group else version)
            )
            for item in body.get("items") or ():
                if isinstance(item, dict):
                    items.append({"apiVersion": api_version, "kind": kind, **item})
            token = str((body.get("metadata") or {}).get("continue") or "")
            if not token:
                return items

    def get(
        self, group: str, version: str, resource: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        return self._get(api_path(group, version, resource, namespace, name), {})

    def namespaces(self) -> dict[str, dict[str, str]]:
        """Every namespace's labels."""
        found: dict[str, dict[str, str]] = {}
        for obj in self.list("", "v1", "namespaces") or ():
            metadata = obj.get("metadata") or {}
            labels = metadata.get("labels") or {}
            found[str(metadata.get("name"))] = {str(k): str(v) for k, v in labels.items()}
        return found

    def config_map_data(self, namespace: str, name: str) -> Mapping[str, str] | None:
        obj = self.get("", "v1", "configmaps", namespace, name)
        if obj is None:
            return None
        data = obj.get("data") or {}
        return {str(k): str(v) for k, v in data.items()}

    # --- the HTTP call -----------------------------------------------------------------------

    def _get(
        self, path: str, query: Mapping[str, str], accept: str = "application/json"
    ) -> dict[str, Any] | None:
        try:
            status, text = self._call(path, query, accept)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise ClusterReadError(f"GET {path}: {describe_error(exc)}") from None
        except Exception as exc:
            raise ClusterReadError(f"GET {path}: {describe_error(exc)}") from None
        if status == 404:
            return None
        if not 200 <= status < 300:
            message = status_message(text) or ""
            raise ClusterReadError(f"GET {path}: HTTP {status} {message}".rstrip())
        body = json.loads(text)
        if not isinstance(body, dict):
            raise ClusterReadError(f"GET {path}: the answer is not a JSON object")
        return body

    def _call(self, path: str, query: Mapping[str, str], accept: str) -> tuple[int, str]:
        api: Any = self._api  # the client's generated code carries no annotations
        headers = {"Accept": accept}
        if hasattr(api, "param_serialize"):  # clients generated since v32
            method, url, header_params, body, post = api.param_serialize(
                "GET",
                path,
                query_params=list(query.items()),
                header_params=headers,
                auth_settings=["BearerToken"],
            )
            response = api.call_api(
                method, url, header_params, body, post, _request_timeout=self._timeout
            )
            response.read()
            return int(response.status), response.data.decode("utf-8")
        response = api.call_api(
            path,
            "GET",
            query_params=list(query.items()),
            header_params=headers,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
            _request_timeout=self._timeout,
        )
        return int(response.status), response.data.decode("utf-8")
