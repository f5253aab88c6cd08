"""When to renew the self-managed CA and serving certificate: pure decisions, time passed in.

No I/O, no clock, no crypto library: webhook.certificates.manager reads the Secret, turns each
certificate into `CertFacts`, asks `plan()` what to do, and carries it out.

Defaults, and why:

* CA: 1 year. The CA key lives in a Secret, so its lifetime bounds what a leaked copy is
  good for; and a CA that rotates every ~8 months keeps the rotation path exercised while
  people still remember it exists (a 10-year CA is first rotated, or first forgotten, a decade
  later). It is renewed when a third of its lifetime is left (~4 months), which is also how
  long tenant-guard may be broken before anything expires.
* Serving certificate: 90 days, renewed with 30 days left: short-lived like ACME certificates,
  with a month of slack.
* The previous CA stays in the trust bundle (ca.crt, and so every webhook's caBundle) until it
  expires, so serving certificates signed by either are trusted while replicas switch over.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = [
    "CA_DAYS",
    "CHECK_INTERVAL",
    "LEAF_DAYS",
    "MAX_BUNDLE",
    "NOT_YET_VALID_TOLERANCE",
    "RENEW_FRACTION",
    "RETRY_INTERVAL",
    "CertFacts",
    "Observed",
    "Plan",
    "RotationPolicy",
    "ca_problem",
    "has_newer_unknown_ca",
    "leaf_problem",
    "plan",
    "renew_at",
    "trust_bundle",
]

CA_DAYS = 365
LEAF_DAYS = 90
# Renew when less than this fraction of the lifetime remains.
RENEW_FRACTION = 1 / 3
# A certificate whose notBefore is this far ahead of our clock is treated as broken. Ours are
# backdated 5 minutes, so replicas with NTP never get near it; a smaller skew is tolerated
# rather than "fixed", which would make replicas with different clocks re-issue in turn.
NOT_YET_VALID_TOLERANCE = timedelta(minutes=10)
# At most this many certificates in the trust bundle (the active CA first).
MAX_BUNDLE = 3
# How often each replica re-reads the Secret and the webhook configurations (3 GETs). It also
# bounds how long a webhook configuration re-created without a caBundle (which fails closed)
# stays broken.
CHECK_INTERVAL = timedelta(minutes=5)
# Sooner, while something is pending: a webhook configuration not created yet, an API error.
RETRY_INTERVAL = timedelta(seconds=30)


@dataclass(frozen=True)
class RotationPolicy:
    ca_days: int = CA_DAYS
    leaf_days: int = LEAF_DAYS
    renew_fraction: float = RENEW_FRACTION
    not_yet_valid_tolerance: timedelta = NOT_YET_VALID_TOLERANCE
    max_bundle: int = MAX_BUNDLE

    def __post_init__(self) -> None:
        if self.ca_days <= 0 or self.leaf_days <= 0:
            raise ValueError("lifetimes must be positive")
        if not 0 < self.renew_fraction < 1:
            raise ValueError("renew_fraction must be between 0 and 1")
        if self.leaf_days > self.ca_days * self.renew_fraction:
            # A leaf is never valid beyond its CA; this way one issued by a CA that is not yet
            # due for renewal always gets its full lifetime.
            raise ValueError("leaf_days must not exceed ca_days * renew_fraction")
        if self.max_bundle < 2:
            raise ValueError("max_bundle must leave room for the previous CA")


@dataclass(frozen=True)
class CertFacts:
    """What the decisions need to know about one certificate."""

    not_before: datetime
    not_after: datetime
    fingerprint: str = ""  # identity (e.g. SHA-256 of the DER), compared, never parsed
    sans: frozenset[str] = frozenset()
    is_ca: bool = False

    @property
    def lifetime(self) -> timedelta:
        return self.not_after - self.not_before


@dataclass(frozen=True)
class Observed:
    """The Secret as read. `ca` and `leaf` are None when absent or unusable (no key, key does
    not match, not a CA); `bundle` is every certificate of ca.crt in order, active CA first."""

    ca: CertFacts | None = None
    leaf: CertFacts | None = None
    leaf_chains_to_ca: bool = False
    bundle: tuple[CertFacts, ...] = ()


@dataclass(frozen=True)
class Plan:
    """What to change. With new_ca, `keep` lists what follows the new CA in the bundle."""

    new_ca: bool = False
    new_leaf: bool = False
    keep: tuple[str, ...] = ()  # fingerprints of bundle certificates kept after the active CA
    rewrite_bundle: bool = False
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def changes(self) -> bool:
        return self.new_ca or self.new_leaf or self.rewrite_bundle


def renew_at(cert: CertFacts, fraction: float = RENEW_FRACTION) -> datetime:
    """When less than `fraction` of the certificate's lifetime is left."""
    return cert.not_after - cert.lifetime * fraction


