"""The profile summary: which samples are idle, and which part of the request path a busy one
belongs to (py-spy's collapsed stacks, as `--native` writes them)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.profiling import render, summarise

LOOP = (
    "0x7f (libc.so.6);_run_module_as_main (<frozen runpy>:198);Runner.run (asyncio/runners.py:118)"
)
LINES = [
    f"{LOOP};epoll_pwait (libc.so.6) 50",  # the loop polling: idle
    "0x7f (libc.so.6);Thread.run (threading.py:982);_worker (concurrent/futures/thread.py:81);"
    "0x7e (libc.so.6) 40",  # a pool thread waiting on its queue: idle
    f"{LOOP};admit (webhook/server/app.py:217);decide (webhook/admission/decide.py:315) 6",
    f"{LOOP};_record (webhook/server/app.py:297);LogRecord.__init__ (logging/__init__.py:360) 1",
    f"{LOOP};flush (webhook/server/logs.py:101);write (libc.so.6) 1",  # the log's write
    f"{LOOP};_send (webhook/server/app.py:135);"
    "RequestResponseCycle.send (uvicorn/protocols/http/httptools_impl.py:522);"
    "write (libc.so.6) 2",  # the response's write: the socket's
    f"{LOOP};RequestResponseCycle.send (uvicorn/protocols/http/httptools_impl.py:522) 3",
    f"{LOOP};RequestResponseCycle.run_asgi (uvicorn/protocols/http/httptools_impl.py:420);"
    "admit (webhook/server/app.py:171) 4",  # the app's own line, called by uvicorn
    f"{LOOP};SSLObject.write (ssl.py:930);0x1 (libssl.so.3) 2",
    "0x7f (libc.so.6);Thread.run (threading.py:982);WatchCache._run (webhook/cluster/watch.py:1);"
    "json.loads (json/__init__.py:346) 5",
]


def test_idle_and_busy_samples_are_told_apart_and_attributed(tmp_path: Path) -> None:
    path = tmp_path / "samples.txt"
    path.write_text("\n".join(LINES) + "\n")
    summary = summarise(path)
    assert summary.samples == 114 and summary.idle == 90
    assert dict(summary.by_part) == {
        "decide()": 6,
        "decision log": 2,
        "socket syscalls": 2,
        "HTTP protocol (uvicorn, httptools)": 3,
        "app (webhook/server/app.py, protocol.py)": 4,
        "TLS (ssl, libssl, libcrypto)": 2,
        "watch caches, API calls": 5,
    }
    assert dict(summary.by_thread) == {"the event loop (reviews)": 19, "other threads": 5}
    assert "25.0 %  decide()" in render(path, summary)
