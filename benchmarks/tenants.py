"""10,000 Tenant objects on a real kube-apiserver (SPEC.md §12): creating them through the
webhook, tenant-guard's start-up and memory with them, the time from a Tenant change to its
effect in admission (with the index update's own CPU time), and admission latency against the
same tenants from the config file.

    KUBEBUILDER_ASSETS=DIR .venv/bin/python -m benchmarks.tenants [--tenants N] [--changes N]
        [--requests N] [--quick]

The Tenants are the benchmark config's tenants (benchmarks/workload.py: ten claims each, one
wildcard per ten tenants), so the two sources hold the same 100,000 claims. Steps:

1. etcd, kube-apiserver, the CRDs (the Tenant CRD of deploy/components/tenants), namespaces
   tenant-a and tenant-b; tenant-guard (`serve --kubeconfig`, a config without tenants) with
   the shipped webhook configurations, so every create is judged by the Tenant webhook;
2. the Tenants created from 8 threads; then the time until the status writer has written
   every Tenant's status;
3. tenant-guard restarted: time from process start to /readyz 200 (the Tenant cache listed
   and indexed), RSS then and once the status writer has looked at every Tenant;
4. `--changes` times: one Tenant gets a new host by a merge PATCH through the API server, and
   tenant-guard's /validate is asked (every 10 ms) about a VirtualService of another tenant for
   that host until it is refused: the time from sending the PATCH to the first refusal, and
   tenant_guard_tenant_index_update_cpu_seconds (the in-place update's CPU time);
5. admission latency (sequential HTTPS reviews on one keep-alive connection) of the
   benchmark's VirtualService reviews against this tenant-guard, then against one started
   offline with the 10,000-tenant config file.
"""

from __future__ import annotations

import argparse
import json
import ssl
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.run import machine, rss_mb
from benchmarks.workload import (
    config_data,
    fixtures_dir,
    tenant_hosts,
    tenant_name,
    workloads,
    write_config,
)
from tests import crds
from tests.builders import VS_CREATE, derive, vs_spec
from tests.e2e.harness import (
    ROOT,
    ControlPlane,
    TenantGuard,
    namespace,
    start_process,
    tenant_crd,
    wait_for,
    webhook_configurations,
    why_skipped,
)
from webhook.certificates.authority import generate_bundle, write_bundle

TENANTS_PATH = "/apis/tenant-guard.io/v1alpha1/tenants"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def tenant_object(index: int) -> dict[str, Any]:
    name = tenant_name(index)
    return {
        "apiVersion": "tenant-guard.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"hosts": tenant_hosts(name, index)},
    }


def cluster_config() -> dict[str, Any]:
    """The benchmark config without its tenants and namespaces: those come from the cluster."""
    data = config_data(2)
    del data["tenants"]
    del data["namespaces"]
    return data


def metric(guard: TenantGuard, name: str) -> float:
    for line in guard.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


def create_tenants(api: httpx.Client, count: int) -> tuple[float, int]:
    def create(index: int) -> int:
        for _ in range(5):
            response = api.post(TENANTS_PATH, json=tenant_object(index))
            if response.status_code in (201, 409):
                return 0
            time.sleep(0.2)
        print(f"  Tenant {index}: {response.status_code} {response.text[:200]}", file=sys.stderr)
        return 1

    began = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        failures = sum(pool.map(create, range(count)))
    return time.perf_counter() - began, failures


def statuses_written(api: httpx.Client, count: int) -> int:
    """How many Tenants carry a status with an observedGeneration (paged list)."""
    done, token = 0, None
    while True:
        params: dict[str, Any] = {"limit": 2000}
        if token:
            params["continue"] = token
        body = api.get(TENANTS_PATH, params=params).json()
        done += sum(1 for t in body["items"] if (t.get("status") or {}).get("observedGeneration"))
        token = body["metadata"].get("continue")
        if not token:
            return done


def validate_body(host: str, uid: str) -> bytes:
    review = derive(
        VS_CREATE, namespace="tenant-b", name="grab", spec=vs_spec([host], export_to=["."]), uid=uid
    )
    return json.dumps(review, separators=(",", ":")).encode()


