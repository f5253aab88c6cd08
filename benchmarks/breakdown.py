"""Where one request's time goes inside the tenant-guard process (no socket, no TLS).

    .venv/bin/python -m benchmarks.breakdown [--tenants 10 10000] [--repeat-seconds S]

For each benchmark request and config it times, in this process, every step that
webhook.server.app.admit takes, in the order it takes them, then the whole Starlette app driven
through ASGI without a socket, and the same for benchmarks.baseline. Each number is the
median over 7 repeats of µs per call. Steps nested in `decide()` are indented. The gap
between the app total and the sum of its steps is Starlette (routing, Request, Response
sending) plus the asyncio overhead of the handler.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks import baseline as baseline_app
from benchmarks.workload import Workload, fixtures_dir, workloads, write_config
from webhook.admission.decide import Context, decide, denial_message
from webhook.admission.patch import set_values
from webhook.admission.review import COMPACT_JSON, AdmissionReview, allow
from webhook.config.model import Config, load_config
from webhook.config.store import ConfigStore
from webhook.policies import pod as pod_policy
from webhook.policies import virtualservice as vs_policy
from webhook.policies.common import Subject
from webhook.server import logs
from webhook.server.app import Runtime, _record, create_app
from webhook.tenancy.view import TenancyView, static_view

Message = MutableMapping[str, Any]


def per_call_us(fn: Callable[[], object], repeat_seconds: float, repeats: int = 7) -> float:
    """Median µs per call over `repeats` repeats, each sized to about `repeat_seconds`."""
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < min(0.02, repeat_seconds) and calls < 100_000:
        fn()
        calls += 1
    n = max(
        5, min(500_000, int(repeat_seconds / max((time.perf_counter() - started) / calls, 1e-8)))
    )
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter_ns() - t0) / n / 1000)
    return statistics.median(samples)


def asgi_call(app: Any, path: str, body: bytes) -> Callable[[], Awaitable[None]]:
    """One POST through an ASGI app, without a server: what uvicorn's protocol does for it."""
    headers = [
        (b"host", b"127.0.0.1:8443"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]

    async def call() -> None:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8443),
            "state": {},
        }
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}  # never asked for: the body came in one piece

        status = 0

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status}")

    return call


def asgi_us(
    loop: asyncio.AbstractEventLoop, call: Callable[[], Awaitable[None]], seconds: float
) -> float:
    """Median µs per request through an ASGI app, all requests awaited in one running loop
    (as uvicorn runs them), 7 repeats."""

    async def timed() -> float:
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < min(0.02, seconds) and calls < 100_000:
            await call()
            calls += 1
        per = (time.perf_counter() - started) / calls
        n = max(5, min(200_000, int(seconds / max(per, 1e-8))))
        samples = []
        for _ in range(7):
            t0 = time.perf_counter_ns()
            for _ in range(n):
                await call()
            samples.append((time.perf_counter_ns() - t0) / n / 1000)
        return statistics.median(samples)

    return loop.run_until_complete(timed())


