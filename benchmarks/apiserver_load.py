"""What tenant-guard adds to each write, through a real kube-apiserver, next to a constant-answer
webhook on the same stack and to no webhook at all, measured in the same run.

    KUBEBUILDER_ASSETS=DIR .venv/bin/python -m benchmarks.apiserver_load
        [--requests N] [--concurrency N] [--rounds N] [--quick]

It starts etcd and kube-apiserver from KUBEBUILDER_ASSETS (tests/e2e/harness.py), tenant-guard
(`serve --kubeconfig`, `--log-level info` as shipped) and benchmarks.baseline, and registers
the shipped webhook configurations twice: as shipped, pointed at tenant-guard (namespaces
labelled `tenant`), and a copy pointed at the baseline (namespaces labelled
`bench=baseline`). The same mix of dry-run creates (tests/e2e/harness.load_mix:
VirtualServices allowed, mutated and denied, a Pod, Services) goes to each group of
namespaces, and to unlabelled namespaces that no webhook sees. Each round sends `--requests`
writes per target one at a time, then with `--concurrency` threads, targets in a rotated
order. Every tenant-guard answer is compared with the one it got in the sequential warm-up;
any difference or error fails the run.
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.profiling import profiled, stop_profiled
from benchmarks.run import machine
from tests.e2e.harness import (
    Answer,
    ControlPlane,
    TenantGuard,
    dry_run_create,
    free_port,
    load_mix,
    namespace,
    start_process,
    stop_process,
    wait_for,
    webhook_configurations,
    why_skipped,
)
from webhook.certificates.authority import generate_bundle, write_bundle

TARGETS = ("tenant-guard", "baseline", "no webhook")
LABELS: dict[str, dict[str, str]] = {
    "tenant-guard": {},  # namespace() adds the tenant label
    "baseline": {"bench": "baseline"},
    "no webhook": {},
}


@dataclass
class Target:
    name: str
    objects: list[dict[str, Any]]
    expected: list[Answer] = field(default_factory=list)
    latencies: dict[int, list[float]] = field(default_factory=dict)  # concurrency -> seconds
    seconds: dict[int, float] = field(default_factory=dict)  # concurrency -> wall time
    pass_p50: dict[int, list[float]] = field(default_factory=dict)  # concurrency -> per round
    wrong: int = 0
    errors: int = 0


@dataclass
class ProfiledTenantGuard(TenantGuard):
    """tenant-guard under py-spy (--profile): the samples are written as the server exits."""

    samples: Path = Path("tenant-guard.txt")

    def command(self) -> list[str]:
        return profiled(super().command(), self.samples)

    def stop(self) -> None:
        if self.process is not None:
            stop_profiled(self.process)
            self.process = None


def baseline_configurations(port: int, ca_file: Path) -> str:
    """The shipped configurations under other names, for namespaces labelled bench=baseline."""
    docs = list(yaml.safe_load_all(webhook_configurations(port, ca_file)))
    for doc in docs:
        doc["metadata"]["name"] = "bench-baseline-" + doc["metadata"]["name"]
        for hook in doc["webhooks"]:
            hook["name"] = "baseline-" + hook["name"]
            hook["namespaceSelector"] = {"matchLabels": {"bench": "baseline"}}
            hook.pop("objectSelector", None)
    return yaml.safe_dump_all(docs)


def labelled_namespace(name: str, target: str) -> str:
    text = namespace(name, name if target == "tenant-guard" else None)
    doc = yaml.safe_load(text)
    doc["metadata"]["labels"].update(LABELS[target])
    return yaml.safe_dump(doc)


def setup(
    plane: ControlPlane, guard_port: int, guard_ca: Path, base_port: int, base_ca: Path
) -> dict[str, Target]:
    targets: dict[str, Target] = {}
    prefixes = {"tenant-guard": "tenant", "baseline": "base", "no webhook": "none"}
    for name in TARGETS:
        own, other = f"{prefixes[name]}-a", f"{prefixes[name]}-b"
        for ns in (own, other):
            plane.apply(labelled_namespace(ns, name))
            plane.kubectl("-n", ns, "create", "serviceaccount", "default")
        targets[name] = Target(name, load_mix(own, other, tag="bench"))
    plane.apply(webhook_configurations(guard_port, guard_ca))
    plane.apply(baseline_configurations(base_port, base_ca))
    return targets


def one_pass(api: httpx.Client, target: Target, requests: int, concurrency: int) -> None:
    def send(index: int) -> tuple[int, float, Answer | None]:
        which = index % len(target.objects)
        began = time.perf_counter()
        try:
            answer: Answer | None = dry_run_create(api, target.objects[which])
        except httpx.HTTPError:
            answer = None
        return which, time.perf_counter() - began, answer

    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(send, range(requests)))
    target.seconds[concurrency] = target.seconds.get(concurrency, 0.0) + (
        time.perf_counter() - began
    )
    samples = target.latencies.setdefault(concurrency, [])
    this_pass = [seconds for _, seconds, _ in results]
    target.pass_p50.setdefault(concurrency, []).append(statistics.median(this_pass))
    for which, seconds, answer in results:
        samples.append(seconds)
        if answer is None or answer.status >= 500:
            target.errors += 1
        elif answer != target.expected[which]:
            target.wrong += 1


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(targets: dict[str, Target], concurrencies: Sequence[int]) -> None:
    print(
        f"\n{'target':<14}{'threads':>8}{'writes':>8}{'writes/s':>10}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'x base p50':>12}{'+ms p50':>9}{'+ms p99':>9}"
    )
    for concurrency in concurrencies:
        base = targets["baseline"].latencies[concurrency]
        base_p50, base_p99 = statistics.median(base), percentile(base, 0.99)
        for target in targets.values():
            samples = target.latencies[concurrency]
            p50, p99 = statistics.median(samples), percentile(samples, 0.99)
            rate = len(samples) / target.seconds[concurrency]
            print(
                f"{target.name:<14}{concurrency:>8}{len(samples):>8}{rate:>10.0f}"
                f"{p50 * 1000:>9.2f}{p99 * 1000:>9.2f}{p50 / base_p50:>12.2f}"
                f"{(p50 - base_p50) * 1000:>+9.2f}{(p99 - base_p99) * 1000:>+9.2f}"
            )


def report_rounds(targets: dict[str, Target], concurrencies: Sequence[int]) -> None:
    """tenant-guard's p50 over the baseline's, round by round (noise hits a round's passes
    alike, so the spread of these says how far the pooled ratio can be trusted)."""
    guard, base = targets["tenant-guard"], targets["baseline"]
    for concurrency in concurrencies:
        pairs = zip(guard.pass_p50[concurrency], base.pass_p50[concurrency], strict=True)
        ratios = [g / b for g, b in pairs]
        print(
            f"x base p50 by round, {concurrency} thread(s): "
            + ", ".join(f"{r:.2f}" for r in ratios)
            + f" (median {statistics.median(ratios):.2f})"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.apiserver_load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requests", type=int, help="writes per target, pass and round (300)")
    parser.add_argument("--concurrency", type=int, default=16, help="threads of the loaded pass")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="100 writes, 1 round")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="run tenant-guard under py-spy, its samples in FILE (python -m benchmarks.profiling)",
    )
    args = parser.parse_args(argv)
    args.requests = args.requests or (100 if args.quick else 300)
    args.rounds = args.rounds or (1 if args.quick else 3)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reason = why_skipped()
    if reason is not None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    info = machine()
    print(
        f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"load {info['loadavg_start']}; API server, etcd, both webhooks and the client share it"
    )
    concurrencies = (1, args.concurrency)
    with tempfile.TemporaryDirectory(prefix="tenant-guard-apiload-") as tmp:
        work = Path(tmp)
        plane = ControlPlane(work)
        guard = (
            ProfiledTenantGuard(work / "guard", plane.kubeconfig, samples=args.profile.resolve())
            if args.profile is not None
            else TenantGuard(work / "guard", plane.kubeconfig)
        )
        base_port = free_port()
        write_bundle(generate_bundle("baseline", "bench"), work / "baseline")
        baseline = start_process(
            [
                sys.executable,
                "-m",
                "benchmarks.baseline",
                "--tls-cert",
                str(work / "baseline" / "tls.crt"),
                "--tls-key",
                str(work / "baseline" / "tls.key"),
                "--port",
                str(base_port),
                "--echo-uid",
            ],
            work / "baseline.log",
        )
        try:
            plane.start()
            plane.wait_ready()
            plane.install_crds()
            guard.start()
            base_ca = work / "baseline" / "ca.crt"
            trust = ssl.create_default_context(cafile=str(base_ca))
            healthz = f"https://127.0.0.1:{base_port}/healthz"
            wait_for(lambda: httpx.get(healthz, verify=trust).status_code == 200, "the baseline")
            targets = setup(plane, guard.port, guard.ca_file, base_port, base_ca)
            with plane.api() as api:
                for target in targets.values():  # warm-up, and the answers to hold to
                    target.expected = [dry_run_create(api, obj) for obj in target.objects]
                expected = targets["tenant-guard"].expected
                print(
                    "tenant-guard's answers: "
                    + ", ".join(
                        f"{obj['kind']} {obj['metadata']['name']} {a.status}"
                        for obj, a in zip(targets["tenant-guard"].objects, expected, strict=True)
                    )
                )
                if sorted({a.status for a in expected}) != [201, 403]:
                    print("the mix must hold allowed and denied writes", file=sys.stderr)
                    return 1
                for name in ("baseline", "no webhook"):
                    refused = [a for a in targets[name].expected if a.status != 201]
                    if refused:
                        print(f"{name} must admit every write: {refused[0]}", file=sys.stderr)
                        return 1
                for number in range(args.rounds):
                    order = list(TARGETS[number % 3 :] + TARGETS[: number % 3])
                    for name in order:
                        for concurrency in concurrencies:
                            one_pass(api, targets[name], args.requests, concurrency)
                    print(f"round {number + 1}/{args.rounds} done ({', '.join(order)})", flush=True)
        finally:
            guard.stop()
            stop_process(baseline)
            plane.stop()
    report(targets, concurrencies)
    report_rounds(targets, concurrencies)
    failures = {t.name: (t.wrong, t.errors) for t in targets.values() if t.wrong or t.errors}
    print(
        "\nanswers: every write got its sequential answer, no errors"
        if not failures
        else f"\nanswers: FAILED (wrong, errors) {failures}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
