"""The audit's watch caches: every stored object of the audited kinds, slimmed to what judging
needs (webhook.tenancy.snapshot.slim), one list+watch per kind, never a list call per object.
Kinds the tenancy view watches already (VirtualServices, the Gateway API routes) are read from
its caches (KindCaches), so each kind is listed and watched once.

A kind whose CRD is not served waits for it (as the Gateway API route watches do) and is
reported, never making tenant-guard unready.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from webhook.audit.judging import AuditedKind, audited_kinds
from webhook.cluster.rest import ApiClient
from webhook.cluster.watch import (
    CacheStatus,
    KindCaches,
    ListCall,
    Subscriber,
    WatchCache,
    WatchTuning,
    connect_served,
)
from webhook.tenancy.snapshot import slim
from webhook.tenancy.watches import TENANCY_RBAC


def _audit_rbac() -> tuple[Mapping[str, Sequence[str]], ...]:
    """Read access to the audited kinds the tenancy caches do not read already."""
    covered = {
        (g, r) for rule in TENANCY_RBAC for g in rule["apiGroups"] for r in rule["resources"]
    }
    by_group: dict[str, list[str]] = {}
    for kind in audited_kinds():
        if (kind.group, kind.resource) not in covered:
            resources = by_group.setdefault(kind.group, [])
            if kind.resource not in resources:
                resources.append(kind.resource)
    return tuple(
        {"apiGroups": [group], "resources": resources, "verbs": ["get", "list", "watch"]}
        for group, resources in by_group.items()
    )


# The whole read-only footprint of serve --kubeconfig/--in-cluster: the caches requests read
# (webhook.tenancy.watches) and the audit's own. deploy/base/rbac.yaml grants exactly it.
REQUIRED_RBAC: tuple[Mapping[str, Sequence[str]], ...] = (*TENANCY_RBAC, *_audit_rbac())

Objects = Mapping[str, Mapping[str, Any]]


class AuditWatches:
    """One WatchCache per audited kind: the one in `caches` when another reader watches the
    kind already, else one of its own. Subscribers (`subscribe`) are called, in a watch
    thread, after any effective change of a cached object, relists included."""

    def __init__(
        self,
        api_client: ApiClient,
        *,
        tuning: WatchTuning | None = None,
        kinds: Sequence[AuditedKind] | None = None,
        caches: KindCaches | None = None,
    ) -> None:
        self._api = api_client
        self._tuning = tuning or WatchTuning()
        self._versions: dict[str, str] = {}
        self._subscribers: list[Callable[[], None]] = []
        self.kinds = tuple(kinds if kinds is not None else audited_kinds())
        shared = caches if caches is not None else KindCaches()
        self._caches: dict[AuditedKind, WatchCache[Mapping[str, Any]]] = {}
        self.owned: tuple[AuditedKind, ...] = ()  # the kinds whose cache is the audit's own
        for kind in self.kinds:
            cache, created = shared.cache(
                kind.group, kind.resource, functools.partial(self._cache_of, kind)
            )
            shared.subscribe(kind.group, kind.resource, self._changed)
            self._caches[kind] = cache
            if created:
                self.owned += (kind,)

    def _cache_of(self, kind: AuditedKind, tell: Subscriber) -> WatchCache[Mapping[str, Any]]:
        return WatchCache(
            kind.name,
            functools.partial(self._connect, kind),
            functools.partial(self._convert, kind),
            on_change=tell,
            tuning=self._tuning,
        )

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._subscribers.append(callback)

    def _changed(self, _changes: Sequence[object]) -> None:
        for callback in self._subscribers:
            callback()

    def start(self) -> None:
        for kind in self.owned:
            self._caches[kind].start()

    def stop(self, timeout: float = 5.0) -> None:
        owned = [self._caches[kind] for kind in self.owned]
        for cache in owned:
            cache.stop(0)
        for cache in owned:
            cache.stop(timeout / max(1, len(owned)))

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
        return connect_served(
            self._api, kind.group, kind.resource, self._tuning, self._versions, kind.name
        )
