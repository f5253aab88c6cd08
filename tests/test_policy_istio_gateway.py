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
from webhook.tenancy.gatewaypods import GatewayPods

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
        selector or {}, selector is None, "tenant-a", make_view(), default_config()
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
    view = make_view()
    assert (
        istiogateway.check_selector({"istio": "ingressgateway"}, False, "tenant-a", view, config)
        == []
    )
    assert len(istiogateway.check_selector({}, False, "tenant-a", view, config)) == 1


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


# --- the live gateway pods (cluster mode) ---------------------------------------------------

# "namespace/name" -> labels of the cluster's gateway pods: tenant-b's dedicated ingress, a
# pod Istio deployed for a Gateway API Gateway of tenant-c, tenant-a's own (in both of its
# namespaces), the platform's shared ingress and a platform gateway that the config does not
# list, and one in a namespace the cluster does not know (yet).
LIVE_PODS: dict[str, dict[str, str]] = {
    "tenant-b/ingress-7d9f-x2x4p": {"istio": "tenant-b-ingress", "app": "ingress"},
    "tenant-b/ingress-7d9f-k8d2q": {"istio": "tenant-b-ingress", "app": "ingress"},
    "tenant-c/web-istio-5c6d-abcde": {
        "gateway.networking.k8s.io/gateway-name": "web",
        "service.istio.io/canonical-name": "web-istio",
    },
    "tenant-a/gw-1": {"istio": "tenant-a-gateway", "team": "a"},
    "tenant-a-dev/gw-2": {"istio": "tenant-a-gateway", "team": "a-dev"},
    "istio-system/istio-ingressgateway-1": {
        "istio": "ingressgateway",
        "app": "istio-ingressgateway",
    },
    "istio-system/internal-gw-1": {"istio": "internal", "app": "internal"},
    "ghost/gw-1": {"istio": "ghost"},
}

# (selector, expected [(owner, namespace named in the problem)]) for a Gateway in tenant-a.
LIVE_ROWS = [
    pytest.param({"istio": "tenant-a-gateway"}, [], id="own-pods-in-both-namespaces"),
    pytest.param({"istio": "tenant-a-gateway", "team": "a-dev"}, [], id="own-other-namespace"),
    pytest.param({"istio": "nobody"}, [], id="matches-no-pod"),
    pytest.param(
        {"istio": "tenant-b-ingress"}, [("tenant-b", "tenant-b")], id="other-tenants-dedicated"
    ),
    pytest.param(
        {"istio": "tenant-b-ingress", "app": "ingress"},
        [("tenant-b", "tenant-b")],
        id="other-tenants-all-labels",
    ),
    pytest.param(
        {"istio": "tenant-b-ingress", "app": "ingress", "extra": "x"},
        [],
        id="superset-matches-none",
    ),
    pytest.param({"istio": "Tenant-B-Ingress"}, [], id="values-case-sensitive"),
    pytest.param(
        {"gateway.networking.k8s.io/gateway-name": "web"},
        [("tenant-c", "tenant-c")],
        id="gateway-api-pods-label-key-with-slash",
    ),
    pytest.param(
        {"istio": "internal"}, [("platform", "istio-system")], id="platform-pods-not-in-config"
    ),
    pytest.param({"istio": "ghost"}, [("platform", "ghost")], id="unknown-namespace-is-platform"),
    pytest.param({"team": "a"}, [], id="own-by-another-label"),
]


