"""API discovery: which version of a group serves a resource, and whether it is served at all."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

Timeouts = tuple[float, float]  # (connect, read) seconds

_VERSION = re.compile(r"v([1-9][0-9]*)(?:(alpha|beta)([1-9][0-9]*))?")
_STABILITY = {None: 2, "beta": 1, "alpha": 0}


class ResourceNotServed(Exception):
    """The API server does not serve the resource (its CRD is not installed): wait for it."""


def version_priority(version: str) -> tuple[int, int, int, str]:
    """A sort key for Kubernetes API versions, larger is newer: GA over beta over alpha, then
    the higher major and minor number (v2 > v1 > v1beta2 > v1beta1 > v1alpha1); names outside
    that scheme rank below all of them."""
    match = _VERSION.fullmatch(version)
    if match is None:
        return (-1, 0, 0, version)
    major, stability, minor = match.groups()
    return (_STABILITY[stability], int(major), int(minor or 0), "")


def version_candidates(preferred: str | None, served: Sequence[str]) -> list[str]:
    """Versions to try for a resource, in order: the group's preferred version, then the
    others newest first (a resource need not exist in every version of its group)."""
    rest = sorted((v for v in served if v != preferred), key=version_priority, reverse=True)
    return [preferred, *rest] if preferred is not None and preferred in served else rest


def api_group(
    api_client: kubernetes.client.ApiClient, group: str, timeouts: Timeouts
) -> Mapping[str, Any] | None:
    """The group's entry of /apis (name, versions, preferredVersion), None if not served."""
    # /apis (not /apis/<group>) because it has a generated call on every client version;
    # the raw JSON avoids strict model validation of unrelated aggregated groups.
    resp: Any = kubernetes.client.ApisApi(api_client).get_api_versions(
        _preload_content=False, _request_timeout=timeouts
    )
    try:
        body = json.loads(resp.data)
    finally:
        resp.release_conn()
    groups = body.get("groups") if isinstance(body, Mapping) else None
    for entry in groups or ():
        if isinstance(entry, Mapping) and entry.get("name") == group:
            return entry
    return None


def served_versions(group_entry: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """(preferred version or None, every served version) of an /apis group entry."""
    preferred = (group_entry.get("preferredVersion") or {}).get("version")
    served = [str(v.get("version")) for v in group_entry.get("versions") or ()]
    return (preferred if isinstance(preferred, str) else None), served


def served_resources(
    api_client: kubernetes.client.ApiClient, group: str, version: str, timeouts: Timeouts
) -> frozenset[str]:
    """The resources /apis/<group>/<version> (/api/v1 for the core group) lists, subresources
    left out; empty when the server serves no such group version (a CRD not installed)."""
    try:
        if group:
            resp: Any = kubernetes.client.CustomObjectsApi(api_client).get_api_resources(
                group, version, _preload_content=False, _request_timeout=timeouts
            )
        else:
            resp = kubernetes.client.CoreV1Api(api_client).get_api_resources(
                _preload_content=False, _request_timeout=timeouts
            )
    except ApiException as exc:
        if exc.status == 404:
            return frozenset()
        raise
    try:
        body = json.loads(resp.data)
    finally:
        resp.release_conn()
    resources = body.get("resources") if isinstance(body, Mapping) else None
    return frozenset(
        str(entry.get("name"))
        for entry in resources or ()
        if isinstance(entry, Mapping) and "/" not in str(entry.get("name"))
    )


def resource_version(
    api_client: kubernetes.client.ApiClient,
    group: str,
    plural: str,
    timeouts: Timeouts,
) -> str:
    """The version to list and watch `plural.group` in: the group's preferred version when it
    lists the resource, else the newest served version that does.

    Raises ResourceNotServed when the group is absent or no version lists the resource.
    """
    entry = api_group(api_client, group, timeouts)
    if entry is None:
        raise ResourceNotServed(f"API group {group} is not served")
    preferred, served = served_versions(entry)
    for version in version_candidates(preferred, served):
        if plural in served_resources(api_client, group, version, timeouts):
            return version
    raise ResourceNotServed(
        f"no served version of {group} ({', '.join(served) or 'none'}) lists {plural}"
    )
