"""The ceiling of tenant-guard's HTTP stack: the same uvicorn + TLS server, no work at all.

A bare ASGI app that reads the whole request body and answers every POST with one constant
allowed AdmissionReview (and GET /healthz with "ok"). It runs under the same uvicorn settings
as `tenant-guard serve` (uvloop, httptools, no access log, lifespan on, the same hardened TLS
context), so the req/s it reaches is what tenant-guard could reach if its own work were free.

    python -m benchmarks.baseline --tls-cert tls.crt --tls-key tls.key --port 9443
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import uvicorn

from benchmarks.workload import BASELINE_RESPONSE
from webhook.certificates.authority import harden_server_context

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_ANSWER = json.dumps(BASELINE_RESPONSE, separators=(",", ":")).encode()
_JSON_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_ANSWER)).encode()),
]
_OK = b"ok\n"
_BURN_NS = 0  # --burn-us: CPU time spent per POST, to calibrate what app work costs
_ECHO_UID = False  # --echo-uid: put the request's uid in the answer, as an API server needs
_UID_KEY = b'"uid":"'
_ZERO_UID = BASELINE_RESPONSE["response"]["uid"].encode()
_TEXT_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(_OK)).encode()),
]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["method"] == "POST":
        more = True
        chunks = []
        while more:  # read the body to its end, as any real handler must
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body"))
        if _BURN_NS:
            deadline = time.perf_counter_ns() + _BURN_NS
            while time.perf_counter_ns() < deadline:
                pass
        status, headers, body = 200, _JSON_HEADERS, _ANSWER
        if _ECHO_UID:
            body = _ANSWER.replace(_ZERO_UID, _request_uid(b"".join(chunks)))
            headers = [_JSON_HEADERS[0], (b"content-length", str(len(body)).encode())]
    elif scope["path"] == "/healthz":
        status, headers, body = 200, _TEXT_HEADERS, _OK
    else:
        status, headers, body = 404, [(b"content-length", b"0")], b""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _request_uid(body: bytes) -> bytes:
    """request.uid without parsing: the API server writes it as the request's first field,
    after kind and apiVersion, so it is the body's first "uid" key."""
    start = body.find(_UID_KEY)
    if start < 0:
        return _ZERO_UID
    start += len(_UID_KEY)
    return body[start : body.find(b'"', start)]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline", description=__doc__)
    parser.add_argument("--tls-cert", type=Path, required=True)
    parser.add_argument("--tls-key", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9443)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--burn-us",
        type=float,
        default=0.0,
        help="busy-loop this many µs per POST (calibration: the cost of app work, default 0)",
    )
    parser.add_argument(
        "--echo-uid",
        action="store_true",
        help="answer with the request's uid (found by a byte search), so that a real API "
        "server accepts the answer; off for wrk, whose answers are checked as constant",
    )
    args = parser.parse_args()
    global _BURN_NS, _ECHO_UID
    _BURN_NS = int(args.burn_us * 1000)
    _ECHO_UID = args.echo_uid
    # The same settings as webhook.server.run.serve(), minus tenant-guard's own JSON logging.
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        ssl_certfile=str(args.tls_cert),
        ssl_keyfile=str(args.tls_key),
        loop="uvloop",
        http="httptools",
        log_level=args.log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    config.load()
    assert config.ssl is not None
    harden_server_context(config.ssl)
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