def owner_named(client: httpx.Client, body: bytes, tenant: str) -> bool:
    """Whether tenant-guard refuses the review because the host is `tenant`'s (before the
    claim it is refused as unclaimed: the benchmark config says unclaimedHosts: deny)."""
    answer = client.post("/validate", content=body, headers={"content-type": "application/json"})
    message = str(answer.json()["response"].get("status", {}).get("message", ""))
    return f'belongs to tenant "{tenant}"' in message


def change_to_effect(
    api: httpx.Client, guard: TenantGuard, client: httpx.Client, changes: int, tenants: int
) -> tuple[list[float], list[float]]:
    latencies, cpu = [], []
    for change in range(changes):
        index = 2 + (change * 7919) % (tenants - 2)  # spread over the tenants, not tenant-a/-b
        name = tenant_name(index)
        host = f"bench-new-{change}.{name}.example.org"
        body = validate_body(host, f"00000000-0000-4000-8000-{change:012d}")
        if owner_named(client, body, name):
            raise RuntimeError(f"{host} is {name}'s before it is claimed")
        hosts = [*tenant_hosts(name, index), host]
        updates_before = metric(guard, "tenant_guard_tenant_index_updates")
        began = time.perf_counter()
        response = api.patch(
            f"{TENANTS_PATH}/{name}",
            content=json.dumps({"spec": {"hosts": hosts}}),
            headers={"content-type": "application/merge-patch+json"},
        )
        response.raise_for_status()
        while not owner_named(client, body, name):
            if time.perf_counter() - began > 30:
                raise RuntimeError(f"{host}: no effect after 30 s")
            time.sleep(0.01)
        latencies.append(time.perf_counter() - began)
        wait_for(
            lambda before=updates_before: (
                metric(guard, "tenant_guard_tenant_index_updates") > before
            ),
            "the update counter",
        )
        cpu.append(metric(guard, "tenant_guard_tenant_index_update_cpu_seconds"))
        time.sleep(0.2)  # let the status write of this change pass before the next
    return latencies, cpu


def admission_latency(client: httpx.Client, requests: int) -> dict[str, tuple[float, float]]:
    """p50 and p99 in ms of each scenario of `make bench` (VirtualService allowed and denied,
    Pod mutation), sequentially on one keep-alive connection."""
    out = {}
    for work in workloads(fixtures_dir()):
        times = []
        for _ in range(requests):
            began = time.perf_counter()
            answer = client.post(
                f"/{work.endpoint}", content=work.body, headers={"content-type": "application/json"}
            )
            times.append(time.perf_counter() - began)
            problem = work.check(answer.json())
            if problem:
                raise RuntimeError(f"{work.name}: {problem}")
        out[work.name] = (percentile(times, 0.5) * 1000, percentile(times, 0.99) * 1000)
    return out


