"""Tenant objects (SPEC.md §12): CREATE and UPDATE refused for a malformed claim or one another
tenant holds, DELETE while namespaces still carry the tenant's label."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.config.model import Config, claim_form_problem, validate_tenant_name
from webhook.policies.common import ShapeError, Violation, list_at, mapping_at, show
from webhook.tenancy.claims import CONFIG_SOURCE
from webhook.tenancy.hosts import HostError, normalise
from webhook.tenancy.tenants import MAX_HOSTS, read_spec
from webhook.tenancy.view import TenancyView

_SHOWN = 10  # namespaces named in a DELETE refusal


def _invalid(field: str, value: object, problem: str, fix: str) -> Violation:
    return Violation("tenant-invalid", field, show(value), problem, fix)


def _field_problem(line: str) -> tuple[str, str]:
    field, _, problem = line.partition(": ")
    return field, problem


def check(obj: Mapping[str, Any], name: str, view: TenancyView, config: Config) -> list[Violation]:
    """Violations of a Tenant on CREATE or UPDATE, every one at once."""
    violations: list[Violation] = []
    try:
        validate_tenant_name(name)
    except ValueError as exc:
        violations.append(
            _invalid(
                "metadata.name",
                name,
                f"cannot be a tenant: {exc}",
                "name the Tenant as its namespaces' tenant label value",
            )
        )
    spec = mapping_at(obj, "spec", "spec")
    hosts = list_at(spec, "hosts", "spec.hosts")
    if len(hosts) > MAX_HOSTS:
        violations.append(
            Violation(
                "tenant-invalid",
                "spec.hosts",
                f"({len(hosts)} entries)",
                f"is more than the {MAX_HOSTS} claims a Tenant may hold",
                "claim a wildcard (*.example.com) for many names under one domain",
            )
        )
    else:
        violations += _host_violations(hosts, name, view, config)
    # The other fields, with the rules the watch cache reads them by (read_spec).
    _, problems = read_spec(name, {**spec, "hosts": []}, config)
    for line in problems:
        field, problem = _field_problem(line)
        if field == "metadata.name":
            continue  # reported above
        violations.append(
            Violation(
                "tenant-invalid",
                field,
                "",
                problem,
                "see `kubectl explain tenant.spec` for the fields and their forms",
            )
        )
    return violations


def _host_violations(
    hosts: list[Any], name: str, view: TenancyView, config: Config
) -> list[Violation]:
    violations: list[Violation] = []
    directory = view.directory(config)
    seen: dict[str, int] = {}
    for index, raw in enumerate(hosts):
        field = f"spec.hosts[{index}]"
        if not isinstance(raw, str):
            raise ShapeError(field, "a string", raw)
        try:
            host = normalise(raw)
        except HostError as exc:
            violations.append(
                _invalid(
                    field,
                    raw,
                    f"is not a valid host name: {exc}",
                    "claim a DNS name such as shop.example.com, or *.shop.example.com",
                )
            )
            continue
        problem = "it would capture every host in the mesh" if host == "*" else None
        problem = problem or claim_form_problem(host, config.domain)
        if problem is not None:
            violations.append(
                _invalid(
                    field,
                    raw,
                    f"cannot be claimed: {problem}",
                    "claim external host names only; in-cluster names belong to their "
                    "namespace's tenant",
                )
            )
            continue
        if host in seen:
            continue  # the API server refuses duplicates itself; the same claim twice is one
        seen[host] = index
        # Only the holder counts: a tenant that lost a race for the claim (its status says
        # Conflict) must not block the holder's own updates.
        holder = directory.holder(host)
        if holder is not None and holder != name:
            entry = directory.entry(holder)
            where = (
                "in the tenant-guard config"
                if entry is None or entry.source == CONFIG_SOURCE
                else f"by Tenant {show(holder)}"
            )
            violations.append(
                Violation(
                    "tenant-claim-conflict",
                    field,
                    show(raw),
                    f"is already claimed by tenant {show(holder)} ({where})",
                    "claim only names no other tenant claims (a more specific name under "
                    "another tenant's wildcard is fine), or ask the platform team to move "
                    "the claim",
                    holder,
                )
            )
    return violations


def check_delete(name: str, view: TenancyView, config: Config) -> list[Violation]:
    """A Tenant whose namespaces still carry its label keeps its claims: deleting it would
    unclaim the host names those namespaces serve."""
    if name in config.tenants:
        return []  # the config defines it too: deleting the object changes nothing in force
    namespaces = sorted(view.namespaces_of(name, config))
    if not namespaces:
        return []
    listed = ", ".join(namespaces[:_SHOWN])
    if len(namespaces) > _SHOWN:
        listed += f" and {len(namespaces) - _SHOWN} more"
    return [
        Violation(
            "tenant-in-use",
            "metadata.name",
            show(name),
            f"is the {config.tenant_label} label of {len(namespaces)} namespace(s) ({listed}); "
            "deleting the Tenant would unclaim the host names they serve",
            f"delete those namespaces or move them to another tenant first "
            f"(kubectl get namespaces -l {config.tenant_label}={name})",
        )
    ]
