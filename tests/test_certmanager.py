"""serve --manage-certs: CertManager against the fake API server, through the real client."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import ssl
import stat
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import kubernetes.client
import pytest
from cryptography import x509

from tests.conftest import EXAMPLE_CONFIG
from tests.fake_apiserver import FakeApiServer
from tests.server_harness import (
    cluster_config_file,
    free_port,
    running_server,
    runtime_for,
    serve_process,
)
from webhook.certificates import authority as tls
from webhook.certificates.api import CERT_MANAGEMENT_RBAC, CertificateApi, StoredSecret
from webhook.certificates.authority import CertReloader
from webhook.certificates.manager import (
    CertManager,
    CertManagerError,
    start_from_args,
)
from webhook.cluster.client import resolve_namespace
from webhook.cluster.rest import ClusterApiError

NS = "tenant-guard"
SECRET = "tenant-guard-tls"
SECRET_PATH = f"/api/v1/namespaces/{NS}/secrets/{SECRET}"
VALIDATING = "validatingwebhookconfigurations"
MUTATING = "mutatingwebhookconfigurations"
WEBHOOKS = {
    (VALIDATING, "tenant-guard"): [
        "tenant-rules.tenant-guard.io",
        "namespace-label.tenant-guard.io",
    ],
    (MUTATING, "00-tenant-guard"): ["tenant-mutate.tenant-guard.io"],
}
ADMISSION = "/apis/admissionregistration.k8s.io/v1"
NAMES = tls.service_dns_names("tenant-guard", NS)
DAY = timedelta(days=1)


# --- helpers -------------------------------------------------------------------------------------


def certs(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


def make_ca(not_before: datetime, not_after: datetime, cn: str = "old CA") -> tuple[bytes, bytes]:
    """A CA valid from (about) not_before to not_after."""
    return tls.generate_ca(cn, days=(not_after - not_before).days, now=not_before)


def secret_data(
    ca: tuple[bytes, bytes], leaf: tuple[bytes, bytes], bundle: bytes | None = None
) -> dict[str, bytes]:
    return {
        "tls.crt": leaf[0],
        "tls.key": leaf[1],
        "ca.crt": ca[0] if bundle is None else bundle,
        "ca.key": ca[1],
    }


def fresh_secret() -> dict[str, bytes]:
    ca = tls.generate_ca(days=365)
    return secret_data(ca, tls.issue_serving_cert(*ca, NAMES, days=90))


def writes(fake: FakeApiServer) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests if r.method != "GET"]


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    server.no_delay = True
    with server:
        for (resource, name), hooks in WEBHOOKS.items():
            server.add_webhook_configuration(resource, name, hooks)
        # As deploy/overlays/self-managed/rbac.yaml: each name is granted on its own kind only.
        server.forbidden_paths |= {
            f"{ADMISSION}/{MUTATING}/tenant-guard",
            f"{ADMISSION}/{VALIDATING}/00-tenant-guard",
        }
        yield server


Make = Callable[..., CertManager]


@pytest.fixture
def make(fake: FakeApiServer, tmp_path: Path) -> Iterator[Make]:
    managers: list[CertManager] = []

    def build(
        cert_dir: Path | None = None, api: CertificateApi | None = None, **kwargs: Any
    ) -> CertManager:
        if api is None:
            client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=fake.url))
            api = CertificateApi(client, connect_timeout=2, request_timeout=5)
        options: dict[str, Any] = {
            "namespace": NS,
            "secret_name": SECRET,
            "service": "tenant-guard",
            "webhook_configurations": ["tenant-guard", "00-tenant-guard"],
            "cert_dir": cert_dir or tmp_path / f"certs{len(managers)}",
        }
        options.update(kwargs)
        manager = CertManager(api, **options)
        managers.append(manager)
        return manager

    yield build
    for manager in managers:
        manager.close()


def all_bundles(fake: FakeApiServer) -> list[bytes]:
    return [pem for resource, name in WEBHOOKS for pem in fake.ca_bundles(resource, name).values()]


# --- creating, adopting ------------------------------------------------------------------------


def test_creates_the_secret_when_absent_and_patches_every_ca_bundle(
    fake: FakeApiServer, make: Make
) -> None:
    manager = make()
    result = manager.sync()
    assert result.secret_written and result.files_written and not result.pending
    assert sorted(result.patched) == ["00-tenant-guard", "tenant-guard"]

    stored = fake.secret(NS, SECRET)
    assert stored is not None and stored["type"] == "kubernetes.io/tls"
    assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "tenant-guard"
    data = fake.secret_data(NS, SECRET)
    assert set(data) == {"tls.crt", "tls.key", "ca.crt", "ca.key"}
    (ca,) = certs(data["ca.crt"])
    leaf = certs(data["tls.crt"])[0]
    leaf.verify_directly_issued_by(ca)
    assert set(tls.certificate_sans(data["tls.crt"])) == set(NAMES)
    assert ca.not_valid_after_utc - ca.not_valid_before_utc >= timedelta(days=365)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc < timedelta(days=91)

    assert all_bundles(fake) == [data["ca.crt"]] * 3
    cert_dir = manager.cert_dir
    assert sorted(p.name for p in cert_dir.iterdir()) == ["ca.crt", "tls.crt", "tls.key"]
    for name in ("ca.crt", "tls.crt", "tls.key"):
        assert (cert_dir / name).read_bytes() == data[name]
    assert stat.S_IMODE((cert_dir / "tls.key").stat().st_mode) == 0o600

    # A second pass reads and changes nothing.
    before = writes(fake)
    again = manager.sync()
    assert not (again.secret_written or again.files_written or again.patched or again.pending)
    assert writes(fake) == before


def test_two_managers_racing_on_an_empty_secret_converge_on_one_ca(
    fake: FakeApiServer, make: Make
) -> None:
    fake.hold_secret_reads(2)  # both see "absent" before either creates
    managers = [make(), make()]
    errors: list[BaseException] = []

    def run(manager: CertManager) -> None:
        try:
            manager.start(timeout=10)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(m,)) for m in managers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=15)
    assert not errors
    creates = [w for w in writes(fake) if w[0] == "POST"]
    assert len(creates) == 2, "both tried to create; the API server picked one"
    data = fake.secret_data(NS, SECRET)
    for manager in managers:
        assert (manager.cert_dir / "ca.crt").read_bytes() == data["ca.crt"]
        assert (manager.cert_dir / "tls.crt").read_bytes() == data["tls.crt"]
    assert all_bundles(fake) == [data["ca.crt"]] * 3


def test_adopts_an_existing_valid_secret_without_changing_it(
    fake: FakeApiServer, make: Make
) -> None:
    data = fresh_secret()
    rv = fake.put_secret(NS, SECRET, data)
    manager = make()
    result = manager.sync()
    assert not result.secret_written
    stored = fake.secret(NS, SECRET)
    assert stored is not None and stored["metadata"]["resourceVersion"] == rv
    assert [w for w in writes(fake) if "secrets" in w[1]] == []
    assert (manager.cert_dir / "tls.crt").read_bytes() == data["tls.crt"]
    assert all_bundles(fake) == [data["ca.crt"]] * 3


def test_keeps_the_type_labels_and_other_keys_of_an_existing_secret(
    fake: FakeApiServer, make: Make
) -> None:
    fake.put_secret(NS, SECRET, {"note": b"kept"}, secret_type="Opaque")
    make().sync()
    stored = fake.secret(NS, SECRET)
    assert stored is not None and stored["type"] == "Opaque"
    assert fake.secret_data(NS, SECRET)["note"] == b"kept"


# --- renewal ------------------------------------------------------------------------------------


def test_renews_a_serving_certificate_near_expiry(fake: FakeApiServer, make: Make) -> None:
    ca = tls.generate_ca(days=365)
    old_leaf = tls.issue_serving_cert(*ca, NAMES, days=90, now=datetime.now(UTC) - 80 * DAY)
    fake.put_secret(NS, SECRET, secret_data(ca, old_leaf))
    manager = make()
    manager.cert_dir.mkdir()
    (manager.cert_dir / "tls.crt").write_bytes(old_leaf[0])

    result = manager.sync()
    assert result.secret_written and result.files_written
    assert any("less than 33%" in reason for reason in result.reasons)
    data = fake.secret_data(NS, SECRET)
    assert data["ca.crt"] == ca[0] and data["ca.key"] == ca[1]  # same CA
    assert data["tls.crt"] != old_leaf[0]
    new_leaf = certs(data["tls.crt"])[0]
    new_leaf.verify_directly_issued_by(certs(ca[0])[0])
    assert new_leaf.not_valid_after_utc > datetime.now(UTC) + 89 * DAY
    assert (manager.cert_dir / "tls.crt").read_bytes() == data["tls.crt"]
    assert result.patched, "the caBundles were empty until now"


def test_a_serving_certificate_from_another_ca_is_replaced(fake: FakeApiServer, make: Make) -> None:
    ca, other = tls.generate_ca(days=365), tls.generate_ca(days=365)
    fake.put_secret(NS, SECRET, secret_data(ca, tls.issue_serving_cert(*other, NAMES, days=90)))
    result = make().sync()
    assert any("not signed by the CA" in reason for reason in result.reasons)
    leaf = certs(fake.secret_data(NS, SECRET)["tls.crt"])[0]
    leaf.verify_directly_issued_by(certs(ca[0])[0])


def test_ca_rotation_keeps_both_cas_in_the_ca_bundle(fake: FakeApiServer, make: Make) -> None:
    now = datetime.now(UTC)
    old_ca = make_ca(now - 300 * DAY, now + 65 * DAY)
    old_leaf = tls.issue_serving_cert(*old_ca, NAMES, days=90, now=now - DAY)
    fake.put_secret(NS, SECRET, secret_data(old_ca, old_leaf))
    for (resource, name), hooks in WEBHOOKS.items():  # as a previous pass left them
        fake.add_webhook_configuration(resource, name, hooks, ca_bundle=old_ca[0])

    manager = make()
    result = manager.sync()
    assert any("the CA expires" in reason for reason in result.reasons)
    data = fake.secret_data(NS, SECRET)
    new_ca, kept = certs(data["ca.crt"])
    assert kept == certs(old_ca[0])[0]
    assert data["ca.key"] != old_ca[1]
    assert new_ca.not_valid_after_utc > now + 364 * DAY
    certs(data["tls.crt"])[0].verify_directly_issued_by(new_ca)
    # The API server trusts both: serving certificates of either CA verify.
    assert all_bundles(fake) == [data["ca.crt"]] * 3
    certs(old_leaf[0])[0].verify_directly_issued_by(kept)

    # Stable afterwards: the old CA stays until it expires.
    assert not manager.sync().secret_written


def test_a_deleted_secret_gets_a_new_ca_and_keeps_the_one_still_served(
    fake: FakeApiServer, make: Make
) -> None:
    now = datetime.now(UTC)
    served_ca = make_ca(now - DAY, now + 300 * DAY)
    for (resource, name), hooks in WEBHOOKS.items():  # a previous pass, then the Secret deleted
        fake.add_webhook_configuration(resource, name, hooks, ca_bundle=served_ca[0])

    result = make().sync()
    assert result.secret_written
    data = fake.secret_data(NS, SECRET)
    new_ca, kept = certs(data["ca.crt"])
    assert kept == certs(served_ca[0])[0] and new_ca != kept
    assert data["ca.key"] != served_ca[1]
    certs(data["tls.crt"])[0].verify_directly_issued_by(new_ca)
    # Replicas still serving a certificate of the deleted Secret's CA stay trusted.
    assert all_bundles(fake) == [data["ca.crt"]] * 3


def test_an_expired_previous_ca_is_pruned_from_the_bundle(fake: FakeApiServer, make: Make) -> None:
    now = datetime.now(UTC)
    ca = tls.generate_ca(days=365)
    dead = make_ca(now - 400 * DAY, now - DAY)
    leaf = tls.issue_serving_cert(*ca, NAMES, days=90)
    fake.put_secret(NS, SECRET, secret_data(ca, leaf, bundle=ca[0] + dead[0]))
    result = make().sync()
    assert result.secret_written
    data = fake.secret_data(NS, SECRET)
    assert data["ca.crt"] == ca[0] and data["tls.crt"] == leaf[0]
    assert all_bundles(fake) == [ca[0]] * 3


# --- concurrency and failures -------------------------------------------------------------------


def test_a_conflicting_update_is_read_again_and_retried(fake: FakeApiServer, make: Make) -> None:
    ca = tls.generate_ca(days=365)
    old_leaf = tls.issue_serving_cert(*ca, NAMES, days=90, now=datetime.now(UTC) - 80 * DAY)
    fake.put_secret(NS, SECRET, secret_data(ca, old_leaf))
    fake.fail_next("PUT", SECRET_PATH, 409)
    assert make().sync().secret_written
    assert [w for w in writes(fake) if w[0] == "PUT"] == [("PUT", SECRET_PATH)] * 2


def test_a_replica_with_a_stale_view_does_not_take_a_newer_ca_out_of_the_bundle(
    fake: FakeApiServer, make: Make
) -> None:
    now = datetime.now(UTC)
    ca1 = make_ca(now - 100 * DAY, now + 265 * DAY)  # not due: a view that needs no change
    before = secret_data(ca1, tls.issue_serving_cert(*ca1, NAMES))
    # Meanwhile replica A rotated to CA2 and patched [CA2, CA1] into every caBundle.
    ca2 = tls.generate_ca(days=365)
    after = secret_data(ca2, tls.issue_serving_cert(*ca2, NAMES), bundle=ca2[0] + ca1[0])
    fake.put_secret(NS, SECRET, after)
    for (resource, name), hooks in WEBHOOKS.items():
        fake.add_webhook_configuration(resource, name, hooks, ca_bundle=after["ca.crt"])

    class Stale(CertificateApi):
        """Replica B's first read of the Secret happened just before A's rotation."""

        stale: StoredSecret | None = StoredSecret(
            NS, SECRET, "1", "kubernetes.io/tls", before, {"name": SECRET}
        )

        def read_secret(self, namespace: str, name: str) -> StoredSecret | None:
            if self.stale is not None:
                stale, self.stale = self.stale, None
                return stale
            return super().read_secret(namespace, name)

    client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=fake.url))
    replica_b = make(api=Stale(client))
    result = replica_b.sync()
    assert not result.patched and not result.secret_written
    assert all_bundles(fake) == [after["ca.crt"]] * 3, "CA2 is still trusted"
    assert (replica_b.cert_dir / "tls.crt").read_bytes() == after["tls.crt"]
    assert [w for w in writes(fake) if w[0] != "GET"] == []


def test_a_missing_webhook_configuration_is_not_fatal(fake: FakeApiServer, make: Make) -> None:
    fake.delete_webhook_configuration(MUTATING, "00-tenant-guard")
    manager = make(retry_interval=7.0)
    result = manager.sync()
    assert result.files_written and result.patched == ["tenant-guard"]
    (pending,) = result.pending
    assert pending.startswith("00-tenant-guard:") and "not found" in pending
    assert manager._next_delay == 7.0

    fake.add_webhook_configuration(MUTATING, "00-tenant-guard", ["tenant-mutate.tenant-guard.io"])
    result = manager.sync()
    assert result.patched == ["00-tenant-guard"] and not result.pending
    assert manager._next_delay == manager.interval


def test_new_certificates_wait_until_the_ca_bundle_could_be_updated(
    fake: FakeApiServer, make: Make
) -> None:
    now = datetime.now(UTC)
    old_ca = make_ca(now - 300 * DAY, now + 65 * DAY)
    old_leaf = tls.issue_serving_cert(*old_ca, NAMES, days=90, now=now - DAY)
    fake.put_secret(NS, SECRET, secret_data(old_ca, old_leaf))
    manager = make()
    manager.cert_dir.mkdir()
    (manager.cert_dir / "tls.crt").write_bytes(old_leaf[0])  # being served
    fake.fail_next("PATCH", f"{ADMISSION}/{VALIDATING}/tenant-guard", 500)

    result = manager.sync()
    assert result.secret_written and not result.files_written
    assert (manager.cert_dir / "tls.crt").read_bytes() == old_leaf[0]
    result = manager.sync()
    assert result.files_written and result.patched == ["tenant-guard"]
    assert (manager.cert_dir / "tls.crt").read_bytes() == fake.secret_data(NS, SECRET)["tls.crt"]


def test_start_retries_api_errors_then_gives_up(fake: FakeApiServer, make: Make) -> None:
    fake.fail_next("GET", SECRET_PATH, 500)
    make().start(timeout=10)
    assert fake.secret(NS, SECRET) is not None

    fake.forbidden_paths.add(f"/api/v1/namespaces/{NS}/secrets/other")
    with pytest.raises(CertManagerError, match="403"):
        make(secret_name="other").start(timeout=0.6)


def test_errors_carry_the_status(fake: FakeApiServer, make: Make) -> None:
    fake.fail_next("GET", SECRET_PATH, 500)
    with pytest.raises(ClusterApiError) as caught:
        make().sync()
    assert caught.value.status == 500 and not caught.value.conflict


def test_background_run_adopts_what_another_replica_wrote(fake: FakeApiServer, make: Make) -> None:
    manager = make(interval=0.05)
    manager.sync()
    ca = (fake.secret_data(NS, SECRET)["ca.crt"], fake.secret_data(NS, SECRET)["ca.key"])
    renewed = secret_data(ca, tls.issue_serving_cert(*ca, NAMES, days=90))
    fake.put_secret(NS, SECRET, renewed)  # another replica renewed the serving certificate

    async def run_briefly() -> None:
        task = asyncio.create_task(manager.run())
        deadline = time.monotonic() + 5
        while (manager.cert_dir / "tls.crt").read_bytes() != renewed["tls.crt"]:
            assert time.monotonic() < deadline, "the background check never ran"
            await asyncio.sleep(0.02)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run_briefly())


# --- the served certificate changes without a restart -------------------------------------------


def _served_serial(port: int, ca_file: Path) -> int:
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=f"tenant-guard.{NS}.svc") as conn,
    ):
        der = conn.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_real_tls_server_serves_the_renewed_certificate_after_reload(
    fake: FakeApiServer, make: Make
) -> None:
    now = datetime.now(UTC)
    old_ca = make_ca(now - 300 * DAY, now + 65 * DAY)
    old_leaf = tls.issue_serving_cert(*old_ca, NAMES, days=90, now=now - DAY)
    fake.put_secret(NS, SECRET, secret_data(old_ca, old_leaf))
    manager = make()
    cert_dir = manager.cert_dir
    cert_dir.mkdir()
    for name, content in (
        ("tls.crt", old_leaf[0]),
        ("tls.key", old_leaf[1]),
        ("ca.crt", old_ca[0]),
    ):
        (cert_dir / name).write_bytes(content)  # what this pod served before the rotation

    with running_server(runtime_for(EXAMPLE_CONFIG), cert_dir, new_certs=False) as server:
        reloader = CertReloader(server.ssl_context, cert_dir / "tls.crt", cert_dir / "tls.key")
        old_serial = certs(old_leaf[0])[0].serial_number
        assert _served_serial(server.port, cert_dir / "ca.crt") == old_serial

        result = manager.sync()  # the CA is due: new CA, new serving certificate
        assert result.files_written
        bundle = cert_dir / "ca.crt"  # now new CA + old CA, as in the caBundles
        assert len(certs(bundle.read_bytes())) == 2
        assert _served_serial(server.port, bundle) == old_serial, "the old chain is still trusted"

        assert reloader.check_once() is True
        new_serial = certs(fake.secret_data(NS, SECRET)["tls.crt"])[0].serial_number
        assert new_serial != old_serial
        assert _served_serial(server.port, bundle) == new_serial


# --- the command ---------------------------------------------------------------------------------


def test_serve_manage_certs_end_to_end(fake: FakeApiServer, tmp_path: Path) -> None:
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    config_file = cluster_config_file(EXAMPLE_CONFIG, tmp_path)
    cert_dir = tmp_path / "tls"
    port = free_port()
    args = ["--config", str(config_file), "--cert-dir", str(cert_dir)]
    args += ["--port", str(port), "--kubeconfig", str(kubeconfig), "--manage-certs"]
    args += [
        "--webhook-configuration",
        "tenant-guard",
        "--webhook-configuration",
        "00-tenant-guard",
    ]
    env = {**os.environ, "POD_NAMESPACE": NS}
    with serve_process(args, env) as process:
        deadline = time.monotonic() + 20
        while not (cert_dir / "ca.crt").exists():
            assert process.poll() is None, "the server exited before writing certificates"
            assert time.monotonic() < deadline, "no certificates were written"
            time.sleep(0.05)
        context = ssl.create_default_context(cafile=str(cert_dir / "ca.crt"))
        context.check_hostname = False  # the certificate names the Service, not 127.0.0.1
        with httpx.Client(
            base_url=f"https://127.0.0.1:{port}", verify=context, trust_env=False
        ) as client:
            while True:
                try:
                    metrics = client.get("/metrics")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "server never answered"
                    time.sleep(0.1)
        assert "tenant_guard_ca_expiry_timestamp_seconds" in metrics.text
        data = fake.secret_data(NS, SECRET)
        assert (cert_dir / "tls.crt").read_bytes() == data["tls.crt"]
        assert all_bundles(fake) == [data["ca.crt"]] * 3


def _args(**overrides: Any) -> argparse.Namespace:
    values: dict[str, Any] = {
        "cert_dir": Path("/nonexistent"),
        "kubeconfig": None,
        "in_cluster": True,
        "namespace": "ns",
        "cert_secret": SECRET,
        "service": "tenant-guard",
        "webhook_configuration": [],
    }
    values.update(overrides)
    return argparse.Namespace(**values)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cert_dir": None}, "needs --cert-dir"),
        ({"in_cluster": False}, "needs --in-cluster or --kubeconfig"),
    ],
)
def test_manage_certs_flag_requirements(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        start_from_args(_args(**overrides), "cluster.local")


def test_namespace_comes_from_flag_then_env_then_service_account(tmp_path: Path) -> None:
    sa_file = tmp_path / "namespace"
    assert resolve_namespace("flag", {"POD_NAMESPACE": "env"}, sa_file) == "flag"
    assert resolve_namespace(None, {"POD_NAMESPACE": "env"}, sa_file) == "env"
    sa_file.write_text("from-file\n")
    assert resolve_namespace(None, {}, sa_file) == "from-file"
    with pytest.raises(ValueError, match="--namespace"):
        resolve_namespace(None, {}, tmp_path / "missing")


def test_required_rbac_is_what_the_calls_use(fake: FakeApiServer, make: Make) -> None:
    make().sync()
    now = datetime.now(UTC)
    old_ca = make_ca(now - 300 * DAY, now + 65 * DAY)
    fake.put_secret(NS, SECRET, secret_data(old_ca, tls.issue_serving_cert(*old_ca, NAMES)))
    make().sync()
    verbs = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch"}
    used: dict[str, set[str]] = {}
    for request in fake.requests:
        resource = "secrets" if "/secrets" in request.path else request.path.split("/")[4]
        used.setdefault(resource, set()).add(verbs[request.method])
    granted = {
        resource: set(rule["verbs"])
        for rule in CERT_MANAGEMENT_RBAC
        for resource in rule["resources"]
    }
    assert used == granted