def guard_client(guard: TenantGuard) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(guard.ca_file))
    return httpx.Client(base_url=f"https://127.0.0.1:{guard.port}", verify=context, timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="1,000 Tenants, fewer samples")
    args = parser.parse_args(argv)
    if args.quick:
        args.tenants, args.changes, args.requests = 1000, 10, 300
    reason = why_skipped()
    if reason:
        print(f"benchmarks.tenants: {reason}", file=sys.stderr)
        return 2
    print(json.dumps(machine()))
    with tempfile.TemporaryDirectory(prefix="bench-tenants-") as tmp:
        work = Path(tmp)
        (work / "cluster").mkdir()
        plane = ControlPlane(work / "cluster")
        guard: TenantGuard | None = None
        offline: TenantGuard | None = None
        try:
            plane.start()
            plane.wait_ready()
            manifest = yaml.safe_dump_all([*crds.crd_documents(), tenant_crd()])
            plane.kubectl("apply", "--server-side", "-f", "-", stdin=manifest, timeout=120)
            plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
            for name in ("tenant-a", "tenant-b"):
                plane.apply(namespace(name, name))
            guard = TenantGuard(work / "guard", plane.kubeconfig)
            guard.start(cluster_config())
            plane.apply(webhook_configurations(guard.port, guard.ca_file))
            api = plane.api(timeout=60)

            guard.stop()
            began = time.perf_counter()
            guard.start(wait=False)
            wait_for(lambda: guard is not None and guard.readyz().status_code == 200, "ready", 300)
            empty_ready = time.perf_counter() - began
            assert guard.process is not None
            print(
                f"for reference, with no Tenants: process start to /readyz 200 in "
                f"{empty_ready:.2f} s, RSS {rss_mb(guard.process.pid):.0f} MB"
            )

            seconds, failures = create_tenants(api, args.tenants)
            print(
                f"created {args.tenants} Tenants through the webhook in {seconds:.1f} s "
                f"({args.tenants / seconds:.0f}/s, 8 threads), {failures} failed"
            )
            began = time.perf_counter()
            while statuses_written(api, args.tenants) < args.tenants:
                if time.perf_counter() - began > 900:
                    raise RuntimeError("not every Tenant's status written after 900 s")
                time.sleep(2)  # a list of every Tenant per look: not too often
            print(f"every status written {time.perf_counter() - began:.1f} s after the last create")
            assert guard.process is not None
            print(
                f"RSS of the tenant-guard that saw them created: {rss_mb(guard.process.pid):.0f} MB"
            )

            guard.stop()
            began = time.perf_counter()
            guard.start(wait=False)
            wait_for(lambda: guard is not None and guard.readyz().status_code == 200, "ready", 300)
            ready = time.perf_counter() - began
            assert guard.process is not None
            rss_ready = rss_mb(guard.process.pid)
            print(f"restart: process start to /readyz 200 in {ready:.2f} s, RSS {rss_ready:.0f} MB")
            print(f"tenants in force: {metric(guard, 'tenant_guard_tenants'):.0f}")
            time.sleep(10)
            written = metric(guard, "tenant_guard_tenant_status_writes")
            print(
                f"after 10 s: RSS {rss_mb(guard.process.pid):.0f} MB, statuses written by the "
                f"new holder: {written:.0f} (all were right already)"
            )

            client = guard_client(guard)
            latencies, cpu = change_to_effect(api, guard, client, args.changes, args.tenants)
            ms = [s * 1000 for s in latencies]
            us = [s * 1e6 for s in cpu]
            print(
                f"change to effect ({len(ms)} changes): p50 {statistics.median(ms):.0f} ms, "
                f"p90 {percentile(ms, 0.9):.0f} ms, max {max(ms):.0f} ms; index update CPU "
                f"p50 {statistics.median(us):.0f} us, max {max(us):.0f} us"
            )
            cluster_latency = admission_latency(client, args.requests)
            client.close()
            guard.stop()

            offline = TenantGuard(work / "offline", plane.kubeconfig)
            offline.workdir.mkdir(parents=True, exist_ok=True)
            config_file = write_config(args.tenants, work / "offline.yaml")
            offline.config_file.write_text(config_file.read_text())
            offline_started = time.perf_counter()
            start_offline(offline)
            took = time.perf_counter() - offline_started
            print(f"offline with the {args.tenants}-tenant config: ready in {took:.2f} s")
            assert offline.process is not None
            rss_offline = rss_mb(offline.process.pid)
            client = guard_client(offline)
            file_latency = admission_latency(client, args.requests)
            client.close()
            print(f"RSS offline with the config file: {rss_offline:.0f} MB")
            print(
                "admission latency, sequential (ms)    Tenant objects p50/p99   config file p50/p99"
            )
            for name, (p50, p99) in cluster_latency.items():
                f50, f99 = file_latency[name]
                print(f"  {name:<42} {p50:6.2f} / {p99:6.2f}        {f50:6.2f} / {f99:6.2f}")
        finally:
            for server in (guard, offline):
                if server is not None:
                    server.stop()
            plane.stop()
    return 0


def start_offline(guard: TenantGuard) -> None:
    """tenant-guard with the config file as the only source, no cluster (as `make bench`)."""
    write_bundle(generate_bundle("tenant-guard", "tenant-guard"), guard.workdir / "hook")
    guard.process = start_process(
        [
            sys.executable,
            "-m",
            "webhook",
            "serve",
            "--config",
            str(guard.config_file),
            "--cert-dir",
            str(guard.workdir / "hook"),
            "--port",
            str(guard.port),
        ],
        guard.log_file,
        cwd=ROOT,
    )
    wait_for(lambda: guard.readyz().status_code == 200, "offline tenant-guard", 120)


if __name__ == "__main__":
    sys.exit(main())
