"""A Tenant's status (SPEC.md §12), as the replica holding the Lease writes it. Pure: the
record, the index in force, the tenant's namespaces and the audit's count in, the status out.

Ready is True when every claim of the Tenant is in force. Otherwise its reason says why not:
`Invalid` (set aside: the spec cannot be used, e.g. stored before the CRD's schema tightened),
`ShadowedByConfig` (the config file defines a tenant of that name, and wins), `Conflict`
(another tenant holds some of its claims; the others are in force).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from webhook.policies.common import show
from webhook.tenancy.claims import CONFIG_SOURCE, TenantIndex
from webhook.tenancy.tenants import TenantRecord

READY = "Ready"
NAMES_SHOWN = 100  # the CRD's maxItems for status.namespaces
_PROBLEMS_SHOWN = 5
_CONFLICTS_SHOWN = 5


def desired_status(
    record: TenantRecord,
    index: TenantIndex,
    config_tenants: Collection[str],
    namespaces: Collection[str],
    violations: int | None,
    now: str,
) -> dict[str, Any]:
    """The status the Tenant should carry; `now` (RFC 3339) stamps a condition that changed."""
    name = record.name
    in_force = 0
    if record.problems:
        shown = "; ".join(record.problems[:_PROBLEMS_SHOWN])
        more = len(record.problems) - _PROBLEMS_SHOWN
        ready, reason = "False", "Invalid"
        message = (
            f"set aside, none of its claims are in force: {shown}"
            + (f"; and {more} more" if more > 0 else "")
            + ". Fix the spec (kubectl explain tenant.spec)"
        )
    elif name in config_tenants:
        ready, reason = "False", "ShadowedByConfig"
        message = (
            f"tenants.{name} in the tenant-guard config defines this tenant and is in force; "
            "this object's spec takes over once that entry is removed from the config"
        )
    else:
        in_force = len(index.claimed_hosts(name))
        lost = index.lost_claims(name)
        if lost:
            ready, reason = "False", "Conflict"
            parts = []
            for position, host, holder in lost[:_CONFLICTS_SHOWN]:
                entry = index.entry(holder)
                why = (
                    "in the tenant-guard config"
                    if entry is None or entry.source == CONFIG_SOURCE
                    else "its Tenant is older"
                )
                parts.append(
                    f"spec.hosts[{position}] {show(host)} is held by {show(holder)} ({why})"
                )
            more = len(lost) - _CONFLICTS_SHOWN
            message = (
                "; ".join(parts)
                + (f"; and {more} more" if more > 0 else "")
                + f". {in_force} of {in_force + len(lost)} claims in force; remove the others "
                "or have them moved"
            )
        else:
            ready, reason = "True", "ClaimsInForce"
            message = f"{in_force} claim(s) in force"
    condition = {
        "type": READY,
        "status": ready,
        "reason": reason,
        "message": message,
        "observedGeneration": record.generation,
        "lastTransitionTime": _transition_time(record.status, ready, reason, now),
    }
    names = sorted(namespaces)
    status: dict[str, Any] = {
        "observedGeneration": record.generation,
        "namespaceCount": len(names),
        "namespaces": names[:NAMES_SHOWN],
        "hostsInForce": in_force,
        "conditions": [condition],
    }
    if violations is not None:
        status["violations"] = violations
    return status


def _transition_time(stored: Mapping[str, Any], ready: str, reason: str, now: str) -> str:
    """The stored time when the condition's status and reason did not change, else now."""
    for condition in stored.get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == READY:
            stamp = condition.get("lastTransitionTime")
            if (
                condition.get("status") == ready
                and condition.get("reason") == reason
                and isinstance(stamp, str)
            ):
                return stamp
    return now


def needs_write(stored: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether the stored status differs from the desired one (a violation count not known
    yet keeps the stored one)."""
    merged = dict(desired)
    if "violations" not in merged and "violations" in stored:
        merged["violations"] = stored["violations"]
    return dict(stored) != merged