@pytest.mark.parametrize(("selector", "expected"), LIVE_ROWS)
def test_selector_against_the_live_gateway_pods(
    selector: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    view = make_view(gateway_pods=LIVE_PODS)
    violations = istiogateway.check_selector(selector, False, "tenant-a", view, default_config())
    assert [(v.owner, v.problem.split('"')[1]) for v in violations] == expected
    assert all((v.rule, v.field) == ("gateway-selector", "spec.selector") for v in violations)

    spec = {"selector": selector, "servers": [_server(["./a.example.com"])]}
    decision = validate(request_of(derive(GW_CREATE, spec=spec)), view)
    assert decision.allowed is (not expected)


def test_the_message_names_the_namespace_its_tenant_and_the_pods() -> None:
    view = make_view(gateway_pods=LIVE_PODS)
    spec = {"selector": {"istio": "tenant-b-ingress"}, "servers": [_server(["./a.example.com"])]}
    decision = validate(request_of(derive(GW_CREATE, spec=spec)), view)
    assert message_of(decision) == (
        'Gateway tenant-a/public-gateway: spec.selector {"istio": "tenant-b-ingress"} matches '
        'gateway pods in namespace "tenant-b" of tenant "tenant-b" (pods ingress-7d9f-k8d2q, '
        'ingress-7d9f-x2x4p). Fix: select only tenant "tenant-a"\'s own gateway pods, by a label '
        "they alone carry (Istio applies a Gateway to the gateway pods its selector matches in "
        "every namespace)"
    )


def test_a_selector_on_the_shared_pods_is_reported_once_and_other_tenants_besides() -> None:
    pods = {**LIVE_PODS, "tenant-b/ingress-b": {"app": "istio-ingressgateway", "istio": "b"}}
    view = make_view(gateway_pods=pods)
    violations = istiogateway.check_selector(
        {"app": "istio-ingressgateway"}, False, "tenant-a", view, default_config()
    )
    # The shared pods in istio-system are the config's violation; tenant-b's pod comes on top.
    assert [(v.owner, v.problem[:40]) for v in violations] == [
        ("platform", "matches the platform's shared gateway po"),
        ("tenant-b", 'matches gateway pods in namespace "tenan'),
    ]


def test_an_empty_selector_is_one_violation_whatever_the_pods() -> None:
    view = make_view(gateway_pods=LIVE_PODS)
    violations = istiogateway.check_selector({}, True, "tenant-a", view, default_config())
    assert [v.problem for v in violations] == [
        "matches every gateway pod of the mesh, including the platform's shared ones"
    ]


def test_many_namespaces_are_capped_and_the_rest_counted() -> None:
    namespaces = {f"team-{n}": {"tenant": f"team-{n}"} for n in range(8)} | {
        "tenant-a": {"tenant": "tenant-a"}
    }
    pods = {f"team-{n}/gw": {"istio": "common"} for n in range(8)}
    view = make_view(namespaces, gateway_pods=pods)
    violations = istiogateway.check_selector(
        {"istio": "common"}, False, "tenant-a", view, default_config()
    )
    assert [v.owner for v in violations] == [f"team-{n}" for n in range(5)]
    assert violations[-1].problem.endswith(", and gateway pods in 3 more namespaces")


def test_before_the_pods_are_listed_the_selector_is_not_checkable() -> None:
    view = make_view(gateway_pods=GatewayPods(synced=False))
    spec = {"selector": OWN_SELECTOR, "servers": [_server(["./a.example.com"])]}
    decision = validate(request_of(derive(GW_CREATE, spec=spec)), view)
    assert not decision.allowed
    assert [v.rule for v in decision.violations] == ["gateway-selector-unchecked"]
    assert message_of(decision) == (
        'Gateway tenant-a/public-gateway: spec.selector {"istio": "tenant-a-gateway"} cannot be '
        "checked yet: tenant-guard has not finished listing the cluster's gateway pods, so it "
        "cannot tell whose pods this selector matches. Fix: retry in a moment"
    )


def test_offline_only_the_shared_workloads_are_known() -> None:
    # No cluster (view.gateway_pods is None): tenant-b's pods are unknown, the selector passes.
    spec = {"selector": {"istio": "tenant-b-ingress"}, "servers": [_server(["./a.example.com"])]}
    assert validate(request_of(derive(GW_CREATE, spec=spec))).allowed


def test_a_gateway_in_a_platform_namespace_is_not_judged_even_on_tenant_pods() -> None:
    view = make_view(gateway_pods=LIVE_PODS)
    spec = {"selector": {"istio": "tenant-b-ingress"}, "servers": [_server(["./a.example.com"])]}
    decision = validate(request_of(derive(GW_CREATE, namespace="istio-system", spec=spec)), view)
    assert decision.allowed and decision.reason == "platform namespace"


def test_warn_mode_admits_with_the_namespace_named() -> None:
    view = make_view(
        gateway_pods=LIVE_PODS, labels={"tenant-a": {"tenant-guard.io/enforcement": "warn"}}
    )
    spec = {"selector": {"istio": "tenant-b-ingress"}, "servers": [_server(["./a.example.com"])]}
    decision = validate(request_of(derive(GW_CREATE, spec=spec)), view)
    assert decision.allowed
    assert decision.warnings == [
        'tenant-guard (warn mode): Gateway tenant-a/public-gateway: spec.selector {"istio": '
        '"tenant-b-ingress"} matches gateway pods in namespace "tenant-b" of tenant "tenant-b" '
        "(pods ingress-7d9f-k8d2q, ingress-7d9f-x2x4p)"
    ]
