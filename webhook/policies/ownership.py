"""Host ownership (SPEC.md §3, §8): who may put a host name into routing, for every kind that
claims hosts (VirtualService hosts, Gateway server hosts, Gateway API hostnames and listeners),
and collisions with hosts other tenants already route."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from webhook.config.model import Config, UnclaimedHosts
from webhook.policies.common import Violation, show
from webhook.tenancy.claims import CONFIG_SOURCE, TenantIndex
from webhook.tenancy.hosts import (
    Form,
    HostError,
    classify,
    is_wildcard,
    normalise,
    proper_suffixes,
    route_key,
    wildcard_base,
)
from webhook.tenancy.view import TenancyView


class Problem(NamedTuple):
    """Why a host may not be used, before it is placed at a field (a named tuple: cheap to
    make, and a denial makes one per host refused)."""

    rule: str
    problem: str
    fix: str
    owner: str | None = None

    def at(self, field: str, value: str) -> Violation:
        return Violation(self.rule, field, value, self.problem, self.fix, self.owner)


@dataclass(frozen=True)
class HostUse:
    """What differs between the kinds that name hosts; the ownership rules themselves do not.

    In a VirtualService a dot-less name is a service of its namespace (Istio expands it). On a
    gateway (Istio Gateway servers, Gateway API hostnames and listeners) it is matched as it
    is, as a Host header, so it is nobody's service and no tenant can claim it. The fix texts
    follow: a VirtualService may name services, a gateway publishes claimed names.
    """

    expands_short_names: bool


ROUTING = HostUse(expands_short_names=True)  # VirtualService spec.hosts
EDGE = HostUse(expands_short_names=False)  # hosts published on a gateway


# The forms host_problem tells apart, as module names: in Python 3.11 reading an Enum member
# through its class costs about a function call, and several are compared per host.
_SHORT, _SERVICE, _NAMESPACE_WILDCARD = Form.SHORT, Form.SERVICE, Form.NAMESPACE_WILDCARD
_MESH_WILDCARD, _CLUSTER_NAME = Form.MESH_WILDCARD, Form.CLUSTER_NAME

# A tenant with hundreds of claims would make every fix text a page long: name a few.
_CLAIMS_SHOWN = 10


def _listed(claims: list[str]) -> str:
    if len(claims) <= _CLAIMS_SHOWN:
        return ", ".join(claims)
    return f"{', '.join(claims[:_CLAIMS_SHOWN])} and {len(claims) - _CLAIMS_SHOWN} more"


def _yours(tenant: str, namespace: str, view: TenancyView, config: Config, use: HostUse) -> str:
    """The fix text of a host refused to `tenant`: the same for each of its hosts refused."""
    directory = view.directory(config)
    key = (tenant, namespace, config.domain, use.expands_short_names)
    return directory.remembered(
        key, lambda: _what_is_yours(tenant, namespace, directory, config, use)
    )


def _what_is_yours(
    tenant: str, namespace: str, directory: TenantIndex, config: Config, use: HostUse
) -> str:
    claims = directory.claimed_hosts(tenant)
    if not use.expands_short_names:
        if not claims:
            place = _claims_of(tenant, directory)
            return f"ask the platform team to add the host names to {place}"
        return f"publish only host names claimed by tenant {show(tenant)}: {_listed(claims)}"
    claimed = f", or hosts claimed by tenant {show(tenant)}: {_listed(claims)}" if claims else ""
    return (
        f"route only services of tenant {show(tenant)} (e.g. reviews, "
        f"reviews.{namespace}.svc.{config.domain}){claimed}"
    )


def _claims_of(tenant: str, directory: TenantIndex) -> str:
    """Where the tenant's claims are written, for a fix text."""
    entry = directory.entry(tenant)
    if entry is not None and entry.source != CONFIG_SOURCE:
        return f"spec.hosts of Tenant {show(tenant)}"
    return f"tenants.{tenant}.hosts"


def _owned_by(owner: str | None, what: str) -> str:
    if owner is None:
        return f"belongs to the platform ({what})"
    return f"belongs to tenant {show(owner)} ({what})"


