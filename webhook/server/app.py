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
from starlette.types import ASGIApp, Receive, Scope, Send

from webhook.admission.decide import Decision, Endpoint, decide
from webhook.admission.review import AdmissionRequest, compact_json, deny, parse_review
from webhook.config.store import ConfigStore
from webhook.metrics import Metrics
from webhook.server import logs
from webhook.tenancy.view import StaticTenancy, TenancySource, TenancyUnavailable

# The API server sends at most ~3 MiB objects (etcd's default request limit is 1.5 MiB, and
# a review carries object and oldObject); anything larger is not from it.
MAX_BODY_BYTES = 3 * 1024 * 1024

decision_log = logging.getLogger(logs.DECISIONS)
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
    # Extra /readyz detail that does not change readiness (the baseline's missing APIs).
    notes: list[Callable[[], list[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.metrics.count_config_reloads(
            lambda: (self.store.reloads, self.store.failures, self.store.last_error is None)
        )
        if self.tenancy is None:
            self.tenancy = StaticTenancy(lambda: self.store.current)


def create_app(runtime: Runtime) -> ASGIApp:
    """The ASGI app: admission reviews on a direct path, everything else through Starlette."""

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
        reasons = [*reasons, *(note for source in runtime.notes for note in source())]
        body = {"ready": ready, "detail": reasons}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        assert runtime.tenancy is not None
        config = runtime.store.current
        try:
            # Without a namespace: the current view, no lookup.
            view = await runtime.tenancy.view_for(None)
        except TenancyUnavailable:
            pass  # the last view's series stay until one is known again
        else:
            runtime.metrics.tenancy.update(
                view.namespaces, config.tenant_label, config.shared_namespaces
            )
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
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    other = Starlette(routes=routes, lifespan=lifespan)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # Reviews are the hot path, on every write the API server admits: they skip routing,
        # middleware and Request objects (about a tenth of a review's cost).
        endpoint = ENDPOINTS.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None:
            await other(scope, receive, send)
        elif scope["method"] != "POST":
            await _send(send, 405, b'{"error":"use POST"}', ((b"allow", b"POST"),))
        else:
            status, body = await admit(scope, receive, runtime, endpoint)
            await _send(send, status, body)

    return app


_NO_RULE = ("none",)  # the rule label of a review that broke none
ENDPOINTS: dict[str, Endpoint] = {"/validate": "validate", "/mutate": "mutate"}
_JSON = (b"content-type", b"application/json")


async def _send(
    send: Send, status: int, body: bytes, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    headers = [_JSON, (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _error(runtime: Runtime, reason: str, message: str, status: int = 400) -> tuple[int, bytes]:
    runtime.metrics.bad_requests.labels(reason).inc()
    return status, json.dumps({"error": message}).encode()


async def admit(
    scope: Scope, receive: Receive, runtime: Runtime, endpoint: Endpoint
) -> tuple[int, bytes]:
    """(HTTP status, body) for one review: 200 with the AdmissionReview response, or 4xx with
    the reason when the body is not a review at all."""
    started = time.perf_counter()
    try:
        body = await _read_body(scope, receive, runtime.max_body_bytes)
    except BodyTooLarge:
        limit = runtime.max_body_bytes
        return _error(runtime, "too-large", f"request body exceeds {limit} bytes", 413)
    except ClientDisconnect:
        return 400, b""
    try:
        # The slower path below only runs to explain a rejection.
        review = parse_review(body)
    except ValidationError as exc:
        return _error(runtime, *_explain_rejection(body, exc))

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
    _record(runtime, endpoint, req, decision, time.perf_counter() - started)
    return 200, compact_json(decision.response)


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
    rules = sorted({v.rule for v in decision.violations}) if decision.violations else _NO_RULE
    dry_run = "true" if req.dry_run else "false"
    for rule in rules:
        runtime.metrics.count_request(
            (endpoint, decision.kind, req.operation, verdict, rule, decision.tenant or "", dry_run)
        )
    runtime.metrics.observe_latency(endpoint, elapsed)
    if not decision.allowed and not decision.violations:
        # Denied without a broken rule: not judged (not checkable, tenancy unknown, internal
        # error); the reason says whose fault it is.
        reason = (decision.reason or "unknown").replace(" ", "-")
        runtime.metrics.admission_errors.labels(endpoint, reason).inc()
    if decision_log.isEnabledFor(logging.INFO):
        fields: dict[str, object] = {
            "uid": req.uid,
            "endpoint": endpoint,
            "kind": decision.kind,
            "operation": req.operation,
            "namespace": req.namespace,
            "name": req.name or _generate_name(req.obj),
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
        lines = logs.decision_lines()
        if lines is not None:
            lines.write(fields)
        else:
            decision_log.info("decision", extra={"fields": fields})


def _generate_name(obj: dict[str, Any] | None) -> object:
    # The log runs on every review, including those refused for their shape: read defensively.
    metadata = obj.get("metadata") if obj else None
    return metadata.get("generateName") if isinstance(metadata, dict) else None
