"""Istio Gateway (SPEC.md §8): server hosts `[namespace/]host` and the selector."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    GW_CREATE,
    ISTIO_GATEWAY,
    default_config,
    derive,
    make_config,
    make_view,
    message_of,
    request_of,
    retarget,
    validate,
)
from webhook.policies import istiogateway

OWN_SELECTOR = {"istio": "tenant-a-gateway"}

# (entry in spec.servers[0].hosts, expected [(rule, owner)]) for a Gateway in tenant-a. Tenants
# as in tests/builders.py: tenant-a claims a.example.com, *.a.example.com, shop.example.com;
# tenant-b claims shop.example.org, *.b.example.com.
SERVER_HOST_ROWS = [
    pytest.param("a.example.com", [], id="no-namespace-part"),
    pytest.param("./a.example.com", [], id="dot"),
    pytest.param("tenant-a/www.a.example.com", [], id="own-namespace"),
    pytest.param("tenant-a-dev/a.example.com", [], id="same-tenant-namespace"),
    pytest.param("./WWW.A.Example.COM.", [], id="upper-case-trailing-dot"),
    pytest.param("./*.a.example.com", [], id="own-wildcard-claim"),
    pytest.param("./*.tenant-a.svc.cluster.local", [], id="own-namespace-services"),
    pytest.param("*/a.example.com", [("gateway-host-namespace", "nobody")], id="star-namespace"),
    pytest.param(
        "tenant-b/a.example.com", [("gateway-host-namespace", "tenant-b")], id="other-tenant-ns"
    ),
    pytest.param(
        "istio-system/a.example.com", [("gateway-host-namespace", "platform")], id="platform-ns"
    ),
    pytest.param(
        "no-such-ns/a.example.com", [("gateway-host-namespace", "platform")], id="unknown-ns"
    ),
    pytest.param("./shop.example.org", [("host-ownership", "tenant-b")], id="other-claim"),
    pytest.param("./SHOP.Example.ORG.", [("host-ownership", "tenant-b")], id="other-claim-case"),
    pytest.param("./x.b.example.com", [("host-ownership", "tenant-b")], id="under-other-wildcard"),
    pytest.param("./*.b.example.com", [("host-ownership", "tenant-b")], id="other-wildcard"),
    pytest.param(
        "./*.example.com", [("host-ownership", "tenant-b")], id="wildcard-over-other-claims"
    ),
    pytest.param("./*", [("host-ownership", "nobody")], id="star-host"),
    pytest.param(
        "*/*",
        [("gateway-host-namespace", "nobody"), ("host-ownership", "nobody")],
        id="star-star",
    ),
    pytest.param("./reviews", [("host-ownership", "platform")], id="single-label"),
    pytest.param(
        "./reviews.tenant-b.svc.cluster.local",
        [("host-ownership", "tenant-b")],
        id="other-tenants-service",
    ),
    pytest.param("./api.example.net", [("host-unclaimed", "unclaimed")], id="unclaimed"),
    pytest.param("./bad_host.example.com", [("host-invalid", None)], id="invalid-host"),
    pytest.param("tenant-a/", [("host-invalid", None)], id="empty-host"),
]


@pytest.mark.parametrize(("entry", "expected"), SERVER_HOST_ROWS)
def test_server_host(entry: str, expected: list[tuple[str, str | None]]) -> None:
    field = "spec.servers[0].hosts[0]"
    violations = istiogateway.check_server_host(
        entry, field, "tenant-a", "tenant-a", make_view(), default_config()
    )
    assert [(v.rule, v.owner) for v in violations] == expected
    assert all(v.field == field for v in violations)

    spec = {"selector": OWN_SELECTOR, "servers": [_server([entry])]}
    decision = validate(request_of(derive(GW_CREATE, spec=spec)))
    assert decision.allowed is (not expected)
    if expected:
        assert f"Gateway tenant-a/public-gateway: {field}" in message_of(decision)


def test_unclaimed_hosts_allow_applies_at_the_edge_too() -> None:
    config = make_config(unclaimedHosts="allow")
    violations = istiogateway.check_server_host(
        "./api.example.net", "f", "tenant-a", "tenant-a", make_view(), config
    )
    assert violations == []


def test_edge_fix_names_the_tenants_claims() -> None:
    (violation,) = istiogateway.check_server_host(
        "./shop.example.org", "f", "tenant-a", "tenant-a", make_view(), default_config()
    )
    assert violation.fix == (
        'publish only host names claimed by tenant "tenant-a": '
        "a.example.com, *.a.example.com, shop.example.com"
    )


# The shared workload in tests/builders.py: {istio: ingressgateway, app: istio-ingressgateway}.
SELECTOR_ROWS = [
    pytest.param({"istio": "tenant-a-gateway"}, None, id="own-gateway-pods"),
    pytest.param(
        {"istio": "ingressgateway", "app": "istio-ingressgateway", "tenant": "tenant-a"},
        None,
        id="superset-matches-no-shared-pod",
    ),
    pytest.param({"istio": "ingressgateway", "app": "other"}, None, id="one-value-differs"),
    pytest.param({"istio": "IngressGateway"}, None, id="label-values-are-case-sensitive"),
    pytest.param({"istio": "ingressgateway"}, "matches the platform's", id="subset"),
    pytest.param({"app": "istio-ingressgateway"}, "matches the platform's", id="other-subset"),
    pytest.param(
        {"app": "istio-ingressgateway", "istio": "ingressgateway"},
        "matches the platform's",
        id="exactly-the-shared-labels",
    ),
    pytest.param({}, "matches every gateway pod", id="empty"),
    pytest.param(None, "matches every gateway pod", id="absent"),
]


@pytest.mark.parametrize(("selector", "problem"), SELECTOR_ROWS)
def test_selector(selector: dict[str, str] | None, problem: str | None) -> None:
    violations = istiogateway.check_selector(
        selector or {}, selector is None, "tenant-a", default_config()
    )
    assert [v.problem.startswith(problem) for v in violations] == ([True] if problem else [])
    assert all((v.rule, v.field) == ("gateway-selector", "spec.selector") for v in violations)

    spec: dict[str, Any] = {"servers": [_server(["./a.example.com"])]}
    if selector is not None:
        spec["selector"] = selector
    decision = validate(request_of(derive(GW_CREATE, spec=spec)))
    assert decision.allowed is (problem is None)


def test_selector_with_no_shared_workloads_configured_still_needs_labels() -> None:
    config = make_config(sharedGatewayWorkloads=[])
    assert istiogateway.check_selector({"istio": "ingressgateway"}, False, "tenant-a", config) == []
    assert len(istiogateway.check_selector({}, False, "tenant-a", config)) == 1


def test_captured_gateway_is_denied_with_every_violation() -> None:
    # As captured: it selects the shared ingress pods, and *.tenant-a.example.com is unclaimed.
    decision = validate(request_of(derive(GW_CREATE)))
    assert not decision.allowed
    assert [(v.field, v.rule) for v in decision.violations] == [
        ("spec.selector", "gateway-selector"),
        ("spec.servers[0].hosts[0]", "host-unclaimed"),
    ]
    assert message_of(decision).startswith("2 tenant-guard violations:\n(1) Gateway tenant-a/")


def test_every_server_and_host_is_reported() -> None:
    spec = {
        "selector": OWN_SELECTOR,
        "servers": [
            _server(["./a.example.com", "tenant-b/shop.example.org"]),
            _server(["*/*.b.example.com"], port=443),
        ],
    }
    decision = validate(request_of(derive(GW_CREATE, spec=spec)))
    assert [(v.field, v.rule) for v in decision.violations] == [
        ("spec.servers[0].hosts[1]", "gateway-host-namespace"),
        ("spec.servers[0].hosts[1]", "host-ownership"),
        ("spec.servers[1].hosts[0]", "gateway-host-namespace"),
        ("spec.servers[1].hosts[0]", "host-ownership"),
    ]


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_every_served_version_is_judged_alike(version: str) -> None:
    review = retarget(derive(GW_CREATE), *ISTIO_GATEWAY, version)
    decision = validate(request_of(review))
    assert [v.rule for v in decision.violations] == ["gateway-selector", "host-unclaimed"]


def test_platform_namespace_gateway_is_not_judged() -> None:
    decision = validate(request_of(derive(GW_CREATE, namespace="istio-system")))
    assert decision.allowed and decision.reason == "platform namespace"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param(
            {"selector": OWN_SELECTOR, "servers": {"hosts": []}}, "spec.servers", id="servers-map"
        ),
        pytest.param(
            {"selector": OWN_SELECTOR, "servers": ["x"]}, "spec.servers[0]", id="server-str"
        ),
        pytest.param(
            {"selector": OWN_SELECTOR, "servers": [{"hosts": "a.example.com"}]},
            "spec.servers[0].hosts",
            id="hosts-string",
        ),
        pytest.param(
            {"selector": OWN_SELECTOR, "servers": [{"hosts": [7]}]},
            "spec.servers[0].hosts[0]",
            id="host-number",
        ),
        pytest.param({"selector": ["istio"], "servers": []}, "spec.selector", id="selector-list"),
        pytest.param({"selector": {"istio": 1}, "servers": []}, "spec.selector", id="label-number"),
        pytest.param("spec", "spec", id="spec-string"),
    ],
)
def test_wrong_shapes_are_refused_not_admitted(spec: Any, field: str) -> None:
    decision = validate(request_of(derive(GW_CREATE, spec=spec)))
    assert not decision.allowed
    assert decision.response["response"]["status"]["code"] == 400
    assert field in message_of(decision)


def _server(hosts: list[str], port: int = 80) -> dict[str, Any]:
    return {"hosts": hosts, "port": {"name": f"p{port}", "number": port, "protocol": "HTTP"}}
