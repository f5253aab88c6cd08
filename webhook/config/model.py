"""The config file (SPEC.md §2): pydantic models, loading and validation."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from webhook.baseline.templates import TemplateError, check_template
from webhook.config.quantity import QuantityError, parse_quantity
from webhook.tenancy.claims import CONFIG_SOURCE, TenantEntry, TenantIndex
from webhook.tenancy.hosts import HostError, classify, is_wildcard, normalise

ENFORCEMENT_LABEL = "tenant-guard.io/enforcement"

# The four Istio injector annotations a pod's sidecar bounds are written to.
PROXY_ANNOTATIONS: Mapping[str, str] = {
    "cpu": "sidecar.istio.io/proxyCPU",
    "cpuLimit": "sidecar.istio.io/proxyCPULimit",
    "memory": "sidecar.istio.io/proxyMemory",
    "memoryLimit": "sidecar.istio.io/proxyMemoryLimit",
}

_LABEL_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


# libyaml's loader when PyYAML was built with it: several times faster on a 10,000-tenant file,
# and its peak memory is a fraction of the pure-Python loader's.
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _YamlLoader(_BaseLoader):  # type: ignore[misc]
    """Refuses a key given twice in one mapping: YAML would keep the last silently, so a
    second `sharedNamespaces:` further down a long file would replace the first unseen."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue  # PyYAML refuses unhashable keys itself
            if key in seen:
                line = key_node.start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (line {line})"
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


class ConfigError(ValueError):
    """A config file that cannot be used; the message names each bad key and value."""


class Enforcement(StrEnum):
    ENFORCE = "enforce"
    WARN = "warn"


class UnclaimedHosts(StrEnum):
    DENY = "deny"
    ALLOW = "allow"


def _label_key(value: str) -> str:
    prefix, _, name = value.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise ValueError(f"label key prefix {prefix!r} is not a DNS subdomain")
    if not _LABEL_NAME.match(name):
        raise ValueError(f"{value!r} is not a valid label key")
    return value


