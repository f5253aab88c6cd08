"""The HTTP side: routes, body limits, the two error channels, logs and metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from webhook.admission import Decision, Endpoint, decide
from webhook.configstore import ConfigStore
from webhook.metrics import Metrics
from webhook.review import AdmissionRequest, AdmissionReview, deny
from webhook.tenancy import StaticTenancy, TenancySource, TenancyUnavailable

# The API server sends at most ~3 MiB objects (etcd's default request limit is 1.5 MiB, and
# a review carries object and oldObject); anything larger is not from it.
MAX_BODY_BYTES = 3 * 1024 * 1024

decision_log = logging.getLogger("tenant_guard.decisions")
log = logging.getLogger("tenant_guard.app")


class BodyTooLarge(Exception):
    pass


@dataclass
class Runtime:
    """What the routes read: the live config, the tenancy source, metrics, background tasks."""

    store: ConfigStore
    tenancy: TenancySource | None = None
    metrics: Metrics = field(default_factory=Metrics)
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    closers: list[Callable[[], None]] = field(default_factory=list)  # run at shutdown
    max_body_bytes: int = MAX_BODY_BYTES

    def __post_init__(self) -> None:
        self.metrics.count_config_reloads(lambda: (self.store.reloads, self.store.failures))
        if self.tenancy is None:
            self.tenancy = StaticTenancy(lambda: self.store.current)


def create_app(runtime: Runtime) -> Starlette:
    async def validate(request: Request) -> Response:
        return await _admit(request, runtime, "validate")

    async def mutate(request: Request) -> Response:
        return await _admit(request, runtime, "mutate")

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(_: Request) -> Response:
        assert runtime.tenancy is not None
        ready, reasons = runtime.tenancy.readiness()
        if runtime.store.last_error:
            # Still ready: the last good config keeps serving; say why the new one was refused.
            reasons = [
                *reasons,
                f"config reload refused, last good config in use: {runtime.store.last_error}",
            ]
        body = {"ready": ready, "detail": reasons}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:

        tasks = [asyncio.create_task(job()) for job in runtime.background]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for close in runtime.closers:
                close()

    routes = [
        Route("/validate", validate, methods=["POST"]),
        Route("/mutate", mutate, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _bad_request(runtime: Runtime, reason: str, message: str, status: int = 400) -> Response:
    runtime.metrics.bad_requests.labels(reason).inc()
    return JSONResponse({"error": message}, status_code=status)


async def _admit(request: Request, runtime: Runtime, endpoint: Endpoint) -> Response:
    started = time.perf_counter()
    try:
        body = await _read_body(request, runtime.max_body_bytes)
    except BodyTooLarge:
        return _bad_request(
            runtime, "too-large", f"request body exceeds {runtime.max_body_bytes} bytes", 413
        )
    except ClientDisconnect:
        return Response(status_code=400)
    try:
        # The common case in one pass through pydantic's JSON parser; the slower path below
        # only runs to explain a rejection.
        review = AdmissionReview.model_validate_json(body)
    except ValidationError as exc:
        return _bad_request(runtime, *_explain_rejection(body, exc))

    req = review.request
    config = runtime.store.current
    assert runtime.tenancy is not None
    try:
        view = await runtime.tenancy.view_for(req.namespace)
        decision = decide(req, endpoint, view, config)
    except TenancyUnavailable as exc:
        decision = Decision(
            deny(
                req.uid,
                f"tenant-guard could not determine the tenancy of namespace "
                f"{req.namespace!r}: {exc}; retry in a moment",
                code=503,
                reason="ServiceUnavailable",
            ),
            False,
            req.kind.kind,
            reason="tenancy unknown",
        )
    except Exception:
        # Fail closed: a policy that could not be evaluated never admits.
        log.exception("policy evaluation failed for uid %s", req.uid)
        decision = Decision(
            deny(
                req.uid,
                "tenant-guard could not evaluate its policies for this request "
                "(internal error, logged with the request uid); it is not admitted",
                code=500,
                reason="InternalError",
            ),
            False,
            req.kind.kind,
            reason="internal error",
        )
    elapsed = time.perf_counter() - started
    _record(runtime, endpoint, req, decision, elapsed)
    return Response(
        json.dumps(decision.response, separators=(",", ":")), media_type="application/json"
    )


def _explain_rejection(body: bytes, exc: ValidationError) -> tuple[str, str]:
    """(metric reason, message) for a body that is not a usable AdmissionReview."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as parse_error:
        return "not-json", f"request body is not JSON: {parse_error}"
    problem = _envelope_problem(data)
    if problem:
        return "not-admission-review", problem
    return "not-admission-review", "not a valid AdmissionReview: " + _summarise(exc)


def _envelope_problem(data: Any) -> str | None:
    """Name the two mistakes worth a precise message: another apiVersion, or no request."""
    if not isinstance(data, dict):
        return f"expected an AdmissionReview object, got JSON {type(data).__name__}"
    if data.get("kind") != "AdmissionReview":
        return f"expected kind AdmissionReview, got {data.get('kind')!r}"
    if data.get("apiVersion") != "admission.k8s.io/v1":
        return (
            f"apiVersion {data.get('apiVersion')!r} is not supported; configure the webhook "
            "with admissionReviewVersions: [v1]"
        )
    if not isinstance(data.get("request"), dict):
        return "AdmissionReview has no request"
    return None


def _summarise(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _record(
    runtime: Runtime, endpoint: str, req: AdmissionRequest, decision: Decision, elapsed: float
) -> None:
    verdict = "allowed" if decision.allowed else "denied"
    if decision.allowed and decision.violations:
        verdict = "warned"
    rules = sorted({v.rule for v in decision.violations}) or ["none"]
    for rule in rules:
        runtime.metrics.requests.labels(
            endpoint,
            decision.kind,
            req.operation,
            verdict,
            rule,
            decision.tenant or "",
            str(req.dry_run).lower(),
        ).inc()
    runtime.metrics.latency.labels(endpoint).observe(elapsed)
    if decision_log.isEnabledFor(logging.INFO):
        name = req.name or ((req.obj or {}).get("metadata") or {}).get("generateName")
        decision_log.info(
            "decision",
            extra={
                "fields": {
                    "uid": req.uid,
                    "endpoint": endpoint,
                    "kind": decision.kind,
                    "operation": req.operation,
                    "namespace": req.namespace,
                    "name": name,
                    "user": req.user_info.username,
                    "tenant": decision.tenant,
                    "decision": verdict,
                    "dry_run": req.dry_run,
                    "patched": decision.patched,
                    "reason": decision.reason,
                    "violations": [
                        {"rule": v.rule, "field": v.field, "value": v.value, "owner": v.owner}
                        for v in decision.violations
                    ],
                    "ms": round(elapsed * 1000, 3),
                }
            },
        )
