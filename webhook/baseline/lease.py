"""One writer among replicas: a coordination.k8s.io/v1 Lease, taken and renewed by one holder.

Every write carries the resourceVersion it read, so two replicas racing for the Lease cannot
both win: the API server answers the loser 409. Expiry is judged on this process's monotonic
clock (how long the Lease has gone unchanged since this replica saw it change), not by
comparing another machine's renewTime with ours, so clock skew between nodes does not matter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from webhook.cluster.rest import ApiClient, ClusterApiError, RestClient, api_path

log = logging.getLogger(__name__)

GROUP, VERSION, RESOURCE = "coordination.k8s.io", "v1", "leases"

LEASE_RBAC: tuple[Mapping[str, Sequence[str]], ...] = (
    {"apiGroups": [GROUP], "resources": [RESOURCE], "verbs": ["get", "create", "update"]},
)


@dataclass(frozen=True)
class LeaseRecord:
    holder: str | None
    duration: int
    transitions: int
    resource_version: str


class LeaseApi:
    """Read, create and replace one Lease, through the cluster door (webhook.cluster.rest)."""

    def __init__(self, api_client: ApiClient, timeout: float = 10.0) -> None:
        self._rest = RestClient(api_client, connect_timeout=timeout, request_timeout=timeout)

    def read(self, namespace: str, name: str) -> LeaseRecord | None:
        path = api_path(GROUP, VERSION, RESOURCE, namespace, name)
        obj = self._rest.get(f"reading Lease {namespace}/{name}", path)
        return None if obj is None else _record(obj)

    def write(
        self,
        namespace: str,
        name: str,
        spec: Mapping[str, Any],
        current: LeaseRecord | None,
    ) -> LeaseRecord:
        """Create the Lease (current None) or replace it if still at current's version."""
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Lease", "spec": dict(spec)}
        what = f"writing Lease {namespace}/{name}"
        if current is None:
            body["metadata"] = metadata
            obj = self._rest.request(
                what, "POST", api_path(GROUP, VERSION, RESOURCE, namespace), body=body
            )
        else:
            body["metadata"] = {**metadata, "resourceVersion": current.resource_version}
            obj = self._rest.request(
                what, "PUT", api_path(GROUP, VERSION, RESOURCE, namespace, name), body=body
            )
        return _record(obj)


def _record(obj: Mapping[str, Any]) -> LeaseRecord:
    spec = obj.get("spec") or {}
    metadata = obj.get("metadata") or {}
    holder = spec.get("holderIdentity")
    return LeaseRecord(
        holder=holder if isinstance(holder, str) and holder else None,
        duration=int(spec.get("leaseDurationSeconds") or 0),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str(metadata.get("resourceVersion") or ""),
    )


def _micro_time(now: datetime) -> str:
    # MicroTime: RFC 3339 with exactly six fractional digits.
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Holds the Lease while this replica renews it; `try_lead()` once per tick."""

    def __init__(
        self,
        api: LeaseApi,
        *,
        namespace: str,
        name: str,
        identity: str,
        duration: int = 15,
        renew_every: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration
        self.renew_every = renew_every
        self.leading = False
        self.last_error: str | None = None  # why the last attempt failed (not a lost race)
        self._monotonic = monotonic
        self._wall = wall
        self._seen_version: str | None = None
        self._seen_at = 0.0

    @property
    def lease(self) -> str:
        return f"{self.namespace}/{self.name}"

    def try_lead(self) -> bool:
        """Take or renew the Lease if possible; True while this replica holds it.

        The holder writes only every `renew_every` seconds, well inside `duration`: no other
        replica takes the Lease before it has gone unchanged for `duration`.
        """
        if self.leading and self._monotonic() - self._seen_at < self.renew_every:
            return True
        error: str | None = None
        try:
            leading = self._attempt()
        except ClusterApiError as exc:
            leading = False
            if not exc.conflict:  # a lost race is normal; anything else is worth saying, once
                error = str(exc)
                if error != self.last_error:
                    log.warning("Lease %s: %s", self.lease, exc)
        self.last_error = error
        if leading != self.leading:
            log.info(
                "Lease %s %s by %s",
                self.lease,
                "acquired" if leading else "lost",
                self.identity,
            )
        self.leading = leading
        return leading

    def _attempt(self) -> bool:
        current = self.api.read(self.namespace, self.name)
        now = self._monotonic()
        if current is not None and current.resource_version != self._seen_version:
            self._seen_version, self._seen_at = current.resource_version, now
        if current is not None and current.holder not in (None, self.identity):
            unchanged_for = now - self._seen_at
            if unchanged_for < max(current.duration, 1):
                return False  # held, and renewed recently enough
        transitions = current.transitions if current is not None else 0
        if current is None or current.holder != self.identity:
            transitions += 1
        stamp = _micro_time(self._wall())
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.duration,
            "renewTime": stamp,
            "leaseTransitions": transitions,
        }
        if current is None or current.holder != self.identity:
            spec["acquireTime"] = stamp
        written = self.api.write(self.namespace, self.name, spec, current)
        self._seen_version, self._seen_at = written.resource_version, self._monotonic()
        return True

    def release(self) -> None:
        """Give the Lease up at shutdown so another replica need not wait for it to expire."""
        if not self.leading:
            return
        try:
            current = self.api.read(self.namespace, self.name)
            if current is not None and current.holder == self.identity:
                spec = {"leaseDurationSeconds": 1, "leaseTransitions": current.transitions}
                self.api.write(self.namespace, self.name, spec, current)
        except ClusterApiError as exc:
            log.warning("Lease %s not released: %s", self.lease, exc)
        self.leading = False
