"""Keeping the tenant baseline in the cluster (SPEC.md §11), off the request path.

Every tick (1 s) the replica holding the Lease checks whether a pass is due: the namespace
snapshot or the config changed (both are immutable and swapped by reference, so identity says
so), the periodic resync came round, or the last pass left errors or missing APIs behind. A pass
lists the managed objects of each kind once and then:

- applies (server-side, force) each desired object that is missing, changed by someone else since
  tenant-guard applied it, or whose template changed;
- deletes managed objects no tenant namespace wants any more (a namespace left its tenant, or a
  template was removed).

A kind whose API is not served (the Istio CRDs are not installed yet) is skipped, reported in
/readyz's detail and the metrics, and retried; it never stops the other kinds or the server.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

from webhook.background import every
from webhook.baseline.api import BaselineApi, resource_version
from webhook.baseline.desired import (
    MANAGED_BY_LABEL,
    MANAGER,
    TENANT_OF_OBJECT_LABEL,
    Desired,
    ObjectKey,
    desired_objects,
)
from webhook.baseline.lease import LeaderElector, LeaseApi
from webhook.baseline.templates import MANAGED_KINDS, managed_kind
from webhook.cluster import load_api_client
from webhook.cluster.client import SERVICE_ACCOUNT_NAMESPACE, resolve_namespace
from webhook.cluster.rest import ClusterApiError
from webhook.config.model import Config
from webhook.config.store import ConfigStore
from webhook.tenancy.watches import ClusterView

if TYPE_CHECKING:
    from webhook.metrics import Metrics
    from webhook.server.app import Runtime

log = logging.getLogger("tenant_guard.baseline")

SELECTOR = f"{MANAGED_BY_LABEL}={MANAGER},{TENANT_OF_OBJECT_LABEL}"
DEFAULT_VERSION = "v1"  # to find managed objects of a kind no template names any more
ACTIONS = ("created", "updated", "restored", "removed")

_KIND_OF = {(k.group, k.resource): k.kind for k in MANAGED_KINDS}

Namespaces = Mapping[str, Mapping[str, str]]
Resource = tuple[str, str, str]  # group, version, resource


@dataclass
class PassResult:
    """What one pass did; each entry is an object reference (`Kind namespace/name`)."""

    done: dict[str, list[str]] = field(default_factory=lambda: {a: [] for a in ACTIONS})
    errors: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # APIs not served: "resource.group/version"

    @property
    def clean(self) -> bool:
        return not self.errors and not self.missing


class BaselineReconciler:
    """Applies the desired baseline and removes what is no longer wanted; see the module doc."""

    def __init__(
        self,
        api: BaselineApi,
        elector: LeaderElector,
        *,
        current_config: Callable[[], Config],
        namespaces: Callable[[], Namespaces | None],
        tick: float = 1.0,
        retry: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.elector = elector
        self._config = current_config
        self._namespaces = namespaces
        self.tick = tick
        self.retry = retry
        self._clock = clock
        self._applied: dict[ObjectKey, tuple[str, str]] = {}  # key -> (digest, resourceVersion)
        self._seen: tuple[object, object] | None = None  # (config, namespaces) of the last pass
        self._next_pass = 0.0
        self.last: PassResult | None = None
        self.last_clean_pass: float | None = None  # unix time
        self._objects: Counter | None = None
        self._errors: Counter | None = None

    # --- lifecycle ---

    async def run(self) -> None:
        await every(self.tick, self.step, log, "baseline reconcile step")

    def close(self) -> None:
        """At shutdown: hand the Lease over at once rather than after it expires."""
        self.elector.release()
        self.api.close()

    def attach(self, runtime: Runtime) -> None:
        runtime.background.append(self.run)
        runtime.closers.append(self.close)
        runtime.notes.append(self.notes)
        self.export_metrics(runtime.metrics)

    # --- one tick ---

    def step(self) -> PassResult | None:
        """Lead if possible and run a pass when one is due; the pass's result, or None."""
        config = self._config()
        if config.baseline is None:
            self.elector.release()  # no-op unless the baseline was just removed from the config
            return None  # no baseline configured: nothing is written, nothing removed
        was_leading = self.elector.leading
        if not self.elector.try_lead():
            return None
        namespaces = self._namespaces()
        if namespaces is None:
            return None  # the namespace cache has not listed yet: pruning now would be wrong
        now = self._clock()
        changed = self._seen != (config, namespaces)
        if not (changed or not was_leading or now >= self._next_pass):
            return None
        result = self.reconcile(config, namespaces)
        self._seen = (config, namespaces)
        assert config.baseline is not None
        delay = config.baseline.resync_seconds if result.clean else self.retry
        self._next_pass = now + delay
        return result

    # --- one pass ---

    def reconcile(self, config: Config, namespaces: Namespaces) -> PassResult:
        result = PassResult()
        desired = desired_objects(config, namespaces)
        by_resource: dict[Resource, list[Desired]] = {r: [] for r in self._resources(config)}
        for item in desired.values():
            by_resource[(item.kind.group, _version(item.api_version), item.kind.resource)].append(
                item
            )
        served: dict[tuple[str, str], frozenset[str]] = {}
        for resource, items in sorted(by_resource.items()):
            self._reconcile_resource(resource, items, served, result)
        self._record(result)
        return result

    def _resources(self, config: Config) -> set[Resource]:
        """The kinds to look at: every one the templates name (in their version), and every
        other managed kind in its default version, so objects of a removed template go too."""
        out: set[Resource] = set()
        named: set[tuple[str, str]] = set()
        for template in config.baseline.objects if config.baseline else ():
            kind = managed_kind(template["apiVersion"], template["kind"])
            assert kind is not None
            out.add((kind.group, _version(template["apiVersion"]), kind.resource))
            named.add((kind.group, kind.resource))
        for kind in MANAGED_KINDS:
            if (kind.group, kind.resource) not in named:
                out.add((kind.group, DEFAULT_VERSION, kind.resource))
        return out

    def _reconcile_resource(
        self,
        resource: Resource,
        items: list[Desired],
        served: dict[tuple[str, str], frozenset[str]],
        result: PassResult,
    ) -> None:
        group, version, plural = resource
        what = f"{plural}.{group or 'core'}/{version}"
        try:
            if (group, version) not in served:
                served[group, version] = self.api.served(group, version)
            if plural not in served[group, version]:
                if items:  # only a kind the baseline needs is worth reporting
                    result.missing.append(what)
                return
            live = self.api.list_objects(group, version, plural, SELECTOR)
        except ClusterApiError as exc:
            self._error(result, plural, f"{what}: {exc}")
            return
        wanted = {(d.key.namespace, d.key.name) for d in items}
        for item in items:
            self._apply(item, live.get((item.key.namespace, item.key.name)), result)
        kind_name = _KIND_OF[group, plural]
        for namespace, name in sorted(set(live) - wanted):
            key = ObjectKey(group, plural, namespace, name)
            try:
                self.api.delete(group, version, plural, namespace, name)
            except ClusterApiError as exc:
                self._error(result, plural, str(exc))
                continue
            self._applied.pop(key, None)
            result.done["removed"].append(key.ref(kind_name))

    def _apply(self, item: Desired, live_version: str | None, result: PassResult) -> None:
        applied = self._applied.get(item.key)
        if live_version is not None and applied == (item.digest, live_version):
            return  # in place, untouched since tenant-guard applied it
        try:
            answer = self.api.apply(
                item.kind.group, _version(item.api_version), item.kind.resource, item.body
            )
        except ClusterApiError as exc:
            self._error(result, item.kind.resource, str(exc))
            return
        new_version = resource_version(answer)
        self._applied[item.key] = (item.digest, new_version)
        if live_version is None:
            action = "restored" if applied is not None else "created"
        elif new_version == live_version:
            return  # someone touched fields tenant-guard does not own: nothing to restore
        elif applied is not None and applied[0] == item.digest:
            action = "restored"  # same template, changed in the cluster: drift
        else:
            action = "updated"
        result.done[action].append(item.ref)

    def _error(self, result: PassResult, resource: str, text: str) -> None:
        result.errors.append(text)
        if self._errors is not None:
            self._errors.labels(resource).inc()

    def _record(self, result: PassResult) -> None:
        self.last = result
        if result.clean:
            self.last_clean_pass = time.time()
        for action, refs in result.done.items():
            if refs and self._objects is not None:
                self._objects.labels(action).inc(len(refs))
        changed = {a: sorted(refs) for a, refs in result.done.items() if refs}
        fields = {"baseline": changed, "errors": result.errors, "missing_apis": result.missing}
        if changed or result.errors or result.missing:
            level = logging.WARNING if result.errors or result.missing else logging.INFO
            log.log(level, "baseline reconciled", extra={"fields": fields})

    # --- reporting ---

    def notes(self) -> list[str]:
        """For /readyz's detail (readiness itself does not depend on it: admission still works)."""
        if self.elector.last_error:
            return [f"baseline: cannot take the Lease: {self.elector.last_error}"]
        result = self.last
        if result is None or not self.elector.leading:
            return []
        notes = [
            f"baseline: API {what} not served (CRD not installed?); retrying every {self.retry:g}s"
            for what in result.missing
        ]
        notes += [f"baseline: {error}" for error in result.errors[:5]]
        if len(result.errors) > 5:
            notes.append(f"baseline: ... and {len(result.errors) - 5} more errors")
        return notes

    def export_metrics(self, metrics: Metrics) -> None:
        self._objects = Counter(
            "tenant_guard_baseline_objects",
            "Baseline objects written or removed, by action (created, updated, restored, removed)",
            ["action"],
            registry=metrics.registry,
        )
        for action in ACTIONS:
            self._objects.labels(action)
        self._errors = Counter(
            "tenant_guard_baseline_reconcile_errors",
            "Failed baseline API calls, by resource",
            ["resource"],
            registry=metrics.registry,
        )
        Gauge(
            "tenant_guard_baseline_last_reconcile_timestamp_seconds",
            "When a baseline pass last ended without errors or missing APIs (Unix time)",
            registry=metrics.registry,
        ).set_function(lambda: self.last_clean_pass or 0.0)
        Gauge(
            "tenant_guard_baseline_missing_apis",
            "Kinds the baseline needs whose API is not served (CRD not installed)",
            registry=metrics.registry,
        ).set_function(lambda: float(len(self.last.missing)) if self.last else 0.0)
        Gauge(
            "tenant_guard_baseline_leader",
            "1 while this replica holds the baseline Lease and reconciles",
            registry=metrics.registry,
        ).set_function(lambda: 1.0 if self.elector.leading else 0.0)


