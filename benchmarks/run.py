"""End-to-end benchmark: tenant-guard under wrk over TLS, next to a do-nothing baseline.

    .venv/bin/python -m benchmarks.run [--seconds N] [--rounds N] [--connections N]
                                       [--threads N] [--quick] [--json PATH]

It generates a 10-tenant and a 10,000-tenant config, starts three servers on 127.0.0.1 (two
tenant-guards, one per config, and benchmarks.baseline), checks that each scenario gets the
expected answer, then drives every scenario with wrk in alternating rounds (each round runs
every scenario once, in an order rotated by one each round, so that noise on a shared machine
hits them all alike). It also times the pure decision function in this process and reads each
server's RSS at the end. See benchmarks/README.md for how to read the table.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks.profiling import profiled, server_pid
from benchmarks.workload import (
    Workload,
    check_baseline,
    fixtures_dir,
    workloads,
    write_config,
)
from tests.server_harness import free_port

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "latest.json"
TENANT_COUNTS = (10, 10_000)
READY_TIMEOUT = 180.0  # loading 100,000 claims takes a while on a slow, busy machine
STOP_TIMEOUT = 15.0
WRK_TIMEOUT = "10s"  # per request; anything slower counts as a wrk timeout error


class BenchError(Exception):
    """The benchmark cannot give a trustworthy number; the message says why."""


# --- the machine -----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 0
    return {
        "cpu": model,
        "cores": os.cpu_count() or 0,
        "usable_cores": affinity,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "kernel": platform.release(),
        "loadavg_start": _loadavg(),
    }


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def wrk_version(wrk: str) -> str:
    result = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
    first = (result.stdout or result.stderr).strip().splitlines()
    return " ".join(first[0].split()[:2]) if first else "wrk"


def code_version() -> str:
    """The commit measured, and whether webhook/ had uncommitted changes (read-only git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "webhook"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not head:
        return "unknown"
    return f"{head}{' + uncommitted changes in webhook/' if dirty else ''}"


# --- in-process: the pure decision function --------------------------------------------------


@dataclass
class DecideTiming:
    scenario: str
    tenants: int
    calls_per_repeat: int
    repeats_us: list[float]  # microseconds per call, one per repeat

    @property
    def median_us(self) -> float:
        return statistics.median(self.repeats_us)


def time_decide(
    loaded: dict[int, tuple[Any, Any]],
    loads: Sequence[Workload],
    repeats: int,
    repeat_seconds: float,
) -> list[DecideTiming]:
    """Median µs per decide() call, per scenario and tenant count (GC on, as in the server)."""
    from webhook.admission.decide import decide
    from webhook.admission.review import AdmissionReview

    timings = []
    for load in loads:
        request = AdmissionReview.model_validate(json.loads(load.body)).request
        for tenants, (config, view) in loaded.items():
            problem = load.check(decide(request, load.endpoint, view, config).response)
            if problem:
                raise BenchError(f"decide() on {load.name} ({tenants} tenants): {problem}")
            # Calibrate: how many calls fill one repeat (bounded by a deadline).
            calls, started = 0, time.perf_counter()
            while time.perf_counter() - started < min(0.05, repeat_seconds) and calls < 100_000:
                decide(request, load.endpoint, view, config)
                calls += 1
            per_call = (time.perf_counter() - started) / max(calls, 1)
            n = max(10, min(200_000, int(repeat_seconds / max(per_call, 1e-7))))
            samples = []
            for _ in range(repeats):
                t0 = time.perf_counter_ns()
                for _ in range(n):
                    decide(request, load.endpoint, view, config)
                samples.append((time.perf_counter_ns() - t0) / n / 1000)
            timings.append(DecideTiming(load.name, tenants, n, samples))
    return timings


# --- servers ---------------------------------------------------------------------------------


@dataclass
class Server:
    key: str  # "tg-10", "tg-10000", "baseline"
    command: list[str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    startup_seconds: float = 0.0
    rss_after_start_mb: float = 0.0
    rss_after_rounds_mb: float = 0.0
    rss_peak_mb: float = 0.0
    profiled: bool = False  # run under py-spy (--profile): the server is py-spy's child

    @property
    def pid(self) -> int:
        assert self.process is not None
        return server_pid(self.process) if self.profiled else self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:]) or "(empty log)"


