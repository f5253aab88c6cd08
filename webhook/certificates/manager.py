"""`serve --manage-certs`: the CA and serving certificate kept in a Secret, without cert-manager.

Each pass (at start, then every few minutes, on every replica):

1. read the Secret; if it is absent, unusable or due for renewal
   (webhook.certificates.rotation decides), write the new version with a resourceVersion
   precondition, or create it: the API server's 409 (Conflict or AlreadyExists) decides
   between racing replicas, and the loser reads the Secret again and adopts what won.
   So every replica converges on one CA;
2. put ca.crt (the active CA, then the previous one until it expires) into clientConfig.caBundle
   of every webhook of the named webhook configurations, when it differs;
3. write tls.crt, tls.key and ca.crt into the cert dir, where the CertReloader picks them up.

Step 2 comes before step 3 so that a serving certificate from a new CA is not served before the
API server has been told to trust that CA. The CA key stays in the Secret: it is never written
to the pod's filesystem.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import Gauge

from webhook.certificates import authority, rotation
from webhook.certificates.api import CertificateApi, StoredSecret, WebhookConfiguration, WebhookKind
from webhook.certificates.rotation import CertFacts, Observed, RotationPolicy
from webhook.cluster import load_api_client
from webhook.cluster.client import SERVICE_ACCOUNT_NAMESPACE, resolve_namespace
from webhook.cluster.rest import ClusterApiError

if TYPE_CHECKING:
    from webhook.metrics import Metrics
    from webhook.server.app import Runtime

log = logging.getLogger("tenant_guard.certs")

SECRET_LABELS = {
    "app.kubernetes.io/name": "tenant-guard",
    "app.kubernetes.io/component": "serving-certificate",
    "app.kubernetes.io/managed-by": "tenant-guard",
}
# Give up on one pass after this many lost races (each one means another replica wrote).
MAX_CONFLICTS = 5
START_TIMEOUT = 30.0


class CertManagerError(Exception):
    """The certificates could not be put in place."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- reading certificates ----------------------------------------------------------------------


@dataclass(frozen=True)
class Material:
    """The Secret's data, parsed: what certrotation needs, and the PEM of each CA."""

    data: Mapping[str, bytes]
    observed: Observed
    pems: Mapping[str, bytes]  # fingerprint -> PEM, for every certificate of ca.crt

    @property
    def bundle_pem(self) -> bytes:
        return self.data.get(authority.CA_CERT, b"")


def inspect(data: Mapping[str, bytes]) -> Material:
    """Parse the Secret's data; anything missing or broken is reported as absent."""
    observed, pems = authority.observe_secret(data)
    return Material(dict(data), observed, pems)


def bundle_facts(pem: bytes) -> list[CertFacts]:
    return authority.certificate_facts(pem)


# --- the manager -------------------------------------------------------------------------------


class _Outcome(Enum):
    UNCHANGED = "unchanged"
    PATCHED = "patched"
    MISSING = "missing"
    STALE = "stale"  # the caBundle shows a newer CA than our copy of the Secret


@dataclass
class SyncResult:
    """What one pass did. `pending`: webhook configurations not (yet) carrying the bundle."""

    secret_written: bool = False
    reasons: list[str] = field(default_factory=list)
    patched: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    files_written: bool = False