def _namespace_name(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(f"{value!r} is not a valid namespace name")
    return value


def validate_tenant_name(value: str) -> str:
    # The tenant is written as a label value on namespaces and pods.
    if not _LABEL_VALUE.match(value):
        raise ValueError(f"tenant name {value!r} is not a valid label value")
    return value


_tenant_name = validate_tenant_name


def claim_form_problem(host: str, domain: str) -> str | None:
    """Why a normalised claim is not an external host name (claims are for those only)."""
    form = classify(host, "", domain, lambda _ns: False)
    if form.form.name != "EXTERNAL":
        return (
            f"{host!r} is a {form.form.value} inside the mesh; claims are for external host "
            "names only"
        )
    return None


def _gateway_ref(value: str) -> str:
    namespace, slash, name = value.partition("/")
    if not slash or not _DNS_LABEL.match(namespace) or not _DNS_SUBDOMAIN.match(name):
        raise ValueError(f"{value!r} is not a gateway reference of the form namespace/name")
    return value


def _label_value(value: str) -> str:
    if value and not _LABEL_VALUE.match(value):
        raise ValueError(f"{value!r} is not a valid label value")
    return value


def _workload_labels(value: dict[str, str]) -> dict[str, str]:
    # An empty map would describe no pod at all; every selector would "match" it.
    if not value:
        raise ValueError("an empty label map describes no gateway pod; list its labels")
    return value


def _number_as_text(value: object) -> object:
    # YAML reads `cpu: 1` as a number; Kubernetes manifests accept it unquoted, so do we.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _quantity(value: str) -> str:
    try:
        parse_quantity(value)
    except QuantityError as exc:
        raise ValueError(str(exc)) from None
    return value


def _claimed_host(value: str) -> str:
    try:
        host = normalise(value)
    except HostError as exc:
        raise ValueError(f"{value!r} is not a valid host: {exc}") from None
    if host == "*":
        raise ValueError("'*' cannot be claimed: it would capture every host in the mesh")
    return host


LabelKey = Annotated[str, AfterValidator(_label_key)]
NamespaceName = Annotated[str, AfterValidator(_namespace_name)]
TenantName = Annotated[str, AfterValidator(_tenant_name)]
GatewayRef = Annotated[str, AfterValidator(_gateway_ref)]
Quantity = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_quantity)]
ClaimedHost = Annotated[str, AfterValidator(_claimed_host)]
LabelValue = Annotated[str, AfterValidator(_label_value)]
WorkloadLabels = Annotated[dict[LabelKey, LabelValue], AfterValidator(_workload_labels)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Subjects(_Strict):
    groups: list[str] = Field(default_factory=list)
    users: list[str] = Field(default_factory=list)

    def includes(self, username: str | None, groups: list[str] | None) -> bool:
        if username is not None and username in self._user_set:
            return True
        return not self._group_set.isdisjoint(groups or ())

    # Asked for every request (exempt) with a user's groups: sets, made once per config.
    @cached_property
    def _user_set(self) -> frozenset[str]:
        return frozenset(self.users)

    @cached_property
    def _group_set(self) -> frozenset[str]:
        return frozenset(self.groups)


class ProxyBounds(_Strict):
    cpu: Quantity | None = None
    cpu_limit: Quantity | None = Field(default=None, alias="cpuLimit")
    memory: Quantity | None = None
    memory_limit: Quantity | None = Field(default=None, alias="memoryLimit")

    def merged_over(self, defaults: ProxyBounds) -> ProxyBounds:
        return defaults.model_copy(update=self.model_dump(exclude_none=True))

    def by_config_key(self) -> dict[str, str]:
        """{"cpu": "100m", "cpuLimit": ...} for the bounds that are set."""
        return {k: v for k, v in self.model_dump(by_alias=True).items() if v is not None}


def _baseline_template(value: dict[str, Any]) -> dict[str, Any]:
    try:
        check_template(value)
    except TemplateError as exc:
        raise ValueError(str(exc)) from None
    return value


BaselineTemplate = Annotated[dict[str, Any], AfterValidator(_baseline_template)]

# Who writes the baseline besides labelAdmins and exempt: tenant-guard's own service account
# (deploy/ runs it as tenant-guard/tenant-guard), and the namespace controller, which deletes a
# namespace's contents when the namespace is deleted (as its own service account, or as
# kube-controller-manager without --use-service-account-credentials).
DEFAULT_BASELINE_MANAGERS = (
    "system:serviceaccount:tenant-guard:tenant-guard",
    "system:serviceaccount:kube-system:namespace-controller",
    "system:kube-controller-manager",
)


class BaselineConfig(_Strict):
    """`baseline:` (SPEC.md §11): objects every tenant namespace gets, kept by tenant-guard."""

    objects: list[BaselineTemplate] = Field(default_factory=list)
    resync_seconds: float = Field(default=300.0, alias="resyncSeconds", gt=0)
    managers: Subjects = Field(
        default_factory=lambda: Subjects(users=list(DEFAULT_BASELINE_MANAGERS))
    )

    @model_validator(mode="after")
    def _unique(self) -> BaselineConfig:
        seen: dict[tuple[str, str], int] = {}
        for index, template in enumerate(self.objects):
            key = (str(template["kind"]), str(template["metadata"]["name"]))
            if key in seen:
                raise ValueError(
                    f"baseline.objects[{index}]: {key[0]} {key[1]!r} is already "
                    f"baseline.objects[{seen[key]}]; each kind and name may appear once"
                )
            seen[key] = index
        return self


_NO_OVERRIDE = ProxyBounds()  # frozen, so every tenant without `proxy:` can share it


class TenantConfig(_Strict):
    hosts: tuple[ClaimedHost, ...] = ()
    proxy: ProxyBounds = _NO_OVERRIDE


class Bound:
    """A sidecar bound ready for comparison: the configured text and its value."""

    __slots__ = ("text", "value")

    def __init__(self, text: str) -> None:
        self.text = text
        self.value: Decimal = parse_quantity(text)

    def __repr__(self) -> str:
        return f"Bound({self.text!r})"


class Config(_Strict):
    tenant_label: LabelKey = Field(default="tenant", alias="tenantLabel")
    cluster_domain: str = Field(default="cluster.local", alias="clusterDomain")
    enforcement: Enforcement = Enforcement.ENFORCE
    unclaimed_hosts: UnclaimedHosts = Field(default=UnclaimedHosts.DENY, alias="unclaimedHosts")
    shared_gateways: list[GatewayRef] = Field(default_factory=list, alias="sharedGateways")
    label_admins: Subjects = Field(
        default_factory=lambda: Subjects(groups=["system:masters"]), alias="labelAdmins"
    )
    exempt: Subjects = Field(default_factory=Subjects)
    proxy_defaults: ProxyBounds = Field(default_factory=ProxyBounds, alias="proxyDefaults")
    tenants: dict[TenantName, TenantConfig] = Field(default_factory=dict)
    namespaces: dict[NamespaceName, dict[LabelKey, str]] | None = None
    # The edge (SPEC.md §8, §11): the labels of each kind of platform gateway pod, Gateway API
    # parents every tenant's routes may attach to, and namespaces every Sidecar may import.
    shared_gateway_workloads: list[WorkloadLabels] = Field(
        default_factory=list, alias="sharedGatewayWorkloads"
    )
    shared_parent_refs: list[GatewayRef] = Field(default_factory=list, alias="sharedParentRefs")
    shared_namespaces: list[NamespaceName] = Field(default_factory=list, alias="sharedNamespaces")
    baseline: BaselineConfig | None = None

    _claims: TenantIndex = PrivateAttr(default_factory=TenantIndex)
    _bounds: dict[str, dict[str, Bound]] = PrivateAttr(default_factory=dict)
    _default_bounds: dict[str, Bound] = PrivateAttr(default_factory=dict)
    _object_bounds: dict[tuple[tuple[str, str], ...], dict[str, Bound]] = PrivateAttr(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _check_and_index(self) -> Config:
        domain = self.cluster_domain.lower().rstrip(".")
        if not _DNS_SUBDOMAIN.match(domain) or ("." not in domain and domain != "local"):
            raise ValueError(f"clusterDomain {self.cluster_domain!r} is not a DNS domain")
        for tenant, spec in self.tenants.items():
            for index, host in enumerate(spec.hosts):
                problem = claim_form_problem(host, domain)
                if problem is not None:
                    raise ValueError(f"tenants.{tenant}.hosts[{index}]: {problem}")
        try:
            claims = TenantIndex.of_config(
                _config_entry(t, spec) for t, spec in self.tenants.items()
            )
        except ValueError as exc:
            raise ValueError(f"tenants: overlapping claims cannot be resolved: {exc}") from None
        defaults = _bounds_of(self.proxy_defaults, "proxyDefaults")
        # Only tenants with their own `proxy` get their own bounds; the rest share the defaults.
        bounds = {
            tenant: _bounds_of(spec.proxy.merged_over(self.proxy_defaults), f"tenants.{tenant}")
            for tenant, spec in self.tenants.items()
            if spec.proxy.by_config_key()
        }
        self._claims = claims
        self._default_bounds = defaults
        self._bounds = bounds
        return self

    # Cached: both are read for every host of every request, and a pydantic private
    # attribute costs a __getattr__ call each time.
    @cached_property
    def domain(self) -> str:
        return self.cluster_domain.lower().rstrip(".")

    @cached_property
    def shared_gateway_set(self) -> frozenset[str]:
        """sharedGateways as a set, for the look-up of each gateway a VirtualService binds."""
        return frozenset(self.shared_gateways)

    @cached_property
    def claims(self) -> TenantIndex:
        """The config file's tenants; in a cluster, Tenant objects are added to a copy of it."""
        return self._claims

    # The same for the sidecar bounds, which every pod CREATE reads.
    @cached_property
    def _tenant_bounds(self) -> dict[str, dict[str, Bound]]:
        return self._bounds

    @cached_property
    def _defaults(self) -> dict[str, Bound]:
        return self._default_bounds

    def proxy_bounds(self, tenant: str) -> Mapping[str, Bound]:
        """The sidecar bounds of a config tenant (its `proxy` merged over `proxyDefaults`)."""
        return self._tenant_bounds.get(tenant, self._defaults)

    def bounds_for(self, entry: TenantEntry | None) -> Mapping[str, Bound]:
        """The sidecar bounds of a tenant of either source: its `proxy` over `proxyDefaults`.

        A Tenant object's bounds are merged here, against the config in force, and kept per
        distinct override (few tenants differ, and a pod CREATE should not parse quantities).
        """
        if entry is None or not entry.proxy:
            return self._defaults
        if entry.source == CONFIG_SOURCE:
            return self._tenant_bounds.get(entry.name, self._defaults)
        key = tuple(sorted(entry.proxy.items()))
        cached = self._object_bounds.get(key)
        if cached is None:
            merged = {**self.proxy_defaults.by_config_key(), **entry.proxy}
            cached = {name: Bound(text) for name, text in merged.items()}
            if len(self._object_bounds) >= 4096:
                self._object_bounds.clear()
            self._object_bounds[key] = cached
        return cached

    def claimed_hosts(self, tenant: str) -> list[str]:
        spec = self.tenants.get(tenant)
        return list(spec.hosts) if spec else []

    def check_bounds(self, proxy: ProxyBounds, where: str) -> None:
        """ValueError when a request is larger than its limit (after merging)."""
        _bounds_of(proxy, where)

    def wildcard_claim_count(self) -> int:
        return sum(1 for spec in self.tenants.values() for h in spec.hosts if is_wildcard(h))


def _config_entry(tenant: str, spec: TenantConfig) -> TenantEntry:
    """A config tenant as the index holds it. It shares the spec's hosts unless two claims
    normalised to one (`A.com`, `a.com`), and the one empty proxy mapping unless the tenant
    has its own: at 10,000 tenants, copies of both would hold 1.8 MB."""
    hosts = spec.hosts
    if len(set(hosts)) != len(hosts):
        hosts = tuple(dict.fromkeys(hosts))
    proxy = spec.proxy.by_config_key()
    return TenantEntry(tenant, hosts, proxy=proxy) if proxy else TenantEntry(tenant, hosts)


def _bounds_of(proxy: ProxyBounds, where: str) -> dict[str, Bound]:
    bounds = {key: Bound(text) for key, text in proxy.by_config_key().items()}
    for request, limit in (("cpu", "cpuLimit"), ("memory", "memoryLimit")):
        if request in bounds and limit in bounds and bounds[request].value > bounds[limit].value:
            raise ValueError(
                f"{where}: proxy {request} {bounds[request].text!r} is larger than "
                f"{limit} {bounds[limit].text!r}; Kubernetes rejects a request above its limit"
            )
    return bounds


def parse_config(data: Any, source: str = "config") -> Config:
    """Validate already-parsed YAML/JSON data into a Config, or raise ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def load_config(path: Path) -> Config:
    """Read and validate a config file, or raise ConfigError naming what is wrong."""
    try:
        flat = _yaml_as_json(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(json.loads(flat), str(path))


def _yaml_as_json(path: Path) -> str:
    """The file's data as JSON text.

    PyYAML builds a node (and two position marks) per scalar before any data: for a
    10,000-tenant file that is ~90 MB of short-lived objects. Returning only a string lets
    all of it be freed before the long-lived config is built, so the memory goes back to the
    OS instead of staying fragmented under the config (RSS 145 MB -> 105 MB at 10,000 tenants).
    """
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YamlLoader)
    return json.dumps(data, default=str)  # YAML-only types (dates) fail validation anyway


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: {exc.error_count()} problem(s):"]
    lines += [f"  {line}" for line in describe_errors(exc)]
    return "\n".join(lines)


def describe_errors(exc: ValidationError, prefix: str = "") -> list[str]:
    """One line per problem, `field: message (value: ...)`, fields under `prefix`."""
    lines = []
    for error in exc.errors(include_url=False):
        where = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}"
            for part in (prefix, *error["loc"])
            if part != ""
        ).lstrip(".")
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        value = error.get("input")
        shown = "" if isinstance(value, dict | list) or value is None else f" (value: {value!r})"
        lines.append(f"{where}: {message}{shown}" if where else f"{message}{shown}")
    return lines