def _validity_problem(
    label: str, now: datetime, cert: CertFacts, policy: RotationPolicy
) -> str | None:
    if cert.lifetime <= timedelta(0):
        return f"{label} has an empty validity period"
    if now >= cert.not_after:
        return f"{label} expired at {cert.not_after.isoformat()}"
    if cert.not_before > now + policy.not_yet_valid_tolerance:
        return f"{label} is not valid until {cert.not_before.isoformat()} (clock skew?)"
    due = renew_at(cert, policy.renew_fraction)
    if now >= due:
        return (
            f"{label} expires at {cert.not_after.isoformat()}, less than "
            f"{policy.renew_fraction:.0%} of its lifetime left"
        )
    return None


def ca_problem(now: datetime, ca: CertFacts | None, policy: RotationPolicy) -> str | None:
    """Why the CA must be replaced, or None."""
    if ca is None:
        return "no usable CA (ca.crt with a matching ca.key)"
    if not ca.is_ca:
        return "ca.crt is not a CA certificate"
    return _validity_problem("the CA", now, ca, policy)


def leaf_problem(
    now: datetime,
    leaf: CertFacts | None,
    chains_to_ca: bool,
    wanted_sans: Iterable[str],
    policy: RotationPolicy,
) -> str | None:
    """Why the serving certificate must be re-issued, or None."""
    if leaf is None:
        return "no usable serving certificate (tls.crt with a matching tls.key)"
    if not chains_to_ca:
        return "the serving certificate is not signed by the CA"
    have = {name.lower() for name in leaf.sans}
    missing = [name for name in wanted_sans if name.lower() not in have]
    if missing:
        return f"the serving certificate does not cover {', '.join(missing)}"
    return _validity_problem("the serving certificate", now, leaf, policy)


def trust_bundle(
    now: datetime,
    candidates: Iterable[CertFacts],
    exclude: Iterable[str] = (),
    limit: int = MAX_BUNDLE,
) -> tuple[str, ...]:
    """Fingerprints of the certificates that follow the active CA in the bundle.

    Kept: CA certificates among `candidates` that have not expired at `now` and are not in
    `exclude` (the active CA), newest first, at most `limit - 1`, so that serving certificates
    they signed stay trusted until those could no longer be valid anyway.
    """
    seen = set(exclude)
    kept: list[CertFacts] = []
    for cert in candidates:
        if cert.is_ca and cert.not_after > now and cert.fingerprint not in seen:
            seen.add(cert.fingerprint)
            kept.append(cert)
    kept.sort(key=lambda cert: cert.not_before, reverse=True)
    return tuple(cert.fingerprint for cert in kept[: max(0, limit - 1)])


def plan(
    now: datetime, observed: Observed, wanted_sans: Sequence[str], policy: RotationPolicy
) -> Plan:
    """What to do with the Secret at `now`: keep it, re-issue the leaf, or rotate the CA."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    problem = ca_problem(now, observed.ca, policy)
    if problem is not None:
        # The old CA (if still valid) and its predecessors stay trusted behind the new one.
        keep = trust_bundle(now, observed.bundle, limit=policy.max_bundle)
        return Plan(new_ca=True, new_leaf=True, keep=keep, rewrite_bundle=True, reasons=(problem,))
    ca = observed.ca
    assert ca is not None
    reasons: list[str] = []
    leaf = leaf_problem(now, observed.leaf, observed.leaf_chains_to_ca, wanted_sans, policy)
    if leaf is not None:
        reasons.append(leaf)
    keep = trust_bundle(now, observed.bundle[1:], (ca.fingerprint,), policy.max_bundle)
    current = tuple(cert.fingerprint for cert in observed.bundle)
    rewrite = current != (ca.fingerprint, *keep)
    if rewrite:
        reasons.append("the CA bundle holds expired, duplicate or foreign certificates")
    return Plan(
        new_leaf=leaf is not None, keep=keep, rewrite_bundle=rewrite, reasons=tuple(reasons)
    )


def has_newer_unknown_ca(
    now: datetime, live: Iterable[CertFacts], ours: Sequence[CertFacts]
) -> bool:
    """True if a caBundle holds a valid CA we do not know that is newer than our active one.

    That happens when another replica rotated the CA after we read the Secret: our view is
    stale, and writing our bundle would take its new CA out of the caBundle again.
    """
    if not ours:
        return False
    known = {cert.fingerprint for cert in ours}
    active = ours[0]
    return any(
        cert.is_ca
        and cert.fingerprint not in known
        and cert.not_after > now
        and cert.not_before > active.not_before
        for cert in live
    )