class CertManager:
    """Keeps the Secret, the webhook caBundles and the cert dir in step; see the module doc."""

    def __init__(
        self,
        api: CertificateApi,
        *,
        namespace: str,
        secret_name: str,
        service: str,
        webhook_configurations: Sequence[str],
        cert_dir: Path,
        cluster_domain: str = "cluster.local",
        policy: RotationPolicy | None = None,
        interval: float = rotation.CHECK_INTERVAL.total_seconds(),
        retry_interval: float = rotation.RETRY_INTERVAL.total_seconds(),
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.secret_name = secret_name
        self.dns_names = authority.service_dns_names(service, namespace, cluster_domain)
        self.configurations = list(dict.fromkeys(webhook_configurations))
        self.cert_dir = cert_dir
        self.policy = policy or RotationPolicy()
        self.interval = interval
        self.retry_interval = retry_interval
        self.clock = clock
        self.material: Material | None = None
        self.last_success: float | None = None  # unix time of the last complete pass
        self._kinds: dict[str, WebhookKind] = {}
        self._next_delay = interval
        self._last_pending: list[str] = []

    @property
    def secret(self) -> str:
        return f"{self.namespace}/{self.secret_name}"

    # --- lifecycle ---

    def start(self, timeout: float = START_TIMEOUT) -> SyncResult:
        """The first pass, before the server binds: retried on API errors until `timeout`."""
        deadline = time.monotonic() + timeout
        delay = 0.5
        while True:
            try:
                return self.sync()
            except (ClusterApiError, CertManagerError) as exc:
                if time.monotonic() + delay > deadline:
                    raise CertManagerError(
                        f"could not set up the certificates in Secret {self.secret} "
                        f"within {timeout:g}s: {exc}"
                    ) from exc
                log.warning("certificate set-up failed, retrying in %.1fs: %s", delay, exc)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def run(self) -> None:
        """Re-check every `interval` seconds (`retry_interval` while something is pending)."""
        while True:
            await asyncio.sleep(self._next_delay)
            try:
                await asyncio.to_thread(self.sync)
            except Exception as exc:
                log.warning(
                    "certificate check failed, retrying in %gs: %s", self.retry_interval, exc
                )
                self._next_delay = self.retry_interval

    def attach(self, runtime: Runtime) -> None:
        """Run in the server's background, close with it, export metrics."""
        runtime.background.append(self.run)
        runtime.closers.append(self.close)
        self.export_metrics(runtime.metrics)

    def close(self) -> None:
        self.api.close()

    def export_metrics(self, metrics: Metrics) -> None:
        def ca_expiry() -> float:
            ca = self.material.observed.ca if self.material else None
            return ca.not_after.timestamp() if ca else 0.0

        Gauge(
            "tenant_guard_ca_expiry_timestamp_seconds",
            "When the active self-managed CA expires (Unix time)",
            registry=metrics.registry,
        ).set_function(ca_expiry)
        Gauge(
            "tenant_guard_cert_check_success_timestamp_seconds",
            "When the self-managed certificates were last checked without error (Unix time)",
            registry=metrics.registry,
        ).set_function(lambda: self.last_success or 0.0)

    # --- one pass ---

    def sync(self) -> SyncResult:
        """One pass: Secret, then caBundles, then files. Blocking."""
        result = SyncResult()
        material = self._reconcile_secret(result)
        blocked = False
        for attempt in range(2):
            result.patched, result.pending, stale = [], [], False
            for name in self.configurations:
                try:
                    outcome, note = self._sync_configuration(name, material, final=attempt == 1)
                except ClusterApiError as exc:
                    # Not fatal, but a new leaf must not be served before its CA is trusted.
                    blocked = True
                    result.pending.append(f"{name}: {exc}")
                    continue
                if outcome is _Outcome.STALE:
                    stale = True
                    break
                if outcome is _Outcome.PATCHED:
                    result.patched.append(name)
                elif outcome is _Outcome.MISSING:
                    result.pending.append(f"{name}: {note}")
            if not stale:
                break
            log.info(
                "a webhook caBundle holds a newer CA than Secret %s; reading it again", self.secret
            )
            material = self._reconcile_secret(result)
        if blocked and (self.cert_dir / authority.TLS_CERT).exists():
            log.warning("not replacing the served certificate until the caBundles are updated")
        else:
            result.files_written = self._write_files(material)
        self.material = material
        self._report_pending(result.pending)
        self._next_delay = self.retry_interval if result.pending else self.interval
        if not blocked:
            self.last_success = time.time()
        return result

    def _reconcile_secret(self, result: SyncResult) -> Material:
        for _ in range(MAX_CONFLICTS):
            stored = self.api.read_secret(self.namespace, self.secret_name)
            material = inspect(stored.data if stored else self._trusted_without_secret())
            now = self.clock()
            decision = rotation.plan(now, material.observed, self.dns_names, self.policy)
            if not decision.changes:
                return material
            data = self._carry_out(decision, material, now)
            try:
                written = self._write_secret(stored, data)
            except ClusterApiError as exc:
                if not exc.conflict:
                    raise
                log.info(
                    "Secret %s was written concurrently (%s); reading it again",
                    self.secret,
                    exc.reason or "409",
                )
                continue
            verb = "created" if stored is None else "updated"
            log.info("Secret %s %s: %s", self.secret, verb, "; ".join(decision.reasons))
            result.secret_written = True
            result.reasons.extend(decision.reasons)
            return inspect(written.data)
        raise CertManagerError(
            f"Secret {self.secret} kept changing under us ({MAX_CONFLICTS} conflicts in a row)"
        )

    def _trusted_without_secret(self) -> dict[str, bytes]:
        """With no Secret (deleted to force a new CA), what the caBundles trust now: replicas
        keep serving certificates of that CA until their next pass, so the new bundle must
        keep it (the plan keeps only valid CAs) or the API server refuses them meanwhile."""
        pems: dict[bytes, None] = {}
        for name in self.configurations:
            try:
                config, _ = self._find(name)
            except ClusterApiError:
                continue
            if config is not None:
                pems.update(dict.fromkeys(pem for pem in config.ca_bundles.values() if pem))
        return {authority.CA_CERT: b"".join(pems)} if pems else {}

    def _carry_out(
        self, decision: rotation.Plan, material: Material, now: datetime
    ) -> dict[str, bytes]:
        if decision.new_ca:
            ca_pem, ca_key = authority.generate_ca(
                f"tenant-guard CA {now:%Y-%m-%dT%H:%M:%SZ}", days=self.policy.ca_days
            )
        else:
            active = material.observed.ca
            assert active is not None
            ca_pem, ca_key = material.pems[active.fingerprint], material.data[authority.CA_KEY]
        bundle = ca_pem + b"".join(material.pems[fp] for fp in decision.keep)
        if decision.new_leaf:
            cert, key = authority.issue_serving_cert(
                ca_pem, ca_key, self.dns_names, days=self.policy.leaf_days, now=now
            )
        else:
            cert, key = material.data[authority.TLS_CERT], material.data[authority.TLS_KEY]
        return {
            authority.TLS_CERT: cert,
            authority.TLS_KEY: key,
            authority.CA_CERT: bundle,
            authority.CA_KEY: ca_key,
        }

    def _write_secret(self, stored: StoredSecret | None, data: Mapping[str, bytes]) -> StoredSecret:
        if stored is None:
            return self.api.create_secret(
                self.namespace, self.secret_name, data, labels=SECRET_LABELS
            )
        # The type is immutable; an existing Secret keeps its own (Opaque works as well).
        return self.api.replace_secret(stored, data)

    # --- webhook configurations ---

    def _find(self, name: str) -> tuple[WebhookConfiguration | None, str]:
        known = self._kinds.get(name)
        kinds = [known] if known else list(WebhookKind)
        notes: list[str] = []
        for kind in kinds:
            try:
                config = self.api.read_webhook_configuration(kind, name)
            except ClusterApiError as exc:
                # RBAC may grant each name on one kind only (resourceNames), as deploy/ does.
                if exc.status == 403 and known is None:
                    notes.append(f"{kind.value}: forbidden")
                    continue
                raise
            if config is not None:
                self._kinds[name] = kind
                return config, ""
            notes.append(f"{kind.value}: not found")
        self._kinds.pop(name, None)
        return None, "; ".join(notes)

    def _sync_configuration(
        self, name: str, material: Material, *, final: bool
    ) -> tuple[_Outcome, str]:
        wanted = material.bundle_pem
        ours = list(material.observed.bundle)
        for _ in range(MAX_CONFLICTS):
            config, note = self._find(name)
            if config is None:
                return _Outcome.MISSING, note
            changes = {hook: wanted for hook, pem in config.ca_bundles.items() if pem != wanted}
            if not changes:
                return _Outcome.UNCHANGED, ""
            live = [f for pem in set(config.ca_bundles.values()) for f in bundle_facts(pem)]
            if not final and rotation.has_newer_unknown_ca(self.clock(), live, ours):
                return _Outcome.STALE, ""
            try:
                self.api.patch_ca_bundles(config, changes)
            except ClusterApiError as exc:
                if not exc.conflict:
                    raise
                continue
            log.info(
                "caBundle of %s/%s set (%d webhooks, %d CA certificates)",
                config.kind.value,
                name,
                len(changes),
                len(ours),
            )
            return _Outcome.PATCHED, ""
        raise ClusterApiError(f"patching {name}", 409, "Conflict", "kept changing under us")

    def _report_pending(self, pending: list[str]) -> None:
        if pending and pending != self._last_pending:
            log.warning(
                "caBundle not set yet, retrying in %gs: %s", self.retry_interval, "; ".join(pending)
            )
        elif not pending and self._last_pending:
            log.info("every webhook configuration carries the CA bundle")
        self._last_pending = pending

    # --- files ---

    def _write_files(self, material: Material) -> bool:
        """Write what differs; the key before its certificate, as
        webhook.certificates.authority does."""
        files = (
            (authority.TLS_KEY, material.data[authority.TLS_KEY], 0o600),
            (authority.TLS_CERT, material.data[authority.TLS_CERT], 0o644),
            (authority.CA_CERT, material.bundle_pem, 0o644),
        )
        self.cert_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        changed = False
        for name, content, mode in files:
            path = self.cert_dir / name
            with contextlib.suppress(OSError):
                if path.read_bytes() == content:
                    continue
            authority.write_file_atomic(path, content, mode)
            changed = True
        if changed:
            log.info("certificate files written to %s", self.cert_dir)
        return changed


# --- serve --manage-certs ----------------------------------------------------------------------


def start_from_args(args: argparse.Namespace, cluster_domain: str) -> CertManager:
    """Check the flags, put the certificates in place, and return the manager to attach."""
    if not args.cert_dir:
        raise SystemExit("tenant-guard serve: --manage-certs needs --cert-dir (files go there)")
    if not (args.kubeconfig or args.in_cluster):
        raise SystemExit("tenant-guard serve: --manage-certs needs --in-cluster or --kubeconfig")
    try:
        namespace = resolve_namespace(args.namespace, os.environ, SERVICE_ACCOUNT_NAMESPACE)
    except ValueError as exc:
        raise SystemExit(f"tenant-guard serve: {exc}") from None
    configurations: list[str] = args.webhook_configuration or []
    if not configurations:
        log.warning("no --webhook-configuration given: nobody will set the caBundle")
    api = CertificateApi(load_api_client(kubeconfig=args.kubeconfig, in_cluster=args.in_cluster))
    manager = CertManager(
        api,
        namespace=namespace,
        secret_name=args.cert_secret,
        service=args.service,
        webhook_configurations=configurations,
        cert_dir=args.cert_dir,
        cluster_domain=cluster_domain,
        interval=args.cert_check_seconds,
    )
    try:
        manager.start()
    except (CertManagerError, OSError) as exc:
        manager.close()
        raise SystemExit(f"tenant-guard serve: {exc}") from None
    return manager
