"""The live index of routed hosts, fed by every watch of objects that route hostnames."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from webhook.tenancy import snapshot
from webhook.tenancy.routing import (
    GATEWAY_API_GROUP,
    GATEWAY_ROUTES,
    RouteIndex,
    RoutingResource,
    routed_hosts,
)
from webhook.tenancy.snapshot import Change, RouteRef

__all__ = ["GATEWAY_API_GROUP", "GATEWAY_ROUTES", "RouteIndex", "RoutingResource", "route_keys"]

log = logging.getLogger(__name__)

HostKey = Callable[[str, str], str | None]  # (namespace, host) -> index key, None if invalid


def route_keys(obj: Mapping[str, Any], hosts_field: str, host_key: HostKey) -> frozenset[str]:
    """The index keys of an object's `spec.<hosts_field>`; invalid hosts are left out.

    Only these keys are cached per object, never the object itself.
    """
    namespace = str((obj.get("metadata") or {}).get("namespace") or "")
    keys: set[str] = set()
    for host in routed_hosts(obj, hosts_field):
        try:
            key = host_key(namespace, host)
        except Exception:
            log.warning("host_key failed on %r in namespace %s", host, namespace, exc_info=True)
            continue
        if key is not None:
            keys.add(key)
    return frozenset(keys)


def _member(kind: str, key: str) -> RouteRef:
    namespace, _, name = key.partition("/")
    return RouteRef(kind, namespace, name)


class LiveRouteIndex:
    """host key -> the objects of every kind that route it, as one immutable snapshot.

    Each watch cache reports its changes through `updater(kind)`, from its own thread; the
    lock makes each read-modify-write of the shared index whole, so no cache's update is lost.
    Readers take `current` without locking.
    """

    def __init__(self) -> None:
        self._index: RouteIndex = MappingProxyType({})
        self._keys: dict[RouteRef, frozenset[str]] = {}  # what each object is indexed under
        self._lock = threading.Lock()

    @property
    def current(self) -> RouteIndex:
        return self._index

    def updater(
        self, kind: str, keys_of: Callable[[Mapping[str, Any]], frozenset[str]]
    ) -> Callable[[Sequence[Change[Mapping[str, Any]]]], None]:
        """A subscriber to a cache of `kind`'s objects; `keys_of` gives an object's keys.

        The keys an object was indexed under are remembered, so it leaves them exactly even
        when `keys_of` would now answer otherwise (a new cluster domain); a change that moves
        no key (a label, a route rule) costs no copy of the index.
        """

        def update(changes: Sequence[Change[Mapping[str, Any]]]) -> None:
            after = [
                (_member(kind, c.key), keys_of(c.new) if c.new is not None else frozenset())
                for c in changes
            ]
            with self._lock:
                moves = []
                for member, keys in after:
                    before = self._keys.get(member, frozenset())
                    if keys == before:
                        continue
                    if keys:
                        self._keys[member] = keys
                    else:
                        self._keys.pop(member, None)
                    moves.append((member, before, keys))
                if moves:
                    self._index = MappingProxyType(snapshot.reindex(self._index, moves))

        return update
