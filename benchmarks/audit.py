"""One in-server audit pass over 50,000 cached objects with the 10,000-tenant config.

    .venv/bin/python -m benchmarks.audit              # 3 passes, medians
    .venv/bin/python -m benchmarks.audit --runs 1 --objects 10000

The objects are what the audit's watch caches hold (webhook.tenancy.snapshot.slim of each), in equal
shares: VirtualServices (one in ten routing another tenant's service: a violation),
DestinationRules, ServiceEntries, Services and HTTPRoutes, spread over the tenants'
namespaces; the route index holds the VirtualServices' and HTTPRoutes' hosts. A pass is
AuditLoop.audit, as the server runs it: judged a slice of time at a time with a pause
between slices, in this thread. Printed: CPU seconds of the judging thread and wall seconds,
per pass and per object, the time to build the 10,000 PolicyReport bodies a --policy-reports
pass compares, and what a pass does to admission: decide() timed in another thread, idle and
while a pass runs (the server's event loop is that other thread).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.analyze import manifest
from benchmarks.workload import tenant_hosts, tenant_name, write_config
from webhook.admission.decide import decide
from webhook.admission.review import AdmissionRequest
from webhook.audit.auditor import AuditLoop
from webhook.audit.judging import AuditedKind, audited_kinds, reports_by_namespace
from webhook.cluster.watch import CacheStatus
from webhook.config.model import load_config
from webhook.tenancy.routing import index_routes
from webhook.tenancy.snapshot import slim
from webhook.tenancy.view import TenancyView

TARGET_CPU_SECONDS = 10.0
SHAPES = 5  # VirtualService, DestinationRule, ServiceEntry, Service, HTTPRoute
INTERVAL = 0.0005  # seconds between the timed admission decisions


def stored_object(number: int, tenants: int) -> dict[str, Any]:
    """Object `number`, in the namespace of tenant `number % tenants`."""
    shape = number % SHAPES
    if shape < 4:
        # benchmarks.analyze's objects of those kinds (its shapes 0-3 are these four kinds).
        obj = manifest(number - number % 7 + shape, tenants)
        obj["metadata"] = {**obj["metadata"], "name": f"app-{number}", "uid": f"uid-{number}"}
        return obj
    index = number % tenants
    tenant = tenant_name(index)
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": f"web-{number}", "namespace": tenant, "uid": f"uid-{number}"},
        "spec": {
            "parentRefs": [{"name": "public", "namespace": tenant}],
            "hostnames": [tenant_hosts(tenant, index)[0]],
            "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
        },
    }


class CachedObjects:
    """Stands in for AuditWatches: the same snapshots, already listed."""

    def __init__(self, objects: Sequence[dict[str, Any]]) -> None:
        kinds = {(k.group, k.object_kind): k for k in audited_kinds()}
        by_kind: dict[AuditedKind, dict[str, Mapping[str, Any]]] = {}
        for obj in objects:
            group = str(obj["apiVersion"]).rpartition("/")[0]
            kind = kinds[(group, obj["kind"])]
            metadata = obj["metadata"]
            key = f"{metadata['namespace']}/{metadata['name']}"
            by_kind.setdefault(kind, {})[key] = slim(obj, obj["apiVersion"], obj["kind"])
        self._by_kind = by_kind

    def objects(self) -> list[tuple[AuditedKind, Mapping[str, Mapping[str, Any]]]]:
        return list(self._by_kind.items())

    def statuses(self) -> dict[AuditedKind, CacheStatus]:
        return {}

    def subscribe(self, callback: Callable[[], None]) -> None:
        pass

    def stop(self) -> None:
        pass


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.audit", description=__doc__)
    parser.add_argument("--objects", type=int, default=50_000)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tenant-guard-audit-") as scratch:
        started = time.perf_counter()
        config = load_config(write_config(args.tenants, Path(scratch) / "config.yaml"))
        loaded = time.perf_counter() - started
    namespaces = config.namespaces or {}
    objects = [stored_object(n, args.tenants) for n in range(args.objects)]
    routes = index_routes(objects, config.domain)
    cached = CachedObjects(objects)
    loop = AuditLoop(
        cached,  # type: ignore[arg-type]
        current_config=lambda: config,
        namespaces=lambda: namespaces,
        routes=lambda: routes,
    )
    print(
        f"{args.objects:,} cached objects ({SHAPES} kinds), {args.tenants:,}-tenant config "
        f"(loaded in {loaded:.2f} s, not part of a pass), {args.runs} passes (medians)"
    )
    passes = [loop.audit(config, namespaces, routes) for _ in range(args.runs)]
    cpu = statistics.median(p.cpu for p in passes)
    wall = statistics.median(p.duration for p in passes)
    last = passes[-1]
    print(f"  objects judged       {last.objects:>8,}")
    print(f"  violations found     {last.violations:>8,}")
    print(f"  pass CPU seconds     {cpu:8.2f}   ({cpu / last.objects * 1e6:.0f} µs per object)")
    pacing = f"{loop.pause * 1000:g} ms pause after each {loop.slice * 1000:g} ms of work"
    print(f"  pass wall seconds    {wall:8.2f}   ({pacing})")
    violations = loop_violations(config, namespaces, routes, cached)
    report_started = time.perf_counter()
    reports = reports_by_namespace(violations, namespaces, config)
    report_seconds = time.perf_counter() - report_started
    print(f"  {len(reports):,} PolicyReport bodies with digests: {report_seconds:.2f} s")
    idle = decide_latencies(config, namespaces, routes, seconds=wall)
    busy = decide_latencies_during(loop, config, namespaces, routes)
    for label, samples in (("idle", idle), ("during a pass", busy)):
        print(
            f"  request to decision, {label:<13}: p50 {percentile(samples, 50):6.3f} ms, "
            f"p99 {percentile(samples, 99):6.3f} ms, max {max(samples):6.3f} ms "
            f"({len(samples):,} calls)"
        )
    verdict = "met" if cpu < TARGET_CPU_SECONDS else "missed"
    print(
        f"target: a pass over {args.objects:,} objects under {TARGET_CPU_SECONDS:g} s of CPU: "
        f"{verdict}"
    )
    return 0 if last.objects == args.objects else 1


def review(tenants_namespace: str) -> AdmissionRequest:
    """A VirtualService CREATE the webhook admits, as admission would judge it."""
    return AdmissionRequest.model_validate(
        {
            "uid": "bench",
            "kind": {"group": "networking.istio.io", "version": "v1", "kind": "VirtualService"},
            "resource": {
                "group": "networking.istio.io",
                "version": "v1",
                "resource": "virtualservices",
            },
            "name": "web",
            "namespace": tenants_namespace,
            "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": "web", "namespace": tenants_namespace},
                "spec": {"hosts": ["web"], "exportTo": ["."]},
            },
        }
    )


def decide_latencies(
    config: Any,
    namespaces: Mapping[str, Mapping[str, str]],
    routes: Any,
    *,
    seconds: float = 0.0,
    until: threading.Event | None = None,
) -> list[float]:
    """Milliseconds from each request's arrival to its decision, a request every 0.5 ms, for
    `seconds` or until `until` is set. Arrival is when this thread asked to wake up: waiting
    for the interpreter (held by an audit pass) counts, as it would for a review."""
    view = TenancyView(namespaces, routes)
    request = review(tenant_name(0))
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while (until is not None and not until.is_set()) or (
        until is None and time.perf_counter() < deadline
    ):
        arrival = time.perf_counter() + INTERVAL
        time.sleep(INTERVAL)
        decide(request, "validate", view, config)
        samples.append((time.perf_counter() - arrival) * 1000)
    return samples


def decide_latencies_during(
    loop: AuditLoop, config: Any, namespaces: Mapping[str, Mapping[str, str]], routes: Any
) -> list[float]:
    """decide() timed in this thread while a pass runs in another, as in the server."""
    done = threading.Event()

    def audit() -> None:
        loop.audit(config, namespaces, routes)
        done.set()

    thread = threading.Thread(target=audit)
    thread.start()
    samples = decide_latencies(config, namespaces, routes, until=done)
    thread.join()
    return samples


def percentile(samples: Sequence[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def loop_violations(
    config: Any, namespaces: Mapping[str, Mapping[str, str]], routes: Any, cached: CachedObjects
) -> list[Any]:
    from webhook.audit.judging import Judge

    judge = Judge(config, namespaces, routes)
    return judge.judge((kind, obj) for kind, items in cached.objects() for obj in items.values())


if __name__ == "__main__":
    raise SystemExit(main())
