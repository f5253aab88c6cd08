"""The config file (SPEC.md §2): what loads, and errors that name the key and the value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.builders import ABSENT, EXAMPLE_CONFIG, config_data
from webhook.config.model import (
    Config,
    ConfigError,
    Enforcement,
    UnclaimedHosts,
    load_config,
    parse_config,
)

# --- what loads ------------------------------------------------------------------------------


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE_CONFIG)
    assert config.tenant_label == "tenant"
    assert config.enforcement is Enforcement.ENFORCE
    assert config.unclaimed_hosts is UnclaimedHosts.DENY
    assert config.shared_gateways == ["istio-system/public-gateway"]
    assert config.claims.owner("shop.example.com") == "tenant-a"
    assert config.claims.owner("x.b.example.com") == "tenant-b"
    assert config.namespaces is not None
    assert config.namespaces["tenant-a-dev"] == {"tenant": "tenant-a"}
    # tenant-a overrides cpuLimit only; the rest comes from proxyDefaults.
    assert {k: b.text for k, b in config.proxy_bounds("tenant-a").items()} == {
        "cpu": "100m",
        "cpuLimit": "1",
        "memory": "128Mi",
        "memoryLimit": "256Mi",
    }


def test_empty_config_has_the_documented_defaults() -> None:
    config = parse_config({})
    assert config.tenant_label == "tenant"
    assert config.domain == "cluster.local"
    assert config.enforcement is Enforcement.ENFORCE
    assert config.unclaimed_hosts is UnclaimedHosts.DENY
    assert config.label_admins.groups == ["system:masters"]


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        pytest.param(
            {"tenantLabel": "example.com/tenant"},
            lambda c: c.tenant_label == "example.com/tenant",
            id="label-key-with-prefix",
        ),
        pytest.param(
            {"tenantLabel": "tenant-guard.io/tenant"},
            lambda c: c.tenant_label == "tenant-guard.io/tenant",
            id="label-key-with-dotted-prefix",
        ),
        pytest.param(
            {"namespaces": {"tenant-a": {"example.com/tenant": "tenant-a"}}},
            lambda c: c.namespaces == {"tenant-a": {"example.com/tenant": "tenant-a"}},
            id="namespace-label-key-with-prefix",
        ),
        pytest.param(
            {"clusterDomain": "Corp.Internal."},
            lambda c: c.domain == "corp.internal",
            id="custom-cluster-domain-normalised",
        ),
        pytest.param(
            {"tenants": {"tenant-a": {"hosts": ["Shop.Example.COM."]}}},
            lambda c: c.claimed_hosts("tenant-a") == ["shop.example.com"],
            id="claims-are-normalised",
        ),
        pytest.param(
            {
                "tenants": {
                    "tenant-a": {"hosts": ["*.example.com"]},
                    "tenant-b": {"hosts": ["shop.example.com", "*.b.example.com"]},
                }
            },
            lambda c: (
                c.claims.owner("shop.example.com") == "tenant-b"
                and c.claims.owner("x.example.com") == "tenant-a"
            ),
            id="nested-claims-resolve-most-specific",
        ),
        pytest.param(
            {"tenants": {"tenant-a": {"hosts": ["a.example.com", "A.example.com."]}}},
            lambda c: c.claims.owner("a.example.com") == "tenant-a",
            id="same-tenant-claims-a-host-twice",
        ),
        pytest.param(
            {"tenants": {"tenant-a": {"proxy": {"cpu": "500m"}}}},
            lambda c: c.proxy_bounds("tenant-a")["cpu"].text == "500m",
            id="cpu-equal-to-cpuLimit",
        ),
        pytest.param(
            {"proxyDefaults": {"memory": "1G", "memoryLimit": "1Gi"}},
            lambda c: c.proxy_bounds("tenant-x")["memory"].text == "1G",
            id="1G-below-1Gi",
        ),
        pytest.param(
            {"enforcement": "warn", "unclaimedHosts": "allow"},
            lambda c: (
                c.enforcement is Enforcement.WARN and c.unclaimed_hosts is UnclaimedHosts.ALLOW
            ),
            id="warn-and-allow",
        ),
    ],
)
def test_valid_configs_load(changes: dict[str, Any], check: Any) -> None:
    config = parse_config(config_data(**changes))
    assert isinstance(config, Config)
    assert check(config)


def test_unquoted_numeric_quantities_load(tmp_path: Path) -> None:
    # Kubernetes accepts `cpu: 1` and `cpu: 0.5` unquoted in YAML manifests; a platform engineer
    # writes the config the same way, and 1 is not a "bad quantity".
    path = tmp_path / "config.yaml"
    path.write_text(
        "proxyDefaults: {cpu: 0.5, cpuLimit: 1}\ntenants:\n  tenant-a:\n    proxy: {cpuLimit: 2}\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.proxy_bounds("tenant-a")["cpuLimit"].value == 2


# --- what is rejected, and how it is named ---------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"tenantLables": "tenant"}, ["tenantLables", "unknown key"], id="top-level"),
        pytest.param(
            {"tenants": {"tenant-a": {"hosts": [], "prox": {"cpu": "1"}}}},
            ["tenants.tenant-a.prox", "unknown key"],
            id="in-a-tenant",
        ),
        pytest.param(
            {"proxyDefaults": {"cpu": "100m", "cpuRequest": "50m"}},
            ["proxyDefaults.cpuRequest", "unknown key", "50m"],
            id="in-proxyDefaults",
        ),
        pytest.param(
            {"labelAdmins": {"group": ["platform"]}},
            ["labelAdmins.group", "unknown key"],
            id="in-labelAdmins",
        ),
        pytest.param(
            {"exempt": {"users": [], "serviceAccounts": ["x"]}},
            ["exempt.serviceAccounts", "unknown key"],
            id="in-exempt",
        ),
    ],
)
def test_unknown_keys_are_rejected(changes: dict[str, Any], expected: list[str]) -> None:
    _assert_rejected(config_data(**changes), expected)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"proxyDefaults": {"cpu": "lots"}}, ["proxyDefaults.cpu", "lots"], id="not-a-number"
        ),
        pytest.param(
            {"proxyDefaults": {"memory": "128MB"}},
            ["proxyDefaults.memory", "128MB"],
            id="unknown-suffix",
        ),
        pytest.param(
            {"proxyDefaults": {"cpuLimit": "-1"}}, ["proxyDefaults.cpuLimit", "-1"], id="negative"
        ),
        pytest.param(
            {"proxyDefaults": {"cpuLimit": " 1"}}, ["proxyDefaults.cpuLimit", "' 1'"], id="space"
        ),
        pytest.param(
            {"proxyDefaults": {"memoryLimit": "Infinity"}},
            ["proxyDefaults.memoryLimit", "Infinity"],
            id="infinity",
        ),
        pytest.param(
            {"tenants": {"tenant-a": {"proxy": {"memoryLimit": "1.5.5Gi"}}}},
            ["tenants.tenant-a.proxy.memoryLimit", "1.5.5Gi"],
            id="in-a-tenant",
        ),
    ],
)
def test_bad_quantities_are_rejected(changes: dict[str, Any], expected: list[str]) -> None:
    _assert_rejected(config_data(**changes), expected)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"enforcement": "audit"}, ["enforcement", "audit"], id="enforcement"),
        pytest.param({"enforcement": "Enforce"}, ["enforcement", "Enforce"], id="enforcement-case"),
        pytest.param({"unclaimedHosts": "maybe"}, ["unclaimedHosts", "maybe"], id="unclaimedHosts"),
        pytest.param({"unclaimedHosts": True}, ["unclaimedHosts", "True"], id="unclaimed-bool"),
        pytest.param(
            {"clusterDomain": "cluster_local"}, ["clusterDomain", "cluster_local"], id="domain"
        ),
        pytest.param(
            {"namespaces": {"Tenant_A": {"tenant": "tenant-a"}}},
            ["namespaces", "Tenant_A"],
            id="namespace-name",
        ),
    ],
)
def test_bad_enumerations_and_names_are_rejected(
    changes: dict[str, Any], expected: list[str]
) -> None:
    _assert_rejected(config_data(**changes), expected)


def _hosts(*hosts: str) -> dict[str, Any]:
    return {"tenants": {"tenant-a": {"hosts": list(hosts)}}}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            _hosts("a..example.com"),
            ["tenants.tenant-a.hosts[0]", "a..example.com"],
            id="empty-label",
        ),
        pytest.param(
            _hosts("ok.example.com", "*x.example.com"),
            ["tenants.tenant-a.hosts[1]", "*x.example.com"],
            id="partial-star",
        ),
        pytest.param(
            _hosts("a.*.example.com"),
            ["tenants.tenant-a.hosts[0]", "a.*.example.com"],
            id="inner-star",
        ),
        pytest.param(
            _hosts("-a.example.com"),
            ["tenants.tenant-a.hosts[0]", "-a.example.com"],
            id="leading-hyphen",
        ),
        pytest.param(
            _hosts("a_b.example.com"),
            ["tenants.tenant-a.hosts[0]", "a_b.example.com"],
            id="underscore",
        ),
        pytest.param(_hosts(""), ["tenants.tenant-a.hosts[0]", "''"], id="empty"),
        pytest.param(
            _hosts("shop example.com"),
            ["tenants.tenant-a.hosts[0]", "shop example.com"],
            id="space",
        ),
        pytest.param(
            _hosts("sh\u00f6p.example.com"),
            ["tenants.tenant-a.hosts[0]", "sh\u00f6p.example.com", "non-ASCII"],
            id="non-ascii",
        ),
        pytest.param(
            _hosts("shop.ex\u0430mple.com"),
            ["tenants.tenant-a.hosts[0]", "non-ASCII"],
            id="cyrillic-look-alike",
        ),
        pytest.param(_hosts("*"), ["tenants.tenant-a.hosts[0]", "'*'"], id="star"),
        pytest.param(_hosts("*."), ["tenants.tenant-a.hosts[0]", "'*.'"], id="star-with-dot"),
        pytest.param(
            {"tenants": {"tenant-a": {"hosts": "a.example.com"}}},
            ["tenants.tenant-a.hosts", "a.example.com"],
            id="not-a-list",
        ),
    ],
)
def test_malformed_claims_are_rejected(changes: dict[str, Any], expected: list[str]) -> None:
    _assert_rejected(config_data(**changes), expected)


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        pytest.param("reviews.tenant-b.svc.cluster.local", "cluster.local", id="service-fqdn"),
        pytest.param("Reviews.Tenant-B.svc.Cluster.Local.", "cluster.local", id="fqdn-variant"),
        pytest.param("*.tenant-b.svc.cluster.local", "cluster.local", id="namespace-wildcard"),
        pytest.param("*.svc.cluster.local", "cluster.local", id="star.svc"),
        pytest.param("*.cluster.local", "cluster.local", id="star.domain"),
        pytest.param("foo.cluster.local", "cluster.local", id="name-in-domain"),
        pytest.param("reviews.tenant-b.svc", "cluster.local", id="svc.ns.svc"),
        pytest.param("foo.svc", "cluster.local", id="x.svc"),
        pytest.param("reviews.tenant-b.svc.corp.internal", "corp.internal", id="custom-domain"),
        pytest.param("*.corp.internal", "corp.internal", id="custom-domain-wildcard"),
    ],
)
def test_claims_inside_the_cluster_domain_are_rejected(host: str, domain: str) -> None:
    data = config_data(clusterDomain=domain, tenants={"tenant-a": {"hosts": [host]}})
    message = _assert_rejected(data, ["tenants.tenant-a.hosts[0]"])
    assert host.lower().rstrip(".") in message


@pytest.mark.parametrize(
    ("first", "second", "shown"),
    [
        pytest.param("shop.example.com", "shop.example.com", "shop.example.com", id="same"),
        pytest.param("shop.example.com", "SHOP.Example.com", "shop.example.com", id="case"),
        pytest.param(
            "shop.example.com", "shop.example.com.", "shop.example.com", id="trailing-dot"
        ),
        pytest.param("*.example.com", "*.EXAMPLE.com.", "*.example.com", id="wildcard-variant"),
    ],
)
def test_one_host_claimed_by_two_tenants_is_rejected(first: str, second: str, shown: str) -> None:
    data = config_data(
        tenants={"tenant-a": {"hosts": [first]}, "tenant-b": {"hosts": ["x.org", second]}}
    )
    _assert_rejected(data, ["tenants", shown, "tenant-a", "tenant-b"])


def test_a_tenant_claiming_one_host_twice_holds_one_claim() -> None:
    config = parse_config(
        config_data(tenants={"tenant-a": {"hosts": ["Shop.example.com", "shop.example.com."]}})
    )
    entry = config.claims.entry("tenant-a")
    assert entry is not None
    assert entry.hosts == ("shop.example.com",)
    assert config.claims.owner("shop.example.com") == "tenant-a"


def test_index_entries_share_the_specs_hosts_and_one_empty_proxy() -> None:
    # At 10,000 tenants a copy of each per tenant would hold 1.8 MB (benchmarks/README.md).
    config = parse_config(
        config_data(
            tenants={
                "tenant-a": {"hosts": ["a.example.com", "b.example.com"]},
                "tenant-b": {"hosts": ["c.example.com"]},
                "tenant-c": {"hosts": ["d.example.com"], "proxy": {"cpuLimit": "1"}},
            }
        )
    )
    a, b, c = (config.claims.entry(t) for t in ("tenant-a", "tenant-b", "tenant-c"))
    assert a is not None and b is not None and c is not None
    assert a.hosts is config.tenants["tenant-a"].hosts
    assert a.proxy == {} and a.proxy is b.proxy
    assert dict(c.proxy) == {"cpuLimit": "1"}
    assert {k: v.text for k, v in config.bounds_for(c).items()}["cpuLimit"] == "1"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"proxyDefaults": {"cpu": "1", "cpuLimit": "500m"}},
            ["proxyDefaults", "cpu", "'1'", "cpuLimit", "'500m'"],
            id="defaults-cpu",
        ),
        pytest.param(
            {"proxyDefaults": {"memory": "512Mi", "memoryLimit": "256Mi"}},
            ["proxyDefaults", "memory", "'512Mi'", "memoryLimit", "'256Mi'"],
            id="defaults-memory",
        ),
        pytest.param(
            {"tenants": {"tenant-a": {"proxy": {"cpu": "600m"}}}},
            ["tenants.tenant-a", "cpu", "'600m'", "cpuLimit", "'500m'"],
            id="tenant-cpu-over-default-limit",
        ),
        pytest.param(
            {"tenants": {"tenant-a": {"proxy": {"cpuLimit": "50m"}}}},
            ["tenants.tenant-a", "cpu", "'100m'", "cpuLimit", "'50m'"],
            id="tenant-limit-under-default-cpu",
        ),
        pytest.param(
            {"tenants": {"tenant-a": {"proxy": {"memoryLimit": "100M"}}}},
            ["tenants.tenant-a", "memory", "'128Mi'", "memoryLimit", "'100M'"],
            id="tenant-memory-limit-under-default",
        ),
    ],
)
def test_request_above_limit_after_merge_is_rejected(
    changes: dict[str, Any], expected: list[str]
) -> None:
    _assert_rejected(config_data(**changes), expected)


@pytest.mark.parametrize(
    "label",
    [
        pytest.param("bad label", id="space"),
        pytest.param("", id="empty"),
        pytest.param("-tenant", id="leading-hyphen"),
        pytest.param("t" * 64, id="64-char-name"),
        pytest.param("Example.com/tenant", id="upper-case-prefix"),
        pytest.param("example.com/", id="empty-name"),
        pytest.param("a/b/c", id="two-slashes"),
        pytest.param("exa_mple.com/tenant", id="underscore-in-prefix"),
    ],
)
def test_bad_tenant_label_is_rejected(label: str) -> None:
    _assert_rejected(config_data(tenantLabel=label), ["tenantLabel", repr(label)])


@pytest.mark.parametrize(
    "gateway",
    [
        pytest.param("public-gateway", id="no-slash"),
        pytest.param("/public-gateway", id="empty-namespace"),
        pytest.param("istio-system/", id="empty-name"),
        pytest.param("Istio_System/public-gateway", id="bad-namespace"),
    ],
)
def test_bad_shared_gateway_is_rejected(gateway: str) -> None:
    data = config_data(sharedGateways=["istio-system/public-gateway", gateway])
    _assert_rejected(data, ["sharedGateways[1]", repr(gateway)])


def test_every_problem_is_reported_at_once() -> None:
    data = config_data(enforcement="audit", unclaimedHosts="maybe", sharedGateways=["gw"])
    _assert_rejected(data, ["3 problem(s)", "enforcement", "unclaimedHosts", "sharedGateways[0]"])


def test_missing_optional_sections_are_fine() -> None:
    parse_config(config_data(namespaces=ABSENT, exempt=ABSENT, proxyDefaults=ABSENT))


# --- load_config -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("tenants: [a, b\n", ["not valid YAML"], id="yaml-syntax-error"),
        pytest.param("tenantLabel: tenant\n  bad: indent\n", ["not valid YAML"], id="bad-indent"),
        pytest.param(
            "- tenantLabel\n- tenant\n", ["top level must be a mapping", "list"], id="list"
        ),
        pytest.param("just a string\n", ["top level must be a mapping", "str"], id="scalar"),
        pytest.param("enforcement: audit\n", ["enforcement", "audit"], id="bad-value"),
        pytest.param(
            "sharedNamespaces: [a]\nenforcement: enforce\nsharedNamespaces: [b]\n",
            ["'sharedNamespaces' appears twice", "line 3"],
            id="top-level-key-twice",
        ),
        pytest.param(
            "tenants:\n  a: {hosts: [a.example.com]}\n  a: {hosts: [b.example.com]}\n",
            ["'a' appears twice", "line 3"],
            id="tenant-twice",
        ),
    ],
)
def test_load_config_errors_name_the_file(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_load_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path)


def test_load_config_empty_file_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# nothing\n", encoding="utf-8")
    assert load_config(path).tenant_label == "tenant"


def _assert_rejected(data: Any, expected: list[str]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    message = str(info.value)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    return message


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Tenant A", id="space"),
        pytest.param("-leading-dash", id="leading-dash"),
        pytest.param("x" * 64, id="longer-than-a-label-value"),
        pytest.param("team/a", id="slash"),
    ],
)
def test_tenant_name_must_be_a_label_value(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"tenants": {name: {}}})
    assert "is not a valid label value" in str(info.value)
    assert repr(name) in str(info.value)


def test_quantity_true_is_not_a_number() -> None:
    with pytest.raises(ConfigError, match=r"proxyDefaults\.cpu"):
        parse_config({"proxyDefaults": {"cpu": True}})


# --- the edge (SPEC.md §8) ------------------------------------------------------------------


def test_edge_keys_load_and_default_to_empty() -> None:
    config = load_config(EXAMPLE_CONFIG)
    assert config.shared_gateway_workloads == [
        {"istio": "ingressgateway", "app": "istio-ingressgateway"}
    ]
    assert config.shared_parent_refs == ["infra/shared-gateway"]
    assert config.shared_namespaces == ["istio-system"]
    empty = parse_config({})
    assert (empty.shared_gateway_workloads, empty.shared_parent_refs, empty.shared_namespaces) == (
        [],
        [],
        [],
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"sharedGatewayWorkloads": [{}]},
            ["sharedGatewayWorkloads[0]", "empty label map"],
            id="workload-without-labels",
        ),
        pytest.param(
            {"sharedGatewayWorkloads": [{"istio": "ingress gateway"}]},
            ["sharedGatewayWorkloads[0].istio", "'ingress gateway'"],
            id="workload-label-value",
        ),
        pytest.param(
            {"sharedGatewayWorkloads": [{"app/x/y": "gw"}]},
            ["sharedGatewayWorkloads[0]", "'app/x/y'"],
            id="workload-label-key",
        ),
        pytest.param(
            {"sharedGatewayWorkloads": {"istio": "ingressgateway"}},
            ["sharedGatewayWorkloads", "list"],
            id="workloads-not-a-list",
        ),
        pytest.param(
            {"sharedParentRefs": ["shared-gateway"]},
            ["sharedParentRefs[0]", "'shared-gateway'", "namespace/name"],
            id="parent-without-namespace",
        ),
        pytest.param(
            {"sharedParentRefs": ["Infra/shared-gateway"]},
            ["sharedParentRefs[0]", "'Infra/shared-gateway'"],
            id="parent-namespace-case",
        ),
        pytest.param(
            {"sharedNamespaces": ["Istio_System"]},
            ["sharedNamespaces[0]", "'Istio_System'"],
            id="namespace-name",
        ),
        pytest.param(
            {"sharedNamespaces": "istio-system"},
            ["sharedNamespaces", "list"],
            id="namespaces-not-a-list",
        ),
    ],
)
def test_bad_edge_values_are_rejected(changes: dict[str, Any], expected: list[str]) -> None:
    _assert_rejected(config_data(**changes), expected)
