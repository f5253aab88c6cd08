"""Tenant objects (SPEC.md §12): what a stored or submitted Tenant says, checked with the
config's own rules for claims and quantities. Pure: the watch cache, admission, `analyze` and
`tenants export` all read Tenants through this module."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from webhook.config.model import (
    ClaimedHost,
    Config,
    Enforcement,
    ProxyBounds,
    Subjects,
    claim_form_problem,
    describe_errors,
    validate_tenant_name,
)
from webhook.tenancy.claims import OBJECT_SOURCE, TenantEntry

GROUP = "tenant-guard.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Tenant"
PLURAL = "tenants"
# The CRD's bounds (deploy/components/tenants/crd.yaml): a Tenant stored under an older,
# looser schema is held to them too, so a 5,000-host object is set aside, not indexed.
MAX_HOSTS = 1000
MAX_OWNERS = 100
MAX_QUOTA = 10000


class TenantSpec(BaseModel):
    """`spec` of a Tenant; the config's types, so a claim means the same in both sources."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    hosts: tuple[ClaimedHost, ...] = ()
    proxy: ProxyBounds = Field(default_factory=ProxyBounds)
    enforcement: Enforcement | None = None
    owners: Subjects = Field(default_factory=Subjects)
    namespace_quota: int | None = Field(default=None, alias="namespaceQuota", ge=0, le=MAX_QUOTA)


@dataclass(frozen=True)
class TenantRecord:
    """One stored Tenant as the cache keeps it: its entry when usable, else why not."""

    name: str
    uid: str = ""
    generation: int = 0
    created: str = ""
    entry: TenantEntry | None = None
    problems: tuple[str, ...] = ()  # why it is set aside (reason Invalid)
    # Its status as stored: the writer compares, so an unchanged status is not written again.
    status: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


def _as_text(value: object) -> object:
    # The CRD takes quantities as int-or-string, as a pod's resources do.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def read_spec(
    name: object, spec: object, config: Config, created: str = ""
) -> tuple[TenantEntry | None, list[str]]:
    """(the entry, []) for a usable Tenant, or (None, [problem, ...]) naming each field."""
    problems: list[str] = []
    if not isinstance(name, str) or not name:
        return None, ["metadata.name: a Tenant needs a name (the value of the tenant label)"]
    try:
        validate_tenant_name(name)
    except ValueError as exc:
        problems.append(f"metadata.name: {exc}")
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        return None, [*problems, f"spec: must be an object, got {type(spec).__name__}"]
    data = dict(spec)
    hosts = data.get("hosts")
    if isinstance(hosts, list | tuple) and len(hosts) > MAX_HOSTS:
        # Before anything else: validating 5,000 names to refuse them all is wasted work.
        return None, [
            *problems,
            f"spec.hosts: {len(hosts)} entries, more than the {MAX_HOSTS} a Tenant may claim "
            "(the CRD's maxItems; a wildcard claims every name under a domain)",
        ]
    proxy = data.get("proxy")
    if isinstance(proxy, Mapping):
        data["proxy"] = {key: _as_text(value) for key, value in proxy.items()}
    try:
        parsed = TenantSpec.model_validate(data)
    except ValidationError as exc:
        return None, [*problems, *describe_errors(exc, "spec")]
    for index, host in enumerate(parsed.hosts):
        problem = claim_form_problem(host, config.domain)
        if problem is not None:
            problems.append(f"spec.hosts[{index}]: {problem}")
    if len(parsed.owners.users) + len(parsed.owners.groups) > 2 * MAX_OWNERS:
        problems.append(f"spec.owners: more than {MAX_OWNERS} users or groups")
    if parsed.proxy.by_config_key():  # without an override, the defaults (checked at load)
        merged = parsed.proxy.merged_over(config.proxy_defaults)
        try:
            config.check_bounds(merged, "spec.proxy")
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        return None, problems
    entry = TenantEntry(
        name,
        tuple(dict.fromkeys(parsed.hosts)),
        source=OBJECT_SOURCE,
        created=created,
        proxy=MappingProxyType(parsed.proxy.by_config_key()),
        enforcement=parsed.enforcement.value if parsed.enforcement else None,
        owner_users=frozenset(parsed.owners.users),
        owner_groups=frozenset(parsed.owners.groups),
        namespace_quota=parsed.namespace_quota,
    )
    return entry, []


def read_tenant(obj: Mapping[str, Any], config: Config) -> TenantRecord:
    """A stored Tenant as a record; never raises (a watch cache's convert)."""
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    name = metadata.get("name")
    created = metadata.get("creationTimestamp")
    created = created if isinstance(created, str) else ""
    generation = metadata.get("generation")
    status = obj.get("status")
    try:
        entry, problems = read_spec(name, obj.get("spec"), config, created)
    except Exception as exc:  # a shape nobody foresaw must set one Tenant aside, not the cache
        entry, problems = None, [f"spec: cannot be read: {exc}"]
    return TenantRecord(
        name=name if isinstance(name, str) else "",
        uid=str(metadata.get("uid") or ""),
        generation=generation if isinstance(generation, int) else 0,
        created=created,
        entry=entry,
        problems=tuple(problems),
        status=MappingProxyType(dict(status))
        if isinstance(status, Mapping)
        else MappingProxyType({}),
    )


_OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$")


def export_problem(name: str, hosts: Iterable[str]) -> str | None:
    """Why a config tenant cannot become a Tenant object as it is, or None."""
    if not _OBJECT_NAME.match(name):
        return (
            f"{name!r} is a valid label value but not a Kubernetes object name (lower-case "
            "letters, digits, '-' and '.'); rename the tenant first"
        )
    count = len(set(hosts))
    if count > MAX_HOSTS:
        return f"{count} hosts, more than the {MAX_HOSTS} a Tenant may claim"
    return None


def tenant_object(name: str, hosts: Iterable[str], proxy: Mapping[str, str]) -> dict[str, Any]:
    """A Tenant object for a config tenant (`tenant-guard tenants export`)."""
    spec: dict[str, Any] = {"hosts": list(hosts)}
    if proxy:
        spec["proxy"] = dict(proxy)
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": spec}
