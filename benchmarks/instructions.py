"""Instructions a whole server spends per review, counted by valgrind: a figure of the request
path that does not move with the machine's load.

    .venv/bin/python -m benchmarks.instructions [--seconds 10] [--only NAME] [--tenants 10]

`benchmarks.run` measures time, which on a shared 2-core machine moves by a fifth from one
minute to the next. This runs each server (tenant-guard with the three benchmark requests, and
the constant-answer baseline) under callgrind with counting off (`--instr-atstart=no`), warms
it up with wrk, switches counting on with `callgrind_control` for a `wrk -c16` run, off again
after it, and divides the instructions counted by the reviews wrk saw answered. Everything the
process runs for a review is counted (uvicorn, TLS, the parse, `decide()`, the decision line,
metrics, other threads); the kernel's part (the syscalls) is not, so the ratio to the baseline
is lower than the time ratio. Under valgrind a server answers about 150 reviews a second.

Needs valgrind (with `callgrind_control`) and wrk on the PATH: it says how to install them and
exits 2 when one is missing, 1 when a run fails.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from benchmarks.run import (
    BenchError,
    Scenario,
    Server,
    https_context,
    make_certs,
    run_wrk,
    server_flags,
    start,
    stop,
    wait_ready,
    write_script,
)
from benchmarks.workload import Workload, fixtures_dir, workloads, write_config
from tests.server_harness import free_port

READY_TIMEOUT = 300.0  # the interpreter starts about fifty times slower under valgrind
TOOLS = {"valgrind": "valgrind", "callgrind_control": "valgrind", "wrk": "wrk"}


def callgrind_totals(files: Iterable[Path]) -> int:
    """The instructions counted in callgrind output files (each dump's `totals:` line)."""
    total = 0
    for path in files:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
                break
    return total


def counted(server: Server, out: Path) -> Server:
    """`server` run under callgrind, counting nothing until told, its output under `out`."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        *server.command,
    ]
    return Server(server.key, command, server.port, server.log_path)


def _control(pid: int, *args: str) -> None:
    result = subprocess.run(
        ["callgrind_control", *args, str(pid)], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0 or "OK" not in result.stdout:
        raise BenchError(f"callgrind_control {' '.join(args)} failed:\n{result.stdout}")


def per_review(scenario: Scenario, out: Path, seconds: int) -> tuple[int, int]:
    """(instructions per review, reviews counted) for one server, already started, serving
    one scenario: warm up, count during a wrk run, dump."""
    server = scenario.server
    run_wrk("wrk", scenario, 2, 16, 1, 0, None)  # warm-up, not counted
    _control(server.pid, "--instr=on")
    run = run_wrk("wrk", scenario, seconds, 16, 1, 1, None)
    _control(server.pid, "--instr=off")
    _control(server.pid, "--dump")
    stop([server])
    total = callgrind_totals(sorted(out.parent.glob(out.name + "*")))
    if total == 0:
        raise BenchError(f"callgrind counted nothing for {scenario.label}")
    return total // run.requests, run.requests


def measure(
    loads: Sequence[Workload], seconds: int, tenants: int, work: Path
) -> list[tuple[str, int, int]]:
    """(scenario, instructions per review, reviews) for each workload, then the baseline."""
    python = sys.executable
    certs = make_certs(work)
    config = write_config(tenants, work / "config.yaml")
    common = server_flags(certs)
    context = https_context(certs / "ca.crt")
    largest = max(workloads(fixtures_dir(None)), key=lambda w: len(w.body))
    jobs: list[tuple[str, list[str], str, bytes]] = [
        (w.name, ["webhook", "serve", "--config", str(config)], f"/{w.endpoint}", w.body)
        for w in loads
    ]
    jobs.append(("baseline (constant answer)", ["benchmarks.baseline"], "/validate", largest.body))
    rows = []
    for index, (name, module, path, body) in enumerate(jobs):
        port = free_port()
        out = work / f"callgrind-{index}.out"
        plain = Server(
            f"s{index}",
            [python, "-m", *module, *common, "--port", str(port)],
            port,
            work / f"server-{index}.log",
        )
        server = counted(plain, out)
        body_file, script = write_script(work, f"load-{index}", body)
        scenario = Scenario(name, tenants, server, path, body_file, script, lambda _: None, "")
        start(server, None)
        try:
            wait_ready([server], context, READY_TIMEOUT)
            ir, reviews = per_review(scenario, out, seconds)
        finally:
            stop([server])
        rows.append((name, ir, reviews))
        print(f"  {name:28s} {ir:>10,} instructions per review ({reviews:,} reviews)", flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="counted wrk run per server")
    parser.add_argument("--only", default="", help="only the requests whose name has this")
    parser.add_argument("--tenants", type=int, default=10, help="tenants in the config")
    args = parser.parse_args(argv)
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        packages = " ".join(sorted({TOOLS[tool] for tool in missing}))
        print(f"needs {', '.join(missing)}: apt-get install {packages}", file=sys.stderr)
        return 2
    loads = [w for w in workloads(fixtures_dir(None)) if args.only in w.name]
    print(f"instructions per review, {args.tenants} tenants, wrk -c16 for {args.seconds} s each")
    with tempfile.TemporaryDirectory(prefix="tenant-guard-instructions-") as tmp:
        try:
            rows = measure(loads, args.seconds, args.tenants, Path(tmp))
        except BenchError as exc:
            print(f"failed: {exc}", file=sys.stderr)
            return 1
    base = rows[-1][1]
    print(f"\n{'scenario':28s} {'per review':>12s} {'x baseline':>11s}")
    for name, ir, _ in rows:
        print(f"{name:28s} {ir:>12,} {ir / base:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
