"""Sampling profiles of a tenant-guard process under a benchmark's load, and what they say.

The benchmarks start tenant-guard under `py-spy record` when given `--profile DIR` (py-spy is on
PyPI: `pip install py-spy`): py-spy launches the server as its child, because attaching to a
running process needs ptrace rights that containers often lack. Stopping the server (SIGTERM
to the child) makes py-spy write its samples, in the collapsed-stack format (one line per
distinct stack: `thread;frame;frame... count`).

    .venv/bin/python -m benchmarks.profiling DIR/tenant-guard.txt [...]

prints, for each file, where the process's samples went: idle (waiting in the event loop's
poll or a thread's blocking read) and, of the busy samples, the share of each part of the
request path (TLS, socket syscalls, the HTTP protocol, JSON and pydantic, decide(), the
decision log, metrics) and of the other threads (watch caches, audit, reconcilers).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

RATE = 250  # samples a second: enough for a few-minute run, little overhead

# (part, substrings of a frame). The work of a feature is its own wherever in it the sample
# fell: a sample belongs to the first of these parts that any frame of its stack names (so a
# write(2) under the decision log is the log's). Other threads' work comes first: their JSON
# parsing is not the reviews'.
FEATURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("watch caches, API calls", ("webhook/cluster/", "kubernetes/", "urllib3/", "http/client")),
    ("audit, baseline, status", ("webhook/audit/", "webhook/analyze/", "webhook/baseline/")),
    ("decision log", ("(logging/", "webhook/server/logs.py")),
    ("metrics", ("prometheus_client/",)),
    ("decide()", ("webhook/admission/decide.py", "webhook/policies/", "webhook/tenancy/")),
    ("parse (pydantic, JSON)", ("model_validate_json", "(json/", "webhook/admission/review.py")),
)
# The layers a review passes through call one another (uvicorn calls the app, which calls
# uvicorn's send, which writes to TLS and the socket): a sample belongs to the innermost.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("TLS (ssl, libssl, libcrypto)", ("(ssl.py", "sslproto", "libssl", "libcrypto", "_ssl")),
    ("socket syscalls", ("write (libc", "writev (libc", "read (libc", "recvfrom (", "sendmsg (")),
    ("HTTP protocol (uvicorn, httptools)", ("uvicorn/", "httptools")),
    ("app (webhook/server/app.py, protocol.py)", ("webhook/server/",)),
    ("event loop (asyncio, uvloop)", ("asyncio/", "uvloop", "loop.cpython")),
)
# A thread waiting: the loop's poll, or a native wait under one of these Python frames.
IDLE_LEAVES = ("epoll_wait", "epoll_pwait", "select (", "poll (libc")
WAITING_FRAMES = ("_worker (concurrent/futures/thread.py", "wait (threading.py", "readinto")


def profiled(command: Sequence[str], out: Path, rate: int = RATE) -> list[str]:
    """`command` run under py-spy, its samples written to `out` when the server exits."""
    py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=os.path.dirname(sys.executable))
    if py_spy is None:
        raise SystemExit("--profile needs py-spy on the PATH: .venv/bin/pip install py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    # --idle keeps the samples of waiting threads, so the idle share is measured, not guessed;
    # --native shows the C frames (TLS, syscalls, pydantic-core): a Python-only stack puts
    # everything uvloop does in C under one frame. It pauses the server to sample (about half
    # its throughput at this rate), so a profiled run's latencies are not the benchmark's.
    options = ["--rate", str(rate), "--format", "raw", "--idle", "--native"]
    return [py_spy, "record", *options, "--output", str(out), "--", *command]


def server_pid(process: subprocess.Popen[bytes]) -> int:
    """The pid of the server py-spy runs (its only child), or py-spy's own if none yet."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    try:
        pids = [int(p) for p in children.read_text().split()]
    except OSError:
        pids = []
    return pids[0] if pids else process.pid


def stop_profiled(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop a server started by `profiled`: SIGTERM its child (the server), then wait for
    py-spy to write the samples and exit."""
    pid = server_pid(process)
    if pid != process.pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)  # py-spy writes what it has on Ctrl-C
        process.wait(timeout=timeout)


@dataclass
class Summary:
    samples: int = 0
    idle: int = 0
    by_part: Counter[str] = field(default_factory=Counter)
    by_thread: Counter[str] = field(default_factory=Counter)  # busy samples per thread


def idle(frames: Sequence[str]) -> bool:
    """Whether a stack is a thread waiting (for the poll, a lock, a queue or a socket)."""
    leaf = frames[-1]
    if any(marker in leaf for marker in IDLE_LEAVES):
        return True
    python = [frame for frame in frames if ".py:" in frame]
    native_leaf = ".py:" not in leaf
    return native_leaf and bool(python) and any(w in python[-1] for w in WAITING_FRAMES)


def part_of(frames: Sequence[str]) -> str:
    for part, needles in FEATURES:
        if any(needle in frame for frame in frames for needle in needles):
            return part
    for frame in reversed(frames):
        for part, needles in LAYERS:
            if any(needle in frame for needle in needles):
                return part
    return "other"


def summarise(path: Path) -> Summary:
    summary = Summary()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        _thread, *frames = stack.split(";")
        summary.samples += count
        if not frames or idle(frames):
            summary.idle += count
            continue
        summary.by_part[part_of(frames)] += count
        loop = any("asyncio/runners.py" in frame for frame in frames)
        summary.by_thread["the event loop (reviews)" if loop else "other threads"] += count
    return summary


def render(path: Path, summary: Summary) -> str:
    busy = summary.samples - summary.idle
    lines = [
        f"{path}: {summary.samples} samples, {busy} busy "
        f"({100 * busy / max(1, summary.samples):.1f} % of all threads' samples)"
    ]
    for part, count in summary.by_part.most_common():
        lines.append(f"  {100 * count / max(1, busy):5.1f} %  {part}")
    lines.append("  busy samples by thread:")
    for thread, count in summary.by_thread.most_common(6):
        lines.append(f"  {100 * count / max(1, busy):5.1f} %  {thread}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="py-spy raw (collapsed) outputs")
    args = parser.parse_args(argv)
    for path in args.files:
        print(render(path, summarise(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