def host_problem(
    raw: str,
    namespace: str,
    tenant: str,
    view: TenancyView,
    config: Config,
    use: HostUse = ROUTING,
) -> Problem | None:
    """Why tenant `tenant` may not route host `raw` from `namespace`, or None if it may."""
    try:
        host = normalise(raw)
    except HostError as exc:
        return Problem(
            "host-invalid",
            f"is not a valid host name: {exc}",
            "use a DNS name such as reviews or shop.example.com, with '*' only as the whole "
            "first label",
        )
    if use.expands_short_names and "." not in host and host != "*":
        return None  # Form.SHORT: a service of this namespace, Istio expands it; no look-up
    form = classify(host, namespace, config.domain, view.is_namespace)
    kind = form.form
    if kind is _SHORT:
        return Problem(
            "host-ownership",
            _owned_by(
                None,
                "a single-label name: a gateway matches it as it is, and no tenant can claim it",
            ),
            _yours(tenant, namespace, view, config, use),
            "platform",
        )
    if kind is _SERVICE or kind is _NAMESPACE_WILDCARD:
        assert form.namespace is not None
        owner = view.tenant_of(form.namespace, config)
        if owner == tenant:
            return None
        reason = (
            f"a service name of namespace {show(form.namespace)}"
            if owner is not None
            else f"namespace {show(form.namespace)} has no tenant label or does not exist"
        )
        return Problem(
            "host-ownership",
            _owned_by(owner, reason),
            _yours(tenant, namespace, view, config, use),
            owner or "platform",
        )
    if kind is _MESH_WILDCARD:
        return Problem(
            "host-ownership",
            "spans several namespaces: no tenant may route it",
            f"name your services instead, or *.{namespace}.svc.{config.domain} for all of "
            f"namespace {show(namespace)}"
            if use.expands_short_names
            else _yours(tenant, namespace, view, config, use),
            "nobody",
        )
    if kind is _CLUSTER_NAME:
        return Problem(
            "host-ownership",
            _owned_by(None, f"a name in the cluster domain {config.domain}"),
            _yours(tenant, namespace, view, config, use),
            "platform",
        )
    return _external_problem(host, form.two_label_namespace, namespace, tenant, view, config, use)


def _external_problem(
    host: str,
    two_label_namespace: str | None,
    namespace: str,
    tenant: str,
    view: TenancyView,
    config: Config,
    use: HostUse,
) -> Problem | None:
    directory = view.directory(config)
    owner = directory.owner(host)
    if owner is not None and owner != tenant:
        entry = directory.entry(owner)
        where = (
            "claimed in the tenant-guard config"
            if entry is None or entry.source == CONFIG_SOURCE
            else f"claimed by Tenant {show(owner)}"
        )
        return Problem(
            "host-ownership",
            _owned_by(owner, where),
            _yours(tenant, namespace, view, config, use),
            owner,
        )
    # Before "unclaimed": a claim would not make this wildcard acceptable, so say why first.
    captured = _captured_claims(host, tenant, directory)
    if captured is not None:
        return captured
    if owner is None and two_label_namespace is not None:
        # `x.y` is how clients call service x of namespace y; with no claim on it, it stays
        # the platform's so that a namespace y created later cannot be captured.
        return Problem(
            "host-ownership",
            _owned_by(
                None,
                f"unclaimed, and it has the form service.namespace: it would capture "
                f"services of a namespace {show(two_label_namespace)} created later",
            ),
            f"ask the platform team to add it to {_claims_of(tenant, directory)}",
            "platform",
        )
    if owner is None and config.unclaimed_hosts is UnclaimedHosts.DENY:
        return Problem(
            "host-unclaimed",
            "is not claimed by any tenant (unclaimedHosts: deny)",
            f"ask the platform team to add it to {_claims_of(tenant, directory)}",
            "unclaimed",
        )
    return None


def _captured_claims(host: str, tenant: str, directory: TenantIndex) -> Problem | None:
    """A wildcard `*.d` that would capture names other tenants claim under `d`."""
    if not is_wildcard(host):
        return None
    others = sorted(directory.tenants_below(host) - {tenant})
    if not others:
        return None
    base = wildcard_base(host)
    examples = [
        claim
        for other in others[:3]
        for claim in directory.claimed_hosts(other)
        if claim.endswith("." + base) or (is_wildcard(claim) and wildcard_base(claim) == base)
    ]
    named = ", ".join(show(t) for t in others[:_CLAIMS_SHOWN])
    if len(others) > _CLAIMS_SHOWN:
        named += f" and {len(others) - _CLAIMS_SHOWN} more"
    return Problem(
        "host-ownership",
        f"would capture hosts of tenant(s) {named} ({', '.join(examples[:3])})",
        "list your own host names under it instead of the wildcard",
        ", ".join(others),
    )


def collision_problem(
    raw: str,
    namespace: str,
    name: str,
    tenant: str,
    view: TenancyView,
    config: Config,
    kind: str = "VirtualService",
) -> Problem | None:
    """A host another tenant's existing route already routes (cluster mode): the same host, or
    a wildcard of theirs that covers it (the traffic would be split between them)."""
    if not view.routes:
        return None
    key = route_key(raw, namespace, config.domain)
    if key is None:
        return None
    candidates = [key]
    if not is_wildcard(key):
        candidates += [f"*.{domain}" for domain in proper_suffixes(key)]
    for candidate in candidates:
        for ref in sorted(view.routes.get(candidate, ())):
            if ref == (kind, namespace, name):
                continue  # an UPDATE must not collide with itself
            other = view.tenant_of(ref.namespace, config)
            if other is not None and other != tenant:
                routed = "" if candidate == key else f" (as {candidate})"
                return Problem(
                    "host-collision",
                    f"is already routed by {ref.kind} {ref.namespace}/{ref.name} of "
                    f"tenant {show(other)}{routed}",
                    "use a host of your own; two tenants routing one host would split its traffic",
                    other,
                )
    return None
