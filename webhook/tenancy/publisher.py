"""The Tenant status writer: the replica holding the Lease `tenant-guard-tenants` writes each
Tenant's status subresource (webhook.tenancy.status) when it changes, and only then.

What may have changed comes from the registry (a Tenant's claims, another tenant taking or
freeing a contested one, a namespace gaining or losing the label, a config reload) and from
the audit's counts; every `resync` seconds every Tenant is looked at anyway. A status equal
to the stored one is not written, so a restart or a new holder writes nothing that is right.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Gauge

from webhook.background import every
from webhook.baseline.lease import LeaderElector, LeaseApi
from webhook.cluster import load_api_client
from webhook.cluster.client import SERVICE_ACCOUNT_NAMESPACE, resolve_namespace
from webhook.cluster.rest import ClusterApiError, RestClient, api_path
from webhook.config.model import Config
from webhook.metrics import Metrics
from webhook.tenancy import tenants as tenant_objects
from webhook.tenancy.registry import LiveTenants, TenantMembers
from webhook.tenancy.status import desired_status, needs_write
from webhook.tenancy.watches import ClusterView

log = logging.getLogger(__name__)

LEASE_NAME = "tenant-guard-tenants"
MERGE_PATCH = "application/merge-patch+json"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TenantStatusWriter:
    def __init__(
        self,
        rest: RestClient,
        elector: LeaderElector,
        cluster: ClusterView,
        live: LiveTenants,
        members: TenantMembers,
        *,
        current_config: Callable[[], Config],
        violations: Callable[[], Mapping[str, int] | None] = lambda: None,
        tick: float = 1.0,
        resync: float = 300.0,
        parallel: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rest = rest
        self.elector = elector
        self.cluster = cluster
        self.live = live
        self.members = members
        self._config = current_config
        self._violations = violations
        self.tick = tick
        self.resync = resync
        self.parallel = parallel
        self._clock = clock
        self._next_full = 0.0
        self._last_violations: Mapping[str, int] | None = None
        self._retry: set[str] = set()
        self.written = 0
        self.errors: list[str] = []
        self.unwritable: dict[str, str] = {}  # Tenant -> why the API server refuses its status

    async def run(self) -> None:
        await every(self.tick, self.step, log, "Tenant status step")

    def close(self) -> None:
        self.elector.release()

    def _write(self, item: tuple[str, dict[str, Any]]) -> str | None:
        """None when written, "" when the Tenant is gone, else the error (retried)."""
        name, desired = item
        path = api_path(
            tenant_objects.GROUP, tenant_objects.VERSION, tenant_objects.PLURAL, None, name
        )
        try:
            self.rest.request(
                f"writing the status of Tenant {name}",
                "PATCH",
                f"{path}/status",
                body={"status": desired},
                content_type=MERGE_PATCH,
            )
        except ClusterApiError as exc:
            if exc.not_found:
                self.unwritable.pop(name, None)
                return ""  # deleted meanwhile: it needs no status
            if exc.status == 422:
                # The API server refuses the object as stored (a spec of the wrong type under
                # today's schema): no status can be written until its spec is fixed, which
                # brings it back here as a change. Not retried every tick.
                self.unwritable[name] = str(exc)
                return ""
            self._retry.add(name)
            return str(exc)
        self.unwritable.pop(name, None)
        return None

    def export_metrics(self, metrics: Metrics) -> None:
        Gauge(
            "tenant_guard_tenant_status_writes",
            "Tenant statuses written by this replica (only those that changed)",
            registry=metrics.registry,
        ).set_function(lambda: float(self.written))
        Gauge(
            "tenant_guard_tenant_status_leader",
            "1 on the replica holding the Tenant status Lease",
            registry=metrics.registry,
        ).set_function(lambda: 1.0 if self.elector.leading else 0.0)

    def notes(self) -> list[str]:
        notes = []
        if self.elector.last_error:
            notes.append(f"Tenant status: cannot take the Lease: {self.elector.last_error}")
        notes += [f"Tenant status: {error}" for error in self.errors[:5]]
        for name, error in sorted(self.unwritable.items())[:5]:
            notes.append(
                f"Tenant {name}: its status cannot be written, the API server refuses the "
                f"stored object (fix its spec): {error[:300]}"
            )
        return notes

    def step(self) -> int:
        """Write the statuses that changed; how many were written."""
        status = self.cluster.tenant_status()
        if status is None or not status.synced:
            return 0  # no CRD, or not listed yet: nothing to write, nothing known
        was_leading = self.elector.leading
        if not self.elector.try_lead():
            self.live.take_dirty()  # the holder writes them; a new holder looks at all
            return 0
        records = self.cluster.tenant_records
        now = self._clock()
        dirty = self.live.take_dirty() | self._retry
        self._retry = set()
        violations = self._violations()
        if violations != self._last_violations:
            before = self._last_violations or {}
            after = violations or {}
            dirty |= {t for t in before.keys() | after.keys() if before.get(t) != after.get(t)}
            self._last_violations = violations
        if not was_leading or now >= self._next_full:
            dirty = set(records)
            self._next_full = now + self.resync
        if not dirty:
            return 0
        config = self.live.base
        index = self.live.current
        stamp = _now()
        writes: list[tuple[str, dict[str, Any]]] = []
        for name in sorted(dirty):
            record = records.get(name)
            if record is None or not record.name:
                continue
            desired = desired_status(
                record,
                index,
                config.tenants,
                self.members.of(name) if self.members.label == config.tenant_label else (),
                violations.get(name, 0) if violations is not None else None,
                stamp,
            )
            if needs_write(record.status, desired):
                writes.append((name, desired))
        # A few writes at a time: at start-up every Tenant may need one, and one at a time
        # the API server's latency, not the work, would set the pace.
        with ThreadPoolExecutor(self.parallel) as pool:
            outcomes = list(pool.map(self._write, writes))
        written = sum(1 for outcome in outcomes if outcome is None)
        errors = [outcome for outcome in outcomes if outcome]
        self.errors = errors
        self.written += written
        if written or errors:
            log.info("Tenant status", extra={"fields": {"written": written, "errors": errors[:5]}})
        return written


def start_from_args(
    args: argparse.Namespace,
    cluster: ClusterView,
    live: LiveTenants,
    members: TenantMembers,
    current_config: Callable[[], Config],
    violations: Callable[[], Mapping[str, int] | None],
) -> TenantStatusWriter:
    try:
        namespace = resolve_namespace(
            getattr(args, "namespace", None), os.environ, SERVICE_ACCOUNT_NAMESPACE
        )
    except ValueError:
        namespace = "default"
        log.warning("Tenant status Lease: no namespace known (--namespace, POD_NAMESPACE)")
    api_client = load_api_client(kubeconfig=args.kubeconfig, in_cluster=args.in_cluster)
    elector = LeaderElector(
        LeaseApi(api_client),
        namespace=namespace,
        name=LEASE_NAME,
        identity=f"{socket.gethostname()}-{os.getpid()}",
    )
    return TenantStatusWriter(
        RestClient(api_client),
        elector,
        cluster,
        live,
        members,
        current_config=current_config,
        violations=violations,
    )
