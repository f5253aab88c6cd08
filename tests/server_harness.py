"""A real tenant-guard server for tests: uvicorn with real TLS on 127.0.0.1, fresh CA."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

from webhook.certificates.authority import generate_bundle, write_bundle
from webhook.config.store import ConfigStore
from webhook.server.app import Runtime, create_app
from webhook.server.run import uvicorn_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningServer:
    url: str
    port: int
    ca_file: Path
    runtime: Runtime
    ssl_context: ssl.SSLContext  # the live one: a CertReloader can swap its chain

    def client(self, **kwargs: object) -> httpx.Client:
        """An HTTPS client that trusts only this server's CA."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return httpx.Client(base_url=self.url, verify=context, timeout=10.0, **kwargs)  # type: ignore[arg-type]


@contextmanager
def running_server(
    runtime: Runtime, cert_dir: Path, *, new_certs: bool = True
) -> Iterator[RunningServer]:
    """Run the app under uvicorn + TLS in a background thread for the length of the block,
    with a fresh CA written to cert_dir (or, with new_certs=False, the files already there)."""
    if new_certs:
        write_bundle(generate_bundle("tenant-guard", "tenant-guard"), cert_dir)
    port = free_port()
    config = uvicorn_config(
        create_app(runtime),
        host="127.0.0.1",
        port=port,
        cert_file=cert_dir / "tls.crt",
        key_file=cert_dir / "tls.key",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("tenant-guard test server did not start")
        time.sleep(0.02)
    try:
        yield RunningServer(
            f"https://127.0.0.1:{port}", port, cert_dir / "ca.crt", runtime, config.ssl
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def runtime_for(config_path: Path) -> Runtime:
    return Runtime(ConfigStore(config_path))


def cluster_config_file(example: Path, directory: Path) -> Path:
    """The example config without its offline `namespaces:` map: tenancy from a cluster."""
    config = yaml.safe_load(example.read_text())
    del config["namespaces"]
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def serve_process(
    args: list[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m webhook serve ARGS` as a child process; stopped with SIGTERM at the end,
    which must end it cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "webhook", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        yield process
    finally:
        process.terminate()
        output = process.communicate(timeout=15)[0].decode()
    # uvicorn re-raises SIGTERM after its graceful shutdown
    assert process.returncode in (0, -15), output
    assert "Application shutdown complete" in output, output


def assert_verdict(
    server: RunningServer, review: dict[str, Any], allowed: bool, message: str
) -> None:
    """POST a review to /validate and check the answer a user would read: the envelope, the
    uid echoed, the verdict, and for a denial 403 Forbidden with `message` and a fix."""
    with server.client() as client:
        body = client.post("/validate", json=review).json()
    response = body["response"]
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    assert response["uid"] == review["request"]["uid"]
    assert response["allowed"] is allowed, response
    if not allowed:
        status = response["status"]
        assert (status["code"], status["reason"]) == (403, "Forbidden")
        assert message in status["message"]
        assert "Fix:" in status["message"]
