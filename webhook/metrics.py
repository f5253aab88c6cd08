"""Prometheus metrics: what operators alert on."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import accumulate

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString


class Metrics:
    """One registry per server, so tests can run several servers in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reviews = ReviewSeries()
        self.registry.register(self.reviews)
        # What every review updates, bound once (a method of our own around each would cost
        # a call per review): count_request(REQUEST_LABELS values), observe_latency(endpoint,
        # seconds).
        self.count_request = self.reviews.count
        self.observe_latency = self.reviews.observe
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

    def count_config_reloads(self, reloads: Callable[[], tuple[int, int, bool]]) -> None:
        """Export (successes, failures, whether the file in place was accepted) of config
        reloads, read at scrape time."""
        self.registry.register(_ReloadCollector(reloads))


REQUEST_LABELS = ("endpoint", "kind", "operation", "decision", "rule", "tenant", "dry_run")
# Buckets below 5 ms: the decision itself should take well under a millisecond.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class ReviewSeries(Collector):
    """The two series every review updates: tenant_guard_admission_requests_total (a counter
    by REQUEST_LABELS) and tenant_guard_admission_duration_seconds (a histogram by endpoint),
    exposed as prometheus_client's Counter and Histogram expose them.

    They are counted in plain dicts and turned into metric families when scraped. A Counter's
    or a Histogram's update takes a lock and a dozen Python calls (a bucket search among
    them), 2 to 4 % of a loaded server's instructions per review; these take two dict
    look-ups. Reviews and /metrics run on the event loop's thread, the one writer; a scrape
    from another thread would read each series whole, as the GIL copies a dict in one step.
    """

    def __init__(self) -> None:
        self._requests: dict[tuple[str, ...], int] = {}
        self._requests_created: dict[tuple[str, ...], float] = {}
        # Per endpoint: the count in each bucket (the last is +Inf), then the sum of seconds.
        self._latency: dict[str, list[float]] = {}
        self._latency_created: dict[str, float] = {}

    def count(self, labels: tuple[str, ...]) -> None:
        requests = self._requests
        count = requests.get(labels)
        if count is None:
            self._requests_created[labels] = time.time()
            count = 0
        requests[labels] = count + 1

    def observe(self, endpoint: str, seconds: float) -> None:
        counts = self._latency.get(endpoint)
        if counts is None:
            self._latency_created[endpoint] = time.time()
            counts = self._latency[endpoint] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # the first bound >= seconds
        counts[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        # As prometheus_client's own: the _created series unless they are switched off.
        created = prometheus_metrics._use_created
        requests = CounterMetricFamily(
            "tenant_guard_admission_requests",
            "Admission requests answered, by kind, operation, decision, rule, tenant and dry run",
            labels=REQUEST_LABELS,
        )
        started = self._requests_created
        for labels, count in list(self._requests.items()):
            requests.add_metric(labels, count, created=started[labels] if created else None)
        yield requests
        latency = HistogramMetricFamily(
            "tenant_guard_admission_duration_seconds",
            "Time to answer an admission request, from body read to response",
            labels=["endpoint"],
        )
        bounds = [*map(floatToGoString, LATENCY_BUCKETS), "+Inf"]
        for endpoint, counts in list(self._latency.items()):
            cumulative = accumulate(counts[:-1])
            latency.add_metric([endpoint], list(zip(bounds, cumulative, strict=True)), counts[-1])
            if created:
                name = latency.name + "_created"
                since = self._latency_created[endpoint]
                latency.samples.append(Sample(name, {"endpoint": endpoint}, since))
        yield latency


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
