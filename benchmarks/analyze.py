"""`tenant-guard analyze` on 10,000 generated objects with the 10,000-tenant config.

    .venv/bin/python -m benchmarks.analyze            # 5 runs of each, medians
    .venv/bin/python -m benchmarks.analyze --runs 3 --objects 2000

The objects are what tenant repositories hold, in equal shares: VirtualServices (hosts the
tenant owns, and one in ten routing another tenant's host), DestinationRules, ServiceEntries,
Services, Deployments (their pod templates get the Pod preview), Pods and ConfigMaps (not
judged), spread over the tenants' namespaces, 100 documents per file. Timed in-process by
phase (config load, reading, judging, report) and as the CLI a user runs (a new process each
time, interpreter start and config load included), with the JSON report written to /dev/null.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from benchmarks.workload import tenant_hosts, tenant_name, write_config

DOCUMENTS_PER_FILE = 100
TARGET_SECONDS = 5.0


def manifest(number: int, tenants: int) -> dict[str, Any]:
    """Object `number` of the generated input, for tenant `number % tenants`."""
    index = number % tenants
    tenant = tenant_name(index)
    name = f"app-{number}"
    metadata = {"name": name, "namespace": tenant}
    shape = number % 7
    if shape == 0:
        hosts = [name, tenant_hosts(tenant, index)[0]]
        if number % 10 == 0:  # one in ten routes another tenant's host: denied
            hosts.append(f"{name}.{tenant_name((index + 1) % tenants)}.svc.cluster.local")
        return {
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": metadata,
            "spec": {
                "hosts": hosts,
                "gateways": ["mesh", "istio-system/public-gateway"],
                "http": [{"route": [{"destination": {"host": name}}]}],
            },
        }
    if shape == 1:
        spec = {"host": name, "exportTo": ["."], "subsets": [{"name": "v1"}]}
        return {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            **_m(metadata, spec),
        }
    if shape == 2:
        spec = {"hosts": [f"api-1.{tenant}.example.com"], "location": "MESH_EXTERNAL"}
        return {
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            **_m(metadata, spec),
        }
    if shape == 3:
        spec = {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}
        return {"apiVersion": "v1", "kind": "Service", **_m(metadata, spec)}
    pod = {
        "metadata": {"labels": {"app": name}, "annotations": {"sidecar.istio.io/proxyCPU": "2"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]},
    }
    if shape == 4:
        spec = {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": pod}
        return {"apiVersion": "apps/v1", "kind": "Deployment", **_m(metadata, spec)}
    if shape == 5:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            **_m({**metadata, **pod["metadata"]}, pod["spec"]),
        }
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"k": "v"}}


def _m(metadata: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": metadata, "spec": spec}


def write_manifests(directory: Path, objects: int, tenants: int) -> list[Path]:
    files = []
    for start in range(0, objects, DOCUMENTS_PER_FILE):
        path = directory / f"objects-{start // DOCUMENTS_PER_FILE:04d}.yaml"
        numbers = range(start, min(start + DOCUMENTS_PER_FILE, objects))
        path.write_text(
            yaml.safe_dump_all((manifest(n, tenants) for n in numbers), sort_keys=False)
        )
        files.append(path)
    return files


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def in_process(config_path: Path, directory: Path) -> dict[str, float]:
    """One analysis inside this process, by phase (seconds)."""
    from webhook.analyze.command import read_documents, render
    from webhook.analyze.judge import analyze, exit_code
    from webhook.config.model import load_config

    phases: dict[str, float] = {}
    phases["config"], config = timed(lambda: load_config(config_path))
    phases["read"], docs = timed(lambda: read_documents([str(directory)], io.StringIO()))

    phases["judge"], results = timed(lambda: analyze(docs, config, config.namespaces or {}))
    phases["report"], _ = timed(lambda: render(results, "json", False))
    phases["total"] = sum(phases.values())
    if len(results) != len(docs) or exit_code(results) != 1:
        raise SystemExit("unexpected analysis: every object judged, some denied")
    return phases


def cli(config_path: Path, directory: Path) -> float:
    command = [sys.executable, "-m", "webhook", "analyze", "--config", str(config_path)]
    started = time.perf_counter()
    result = subprocess.run(
        [*command, "--output", "json", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 1:
        raise SystemExit(f"analyze exited {result.returncode}: {result.stderr}")
    return elapsed


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.analyze", description=__doc__)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tenant-guard-analyze-") as scratch:
        root = Path(scratch)
        config_path = write_config(args.tenants, root / "config.yaml")
        directory = root / "manifests"
        directory.mkdir()
        files = write_manifests(directory, args.objects, args.tenants)
        print(
            f"{args.objects:,} objects in {len(files)} files, {args.tenants:,}-tenant config, "
            f"{args.runs} runs each (medians)"
        )
        runs = [in_process(config_path, directory) for _ in range(args.runs)]
        cli_runs = [cli(config_path, directory) for _ in range(args.runs)]
    print("in-process, seconds:")
    for phase in ("config", "read", "judge", "report", "total"):
        median = statistics.median(run[phase] for run in runs)
        print(f"  {phase:<7} {median:6.2f}")
    judge = statistics.median(run["judge"] for run in runs)
    print(f"  judging: {judge / args.objects * 1e6:.0f} µs per object")
    wall = statistics.median(cli_runs)
    print(f"CLI (new process each run), seconds: median {wall:.2f}, min {min(cli_runs):.2f}")
    verdict = "met" if wall < TARGET_SECONDS else "missed"
    print(f"target: {args.objects:,} objects under {TARGET_SECONDS:g} s as a CLI run: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
