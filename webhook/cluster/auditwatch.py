"""The audit's watch caches: every stored object of the audited kinds, slimmed to what judging
needs (webhook.audit.judging.slim), one list+watch per kind, never a list call per object.

A kind whose CRD is not served waits for it (as the Gateway API route watches do) and is
reported, never making tenant-guard unready.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import kubernetes.client

from webhook.audit.judging import AuditedKind, audited_kinds, slim
from webhook.cluster import discovery
from webhook.cluster.discovery import ResourceNotServed
from webhook.cluster.watch import CacheStatus, ListCall, WatchCache, WatchTuning

log = logging.getLogger(__name__)

# The generated CoreV1Api call that lists each core resource the audit reads in every namespace.
_CORE_LISTS = {"services": "list_service_for_all_namespaces"}

Objects = Mapping[str, Mapping[str, Any]]


class AuditWatches:
    """One WatchCache per audited kind. Subscribers (`subscribe`) are called, in a watch
    thread, after any effective change of a cached object, relists included."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        *,
        tuning: WatchTuning | None = None,
        kinds: Sequence[AuditedKind] | None = None,
    ) -> None:
        self._api = api_client
        self._tuning = tuning or WatchTuning()
        self._versions: dict[str, str] = {}
        self._subscribers: list[Callable[[], None]] = []
        self.kinds = tuple(kinds if kinds is not None else audited_kinds())
        self._caches: dict[AuditedKind, WatchCache[Mapping[str, Any]]] = {
            kind: WatchCache(
                kind.name,
                functools.partial(self._connect, kind),
                functools.partial(self._convert, kind),
                on_change=self._changed,
                tuning=self._tuning,
            )
            for kind in self.kinds
        }

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._subscribers.append(callback)

    def _changed(self, _changes: Sequence[object]) -> None:
        for callback in self._subscribers:
            callback()

    def start(self) -> None:
        for cache in self._caches.values():
            cache.start()

    def stop(self, timeout: float = 5.0) -> None:
        for cache in self._caches.values():
            cache.stop(0)
        for cache in self._caches.values():
            cache.stop(timeout / max(1, len(self._caches)))

    def objects(self) -> list[tuple[AuditedKind, Objects]]:
        """Each kind's current snapshot (immutable; a pass reads these and nothing else)."""
        return [(kind, cache.items) for kind, cache in self._caches.items()]

    def statuses(self) -> dict[AuditedKind, CacheStatus]:
        return {kind: cache.status() for kind, cache in self._caches.items()}

    def status(self, kind: AuditedKind) -> CacheStatus:
        return self._caches[kind].status()

    @property
    def versions(self) -> Mapping[str, str]:
        """kind name -> the version watched, for the kinds served."""
        return dict(self._versions)

    def _convert(self, kind: AuditedKind, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        version = self._versions.get(kind.name, "v1")
        api_version = f"{kind.group}/{version}" if kind.group else version
        return slim(obj, api_version, kind.object_kind)

    def _connect(self, kind: AuditedKind) -> ListCall:
        tuning = self._tuning
        if not kind.group:
            method = _CORE_LISTS.get(kind.resource)
            if method is None:
                raise ResourceNotServed(f"no list call known for core resource {kind.resource}")
            self._versions[kind.name] = "v1"
            call: ListCall = getattr(kubernetes.client.CoreV1Api(self._api), method)
            return call
        version = discovery.resource_version(
            self._api, kind.group, kind.resource, (tuning.connect_timeout, tuning.request_timeout)
        )
        if version != self._versions.get(kind.name):
            log.info("audit: watching %s/%s", kind.name, version)
        self._versions[kind.name] = version
        custom = kubernetes.client.CustomObjectsApi(self._api)
        call = functools.partial(
            custom.list_cluster_custom_object, kind.group, version, kind.resource
        )
        return call
