"""The one door for every feature's API calls: JSON requests by path, through the official
client's connection, authentication and TLS.

Features (certificates, the baseline and its Lease, the audit's reports, the one-shot reads)
describe their calls as a method, a path and a JSON body; this module sends them and turns
every failure, an HTTP error or no answer at all, into a ClusterApiError naming the call. So
no feature imports `kubernetes`, and errors read the same whoever made the call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import kubernetes.client
import urllib3
from kubernetes.client.exceptions import ApiException

from webhook.cluster import discovery
from webhook.cluster.client import describe_error, reason_of

# What features hold to reach the API; only this package knows what it is.
ApiClient = kubernetes.client.ApiClient
Query = Sequence[tuple[str, str]]

JSON = "application/json"
MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML, so the body is sent as JSON


class ClusterApiError(Exception):
    """An API call failed: `status` is the HTTP status, None when no answer came back."""

    def __init__(self, what: str, status: int | None, reason: str | None, text: str) -> None:
        super().__init__(f"{what}: {text}")
        self.status = status
        self.reason = reason

    @property
    def conflict(self) -> bool:
        """409: a stale resourceVersion (Conflict) or a create that lost (AlreadyExists)."""
        return self.status == 409

    @property
    def not_found(self) -> bool:
        return self.status == 404


def api_path(
    group: str, version: str, resource: str, namespace: str | None = None, name: str | None = None
) -> str:
    """`/api/v1/...` for the core group, `/apis/<group>/<version>/...` for the others."""
    path = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace:
        path += f"/namespaces/{quote(namespace)}"
    path += f"/{resource}"
    if name:
        path += f"/{quote(name)}"
    return path


class RestClient:
    """JSON calls by path. Blocking: call from a worker thread."""

    def __init__(
        self,
        api_client: ApiClient,
        *,
        connect_timeout: float = 10.0,
        request_timeout: float = 30.0,
    ) -> None:
        self.api_client = api_client
        self.timeouts = (connect_timeout, request_timeout)

    def close(self) -> None:
        client: Any = self.api_client  # close() carries no annotations
        client.close()

    def request(
        self,
        what: str,
        method: str,
        path: str,
        *,
        query: Query = (),
        body: Mapping[str, Any] | None = None,
        content_type: str = JSON,
        timeout: tuple[float, float] | None = None,
    ) -> Mapping[str, Any]:
        """The JSON object the server answered; any failure is a ClusterApiError on `what`.
        `timeout` (connect, read) replaces the client's for this call."""
        try:
            text = self._send(method, path, query, body, content_type, timeout or self.timeouts)
        except ApiException as exc:
            raise ClusterApiError(what, exc.status, reason_of(exc), describe_error(exc)) from exc
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise ClusterApiError(what, None, None, describe_error(exc)) from exc
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise ClusterApiError(what, None, None, "the response is not JSON") from exc
        if not isinstance(obj, Mapping):
            raise ClusterApiError(what, None, None, "the response is not a JSON object")
        return obj

    def get(
        self,
        what: str,
        path: str,
        query: Query = (),
        *,
        timeout: tuple[float, float] | None = None,
    ) -> Mapping[str, Any] | None:
        """The object, or None when it does not exist (404)."""
        try:
            return self.request(what, "GET", path, query=query, timeout=timeout)
        except ClusterApiError as exc:
            if exc.not_found:
                return None
            raise

    def delete_path(self, what: str, path: str) -> bool:
        """Delete the object; False when it was already gone."""
        try:
            self.request(what, "DELETE", path)
        except ClusterApiError as exc:
            if exc.not_found:
                return False
            raise
        return True

    def pages(
        self, what: str, path: str, query: Query, page_size: int
    ) -> Iterator[Mapping[str, Any]]:
        """Each page of a list, following continue tokens."""
        token = ""
        while True:
            page = [*query, ("limit", str(page_size))]
            if token:
                page.append(("continue", token))
            body = self.request(what, "GET", path, query=page)
            yield body
            token = str((body.get("metadata") or {}).get("continue") or "")
            if not token:
                return

    # --- objects of any kind, by group, version and resource -------------------------------

    def list_metadata(
        self,
        group: str,
        version: str,
        resource: str,
        label_selector: str,
        page_size: int = 500,
    ) -> dict[tuple[str, str], Mapping[str, Any]]:
        """(namespace, name) -> metadata of every object matching the selector, in every
        namespace (paged)."""
        what = f"listing {resource}.{group or 'core'}/{version}"
        out: dict[tuple[str, str], Mapping[str, Any]] = {}
        query = [("labelSelector", label_selector)]
        for body in self.pages(what, api_path(group, version, resource), query, page_size):
            for item in body.get("items") or ():
                metadata = item.get("metadata") if isinstance(item, Mapping) else None
                if isinstance(metadata, Mapping):
                    key = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
                    out[key] = metadata
        return out

    def server_side_apply(
        self, group: str, version: str, resource: str, body: Mapping[str, Any], field_manager: str
    ) -> Mapping[str, Any]:
        """Server-side apply `body` with `field_manager`, forced, and return the object.

        force: fields another manager took over (a tenant's edit that slipped through, an
        operator's kubectl) are taken back; that is what restoring drift means.
        """
        metadata = body["metadata"]
        namespace, name = str(metadata["namespace"]), str(metadata["name"])
        return self.request(
            f"applying {resource}.{group or 'core'} {namespace}/{name}",
            "PATCH",
            api_path(group, version, resource, namespace, name),
            query=[("fieldManager", field_manager), ("force", "true")],
            body=body,
            content_type=APPLY_PATCH,
        )

    def delete_object(
        self, group: str, version: str, resource: str, namespace: str, name: str
    ) -> bool:
        """Delete the object; False when it was already gone."""
        return self.delete_path(
            f"deleting {resource}.{group or 'core'} {namespace}/{name}",
            api_path(group, version, resource, namespace, name),
        )

    def served(self, group: str, version: str) -> frozenset[str]:
        """The resources the server serves in group/version; empty when it serves none (a CRD
        not installed yet)."""
        where = f"{group}/{version}" if group else version
        try:
            return discovery.served_resources(self.api_client, group, version, self.timeouts)
        except ApiException as exc:
            what = f"discovering {where}"
            raise ClusterApiError(what, exc.status, reason_of(exc), describe_error(exc)) from exc
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise ClusterApiError(f"discovering {where}", None, None, describe_error(exc)) from exc

    def _send(
        self,
        method: str,
        path: str,
        query: Query,
        body: Mapping[str, Any] | None,
        content_type: str,
        timeout: tuple[float, float],
    ) -> str:
        """The body of a 2xx answer; other answers raise ApiException, as the client's
        generated methods do."""
        api: Any = self.api_client  # the client's generated code carries no annotations
        headers = {"Accept": JSON, "Content-Type": content_type}
        payload = dict(body) if body is not None else None
        if hasattr(api, "param_serialize"):  # clients generated since v32
            serialized = api.param_serialize(
                method,
                path,
                query_params=list(query),
                header_params=headers,
                body=payload,
                auth_settings=["BearerToken"],
            )
            response = api.call_api(*serialized, _request_timeout=timeout)
            response.read()
            if not 200 <= int(response.status) < 300:
                raise ApiException(http_resp=response)
            return str(response.data.decode("utf-8"))
        response = api.call_api(
            path,
            method,
            query_params=list(query),
            header_params=headers,
            body=payload,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _return_http_data_only=True,
            _request_timeout=timeout,
        )
        try:
            return str(response.data.decode("utf-8"))
        finally:
            response.release_conn()