def _version(api_version: str) -> str:
    return api_version.rpartition("/")[2]


# --- serve --kubeconfig / --in-cluster -----------------------------------------------------------

LEASE_NAME = "tenant-guard-baseline"


def start_from_args(
    args: argparse.Namespace, store: ConfigStore, cluster: ClusterView, runtime: Runtime
) -> BaselineReconciler:
    """Attach a reconciler to the server; it stays idle while the config has no baseline."""
    try:
        namespace = resolve_namespace(
            getattr(args, "namespace", None), os.environ, SERVICE_ACCOUNT_NAMESPACE
        )
    except ValueError:
        namespace = "default"
        log.warning(
            "baseline Lease: no namespace known (--namespace, POD_NAMESPACE); using default"
        )
    api_client = load_api_client(kubeconfig=args.kubeconfig, in_cluster=args.in_cluster)
    identity = f"{socket.gethostname()}-{os.getpid()}"
    elector = LeaderElector(
        LeaseApi(api_client), namespace=namespace, name=LEASE_NAME, identity=identity
    )

    def namespaces() -> Namespaces | None:
        return cluster.namespaces if cluster.cache_status()[0].synced else None

    reconciler = BaselineReconciler(
        BaselineApi(api_client),
        elector,
        current_config=lambda: store.current,
        namespaces=namespaces,
    )
    reconciler.attach(runtime)
    return reconciler
