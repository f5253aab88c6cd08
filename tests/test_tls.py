"""Certificates, their files, and real TLS against uvicorn on 127.0.0.1, including live reload."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.certificates import authority as tls
from webhook.certificates.authority import CertBundle, CertReloader

# Old protocol versions are deprecated in ssl; the tests use them on purpose, to be refused.
old_tls = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")


def _cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def _spki(key: Any) -> bytes:
    der: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _bundle(**kwargs: Any) -> CertBundle:
    return tls.generate_bundle("tenant-guard", "tenant-guard", **kwargs)


# --- names and certificate contents -------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "expected_fqdn"),
    [
        pytest.param("cluster.local", ["svc.ns.svc.cluster.local"], id="default-domain"),
        pytest.param("corp.example.", ["svc.ns.svc.corp.example"], id="custom-domain-trailing-dot"),
        pytest.param("", [], id="no-domain"),
    ],
)
def test_service_dns_names(domain: str, expected_fqdn: list[str]) -> None:
    names = tls.service_dns_names("svc", "ns", domain)
    assert names == ["svc", "svc.ns", "svc.ns.svc", *expected_fqdn]


def test_service_dns_names_default_domain() -> None:
    assert tls.service_dns_names("a", "b")[-1] == "a.b.svc.cluster.local"


def test_ca_is_a_constrained_p256_ca() -> None:
    cert_pem, key_pem = tls.generate_ca(days=30)
    ca = _cert(cert_pem)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca and constraints.value.path_length == 0
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(ca.public_key())
    assert ca.subject == ca.issuer
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "tenant-guard CA"
    ca.verify_directly_issued_by(ca)
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, ec.SECP256R1)
    assert ca.serial_number > 0
    assert ca.not_valid_after_utc - ca.not_valid_before_utc >= timedelta(days=30)
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert _spki(key.public_key()) == _spki(public)


def test_serials_are_random() -> None:
    serials = {_cert(tls.generate_ca()[0]).serial_number for _ in range(3)}
    assert len(serials) == 3


def test_serving_cert_contents() -> None:
    ca_pem, ca_key_pem = tls.generate_ca()
    before = datetime.now(UTC)
    cert_pem, key_pem = tls.issue_serving_cert(
        ca_pem, ca_key_pem, ["svc", "svc.ns.svc"], ["10.0.0.1"], days=30
    )
    ca, leaf = _cert(ca_pem), _cert(cert_pem)

    leaf.verify_directly_issued_by(ca)
    assert tls.certificate_sans(cert_pem) == ["svc", "svc.ns.svc", "10.0.0.1"]
    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "svc"
    # Backdated for clock skew, and valid for the requested number of days from now.
    assert leaf.not_valid_before_utc <= before - timedelta(minutes=1)
    remaining = leaf.not_valid_after_utc - before
    assert timedelta(days=30) - timedelta(minutes=1) <= remaining <= timedelta(days=30, minutes=1)
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert _spki(key.public_key()) == _spki(leaf.public_key())


def test_serving_cert_never_outlives_its_ca() -> None:
    ca_pem, ca_key_pem = tls.generate_ca(days=10)
    cert_pem, _ = tls.issue_serving_cert(ca_pem, ca_key_pem, ["svc"], days=365)
    assert tls.not_valid_after(cert_pem) == tls.not_valid_after(ca_pem)


def test_name_too_long_for_a_cn_gives_an_empty_subject_and_critical_san() -> None:
    long_name = "a" * 50 + ".tenant-guard.svc.cluster.local"
    ca_pem, ca_key_pem = tls.generate_ca()
    leaf = _cert(tls.issue_serving_cert(ca_pem, ca_key_pem, [long_name])[0])
    assert len(leaf.subject) == 0
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"dns_names": []}, "at least one", id="no-names"),
        pytest.param({"dns_names": ["svc"], "ip_addresses": ["10.0.0"]}, "IP", id="bad-ip"),
        pytest.param({"dns_names": ["bücher.example"]}, "invalid DNS", id="non-ascii-name"),
        pytest.param({"dns_names": ["a b"]}, "invalid DNS", id="space-in-name"),
        pytest.param({"dns_names": ["svc"], "days": 0}, "positive", id="zero-days"),
        pytest.param({"dns_names": ["svc"], "now": datetime(2030, 1, 1)}, "aware", id="naive-now"),
    ],
)
def test_issue_serving_cert_rejects(kwargs: dict[str, Any], message: str) -> None:
    ca_pem, ca_key_pem = tls.generate_ca()
    with pytest.raises(ValueError, match=message):
        tls.issue_serving_cert(ca_pem, ca_key_pem, **kwargs)


def test_issue_serving_cert_rejects_a_key_of_another_ca() -> None:
    ca_pem, _ = tls.generate_ca()
    _, other_key = tls.generate_ca()
    with pytest.raises(ValueError, match="does not belong"):
        tls.issue_serving_cert(ca_pem, other_key, ["svc"])


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        pytest.param(
            True,
            [
                "tenant-guard",
                "tenant-guard.tenant-guard",
                "tenant-guard.tenant-guard.svc",
                "tenant-guard.tenant-guard.svc.cluster.local",
                "webhook.example.com",
                "localhost",
                "10.1.2.3",
                "127.0.0.1",
                "::1",
            ],
            id="local",
        ),
        pytest.param(
            False,
            [
                "tenant-guard",
                "tenant-guard.tenant-guard",
                "tenant-guard.tenant-guard.svc",
                "tenant-guard.tenant-guard.svc.cluster.local",
                "webhook.example.com",
                "10.1.2.3",
            ],
            id="cluster-only",
        ),
    ],
)
def test_generate_bundle_sans_deduplicated_in_order(local: bool, expected: list[str]) -> None:
    extra = ["Webhook.Example.com.", "tenant-guard", "10.1.2.3", "webhook.example.com"]
    bundle = _bundle(extra_dns=extra, local=local)
    assert tls.certificate_sans(bundle.cert_pem) == expected


def test_generate_bundle_pairs_match() -> None:
    bundle = _bundle(days=5, ca_days=50)
    ca, leaf = _cert(bundle.ca_cert_pem), _cert(bundle.cert_pem)
    leaf.verify_directly_issued_by(ca)
    ca_key = serialization.load_pem_private_key(bundle.ca_key_pem, password=None)
    key = serialization.load_pem_private_key(bundle.key_pem, password=None)
    assert _spki(ca_key.public_key()) == _spki(ca.public_key())
    assert _spki(key.public_key()) == _spki(leaf.public_key())
    assert leaf.not_valid_after_utc - datetime.now(UTC) < timedelta(days=5, minutes=1)
    assert ca.not_valid_after_utc - datetime.now(UTC) > timedelta(days=49)


def test_not_valid_after_is_aware_utc_and_sans_of_a_ca_are_empty() -> None:
    ca_pem, _ = tls.generate_ca()
    expiry = tls.not_valid_after(ca_pem)
    assert expiry.tzinfo is not None and expiry.utcoffset() == timedelta(0)
    assert tls.certificate_sans(ca_pem) == []


# --- files --------------------------------------------------------------------------------


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o000], ids=["umask-022", "umask-077", "umask-0"])
def test_write_bundle_file_modes(tmp_path: Path, mask: int) -> None:
    out = tmp_path / "new" / "certs"
    bundle = _bundle()
    with _umask(mask):
        tls.write_bundle(bundle, out)
    assert _mode(out) == 0o700 & ~mask
    assert {p.name: _mode(p) for p in out.iterdir()} == {
        "ca.crt": 0o644,
        "ca.key": 0o600,
        "tls.crt": 0o644,
        "tls.key": 0o600,
    }
    assert (out / "tls.crt").read_bytes() == bundle.cert_pem
    assert (out / "tls.key").read_bytes() == bundle.key_pem
    assert (out / "ca.crt").read_bytes() == bundle.ca_cert_pem
    assert (out / "ca.key").read_bytes() == bundle.ca_key_pem


def test_write_bundle_replaces_loose_existing_files(tmp_path: Path) -> None:
    stale = tmp_path / "tls.key"
    stale.write_bytes(b"old")
    stale.chmod(0o666)
    bundle = _bundle()
    tls.write_bundle(bundle, tmp_path)
    assert stale.read_bytes() == bundle.key_pem
    assert _mode(stale) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]


def test_write_bundle_creates_private_temp_files_then_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: dict[str, int] = {}
    renamed: list[tuple[str, int, bytes]] = []
    real_open, real_replace = os.open, os.replace

    def spy_open(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if flags & os.O_CREAT:
            created[Path(path).name] = mode
        return real_open(path, flags, mode, **kwargs)

    def spy_replace(src: Any, dst: Any, **kwargs: Any) -> None:
        # At rename time the temp file must already be complete, final-moded, and a sibling.
        assert Path(src).parent == Path(dst).parent
        renamed.append((Path(dst).name, _mode(Path(src)), Path(src).read_bytes()))
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "replace", spy_replace)
    bundle = _bundle()
    tls.write_bundle(bundle, tmp_path)

    # Temp names look like ".tls.key.<random>.tmp".
    modes = {name[1:].rsplit(".", 2)[0]: mode for name, mode in created.items()}
    assert modes == {"ca.key": 0o600, "ca.crt": 0o644, "tls.key": 0o600, "tls.crt": 0o644}
    assert renamed == [
        ("ca.key", 0o600, bundle.ca_key_pem),
        ("ca.crt", 0o644, bundle.ca_cert_pem),
        ("tls.key", 0o600, bundle.key_pem),
        ("tls.crt", 0o644, bundle.cert_pem),
    ]


def test_write_bundle_failure_keeps_old_file_whole_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _bundle()
    tls.write_bundle(old, tmp_path)
    real_replace = os.replace

    def failing_replace(src: Any, dst: Any, **kwargs: Any) -> None:
        if Path(dst).name == "tls.crt":
            raise OSError("disk full")
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        tls.write_bundle(_bundle(), tmp_path)
    assert (tmp_path / "tls.crt").read_bytes() == old.cert_pem
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]


def _write_expired(cert_dir: Path) -> None:
    ca_pem, ca_key_pem = tls.generate_ca()
    names = [*tls.service_dns_names("tenant-guard", "tenant-guard"), "localhost"]
    past = datetime.now(UTC) - timedelta(days=30)
    cert, key = tls.issue_serving_cert(ca_pem, ca_key_pem, names, ["127.0.0.1"], 1, now=past)
    tls.write_bundle(CertBundle(ca_pem, ca_key_pem, cert, key), cert_dir)


def _write_not_yet_valid(cert_dir: Path) -> None:
    ca_pem, ca_key_pem = tls.generate_ca()
    names = [*tls.service_dns_names("tenant-guard", "tenant-guard"), "localhost"]
    future = datetime.now(UTC) + timedelta(days=2)
    cert, key = tls.issue_serving_cert(ca_pem, ca_key_pem, names, ["127.0.0.1"], 30, now=future)
    tls.write_bundle(CertBundle(ca_pem, ca_key_pem, cert, key), cert_dir)


def _write_expiring_soon(cert_dir: Path) -> None:
    tls.write_bundle(_bundle(days=3), cert_dir)


def _write_ca_expiring_soon(cert_dir: Path) -> None:
    tls.write_bundle(_bundle(days=3, ca_days=3), cert_dir)


def _garbage_key(cert_dir: Path) -> None:
    tls.write_bundle(_bundle(), cert_dir)
    (cert_dir / "tls.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n")


def _half_written_cert(cert_dir: Path) -> None:
    bundle = _bundle()
    tls.write_bundle(bundle, cert_dir)
    (cert_dir / "tls.crt").write_bytes(bundle.cert_pem[: len(bundle.cert_pem) // 2])


def _key_of_another_cert(cert_dir: Path) -> None:
    tls.write_bundle(_bundle(), cert_dir)
    (cert_dir / "tls.key").write_bytes(_bundle().key_pem)


def _leaf_from_another_ca(cert_dir: Path) -> None:
    tls.write_bundle(_bundle(), cert_dir)
    (cert_dir / "ca.crt").write_bytes(_bundle().ca_cert_pem)


def _missing_ca(cert_dir: Path) -> None:
    tls.write_bundle(_bundle(), cert_dir)
    (cert_dir / "ca.crt").unlink()


def _other_service(cert_dir: Path) -> None:
    tls.write_bundle(tls.generate_bundle("other", "tenant-guard"), cert_dir)


def _without_localhost(cert_dir: Path) -> None:
    tls.write_bundle(_bundle(local=False), cert_dir)


def test_ensure_dev_certs_generates_then_reuses(tmp_path: Path) -> None:
    cert_dir = tmp_path / "certs"
    ca_path, cert_path, key_path, generated = tls.ensure_dev_certs(cert_dir)
    assert generated
    assert (ca_path, cert_path, key_path) == (
        cert_dir / "ca.crt",
        cert_dir / "tls.crt",
        cert_dir / "tls.key",
    )
    assert _mode(key_path) == 0o600
    first = [p.read_bytes() for p in (ca_path, cert_path, key_path)]

    assert tls.ensure_dev_certs(cert_dir) == (ca_path, cert_path, key_path, False)
    assert [p.read_bytes() for p in (ca_path, cert_path, key_path)] == first


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(_write_expired, id="expired"),
        pytest.param(_write_not_yet_valid, id="not-yet-valid"),
        pytest.param(_write_expiring_soon, id="expires-within-min-remaining"),
        pytest.param(_write_ca_expiring_soon, id="ca-expires-within-min-remaining"),
        pytest.param(_garbage_key, id="garbage-key"),
        pytest.param(_half_written_cert, id="half-written-cert"),
        pytest.param(_key_of_another_cert, id="key-of-another-cert"),
        pytest.param(_leaf_from_another_ca, id="leaf-not-from-ca"),
        pytest.param(_missing_ca, id="missing-ca"),
        pytest.param(_other_service, id="sans-of-another-service"),
        pytest.param(_without_localhost, id="no-localhost-san"),
    ],
)
def test_ensure_dev_certs_regenerates(tmp_path: Path, spoil: Callable[[Path], None]) -> None:
    spoil(tmp_path)
    *_, generated = tls.ensure_dev_certs(tmp_path)
    assert generated
    assert tls.ensure_dev_certs(tmp_path)[3] is False
    leaf = _cert((tmp_path / "tls.crt").read_bytes())
    leaf.verify_directly_issued_by(_cert((tmp_path / "ca.crt").read_bytes()))


def test_ensure_dev_certs_min_remaining_is_configurable(tmp_path: Path) -> None:
    tls.write_bundle(_bundle(days=3), tmp_path)
    assert tls.ensure_dev_certs(tmp_path, min_remaining=timedelta(days=1))[3] is False


# --- TLS settings, in memory --------------------------------------------------------------


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> str:
    """Complete a handshake over memory BIOs; return the negotiated version."""
    # Each BIO is one direction of the wire: one side writes it, the other reads it.
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(to_client, to_server, server_hostname="localhost")
    server = server_ctx.wrap_bio(to_server, to_client, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for side, obj in (("client", client), ("server", server)):
            if not done[side]:
                with contextlib.suppress(ssl.SSLWantReadError):
                    obj.do_handshake()
                    done[side] = True
        if all(done.values()):
            version = client.version()
            assert version is not None
            return version
    raise AssertionError("handshake made no progress")


@pytest.fixture
def cert_files(tmp_path: Path) -> tuple[CertBundle, Path]:
    bundle = _bundle()
    tls.write_bundle(bundle, tmp_path)
    return bundle, tmp_path


def _server_ctx(cert_dir: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_dir / "tls.crt", cert_dir / "tls.key")
    return ctx


def _insecure_client(version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = version
    # Security level 0, so this client really offers the old version and any refusal we see
    # comes from the server.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


@old_tls
def test_harden_refuses_tls11_that_was_allowed_before(cert_files: tuple[CertBundle, Path]) -> None:
    server_ctx = _server_ctx(cert_files[1])
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1
    server_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    assert _handshake(server_ctx, _insecure_client(ssl.TLSVersion.TLSv1_1)) == "TLSv1.1"

    tls.harden_server_context(server_ctx)
    assert server_ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert server_ctx.maximum_version == ssl.TLSVersion.MAXIMUM_SUPPORTED
    with pytest.raises(ssl.SSLError, match=r"UNSUPPORTED_PROTOCOL|PROTOCOL_VERSION"):
        _handshake(server_ctx, _insecure_client(ssl.TLSVersion.TLSv1_1))
    assert _handshake(server_ctx, _insecure_client(ssl.TLSVersion.TLSv1_2)) == "TLSv1.2"
    assert _handshake(server_ctx, _insecure_client(ssl.TLSVersion.TLSv1_3)) == "TLSv1.3"


def test_harden_keeps_a_tls13_only_minimum(cert_files: tuple[CertBundle, Path]) -> None:
    server_ctx = _server_ctx(cert_files[1])
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    tls.harden_server_context(server_ctx)
    assert server_ctx.minimum_version == ssl.TLSVersion.TLSv1_3
    assert server_ctx.options & ssl.OP_NO_RENEGOTIATION


# --- a real server ------------------------------------------------------------------------


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["scheme"].encode()})


@dataclass
class _Running:
    server: uvicorn.Server
    ctx: ssl.SSLContext
    port: int
    cert_dir: Path


@contextlib.contextmanager
def _serving(cert_dir: Path) -> Iterator[_Running]:
    """Run uvicorn with TLS on 127.0.0.1 in a thread with its own event loop."""
    config = uvicorn.Config(
        _app,
        ssl_certfile=cert_dir / "tls.crt",
        ssl_keyfile=cert_dir / "tls.key",
        log_level="warning",
        lifespan="off",
    )
    # Server.serve() only calls load() when config.loaded is false, so hardening the context
    # built here is what gets served (test_uvicorn_serves_the_hardened_context checks it).
    config.load()
    assert config.ssl is not None
    tls.harden_server_context(config.ssl)
    # Bind here and hand the socket over, rather than guessing a free port that may be taken.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.started:
        assert thread.is_alive(), "uvicorn exited during startup"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield _Running(server, config.ssl, port, cert_dir)
    finally:
        server.should_exit = True
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Running]:
    cert_dir = tmp_path_factory.mktemp("served")
    tls.write_bundle(_bundle(), cert_dir)
    with _serving(cert_dir) as running:
        yield running


def _trusting(ca_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    # Strict RFC 5280 checks (the default from Python 3.13 on): our certificates must pass.
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def _get(url: str, verify: ssl.SSLContext) -> httpx.Response:
    # trust_env=False: a proxy from the environment must not see loopback traffic.
    with httpx.Client(verify=verify, trust_env=False, timeout=5) as client:
        return client.get(url)


def _served_cert(port: int, ca_pem: bytes) -> x509.Certificate:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        _trusting(ca_pem).wrap_socket(raw, server_hostname="localhost") as conn,
    ):
        der = conn.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_https_verified_against_the_ca(served: _Running, host: str) -> None:
    ca_pem = (served.cert_dir / "ca.crt").read_bytes()
    response = _get(f"https://{host}:{served.port}/", _trusting(ca_pem))
    assert response.status_code == 200
    assert response.text == "https"


def test_https_with_cafile_like_curl(served: _Running) -> None:
    verify = ssl.create_default_context(cafile=str(served.cert_dir / "ca.crt"))
    assert _get(f"https://localhost:{served.port}/", verify).status_code == 200


def test_client_trusting_another_ca_is_refused(served: _Running) -> None:
    other_ca, _ = tls.generate_ca()
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        _get(f"https://127.0.0.1:{served.port}/", _trusting(other_ca))


@old_tls
def test_tls11_client_is_refused(served: _Running) -> None:
    # asyncio and uvloop drop the connection on a failed handshake without flushing the
    # protocol_version alert, so the client sees EOF; the in-memory test above shows the cause.
    with (
        socket.create_connection(("127.0.0.1", served.port), timeout=5) as raw,
        pytest.raises(ssl.SSLError, match=r"PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|UNEXPECTED_EOF"),
    ):
        _insecure_client(ssl.TLSVersion.TLSv1_1).wrap_socket(raw, server_hostname="localhost")


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        pytest.param(ssl.TLSVersion.TLSv1_2, "TLSv1.2", id="tls12"),
        pytest.param(ssl.TLSVersion.TLSv1_3, "TLSv1.3", id="tls13"),
    ],
)
def test_tls12_and_tls13_clients_are_served(
    served: _Running, version: ssl.TLSVersion, expected: str
) -> None:
    client = _trusting((served.cert_dir / "ca.crt").read_bytes())
    client.minimum_version = client.maximum_version = version
    with (
        socket.create_connection(("127.0.0.1", served.port), timeout=5) as raw,
        client.wrap_socket(raw, server_hostname="localhost") as conn,
    ):
        assert conn.version() == expected
        cipher = conn.cipher()
        assert cipher is not None
        assert "GCM" in cipher[0] or "CHACHA20" in cipher[0]


def test_uvicorn_serves_the_hardened_context(served: _Running) -> None:
    # The context we hardened before serve() is the one uvicorn listens with: serve() did not
    # rebuild it, and so load_cert_chain on it reaches the live server.
    assert served.server.config.ssl is served.ctx
    assert served.ctx.minimum_version == ssl.TLSVersion.TLSv1_2


# --- live reload --------------------------------------------------------------------------


def test_live_reload_swaps_the_served_chain(tmp_path: Path) -> None:
    old = _bundle()
    tls.write_bundle(old, tmp_path)
    with _serving(tmp_path) as running:
        reloader = CertReloader(running.ctx, tmp_path / "tls.crt", tmp_path / "tls.key")
        assert reloader.current_not_after == tls.not_valid_after(old.cert_pem)
        assert reloader.check_once() is False
        assert reloader.reload_count == 0
        assert _served_cert(running.port, old.ca_cert_pem).serial_number == (
            _cert(old.cert_pem).serial_number
        )

        new = _bundle(days=30)
        tls.write_bundle(new, tmp_path)
        assert reloader.check_once() is True
        assert reloader.reload_count == 1
        assert reloader.current_not_after == tls.not_valid_after(new.cert_pem)

        served_serial = _served_cert(running.port, new.ca_cert_pem).serial_number
        assert served_serial == _cert(new.cert_pem).serial_number
        assert served_serial != _cert(old.cert_pem).serial_number
        url = f"https://localhost:{running.port}/"
        assert _get(url, _trusting(new.ca_cert_pem)).status_code == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            _get(url, _trusting(old.ca_cert_pem))
        assert reloader.check_once() is False


def _write_garbage_key(cert_dir: Path, current: CertBundle) -> None:
    (cert_dir / "tls.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49")


def _write_half_cert(cert_dir: Path, current: CertBundle) -> None:
    fresh = _bundle()
    (cert_dir / "tls.key").write_bytes(fresh.key_pem)
    (cert_dir / "tls.crt").write_bytes(fresh.cert_pem[: len(fresh.cert_pem) // 2])


def _write_empty_key(cert_dir: Path, current: CertBundle) -> None:
    (cert_dir / "tls.key").write_bytes(b"")


def _write_new_cert_old_key(cert_dir: Path, current: CertBundle) -> None:
    # What a poller sees between write_bundle's replacement of tls.crt and of tls.key.
    (cert_dir / "tls.crt").write_bytes(_bundle().cert_pem)


def _remove_key(cert_dir: Path, current: CertBundle) -> None:
    (cert_dir / "tls.key").unlink()


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(_write_garbage_key, id="garbage-key"),
        pytest.param(_write_half_cert, id="half-written-cert"),
        pytest.param(_write_empty_key, id="empty-key"),
        pytest.param(_write_new_cert_old_key, id="mismatched-pair"),
        pytest.param(_remove_key, id="missing-key"),
    ],
)
def test_live_reload_keeps_the_chain_on_a_bad_pair(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    spoil: Callable[[Path, CertBundle], None],
) -> None:
    current = _bundle()
    tls.write_bundle(current, tmp_path)
    serial = _cert(current.cert_pem).serial_number
    with _serving(tmp_path) as running:
        reloader = CertReloader(running.ctx, tmp_path / "tls.crt", tmp_path / "tls.key")
        spoil(tmp_path, current)
        caplog.set_level(logging.DEBUG, logger="tenant_guard.tls")

        assert reloader.check_once() is False
        assert reloader.check_once() is False
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, "a persisting bad pair is reported once"
        assert warnings[0].name == "tenant_guard.tls"
        assert reloader.reload_count == 0
        assert reloader.current_not_after == tls.not_valid_after(current.cert_pem)
        assert _served_cert(running.port, current.ca_cert_pem).serial_number == serial

        # Once the pair is whole again, it is picked up.
        fixed = _bundle()
        tls.write_bundle(fixed, tmp_path)
        assert reloader.check_once() is True
        assert _served_cert(running.port, fixed.ca_cert_pem).serial_number == (
            _cert(fixed.cert_pem).serial_number
        )


class _RecordingContext(ssl.SSLContext):
    """Notes which thread each load_cert_chain call runs on."""

    loads: list[int]

    def load_cert_chain(self, *args: Any, **kwargs: Any) -> None:
        self.loads.append(threading.get_ident())
        super().load_cert_chain(*args, **kwargs)


def test_run_polls_swaps_on_the_loop_thread_survives_errors_and_cancels(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tls.write_bundle(_bundle(), tmp_path)
    ctx = _RecordingContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.loads = []
    ctx.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    ctx.loads.clear()
    reloader = CertReloader(ctx, tmp_path / "tls.crt", tmp_path / "tls.key", interval=0.01)
    real_stage = reloader._stage
    failures: list[int] = []

    def failing_once() -> Any:
        if not failures:
            failures.append(1)
            raise RuntimeError("unexpected")
        return real_stage()

    reloader._stage = failing_once  # type: ignore[method-assign]

    async def scenario() -> int:
        task = asyncio.create_task(reloader.run())
        new = _bundle()
        tls.write_bundle(new, tmp_path)
        deadline = time.monotonic() + 5
        while reloader.reload_count == 0:
            assert not task.done(), "run() must not end on its own"
            assert time.monotonic() < deadline, "run() never reloaded"
            await asyncio.sleep(0.01)
        assert reloader.current_not_after == tls.not_valid_after(new.cert_pem)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return threading.get_ident()

    loop_thread = asyncio.run(scenario())
    assert failures == [1]
    assert "certificate reload check failed" in caplog.text
    assert ctx.loads == [loop_thread]
