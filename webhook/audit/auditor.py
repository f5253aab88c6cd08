"""The in-server audit (SPEC.md §10): judging what already exists, off the request path.

Every tick the loop checks whether a pass is due: the first one as soon as the caches have
listed, one at once after a config reload, and one after changes (an audited object, a
namespace's labels, the route index, the gateway pods: a pod that makes a stored Gateway's
selector match another tenant's gateway pods) once they have settled for `debounce` seconds. A pass
judges the caches' current snapshots in a thread, pausing after each millisecond of work so
that admission requests get the interpreter at once, then swaps the results into
the metrics whole, and (with --policy-reports) brings each tenant namespace's report up to
date, in the report API chosen as SPEC.md §10 says (webhook.audit.judging.report_format). A
quiet cluster still gets a pass every `resync` seconds, so the last pass's time says the audit
is alive. The judging is webhook.audit.judging's; this module only paces it and publishes.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from webhook.audit.judging import (
    AUTO,
    DIGEST_ANNOTATION,
    AuditedKind,
    AuditViolation,
    GaugeKey,
    Judge,
    ReportFormat,
    report_format,
    reports_by_namespace,
    violation_counts,
)
from webhook.audit.reports import PolicyReportApi
from webhook.audit.watches import AuditWatches
from webhook.background import every
from webhook.cluster import CacheStatus, load_api_client
from webhook.cluster.rest import ClusterApiError
from webhook.config.model import Config
from webhook.config.store import ConfigStore
from webhook.tenancy.claims import TenantIndex
from webhook.tenancy.gatewaypods import GatewayPods
from webhook.tenancy.routing import RouteIndex
from webhook.tenancy.watches import ClusterView

if TYPE_CHECKING:
    from webhook.server.app import Runtime

log = logging.getLogger("tenant_guard.audit")

Namespaces = Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class PassResult:
    """What one pass found, published whole."""

    def by_tenant(self) -> dict[str, int]:
        """Violations per tenant (a Tenant's status shows its count)."""
        totals: dict[str, int] = {}
        for (tenant, _, _), count in self.counts.items():
            totals[tenant] = totals.get(tenant, 0) + count
        return totals

    counts: Mapping[GaugeKey, int]
    violations: int
    objects: int  # objects judged (in tenant namespaces)
    duration: float  # wall seconds of the judging
    cpu: float  # CPU seconds of the judging thread
    finished: float  # unix time
    skipped: tuple[str, ...] = ()  # kinds not listed yet, left out of this pass


@dataclass
class ReportState:
    """The reports as tenant-guard last saw and wrote them."""

    checked: bool = False  # whether the served APIs have been looked at yet
    format: ReportFormat | None = None  # the API written to; None while none is served
    kept: dict[str, str] | None = None  # namespace -> digest; None: list them again
    # Reports of tenant-guard's found in the other API at the last listing (after a switch,
    # or from a run with another --policy-reports): deleted, so no UI shows stale ones.
    stale: dict[ReportFormat, list[str]] = field(default_factory=dict)
    listed_at: float = 0.0
    errors: list[str] = field(default_factory=list)
    applied: int = 0  # totals, for the metrics
    removed: int = 0
    failures: int = 0


class AuditLoop:
    """See the module doc. `watches` gives the audited objects; `namespaces` is None until the
    namespace cache has listed (auditing against an empty tenancy would report nothing)."""

    def __init__(
        self,
        watches: AuditWatches,
        *,
        current_config: Callable[[], Config],
        namespaces: Callable[[], Namespaces | None],
        routes: Callable[[], RouteIndex],
        gateway_pods: Callable[[], GatewayPods | None] = lambda: None,
        tenants: Callable[[], TenantIndex | None] = lambda: None,
        reports: PolicyReportApi | None = None,
        debounce: float = 2.0,
        max_delay: float = 30.0,
        tick: float = 0.5,
        slice: float = 0.001,
        pause: float = 0.001,
        sync_grace: float = 30.0,
        retry: float = 5.0,
        report_relist: float = 600.0,
        resync: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.watches = watches
        self._config = current_config
        self._namespaces = namespaces
        self._routes = routes
        self._gateway_pods = gateway_pods
        self._tenants = tenants
        self._seen_tenants: TenantIndex | None = None
        self.reports = reports
        self.debounce = debounce
        self.max_delay = max_delay
        self.tick = tick
        self.slice = slice
        self.pause = pause
        self.sync_grace = sync_grace
        self.retry = retry
        self.report_relist = report_relist
        self.resync = resync
        self._last_pass = 0.0  # monotonic
        self._clock = clock
        self._started = clock()
        # config, namespaces, routes, gateway pods, as the last pass (or tick) saw them
        self._seen: tuple[object, object, object, object] | None = None
        self._first_change: float | None = None
        self._last_change = 0.0
        self._retry_at: float | None = None  # when to try the PolicyReports again
        # The last pass's violations, tenancy and config, for that retry.
        self._last_found: tuple[Sequence[AuditViolation], Namespaces, Config] | None = None
        self.last: PassResult | None = None
        self.passes = 0
        self.report_state = ReportState()
        watches.subscribe(self.changed)

    # --- lifecycle ---

    def changed(self) -> None:
        """An audited object changed (called from the watch threads)."""
        now = self._clock()
        if self._first_change is None:
            self._first_change = now
        self._last_change = now

    async def run(self) -> None:
        await every(self.tick, self.step, log, "audit step")

    def close(self) -> None:
        self.watches.stop()
        if self.reports is not None:
            self.reports.close()

    def attach(self, runtime: Runtime) -> None:
        runtime.background.append(self.run)
        runtime.closers.append(self.close)
        runtime.notes.append(self.notes)
        runtime.metrics.registry.register(_AuditCollector(self))
        for kind in self.watches.owned:
            # Beside the tenancy caches' resources, told apart by the prefix; the kinds read
            # from the tenancy caches are counted there.
            label = f"audit:{kind.name}"
            runtime.metrics.cache_size.labels(label).set_function(self._stat(kind, "items"))
            runtime.metrics.watch_restarts.labels(label).set_function(self._stat(kind, "restarts"))

    def _stat(self, kind: AuditedKind, name: str) -> Callable[[], float]:
        return lambda: float(getattr(self.watches.status(kind), name))

    # --- one tick ---

    def due(self) -> tuple[bool, Namespaces | None]:
        namespaces = self._namespaces()
        if namespaces is None:
            return False, None
        now = self._clock()
        if self.last is None:
            waiting_for_lists = bool(self._unlisted(self.watches.statuses()))
            waiting_for_lists = waiting_for_lists or self._pods_unlisted()
            return not waiting_for_lists or now - self._started >= self.sync_grace, namespaces
        config, routes, pods = self._config(), self._routes(), self._gateway_pods()
        assert self._seen is not None
        if config is not self._seen[0]:
            return True, namespaces  # a config reload: at once
        if (
            namespaces is not self._seen[1]
            or routes is not self._seen[2]
            or pods is not self._seen[3]
        ):
            self.changed()
            self._seen = (self._seen[0], namespaces, routes, pods)
        tenants = self._tenants()
        if tenants is not self._seen_tenants:  # a Tenant's claims changed
            self.changed()
            self._seen_tenants = tenants
        if now - self._last_pass >= self.resync:
            return True, namespaces  # a quiet cluster still gets a pass now and then
        first = self._first_change
        if first is None:
            return False, namespaces
        settled = now - self._last_change >= self.debounce
        return settled or now - first >= self.max_delay, namespaces

    def step(self) -> PassResult | None:
        """Run a pass when one is due; its result, or None. PolicyReports that could not be
        written (an error, or the CRD not served yet) are retried from the last pass's
        results, without judging again."""
        due, namespaces = self.due()
        if due and namespaces is not None:
            return self.audit(self._config(), namespaces, self._routes())
        retry, found = self._retry_at, self._last_found
        if retry is not None and self._clock() >= retry and found is not None:
            self._retry_at = None
            assert self.reports is not None
            self._write_reports(self.reports, *found)
        return None

    # --- one pass ---

    def audit(self, config: Config, namespaces: Namespaces, routes: RouteIndex) -> PassResult:
        # Changes from now on belong to the next pass.
        self._first_change = None
        pods = self._gateway_pods()
        self._seen = (config, namespaces, routes, pods)
        self._last_pass = self._clock()
        statuses = self.watches.statuses()
        skipped = tuple(sorted(k.name for k in self._unlisted(statuses)))
        if pods is not None and not pods.synced:
            # Not "matches nothing": the selectors are judged as offline until the pods list.
            skipped, pods = (*skipped, "pods"), None
        started, cpu_started = time.perf_counter(), time.thread_time()
        self._seen_tenants = tenants = self._tenants()
        judge = Judge(config, namespaces, routes, pods, tenants)
        violations: list[AuditViolation] = []
        # Judging holds the interpreter lock; a review waiting for it would wait for the
        # interpreter's switch interval (5 ms). Pausing after every `slice` of work instead
        # hands it over sooner: a review waits at most about one slice.
        slice_ends = time.perf_counter() + self.slice
        for kind, items in self.watches.objects():
            for obj in items.values():
                violations += judge.judge(((kind, obj),))
                if time.perf_counter() >= slice_ends:
                    time.sleep(self.pause)
                    slice_ends = time.perf_counter() + self.slice
        result = PassResult(
            counts=violation_counts(violations),
            violations=len(violations),
            objects=judge.judged,
            duration=time.perf_counter() - started,
            cpu=time.thread_time() - cpu_started,
            finished=time.time(),
            skipped=skipped,
        )
        self.last = result
        self.passes += 1
        self._retry_at = None
        if self.reports is not None:
            self._last_found = (violations, namespaces, config)
            self._write_reports(self.reports, violations, namespaces, config)
        log.info(
            "audit pass",
            extra={
                "fields": {
                    "objects": result.objects,
                    "violations": result.violations,
                    "seconds": round(result.duration, 3),
                    "cpu_seconds": round(result.cpu, 3),
                    "skipped": list(skipped),
                }
            },
        )
        return result

    def _pods_unlisted(self) -> bool:
        pods = self._gateway_pods()
        return pods is not None and not pods.synced

    def _unlisted(self, statuses: Mapping[AuditedKind, CacheStatus]) -> list[AuditedKind]:
        """Kinds served but not listed yet (a kind whose CRD is not served has nothing)."""
        return [k for k, s in statuses.items() if not s.synced and s.waiting is None]

    # --- reports (PolicyReport or OpenReports Report) ---

    def _write_reports(
        self,
        api: PolicyReportApi,
        violations: Sequence[AuditViolation],
        namespaces: Namespaces,
        config: Config,
    ) -> None:
        state = self.report_state
        state.errors = []
        try:
            served = api.served()
            chosen = report_format(api.wanted, served)
            state.checked = True
            if chosen is not state.format:
                where = chosen.served_as if chosen else "nowhere (no report API served)"
                log.info("audit: reports go to %s", where)
                state.format, state.kept = chosen, None
            if chosen is None:
                self._retry_at = self._clock() + self.retry
                return
            now = self._clock()
            if state.kept is None or now - state.listed_at >= self.report_relist:
                state.kept, state.listed_at = api.kept(chosen), now
                state.stale = self._stale(api, served, chosen)
        except ClusterApiError as exc:
            self._report_error(str(exc))
            return
        kept = state.kept
        desired = reports_by_namespace(violations, namespaces, config, chosen)
        for namespace, body in desired.items():
            digest = body["metadata"]["annotations"][DIGEST_ANNOTATION]
            if kept.get(namespace) == digest:
                continue
            try:
                api.apply(chosen, body)
            except ClusterApiError as exc:
                self._report_error(str(exc))
                continue
            kept[namespace] = digest
            state.applied += 1
        for namespace in sorted(set(kept) - set(desired)):  # left tenancy
            if self._delete_report(api, chosen, namespace):
                del kept[namespace]
        for other, stale in state.stale.items():
            # Written where reports no longer go: the same reports now live in `chosen`.
            for namespace in list(stale):
                if self._delete_report(api, other, namespace):
                    stale.remove(namespace)

    def _stale(
        self, api: PolicyReportApi, served: Sequence[ReportFormat], chosen: ReportFormat
    ) -> dict[ReportFormat, list[str]]:
        """tenant-guard's reports in the served APIs it does not write to."""
        stale: dict[ReportFormat, list[str]] = {}
        for other in served:
            if other is chosen:
                continue
            try:
                stale[other] = sorted(api.kept(other))
            except ClusterApiError as exc:
                # No reason to stop writing where the reports go (an RBAC that grants only the
                # API written to, say): said, counted, and tried again at the next listing.
                self._count_error(str(exc))
        return stale

    def _delete_report(self, api: PolicyReportApi, report: ReportFormat, namespace: str) -> bool:
        try:
            api.delete(report, namespace)
        except ClusterApiError as exc:
            self._report_error(str(exc))
            return False
        self.report_state.removed += 1
        return True

    def _report_error(self, text: str) -> None:
        self._count_error(text)
        self.report_state.kept = None  # find out what is there before writing again
        self._retry_at = self._clock() + self.retry

    def _count_error(self, text: str) -> None:
        state = self.report_state
        state.errors.append(text)
        state.failures += 1
        log.warning("audit: report call failed: %s", text)

    # --- reporting ---

    def notes(self) -> list[str]:
        """For /readyz's detail; readiness itself never depends on the audit."""
        notes: list[str] = []
        for kind, status in self.watches.statuses().items():
            if status.waiting is not None:
                notes.append(
                    f"audit: {kind.name}: watch waiting, {status.waiting} (is its CRD "
                    "installed?); its objects are audited once it starts"
                )
            elif not status.synced and self.last is not None:
                error = f" (last error: {status.last_error})" if status.last_error else ""
                notes.append(
                    f"audit: {kind.name}: initial list not complete{error}; "
                    "audited without it until it lists"
                )
        if self.last is not None and self._pods_unlisted():
            notes.append(
                "audit: pods: initial list not complete; Istio Gateway selectors are audited "
                "against sharedGatewayWorkloads only until it lists"
            )
        state = self.report_state
        if self.reports is not None and state.checked and state.format is None:
            notes.append(self._not_served(self.reports))
        notes += [f"audit: report: {error}" for error in state.errors[:5]]
        if len(state.errors) > 5:
            notes.append(f"audit: report: ... and {len(state.errors) - 5} more errors")
        return notes

    def _not_served(self, api: PolicyReportApi) -> str:
        if api.wanted == AUTO:
            served = " nor ".join(f.served_as for f in api.candidates)
            crds = " or the ".join(f.crd for f in api.candidates)
            what = f"neither {served} is served (is the {crds} CRD installed?)"
        else:
            (only,) = api.candidates
            what = f"{only.served_as} is not served (is the {only.crd} CRD installed?)"
        return f"audit: reports not written: {what}; checking every {self.retry:g}s"


class _AuditCollector(Collector):
    """The last pass's results, read at scrape time: the violations gauge is replaced whole,
    so a fixed violation disappears from it."""

    def __init__(self, loop: AuditLoop) -> None:
        self._loop = loop

    def collect(self) -> Iterator[Metric]:
        loop, last = self._loop, self._loop.last
        violations = GaugeMetricFamily(
            "tenant_guard_audit_violations",
            "Violations among the objects already in the cluster, by tenant, kind and rule "
            "(last audit pass)",
            labels=["tenant", "kind", "rule"],
        )
        for (tenant, kind, rule), count in sorted((last.counts if last else {}).items()):
            violations.add_metric([tenant, kind, rule], count)
        yield violations
        yield GaugeMetricFamily(
            "tenant_guard_audit_last_pass_timestamp_seconds",
            "When the last audit pass ended (Unix time; 0 before the first)",
            value=last.finished if last else 0.0,
        )
        yield GaugeMetricFamily(
            "tenant_guard_audit_pass_duration_seconds",
            "Wall time of the last audit pass's judging",
            value=last.duration if last else 0.0,
        )
        yield GaugeMetricFamily(
            "tenant_guard_audit_pass_cpu_seconds",
            "CPU time of the last audit pass's judging",
            value=last.cpu if last else 0.0,
        )
        yield GaugeMetricFamily(
            "tenant_guard_audit_objects",
            "Objects judged by the last audit pass (audited kinds in tenant namespaces)",
            value=last.objects if last else 0,
        )
        yield CounterMetricFamily(
            "tenant_guard_audit_passes", "Audit passes run", value=loop.passes
        )
        state = loop.report_state
        writes = CounterMetricFamily(
            "tenant_guard_audit_policy_report_writes",
            "Reports (PolicyReport or OpenReports Report) written (applied) or removed",
            labels=["action"],
        )
        writes.add_metric(["applied"], state.applied)
        writes.add_metric(["removed"], state.removed)
        yield writes
        yield CounterMetricFamily(
            "tenant_guard_audit_policy_report_errors",
            "Failed report API calls (PolicyReport or OpenReports Report)",
            value=state.failures,
        )


# --- serve --kubeconfig / --in-cluster -----------------------------------------------------------


def start_from_args(
    args: argparse.Namespace,
    store: ConfigStore,
    cluster: ClusterView,
    runtime: Runtime,
    tenants: Callable[[], TenantIndex | None] = lambda: None,
) -> AuditLoop:
    """Start the audit's watches and attach its loop to the server."""
    api_client = load_api_client(kubeconfig=args.kubeconfig, in_cluster=args.in_cluster)
    wanted = getattr(args, "policy_reports", None)
    reports = PolicyReportApi(api_client, wanted) if wanted else None
    watches = AuditWatches(api_client, caches=cluster.caches)

    def namespaces() -> Namespaces | None:
        namespace_status, vs_status = cluster.cache_status()
        return cluster.namespaces if namespace_status.synced and vs_status.synced else None

    loop = AuditLoop(
        watches,
        current_config=lambda: store.current,
        namespaces=namespaces,
        routes=lambda: cluster.routes,
        gateway_pods=lambda: cluster.gateway_pods,
        tenants=tenants,
        reports=reports,
        debounce=getattr(args, "audit_debounce_seconds", 2.0),
    )
    watches.start()
    loop.attach(runtime)
    return loop
