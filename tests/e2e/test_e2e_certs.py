"""`serve --manage-certs` against a real API server, on a control plane of this module's own
(its webhook configurations carry no caBundle until tenant-guard writes one): the Secret and
both configurations' caBundles are written, and the API server keeps calling the webhook
across a forced CA rotation (the Secret deleted while serving).

There is no Service routing here, so the API server reaches the webhook by URL at
`localhost`, and the certificate is issued for the service name `localhost` (`--service`)."""

from __future__ import annotations

import base64
import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from tests.e2e.harness import (
    Answer,
    ControlPlane,
    PollingThread,
    TenantGuard,
    dry_run_create,
    free_port,
    namespace,
    virtualservice,
    wait_for,
    webhook_configurations,
)

NAMESPACE = "tenant-guard"
SECRET = "tenant-guard-tls"
CONFIGURATIONS = ("tenant-guard", "00-tenant-guard")
# tenant-b claiming tenant-a's host (denied), and its own host (allowed)
HIJACK = yaml.safe_load(virtualservice("tenant-b", "hijack", ["www.a.example.com"]))
OWN = yaml.safe_load(virtualservice("tenant-b", "own", ["shop.example.org"]))


@dataclass
class Managed:
    plane: ControlPlane
    guard: TenantGuard


@pytest.fixture(scope="module")
def managed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Managed]:
    work = tmp_path_factory.mktemp("e2e-certs")
    plane = ControlPlane(work)
    port = free_port()
    guard = TenantGuard(
        work / "guard",
        plane.kubeconfig,
        port=port,
        host="localhost",
        extra_args=[
            "--manage-certs",
            "--namespace",
            NAMESPACE,
            "--cert-secret",
            SECRET,
            "--service",
            "localhost",
            *(arg for name in CONFIGURATIONS for arg in ("--webhook-configuration", name)),
            "--cert-check-seconds",
            "1",
            "--cert-poll-seconds",
            "1",
        ],
    )
    try:
        plane.start()
        plane.wait_ready()
        plane.install_crds()
        plane.apply(namespace(NAMESPACE, None))
        for name in ("tenant-a", "tenant-b"):
            plane.apply(namespace(name, name))
            plane.kubectl("-n", name, "create", "serviceaccount", "default")
        plane.apply(webhook_configurations(port, None, "overlays/self-managed", host="localhost"))
        guard.start()
        yield Managed(plane, guard)
    finally:
        guard.stop()
        plane.stop()


def secret_data(plane: ControlPlane) -> dict[str, bytes]:
    result = plane.kubectl("-n", NAMESPACE, "get", "secret", SECRET, "-o", "json")
    secret = json.loads(result.stdout)
    assert secret["type"] == "kubernetes.io/tls"
    return {key: base64.b64decode(value) for key, value in secret["data"].items()}


def shipped_webhooks() -> int:
    """How many webhooks the two shipped configurations hold, each with its own caBundle."""
    rendered = webhook_configurations(0, None, "overlays/self-managed", host="localhost")
    return sum(len(doc["webhooks"]) for doc in yaml.safe_load_all(rendered))


def ca_bundles(plane: ControlPlane) -> list[bytes]:
    bundles = []
    for kind, name in zip(
        ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"),
        CONFIGURATIONS,
        strict=True,
    ):
        config = json.loads(plane.kubectl("get", kind, name, "-o", "json").stdout)
        bundles += [
            base64.b64decode(hook["clientConfig"].get("caBundle", ""))
            for hook in config["webhooks"]
        ]
    return bundles


def certificates(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem) if pem else []


def served_by(guard: TenantGuard, ca: x509.Certificate) -> bool:
    """Whether the certificate tenant-guard serves now was signed by `ca`."""
    pem = ssl.get_server_certificate(("127.0.0.1", guard.port))
    try:
        x509.load_pem_x509_certificate(pem.encode()).verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


@dataclass
class ApiPoller(PollingThread):
    """Dry-run creates through the API server, a denied and an allowed one, until stopped."""

    api: httpx.Client
    answers: list[tuple[str, Answer]] = field(default_factory=list)

    def poll(self) -> None:
        self.answers.append(("hijack", dry_run_create(self.api, HIJACK)))
        self.answers.append(("own", dry_run_create(self.api, OWN)))


def test_secret_and_both_ca_bundles_are_written(managed: Managed) -> None:
    data = secret_data(managed.plane)
    assert set(data) == {"tls.crt", "tls.key", "ca.crt", "ca.key"}
    assert ca_bundles(managed.plane) == [data["ca.crt"]] * shipped_webhooks()
    assert served_by(managed.guard, certificates(data["ca.crt"])[0])
    with managed.plane.api() as api:  # so the API server trusts what it is served
        answer = dry_run_create(api, HIJACK)
    assert answer.status == 403 and 'belongs to tenant "tenant-a"' in answer.message


def test_api_server_keeps_calling_across_a_forced_ca_rotation(managed: Managed) -> None:
    plane, guard = managed.plane, managed.guard
    old_ca = certificates(secret_data(plane)["ca.crt"])[0]
    with plane.api() as api, ApiPoller(api) as poller:
        wait_for(lambda: len(poller.answers) >= 10, "answers before the rotation", timeout=30)
        before = len(poller.answers)
        plane.kubectl("-n", NAMESPACE, "delete", "secret", SECRET)

        def rotated() -> bool:
            new_ca = certificates(secret_data(plane)["ca.crt"])[0]
            return new_ca != old_ca and served_by(guard, new_ca)

        wait_for(rotated, "a new CA in the Secret, and a certificate from it served", timeout=30)
        during = len(poller.answers)
        time.sleep(3)  # and some after
    assert before > 0 and during > before and len(poller.answers) > during
    wrong = [
        (what, answer)
        for what, answer in poller.answers
        if not (
            (what == "own" and answer.status == 201)
            or (what == "hijack" and answer.status == 403 and "belongs to tenant" in answer.message)
        )
    ]
    assert not wrong, f"{len(wrong)} of {len(poller.answers)} calls failed, first {wrong[0]}"

    bundle = certificates(secret_data(plane)["ca.crt"])
    assert bundle[0] != old_ca
    # The CA the replicas served until now stays trusted until it expires.
    assert old_ca in bundle
    assert ca_bundles(plane) == [secret_data(plane)["ca.crt"]] * shipped_webhooks()
