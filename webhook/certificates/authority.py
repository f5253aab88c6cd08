"""Certificates for the webhook: a private CA, serving certificates, and live reload."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import os
import secrets
import ssl
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.certificates.rotation import CertFacts, Observed

__all__ = [
    "CA_CERT",
    "CA_KEY",
    "TLS_CERT",
    "TLS_KEY",
    "CertBundle",
    "CertReloader",
    "certificate_facts",
    "certificate_sans",
    "ensure_dev_certs",
    "generate_bundle",
    "generate_ca",
    "harden_server_context",
    "issue_serving_cert",
    "not_valid_after",
    "observe_secret",
    "service_dns_names",
    "write_bundle",
    "write_file_atomic",
]

logger = logging.getLogger("tenant_guard.tls")

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
TLS_CERT = "tls.crt"
TLS_KEY = "tls.key"

# Backdate new certificates so a client whose clock runs a little behind ours still accepts them.
_CLOCK_SKEW = timedelta(minutes=5)
# RFC 5280 upper bound for a subject common name.
_MAX_CN = 64
# TLS 1.2 only (1.3 suites are configured separately): forward-secret AEAD suites, which is
# what Go's crypto/tls in kube-apiserver prefers anyway.
_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
_BadMaterial = (ValueError, TypeError, UnsupportedAlgorithm, InvalidSignature)

_IssuerKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def service_dns_names(
    service: str, namespace: str, cluster_domain: str = "cluster.local"
) -> list[str]:
    """The names kube-apiserver and in-cluster clients may use to reach a Service."""
    if not service or not namespace:
        raise ValueError("service and namespace must be non-empty")
    domain = cluster_domain.strip(".")
    names = [service, f"{service}.{namespace}", f"{service}.{namespace}.svc"]
    if domain:
        names.append(f"{service}.{namespace}.svc.{domain}")
    return names


@dataclass(frozen=True)
class CertBundle:
    """A CA and a serving certificate it signed, all PEM-encoded."""

    ca_cert_pem: bytes
    ca_key_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def generate_ca(
    common_name: str = "tenant-guard CA", days: int = 3650, *, now: datetime | None = None
) -> tuple[bytes, bytes]:
    """Create a self-signed CA that may sign leaf certificates only; return (cert PEM, key PEM).

    `now` moves the validity window, as for issue_serving_cert.
    """
    if days <= 0:
        raise ValueError("days must be positive")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        # path_length=0: even if the CA key leaks, it cannot mint intermediate CAs.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def issue_serving_cert(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = (),
    days: int = 365,
    *,
    now: datetime | None = None,
) -> tuple[bytes, bytes]:
    """Issue a TLS server certificate signed by the CA; return (cert PEM, key PEM).

    `now` moves the validity window, so tests can make certificates that are already expired.
    Names are lower-cased and deduplicated in order; the validity never outlasts the CA's.
    """
    if days <= 0:
        raise ValueError("days must be positive")
    dns = _dedupe(_dns_name(name) for name in dns_names)
    ips = _dedupe(str(ipaddress.ip_address(ip)) for ip in ip_addresses)
    if not dns and not ips:
        raise ValueError("a serving certificate needs at least one DNS name or IP address")
    ca_cert = _first_cert(ca_cert_pem)
    ca_key = _issuer_key(ca_key_pem)
    if not _same_public_key(ca_cert.public_key(), ca_key.public_key()):
        raise ValueError("the CA key does not belong to the CA certificate")

    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    start = now - _CLOCK_SKEW
    end = min(now + timedelta(days=days), ca_cert.not_valid_after_utc)
    if end <= start:
        raise ValueError("the CA expires before the certificate would become valid")

    key = ec.generate_private_key(ec.SECP256R1())
    common_name = (dns or ips)[0]
    # Clients match SANs only; the CN is for humans reading the cert. A name too long for a CN
    # leaves the subject empty, and RFC 5280 then requires the SAN extension to be critical.
    subject = (
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        if len(common_name) <= _MAX_CN
        else x509.Name([])
    )
    general_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
    general_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(general_names), critical=not subject)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # EC keys sign the handshake, they never encipher a key, so digital_signature alone.
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_id(ca_cert), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def generate_bundle(
    service: str,
    namespace: str,
    extra_dns: Sequence[str] = (),
    days: int = 365,
    ca_days: int = 3650,
    local: bool = True,
) -> CertBundle:
    """A fresh CA and a serving certificate for the Service (and, if local, for localhost).

    An entry of `extra_dns` that parses as an IP address becomes an IP SAN: TLS clients never
    match an address against DNS SANs, so it would be useless there.
    """
    dns = service_dns_names(service, namespace)
    ips: list[str] = []
    for name in extra_dns:
        if _is_ip(name):
            ips.append(name)
        else:
            dns.append(name)
    if local:
        dns.append("localhost")
        ips += ["127.0.0.1", "::1"]
    ca_cert_pem, ca_key_pem = generate_ca(days=ca_days)
    cert_pem, key_pem = issue_serving_cert(ca_cert_pem, ca_key_pem, dns, ips, days=days)
    return CertBundle(ca_cert_pem, ca_key_pem, cert_pem, key_pem)


def write_bundle(bundle: CertBundle, out_dir: Path) -> None:
    """Write ca.crt, ca.key, tls.crt, tls.key into out_dir, each file replaced atomically.

    The four files are replaced one by one, so a poller can briefly see a new key with the old
    certificate; CertReloader rejects such a pair and picks up the complete one next time.
    """
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_file_atomic(out_dir / CA_KEY, bundle.ca_key_pem, 0o600)
    write_file_atomic(out_dir / CA_CERT, bundle.ca_cert_pem, 0o644)
    write_file_atomic(out_dir / TLS_KEY, bundle.key_pem, 0o600)
    write_file_atomic(out_dir / TLS_CERT, bundle.cert_pem, 0o644)
    _fsync_dir(out_dir)


def ensure_dev_certs(
    cert_dir: Path,
    *,
    service: str = "tenant-guard",
    namespace: str = "tenant-guard",
    min_remaining: timedelta = timedelta(days=7),
) -> tuple[Path, Path, Path, bool]:
    """Reuse the development certificates in cert_dir if still good, else generate new ones.

    Returns (ca.crt, tls.crt, tls.key, generated). Reuse keeps the CA a developer already
    trusts; anything doubtful is replaced, since these certificates are cheap to recreate.
    """
    ca_path, cert_path, key_path = cert_dir / CA_CERT, cert_dir / TLS_CERT, cert_dir / TLS_KEY
    required = [*service_dns_names(service, namespace), "localhost", "127.0.0.1"]
    problem = _reuse_problem(ca_path, cert_path, key_path, required, min_remaining)
    if problem is None:
        logger.debug("reusing development certificates in %s", cert_dir)
        return ca_path, cert_path, key_path, False
    logger.info("generating development certificates in %s: %s", cert_dir, problem)
    write_bundle(generate_bundle(service, namespace, local=True), cert_dir)
    return ca_path, cert_path, key_path, True


def not_valid_after(cert_pem: bytes) -> datetime:
    """Expiry (timezone-aware UTC) of the first certificate in the PEM, i.e. the leaf."""
    return _first_cert(cert_pem).not_valid_after_utc


def certificate_sans(cert_pem: bytes) -> list[str]:
    """DNS names and IP addresses of the first certificate's SAN extension, in order."""
    try:
        san = _first_cert(cert_pem).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    names: list[str] = []
    for general_name in san.value:
        if isinstance(general_name, x509.DNSName):
            names.append(general_name.value)
        elif isinstance(general_name, x509.IPAddress):
            names.append(str(general_name.value))
    return names


