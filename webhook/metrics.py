"""Prometheus metrics: what operators alert on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
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

    def count_config_reloads(self, reloads: Callable[[], tuple[int, int]]) -> None:
        """Export (successes, failures) of config reloads, read at scrape time."""
        self.registry.register(_ReloadCollector(reloads))


class _ReloadCollector(Collector):
    def __init__(self, reloads: Callable[[], tuple[int, int]]) -> None:
        self._reloads = reloads

    def collect(self) -> Iterator[Metric]:
        successes, failures = self._reloads()
        family = CounterMetricFamily(
            "tenant_guard_config_reloads", "Config file reloads, by result", labels=["result"]
        )
        family.add_metric(["success"], successes)
        family.add_metric(["failure"], failures)
        yield family