def _pinned(cpu: int | None) -> Callable[[], None] | None:
    if cpu is None:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin


def start(server: Server, cpu: int | None) -> None:
    log = server.log_path.open("wb")
    try:
        server.process = subprocess.Popen(
            server.command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the servers ourselves
            preexec_fn=_pinned(cpu),
        )
    finally:
        log.close()


def make_certs(work: Path) -> Path:
    """A dev CA and serving certificate in `work/certs` (`webhook certs`), for every server."""
    subprocess.run(
        [sys.executable, "-m", "webhook", "certs", "--out", str(work / "certs")],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return work / "certs"


def server_flags(certs: Path) -> list[str]:
    """The TLS and log flags every server gets, so that only the app differs. `info` is what
    ships: tenant-guard writes its decision line per review, as in production."""
    return [
        *("--tls-cert", str(certs / "tls.crt"), "--tls-key", str(certs / "tls.key")),
        *("--log-level", "info"),
    ]


def https_context(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


def request(
    port: int, context: ssl.SSLContext, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(servers: Sequence[Server], context: ssl.SSLContext, timeout: float) -> None:
    started = time.monotonic()
    pending = list(servers)
    while pending:
        for server in list(pending):
            assert server.process is not None
            if server.process.poll() is not None:
                raise BenchError(
                    f"{server.key} exited with status {server.process.returncode} while "
                    f"starting:\n{server.log_tail()}"
                )
            try:
                status, _ = request(server.port, context, "GET", "/healthz")
            except (OSError, http.client.HTTPException):
                continue
            if status == 200:
                server.startup_seconds = time.monotonic() - started
                server.rss_after_start_mb = rss_mb(server.pid)
                pending.remove(server)
        if time.monotonic() - started > timeout:
            names = ", ".join(s.key for s in pending)
            raise BenchError(f"not ready after {timeout:.0f} s: {names}")
        if pending:
            time.sleep(0.1)


def stop(servers: Sequence[Server]) -> None:
    """SIGTERM each server we started, then SIGKILL what is still there after a grace period."""
    for server in servers:
        if server.process is not None and server.process.poll() is None:
            if server.profiled:
                os.kill(server.pid, signal.SIGTERM)  # py-spy writes its samples as it exits
            else:
                server.process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for server in servers:
        if server.process is None:
            continue
        try:
            server.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {key}")


def rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmRSS") / 1024


def peak_rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmHWM") / 1024


# --- scenarios and wrk -----------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    tenants: int | None  # None for the baseline
    server: Server
    path: str
    body_file: Path
    script: Path
    check: Callable[[dict[str, Any]], str | None]
    expect: str

    @property
    def label(self) -> str:
        return f"{self.name} [{self.tenants if self.tenants else '-'}]"


LUA = """\
-- generated by benchmarks/run.py: POST one captured AdmissionReview, keep-alive
local f = assert(io.open({body}, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH-RESULT {{\\"requests\\":%d,\\"duration_us\\":%d,\\"bytes\\":%d,"
    .. "\\"connect\\":%d,\\"read\\":%d,\\"write\\":%d,\\"status\\":%d,\\"timeout\\":%d,"
    .. "\\"p50_us\\":%d,\\"p90_us\\":%d,\\"p99_us\\":%d,\\"max_us\\":%d,\\"mean_us\\":%.1f}}\\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def write_script(directory: Path, name: str, body: bytes) -> tuple[Path, Path]:
    body_file = directory / f"{name}.json"
    body_file.write_bytes(body)
    script = directory / f"{name}.lua"
    script.write_text(LUA.format(body=json.dumps(str(body_file))))
    return body_file, script


@dataclass
class WrkRun:
    scenario: str
    tenants: int | None
    round: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float


_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s*(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors:.*")


def run_wrk(
    wrk: str,
    scenario: Scenario,
    seconds: float,
    connections: int,
    threads: int,
    round_number: int,
    cpu: int | None,
) -> WrkRun:
    url = f"https://127.0.0.1:{scenario.server.port}{scenario.path}"
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
        "-s",
        str(scenario.script),
        url,
    ]
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            start_new_session=True,
            preexec_fn=_pinned(cpu),
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish for {scenario.label}: {exc}") from None
    out = result.stdout
    marker = [line for line in out.splitlines() if line.startswith("BENCH-RESULT ")]
    if result.returncode != 0 or not marker:
        raise BenchError(
            f"wrk failed for {scenario.label} (exit {result.returncode}):\n{out}\n{result.stderr}"
        )
    data = json.loads(marker[-1].removeprefix("BENCH-RESULT "))
    errors = {k: data[k] for k in ("connect", "read", "write", "status", "timeout") if data[k]}
    non_2xx = _NON_2XX.search(out)
    if errors or non_2xx or _SOCKET_ERRORS.search(out):
        raise BenchError(
            f"wrk saw errors for {scenario.label} (round {round_number}): {errors or ''}\n"
            f"{out}\nserver log:\n{scenario.server.log_tail()}"
        )
    if data["requests"] == 0:
        raise BenchError(f"wrk completed no request for {scenario.label}:\n{out}")
    duration = data["duration_us"] / 1e6
    return WrkRun(
        scenario.name,
        scenario.tenants,
        round_number,
        data["requests"],
        duration,
        data["requests"] / duration,
        data["p50_us"] / 1000,
        data["p90_us"] / 1000,
        data["p99_us"] / 1000,
        data["max_us"] / 1000,
        data["mean_us"] / 1000,
    )


def check_answer(scenario: Scenario, context: ssl.SSLContext) -> None:
    """One request before timing: the server must give the expected answer, not an error."""
    status, payload = request(
        scenario.server.port, context, "POST", scenario.path, scenario.body_file.read_bytes()
    )
    if status != 200:
        raise BenchError(f"{scenario.label}: HTTP {status}: {payload[:500]!r}")
    try:
        review = json.loads(payload)
    except ValueError:
        raise BenchError(f"{scenario.label}: the answer is not JSON: {payload[:500]!r}") from None
    problem = scenario.check(review)
    if problem:
        raise BenchError(f"{scenario.label}: expected {scenario.expect}, but {problem}")


# --- results ---------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    tenants: int | None
    rps: float  # median over rounds
    rps_min: float
    rps_max: float
    p50_ms: float
    p99_ms: float
    ratio_to_baseline: float  # median over rounds of (rps / baseline rps in the same round)
    decide_us: float | None
    decide_ratio_10k_to_10: float | None
    rss_mb: float
    rounds: list[WrkRun] = field(default_factory=list)


def summarise(
    scenarios: Sequence[Scenario],
    runs: Sequence[WrkRun],
    decide_timings: Sequence[DecideTiming],
) -> list[Row]:
    baseline = {r.round: r.rps for r in runs if r.tenants is None}
    decide_us = {(t.scenario, t.tenants): t.median_us for t in decide_timings}
    rows = []
    for scenario in scenarios:
        mine = [r for r in runs if (r.scenario, r.tenants) == (scenario.name, scenario.tenants)]
        rates = [r.rps for r in mine]
        ratios = [r.rps / baseline[r.round] for r in mine if baseline.get(r.round)]
        us = decide_us.get((scenario.name, scenario.tenants or -1))
        flat = None
        if scenario.tenants == max(TENANT_COUNTS):
            small = decide_us.get((scenario.name, min(TENANT_COUNTS)))
            flat = us / small if us is not None and small else None
        rows.append(
            Row(
                scenario.name,
                scenario.tenants,
                statistics.median(rates),
                min(rates),
                max(rates),
                statistics.median(r.p50_ms for r in mine),
                statistics.median(r.p99_ms for r in mine),
                statistics.median(ratios) if ratios else float("nan"),
                us,
                flat,
                scenario.server.rss_after_rounds_mb,
                mine,
            )
        )
    return rows


HEADER = (
    f"{'scenario':<22} {'tenants':>7} {'req/s':>8} {'spread':>7} {'p50 ms':>7} {'p99 ms':>7} "
    f"{'x base':>7} {'decide µs':>10} {'10k/10':>7} {'RSS MB':>7}"
)


def format_row(row: Row) -> str:
    spread = (row.rps_max - row.rps_min) / row.rps * 100 if row.rps else 0.0
    decide = f"{row.decide_us:.1f}" if row.decide_us is not None else "-"
    flat = f"{row.decide_ratio_10k_to_10:.2f}" if row.decide_ratio_10k_to_10 else "-"
    tenants = f"{row.tenants:,}" if row.tenants else "-"
    return (
        f"{row.scenario:<22} {tenants:>7} {row.rps:>8.0f} {spread:>6.1f}% {row.p50_ms:>7.2f} "
        f"{row.p99_ms:>7.2f} {row.ratio_to_baseline:>7.2f} {decide:>10} {flat:>7} "
        f"{row.rss_mb:>7.1f}"
    )


def targets(rows: Sequence[Row]) -> list[str]:
    """The targets, each with what this run measured: the first ones, then the request
    path's (0.4x with decision logs on, decide() under 15 µs for the VirtualService cases)."""
    lines = []
    tg = [r for r in rows if r.tenants]
    worst = min(tg, key=lambda r: r.ratio_to_baseline)
    for floor in (0.8, 0.4):
        lines.append(
            f"throughput >= {floor}x baseline (decision logs on): "
            f"{'met' if worst.ratio_to_baseline >= floor else 'MISSED'}"
            f" (worst {worst.ratio_to_baseline:.2f}x: {worst.scenario}, {worst.tenants:,} tenants)"
        )
    for limit, scenarios in ((50.0, tg), (15.0, [r for r in tg if "VS" in r.scenario])):
        if not scenarios:
            continue
        slowest = max(scenarios, key=lambda r: r.decide_us or 0.0)
        ok = all((r.decide_us or 0.0) < limit for r in scenarios)
        which = "" if scenarios is tg else " for the VirtualService cases"
        lines.append(
            f"decide() < {limit:.0f} µs/op{which}: {'met' if ok else 'MISSED'} (slowest "
            f"{slowest.decide_us:.1f} µs: {slowest.scenario}, {slowest.tenants:,} tenants)"
        )
    flats = [r for r in tg if r.decide_ratio_10k_to_10 is not None]
    if flats:
        steep = max(flats, key=lambda r: r.decide_ratio_10k_to_10 or 0.0)
        ratio = steep.decide_ratio_10k_to_10 or 0.0
        lines.append(
            f"decide() flat 10 -> 10,000 tenants (<= 1.2): {'met' if ratio <= 1.2 else 'MISSED'}"
            f" (steepest {ratio:.2f}: {steep.scenario})"
        )
    big = [r for r in tg if r.tenants == max(TENANT_COUNTS)]
    if big:
        rss = max(r.rss_mb for r in big)
        lines.append(
            f"RSS < 150 MB with {max(TENANT_COUNTS):,} tenants: "
            f"{'met' if rss < 150 else 'MISSED'} ({rss:.1f} MB)"
        )
    return lines


# --- the run ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description="Benchmark tenant-guard over TLS with wrk, next to a do-nothing baseline.",
    )
    parser.add_argument("--seconds", type=float, help="wrk duration per run (default 10)")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--threads", type=int, default=1, choices=[1, 2], help="wrk threads (1)")
    parser.add_argument("--quick", action="store_true", help="3 s per run, 1 round")
    parser.add_argument(
        "--warmup", type=float, help="untimed wrk seconds per scenario first (default 2; 1 quick)"
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where results go")
    parser.add_argument("--fixtures", type=Path, help="captured AdmissionReviews directory")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the servers to CPU 0 and wrk to CPU 1 (needs 2 usable CPUs)",
    )
    parser.add_argument(
        "--keep-servers",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="after the rounds, keep the servers up this long (e.g. to attach a profiler)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run each tenant-guard server under py-spy, its samples in DIR/<server>.txt "
        "(summarise them with python -m benchmarks.profiling)",
    )
    args = parser.parse_args(argv)
    args.seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 10.0)
    args.rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    if args.seconds < 1 or args.rounds < 1 or args.connections < 1:
        parser.error("--seconds, --rounds and --connections must be at least 1")
    return args


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def servers_running(servers: Sequence[Server], cpu: int | None) -> Iterator[None]:
    try:
        for server in servers:
            start(server, cpu)
        yield
    finally:
        stop(servers)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed; install it with: apt-get install wrk", file=sys.stderr)
        return 2
    # Stop cleanly on Ctrl-C, kill or hang-up (a background job may inherit SIGINT ignored).
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    began = time.monotonic()
    try:
        return _run(args, wrk, began)
    except BenchError as exc:
        print(f"\nbenchmark FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, wrk: str, began: float) -> int:
    from webhook.config.model import load_config
    from webhook.tenancy.view import static_view

    info = machine()
    info["wrk"] = wrk_version(wrk)
    info["code"] = code_version()
    print(
        f"machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
        f"Python {info['python']} ({info['implementation']}), Linux {info['kernel']}, "
        f"load {info['loadavg_start']}"
    )
    print(
        f"settings: {args.rounds} round(s) x {args.seconds:g} s per scenario, "
        f"{args.connections} connections, {args.threads} wrk thread(s), TLS, keep-alive, "
        f"{args.warmup:g} s warm-up; {info['wrk']}; code {info['code']}"
    )
    cpus = len(os.sched_getaffinity(0))
    server_cpu, wrk_cpu = (0, 1) if args.pin and cpus >= 2 else (None, None)

    loads = workloads(fixtures_dir(args.fixtures))
    with tempfile.TemporaryDirectory(prefix="tenant-guard-bench-") as tmp:
        work = Path(tmp)
        python = sys.executable
        certs = make_certs(work)
        config_paths = {n: write_config(n, work / f"config-{n}.yaml") for n in TENANT_COUNTS}

        # In-process first, while the machine is quiet: the pure decision function.
        loaded: dict[int, tuple[Any, Any]] = {}
        load_seconds: dict[int, float] = {}
        for n, path in config_paths.items():
            t0 = time.perf_counter()
            config = load_config(path)
            load_seconds[n] = time.perf_counter() - t0
            loaded[n] = (config, static_view(config.namespaces))
        print(
            "config load (in-process): "
            + ", ".join(f"{n:,} tenants {s:.2f} s" for n, s in load_seconds.items())
        )
        repeat_seconds = 0.05 if args.quick else 0.15
        decide_timings = time_decide(loaded, loads, repeats=7, repeat_seconds=repeat_seconds)
        loaded.clear()

        common = server_flags(certs)

        def server(name: str, module_args: list[str]) -> Server:
            port = free_port()
            command = [python, "-m", *module_args, *common, "--port", str(port)]
            if args.profile is None or not name.startswith("tg-"):
                return Server(name, command, port, work / f"{name}.log")
            out = args.profile.resolve() / f"{name}.txt"
            return Server(name, profiled(command, out), port, work / f"{name}.log", profiled=True)

        servers: dict[str, Server] = {
            f"tg-{n}": server(f"tg-{n}", ["webhook", "serve", "--config", str(path)])
            for n, path in config_paths.items()
        }
        servers["baseline"] = server("baseline", ["benchmarks.baseline"])

        scenarios: list[Scenario] = []
        for index, load in enumerate(loads):
            body_file, script = write_script(work, f"load-{index}", load.body)
            for n in TENANT_COUNTS:
                scenarios.append(
                    Scenario(
                        load.name,
                        n,
                        servers[f"tg-{n}"],
                        f"/{load.endpoint}",
                        body_file,
                        script,
                        load.check,
                        load.expect,
                    )
                )
        # The baseline reads the largest body (the Pod) and answers a constant.
        largest = max(loads, key=lambda w: len(w.body))
        body_file, script = write_script(work, "baseline", largest.body)
        scenarios.append(
            Scenario(
                "baseline (no-op ASGI)",
                None,
                servers["baseline"],
                "/validate",
                body_file,
                script,
                check_baseline,
                "constant allowed",
            )
        )

        context = https_context(certs / "ca.crt")
        runs: list[WrkRun] = []
        with servers_running(list(servers.values()), server_cpu):
            wait_ready(list(servers.values()), context, READY_TIMEOUT)
            print(
                "servers ready: "
                + ", ".join(
                    f"{s.key} pid {s.pid} in {s.startup_seconds:.1f} s "
                    f"({s.rss_after_start_mb:.0f} MB)"
                    for s in servers.values()
                )
            )
            for scenario in scenarios:
                check_answer(scenario, context)
            print(f"answers checked: {', '.join(f'{s.label} {s.expect}' for s in scenarios)}")
            if args.warmup > 0:
                for scenario in scenarios:
                    run_wrk(wrk, scenario, args.warmup, args.connections, args.threads, 0, wrk_cpu)
            for number in range(1, args.rounds + 1):
                shift = (number - 1) % len(scenarios)
                order = scenarios[shift:] + scenarios[:shift]
                for scenario in order:
                    run = run_wrk(
                        wrk,
                        scenario,
                        args.seconds,
                        args.connections,
                        args.threads,
                        number,
                        wrk_cpu,
                    )
                    runs.append(run)
                    print(
                        f"  round {number}/{args.rounds}  {scenario.label:<30} "
                        f"{run.rps:>8.0f} req/s  p50 {run.p50_ms:.2f} ms  "
                        f"p99 {run.p99_ms:.2f} ms",
                        flush=True,
                    )
            for server in servers.values():
                if server.process is not None and server.process.poll() is not None:
                    raise BenchError(f"{server.key} died:\n{server.log_tail()}")
                server.rss_after_rounds_mb = rss_mb(server.pid)
                server.rss_peak_mb = peak_rss_mb(server.pid)
            if args.keep_servers > 0:
                print(
                    "keeping servers up for profiling: "
                    + ", ".join(f"{s.key} pid {s.pid} port {s.port}" for s in servers.values()),
                    flush=True,
                )
                time.sleep(min(args.keep_servers, 3600))

    rows = summarise(scenarios, runs, decide_timings)
    elapsed = time.monotonic() - began
    info["loadavg_end"] = _loadavg()
    print()
    print(HEADER)
    print("-" * len(HEADER))
    for row in rows:
        print(format_row(row))
    print()
    for line in targets(rows):
        print(f"  {line}")
    print(
        f"\nrun took {elapsed:.0f} s; load average {info['loadavg_start']} -> {info['loadavg_end']}"
    )

    report = {
        "machine": info,
        "settings": {
            "seconds": args.seconds,
            "rounds": args.rounds,
            "connections": args.connections,
            "threads": args.threads,
            "warmup_seconds": args.warmup,
            "pinned": server_cpu is not None,
            "tenant_counts": list(TENANT_COUNTS),
        },
        "elapsed_seconds": round(elapsed, 1),
        "config_load_seconds_in_process": load_seconds,
        "servers": {
            s.key: {
                "startup_seconds": round(s.startup_seconds, 2),
                "rss_after_start_mb": round(s.rss_after_start_mb, 1),
                "rss_after_rounds_mb": round(s.rss_after_rounds_mb, 1),
                "rss_peak_mb": round(s.rss_peak_mb, 1),
            }
            for s in servers.values()
        },
        "rows": [asdict(row) for row in rows],
        "decide": [{**asdict(t), "median_us": round(t.median_us, 2)} for t in decide_timings],
        "targets": targets(rows),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