def harden_server_context(ctx: ssl.SSLContext) -> None:
    """Refuse TLS below 1.2 (keeping 1.3), forward-secret AEAD suites, no renegotiation."""
    if ctx.minimum_version != ssl.TLSVersion.TLSv1_3:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.MAXIMUM_SUPPORTED
    ctx.set_ciphers(_TLS12_CIPHERS)
    # Client-initiated renegotiation costs the server far more than the client: a cheap DoS.
    ctx.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE


@dataclass(frozen=True)
class _Staged:
    """A certificate/key pair read from disk and verified, ready to swap in."""

    fingerprint: bytes
    cert_pem: bytes
    key_pem: bytes
    not_after: datetime
    serial: int


class CertReloader:
    """Poll a certificate/key pair and load it into a live SSLContext when it changes.

    Polling, because mounted Secrets send no filesystem events and their mtimes are those of a
    symlink swap; a change is detected by hashing the contents. The context is assumed to
    have been loaded from these same files before the reloader was created.
    """

    def __init__(
        self, ctx: ssl.SSLContext, cert_file: Path, key_file: Path, interval: float = 10.0
    ) -> None:
        self.ctx = ctx
        self.cert_file = cert_file
        self.key_file = key_file
        self.interval = interval
        self.reload_count = 0
        self.current_not_after: datetime | None = None
        self._fingerprint: bytes | None = None
        self._last_problem: str | None = None
        # Remember what the context already holds so the first poll is not a spurious reload.
        try:
            cert_pem, key_pem = self._read()
        except OSError:
            return
        self._fingerprint = _fingerprint(cert_pem, key_pem)
        with contextlib.suppress(*_BadMaterial):
            self.current_not_after = not_valid_after(cert_pem)

    def check_once(self) -> bool:
        """Reload now if the files changed and hold a valid pair; True if a new chain is live.

        The swap happens on the calling thread; see run() for why that matters.
        """
        staged = self._stage()
        return staged is not None and self._apply(staged)

    async def run(self) -> None:
        """Check every `interval` seconds until cancelled; errors are logged, never raised."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                staged = await asyncio.to_thread(self._stage)
                # The swap itself runs on the event loop's thread, where asyncio creates every
                # TLS connection: load_cert_chain releases the GIL between installing the
                # certificate and the key, and a handshake starting in that gap from another
                # thread would get a certificate without its key.
                if staged is not None:
                    self._apply(staged)
            except Exception:
                logger.exception("certificate reload check failed; retrying next interval")

    def _read(self) -> tuple[bytes, bytes]:
        return self.cert_file.read_bytes(), self.key_file.read_bytes()

    def _stage(self) -> _Staged | None:
        try:
            cert_pem, key_pem = self._read()
        except OSError as exc:
            self._report(f"cannot read {self.cert_file} / {self.key_file}: {exc}")
            return None
        fingerprint = _fingerprint(cert_pem, key_pem)
        if fingerprint == self._fingerprint:
            self._last_problem = None
            return None
        try:
            leaf = _check_pair(cert_pem, key_pem)
        except (*_BadMaterial, OSError) as exc:
            self._report(
                f"new certificate pair {self.cert_file} / {self.key_file} "
                f"(sha256 {fingerprint.hex()[:12]}) rejected, keeping the current one: {exc}"
            )
            return None
        return _Staged(fingerprint, cert_pem, key_pem, leaf.not_valid_after_utc, leaf.serial_number)

    def _apply(self, staged: _Staged) -> bool:
        # Load the exact bytes that were verified, not the files again: those may have changed
        # since, and a failed load on a live context can leave it with a certificate but no key.
        try:
            with _as_files(staged.cert_pem, staged.key_pem) as (cert_path, key_path):
                self.ctx.load_cert_chain(cert_path, key_path)
        except OSError as exc:
            logger.error("loading a verified certificate into the live context failed: %s", exc)
            return False
        self._fingerprint = staged.fingerprint
        self._last_problem = None
        self.current_not_after = staged.not_after
        self.reload_count += 1
        logger.info(
            "serving certificate reloaded: serial %x, valid until %s",
            staged.serial,
            staged.not_after.isoformat(),
        )
        if staged.not_after <= datetime.now(UTC):
            logger.warning("the reloaded serving certificate has already expired")
        return True

    def _report(self, problem: str) -> None:
        # A bad pair stays bad until someone fixes it; say so once, not every interval.
        if problem != self._last_problem:
            logger.warning("%s", problem)
            self._last_problem = problem
        else:
            logger.debug("%s", problem)


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    # Prefer the CA's own SKI so chain building matches even for CAs that computed it
    # differently from the RFC 5280 method.
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        ski = x509.SubjectKeyIdentifier.from_public_key(ca_cert.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _first_cert(cert_pem: bytes) -> x509.Certificate:
    certs = x509.load_pem_x509_certificates(cert_pem)
    if not certs:
        raise ValueError("no certificate in PEM data")
    return certs[0]


def _issuer_key(key_pem: bytes) -> _IssuerKey:
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise TypeError(f"unsupported CA key type {type(key).__name__}; use EC or RSA")
    return key


def _same_public_key(a: object, b: object) -> bool:
    def spki(key: object) -> bytes:
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise TypeError(f"unsupported key type {type(key).__name__}")
        return key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    return spki(a) == spki(b)


def _dns_name(name: str) -> str:
    # Certificates carry A-labels; encoding IDNs here could silently change what is matched.
    candidate = name.strip().lower().removesuffix(".")
    if not candidate or not candidate.isascii() or " " in candidate or len(candidate) > 253:
        raise ValueError(f"invalid DNS name for a certificate: {name!r}")
    return candidate


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def write_file_atomic(path: Path, data: bytes, mode: int) -> None:
    # Write a sibling temp file and rename it over the target: a reader sees the old file or
    # the new one, never half of one. The file is created with its final mode, so a key is
    # never readable by others, not even empty.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, mode)
    try:
        with open(fd, "wb") as handle:
            # The umask may have narrowed the mode; 0644 certificates must stay readable.
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(directory: Path) -> None:
    # Make the renames durable; not every platform or filesystem lets a directory be fsynced.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fingerprint(cert_pem: bytes, key_pem: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in (cert_pem, key_pem):
        # Length-prefix each part so moving bytes between the files changes the digest.
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def _check_pair(cert_pem: bytes, key_pem: bytes) -> x509.Certificate:
    """Return the leaf if the pair is usable; raise a _BadMaterial error or OSError if not."""
    leaf = _first_cert(cert_pem)
    # password=None makes an encrypted key an error here, before OpenSSL could prompt on a tty.
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not _same_public_key(leaf.public_key(), key.public_key()):
        raise ValueError("the private key does not match the certificate")
    # cryptography and OpenSSL's TLS stack disagree on a few edge cases; the scratch context is
    # the check that counts, since that is what the live one will run.
    scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with _as_files(cert_pem, key_pem) as (cert_path, key_path):
        scratch.load_cert_chain(cert_path, key_path)
    return leaf


@contextlib.contextmanager
def _as_files(cert_pem: bytes, key_pem: bytes) -> Iterator[tuple[str, str]]:
    """Expose PEM bytes as file paths, since ssl only loads a chain from files."""
    if sys.platform == "linux" and os.path.isdir("/proc/self/fd"):
        # Anonymous memory files: no key on disk and no need for a writable /tmp, which a
        # hardened pod (readOnlyRootFilesystem) does not have.
        fds: list[int] = []
        try:
            for data in (cert_pem, key_pem):
                fds.append(os.memfd_create("tenant-guard-tls", os.MFD_CLOEXEC))
                _write_all(fds[-1], data)
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="tenant-guard-tls-") as tmp:
        cert_path, key_path = Path(tmp, TLS_CERT), Path(tmp, TLS_KEY)
        write_file_atomic(cert_path, cert_pem, 0o600)
        write_file_atomic(key_path, key_pem, 0o600)
        yield str(cert_path), str(key_path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _reuse_problem(
    ca_path: Path,
    cert_path: Path,
    key_path: Path,
    required_names: Sequence[str],
    min_remaining: timedelta,
) -> str | None:
    """Why the existing development certificates cannot be reused, or None if they can."""
    for path in (ca_path, cert_path, key_path):
        if not path.is_file():
            return f"{path.name} is missing"
    try:
        ca_cert = _first_cert(ca_path.read_bytes())
        leaf = _check_pair(cert_path.read_bytes(), key_path.read_bytes())
        leaf.verify_directly_issued_by(ca_cert)
    except (*_BadMaterial, OSError) as exc:
        return f"existing files are unusable ({exc})"
    now = datetime.now(UTC)
    for label, cert in (("tls.crt", leaf), ("ca.crt", ca_cert)):
        if cert.not_valid_before_utc > now + _CLOCK_SKEW:
            return f"{label} is not valid yet"
        if cert.not_valid_after_utc - now <= min_remaining:
            return f"{label} expires at {cert.not_valid_after_utc.isoformat()}"
    present = set(certificate_sans(_cert_pem(leaf)))
    missing = [name for name in required_names if name not in present]
    if missing:
        return f"tls.crt does not cover {', '.join(missing)}"
    return None


# --- facts for certificate rotation (webhook.certificates.rotation decides, from these) -----


def certificate_facts(pem: bytes) -> list[CertFacts]:
    """Facts of every certificate in a PEM bundle; none when it does not parse."""
    return [_facts(cert) for cert in _parse_bundle(pem)]


def observe_secret(data: Mapping[str, bytes]) -> tuple[Observed, dict[str, bytes]]:
    """What a certificate Secret (ca.crt, ca.key, tls.crt, tls.key) holds, as certrotation
    reads it, and each CA of its bundle by fingerprint. Broken parts count as absent."""
    bundle = _parse_bundle(data.get(CA_CERT, b""))
    facts = tuple(_facts(cert) for cert in bundle)
    pems = {
        fact.fingerprint: cert.public_bytes(serialization.Encoding.PEM)
        for fact, cert in zip(facts, bundle, strict=True)
    }
    ca = facts[0] if bundle and _key_matches(bundle[0], data.get(CA_KEY, b"")) else None
    leaf: CertFacts | None = None
    chains = False
    leaves = _parse_bundle(data.get(TLS_CERT, b""))
    if leaves and _key_matches(leaves[0], data.get(TLS_KEY, b"")):
        leaf = _facts(leaves[0])
        if bundle:
            with contextlib.suppress(*_BadMaterial):
                leaves[0].verify_directly_issued_by(bundle[0])
                chains = True
    return Observed(ca, leaf, chains, facts), pems


def _facts(cert: x509.Certificate) -> CertFacts:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertFacts(
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        sans=frozenset(name.lower() for name in names),
        is_ca=is_ca,
    )


def _parse_bundle(pem: bytes) -> list[x509.Certificate]:
    if not pem.strip():
        return []
    try:
        return x509.load_pem_x509_certificates(pem)
    except _BadMaterial:
        return []


def _key_matches(cert: x509.Certificate, key_pem: bytes) -> bool:
    try:
        return _same_public_key(cert.public_key(), _issuer_key(key_pem).public_key())
    except _BadMaterial:
        return False