def steps(
    load: Workload, config: Config, view: TenancyView, runtime: Runtime
) -> list[tuple[str, Callable[[], object]]]:
    """The steps of webhook.server.app.admit for this request, each as a closure to time."""
    data = json.loads(load.body)
    review = AdmissionReview.model_validate(data)
    req = review.request
    decision = decide(req, load.endpoint, view, config)
    out = json.dumps(decision.response, separators=(",", ":"))
    from starlette.responses import Response

    result: list[tuple[str, Callable[[], object]]] = [
        (
            "AdmissionReview.model_validate_json(body)",
            lambda: AdmissionReview.model_validate_json(load.body),
        ),
        ("  (alt: json.loads(body) alone)", lambda: json.loads(load.body)),
        ("  (alt: model_validate(dict) alone)", lambda: AdmissionReview.model_validate(data)),
        (
            "decide(request, endpoint, view, config)",
            lambda: decide(req, load.endpoint, view, config),
        ),
    ]
    obj = req.obj or {}
    assert req.namespace is not None
    tenant = view.tenant_of(req.namespace, config)
    assert tenant is not None
    if load.endpoint == "mutate":
        ref = Subject("Pod", req.namespace, req.name or "").ref
        mutated = pod_policy.mutate(obj, ref, tenant, config)
        patch = set_values(obj, mutated.updates)
        result += [
            ("  pod.mutate(...)", lambda: pod_policy.mutate(obj, ref, tenant, config)),
            ("  set_values(obj, updates)", lambda: set_values(obj, mutated.updates)),
            ("  allow(uid, warnings, patch) (json+base64)", lambda: allow(req.uid, [], patch)),
        ]
    else:
        name = req.name or ""
        ctx = Context(
            req, Subject("VirtualService", req.namespace, name), obj, tenant, view, config
        )
        violations = vs_policy.check(obj, req.namespace, name, tenant, view, config)
        result += [
            (
                "  virtualservice.check(...)",
                lambda: vs_policy.check(obj, req.namespace or "", name, tenant, view, config),
            ),
            ("  Context(...) + Subject.ref", lambda: Context(*ctx.__dict__.values()).subject.ref),
        ]
        if violations:
            result.append(
                ("  denial_message(...)", lambda: denial_message(ctx.subject.ref, violations))
            )
    result += [
        (
            "_record(...) metrics (log level warning)",
            lambda: _record(runtime, load.endpoint, req, decision, 0.001),
        ),
        ("COMPACT_JSON.encode(response)", lambda: COMPACT_JSON.encode(decision.response)),
        ("starlette Response(...)", lambda: Response(out, media_type="application/json")),
    ]
    return result


def record_at_info(load: Workload, config: Config, view: TenancyView, seconds: float) -> float:
    """_record with the decision log on (serve's default --log-level info), to a null stream."""
    runtime = Runtime(ConfigStore.fixed(config))
    req = AdmissionReview.model_validate_json(load.body).request
    decision = decide(req, load.endpoint, view, config)
    with open(os.devnull, "w") as null:
        logs.configure("info", stream=null)
        try:
            # Outside an event loop each line is written at once: the cost of a line alone.
            return per_call_us(
                lambda: _record(runtime, load.endpoint, req, decision, 0.001), seconds
            )
        finally:
            logs.configure("warning")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.breakdown", description=__doc__)
    parser.add_argument("--tenants", type=int, nargs="+", default=[10, 10_000])
    parser.add_argument("--repeat-seconds", type=float, default=0.1)
    parser.add_argument("--fixtures", type=Path)
    args = parser.parse_args(argv)
    logs.configure("warning")  # as the benchmark runs the server
    seconds = args.repeat_seconds

    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    loads = workloads(fixtures_dir(args.fixtures))
    with tempfile.TemporaryDirectory(prefix="tenant-guard-breakdown-") as tmp:
        for tenants in args.tenants:
            path = write_config(tenants, Path(tmp) / f"config-{tenants}.yaml")
            config = load_config(path)
            view = static_view(config.namespaces)
            runtime = Runtime(ConfigStore.fixed(config))
            app = create_app(runtime)
            print(f"\n=== {tenants:,} tenants ===")
            for load in loads:
                print(f"\n{load.name} ({len(load.body)} bytes, /{load.endpoint})")
                for label, fn in steps(load, config, view, runtime):
                    print(f"  {per_call_us(fn, seconds):9.1f} µs  {label}")
                info = record_at_info(load, config, view, seconds)
                print(f"  {info:9.1f} µs  (alt: _record(...) at log level info, JSON line)")
                call = asgi_call(app, f"/{load.endpoint}", load.body)
                total = asgi_us(loop, call, seconds)
                print(f"  {total:9.1f} µs  == whole Starlette app via ASGI, no socket")
            base = asgi_call(baseline_app.app, "/validate", loads[-1].body)
            base_us = asgi_us(loop, base, seconds)
            print(f"\n  {base_us:9.1f} µs  == baseline ASGI app via ASGI, no socket")
    loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
