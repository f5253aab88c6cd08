"""Prometheus metrics: what operators alert on."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class Metrics:
    """One registry per server, so tests can run several servers in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[str, ...], Any] = {}
        self._latency_children: dict[str, Any] = {}
        self.requests = Counter(
            "tenant_guard_admission_requests",
            "Admission requests answered, by kind, operation, decision, rule, tenant and dry run",
            ["endpoint", "kind", "operation", "decision", "rule", "tenant", "dry_run"],
            registry=self.registry,
        )
        # Buckets below 5 ms: the decision itself should take well under a millisecond.
        self.latency = Histogram(
            "tenant_guard_admission_duration_seconds",
            "Time to answer an admission request, from body read to response",
            ["endpoint"],
            buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.bad_requests = Counter(
            "tenant_guard_bad_requests",
            "Requests refused before a decision (not JSON, not an AdmissionReview, too large)",
            ["reason"],
            registry=self.registry,
        )
        self.config_reloads = Counter(
            "tenant_guard_config_reloads",
            "Config reloads, by result",
            ["result"],
            registry=self.registry,
        )
        self.cache_size = Gauge(
            "tenant_guard_cache_objects",
            "Objects in the watch caches",
            ["resource"],
            registry=self.registry,
        )
        self.watch_restarts = Gauge(
            "tenant_guard_watch_restarts",
            "Watch restarts (relists and reconnects) so far",
            ["resource"],
            registry=self.registry,
        )
        self.cert_expiry = Gauge(
            "tenant_guard_certificate_expiry_timestamp_seconds",
            "When the serving certificate expires (Unix time)",
            registry=self.registry,
        )
        self.admission_errors = Counter(
            "tenant_guard_admission_errors",
            "Reviews denied because they could not be judged (fail closed), by reason",
            ["endpoint", "reason"],
            registry=self.registry,
        )
        self.tenancy = NamespaceTenants()
        self.registry.register(self.tenancy)

    # Labelled children are looked up once: `labels()` costs more than the update itself.
    def count_request(self, labels: tuple[str, ...]) -> None:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self.requests.labels(*labels)
        child.inc()

    def observe_latency(self, endpoint: str, seconds: float) -> None:
        histogram = self._latency_children.get(endpoint)
        if histogram is None:
            histogram = self._latency_children[endpoint] = self.latency.labels(endpoint)
        histogram.observe(seconds)

    def count_config_reloads(self, reloads: Callable[[], tuple[int, int, bool]]) -> None:
        """Export (successes, failures, whether the file in place was accepted) of config
        reloads, read at scrape time."""
        self.registry.register(_ReloadCollector(reloads))


class _ReloadCollector(Collector):
    def __init__(self, reloads: Callable[[], tuple[int, int, bool]]) -> None:
        self._reloads = reloads

    def collect(self) -> Iterator[Metric]:
        successes, failures, accepted = self._reloads()
        family = CounterMetricFamily(
            "tenant_guard_config_reloads", "Config file reloads, by result", labels=["result"]
        )
        family.add_metric(["success"], successes)
        family.add_metric(["failure"], failures)
        yield family
        # A counter says a reload failed once; this says it is still failing (the file in
        # place is refused and the last good config serves), which is what to alert on.
        yield GaugeMetricFamily(
            "tenant_guard_config_last_reload_successful",
            "1 when the config file in place is the one in use, 0 while it is refused",
            value=1.0 if accepted else 0.0,
        )


class NamespaceTenants(Collector):
    """tenant_guard_namespace_tenant{namespace, tenant}: 1 for each tenant namespace, and
    tenant_guard_shared_namespace{namespace}: 1 for each of `sharedNamespaces`, so that PromQL
    can join Istio's telemetry (which knows namespaces, not tenants) to tenants.

    Fed with the tenancy view of the moment (`update`, before each scrape), so a namespace
    that changes tenant or leaves tenancy changes or loses its series at the next scrape.
    """

    def __init__(self) -> None:
        self._source: tuple[object, str] | None = None
        self._pairs: Sequence[tuple[str, str]] = ()
        self._shared: Sequence[str] = ()

    def update(
        self,
        namespaces: Mapping[str, Mapping[str, str]],
        tenant_label: str,
        shared_namespaces: Sequence[str],
    ) -> None:
        # Snapshots are immutable and swapped whole: the same object means the same pairs.
        if (
            self._source is None
            or self._source[0] is not namespaces
            or (self._source[1] != tenant_label)
        ):
            self._pairs = tuple(
                sorted(
                    (name, labels[tenant_label])
                    for name, labels in namespaces.items()
                    if labels.get(tenant_label)
                )
            )
            self._source = (namespaces, tenant_label)
        self._shared = tuple(sorted(set(shared_namespaces)))

    def collect(self) -> Iterator[Metric]:
        tenants = GaugeMetricFamily(
            "tenant_guard_namespace_tenant",
            "1 for each tenant namespace, labelled with its tenant (join Istio's "
            "source_workload_namespace / destination_service_namespace on it)",
            labels=["namespace", "tenant"],
        )
        for namespace, tenant in self._pairs:
            tenants.add_metric([namespace, tenant], 1.0)
        yield tenants
        shared = GaugeMetricFamily(
            "tenant_guard_shared_namespace",
            "1 for each of the config's sharedNamespaces (every tenant may reach them)",
            labels=["namespace"],
        )
        for namespace in self._shared:
            shared.add_metric([namespace], 1.0)
        yield shared
