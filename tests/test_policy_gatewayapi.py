"""Gateway API (SPEC.md §8): route hostnames and parentRefs, Gateway and ListenerSet (and the
experimental channel's XListenerSet) listeners, a Gateway's Hostname addresses, and collisions
with routes of other tenants across APIs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    ABSENT,
    HTTPROUTE_CREATE,
    HTTPROUTE_CREATE_DRYRUN,
    default_config,
    derive,
    gateway_api_review,
    make_config,
    make_view,
    message_of,
    request_of,
    validate,
    vs_request,
    without_uid,
)
from webhook.policies import gatewayapi
from webhook.policies import virtualservice as vs_policy
from webhook.tenancy.hosts import route_key
from webhook.tenancy.snapshot import RouteRef

# Parents, seen from a route in tenant-a. The shared parent in tests/builders.py is
# infra/shared-gateway (infra is a platform namespace).
OWN = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "tenant-a-gateway"}
SAME_TENANT = {"name": "gw", "namespace": "tenant-a-dev"}
SHARED = {"name": "shared-gateway", "namespace": "infra"}
SHARED_LISTENERSET = {"kind": "ListenerSet", "name": "shared-gateway", "namespace": "infra"}
SHARED_XLISTENERSET = {
    "group": "gateway.networking.x-k8s.io",
    "kind": "XListenerSet",
    "name": "shared-gateway",
    "namespace": "infra",
}
# The experimental group with a kind it does not have: not a listener parent, so not shared.
SHARED_NAME_WRONG_GROUP = {**SHARED_XLISTENERSET, "kind": "Gateway"}
OTHER_TENANT = {"name": "gw", "namespace": "tenant-b"}
PLATFORM = {"name": "internal", "namespace": "infra"}
OWN_SERVICE = {"group": "", "kind": "Service", "name": "reviews"}
OTHER_SERVICE = {"group": "", "kind": "Service", "name": "reviews", "namespace": "tenant-b"}
SERVICE_NAMED_LIKE_SHARED = {
    "group": "",
    "kind": "Service",
    "name": "shared-gateway",
    "namespace": "infra",
}


def route(hostnames: Any = ABSENT, *parents: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "parentRefs": list(parents),
        "rules": [{"backendRefs": [{"name": "reviews", "port": 9080}]}],
    }
    if hostnames is not ABSENT:
        spec["hostnames"] = hostnames
    return spec


def _summary(violations: list[Any]) -> list[tuple[str, str, str | None]]:
    return [(v.field, v.rule, v.owner) for v in violations]


SHARED_NO_HOSTNAMES = [("spec.hostnames", "shared-parent", "platform")]

# (kind, spec, expected [(field, rule, owner)]) for a route tenant-a/reviews.
ROUTE_ROWS = [
    # --- parents
    pytest.param("HTTPRoute", route(["a.example.com"], OWN), [], id="own-parent"),
    pytest.param("HTTPRoute", route(ABSENT, OWN), [], id="own-parent-no-hostnames"),
    pytest.param("HTTPRoute", route(["a.example.com"], SAME_TENANT), [], id="same-tenant-parent"),
    pytest.param("HTTPRoute", route(["a.example.com"], SHARED), [], id="shared-parent"),
    pytest.param(
        "HTTPRoute", route(["a.example.com"], SHARED_LISTENERSET), [], id="shared-listenerset"
    ),
    pytest.param(
        "HTTPRoute", route(["a.example.com"], SHARED_XLISTENERSET), [], id="shared-xlistenerset"
    ),
    pytest.param(
        "HTTPRoute",
        route([], SHARED_XLISTENERSET),
        SHARED_NO_HOSTNAMES,
        id="shared-xlistenerset-no-hostnames",
    ),
    pytest.param(
        "HTTPRoute",
        route(["a.example.com"], SHARED_NAME_WRONG_GROUP),
        [("spec.parentRefs[0]", "parent-ref", "platform")],
        id="shared-name-experimental-group-not-a-listener-parent",
    ),
    pytest.param(
        "TCPRoute",
        route(ABSENT, SHARED_XLISTENERSET),
        [("spec.parentRefs[0]", "shared-parent", "platform")],
        id="tcp-shared-xlistenerset",
    ),
    pytest.param("HTTPRoute", route([], SHARED), SHARED_NO_HOSTNAMES, id="shared-hostnames-empty"),
    pytest.param(
        "HTTPRoute", route(ABSENT, SHARED), SHARED_NO_HOSTNAMES, id="shared-hostnames-absent"
    ),
    pytest.param(
        "HTTPRoute",
        route([], OWN, SHARED_LISTENERSET),
        SHARED_NO_HOSTNAMES,
        id="own-and-shared-no-hostnames",
    ),
    pytest.param(
        "HTTPRoute",
        route(["a.example.com"], OWN, OTHER_TENANT),
        [("spec.parentRefs[1]", "parent-ref", "tenant-b")],
        id="second-parent-other-tenant",
    ),
    pytest.param(
        "HTTPRoute",
        route(["a.example.com"], PLATFORM),
        [("spec.parentRefs[0]", "parent-ref", "platform")],
        id="platform-parent-not-shared",
    ),
    pytest.param(
        "HTTPRoute",
        route(["a.example.com"], {"name": "shared-gateway", "namespace": "kube-system"}),
        [("spec.parentRefs[0]", "parent-ref", "platform")],
        id="shared-name-wrong-namespace",
    ),
    pytest.param("HTTPRoute", route(ABSENT, OWN_SERVICE), [], id="mesh-own-service"),
    pytest.param(
        "HTTPRoute",
        route(ABSENT, OTHER_SERVICE),
        [("spec.parentRefs[0]", "parent-ref", "tenant-b")],
        id="mesh-other-tenants-service",
    ),
    pytest.param(
        "HTTPRoute",
        route(["a.example.com"], SERVICE_NAMED_LIKE_SHARED),
        [("spec.parentRefs[0]", "parent-ref", "platform")],
        id="service-named-like-shared-parent",
    ),
    # --- hostnames
    pytest.param("HTTPRoute", route(["A.Example.COM."], SHARED), [], id="own-claim-variant"),
    pytest.param("HTTPRoute", route(["www.a.example.com"], SHARED), [], id="under-own-wildcard"),
    pytest.param(
        "HTTPRoute",
        route(["a.example.com", "SHOP.example.ORG."], SHARED),
        [("spec.hostnames[1]", "host-ownership", "tenant-b")],
        id="other-claim-upper-trailing-dot",
    ),
    pytest.param(
        "HTTPRoute",
        route(["*.example.com"], SHARED),
        [("spec.hostnames[0]", "host-ownership", "tenant-b")],
        id="wildcard-over-other-claims",
    ),
    pytest.param(
        "HTTPRoute",
        route(["x.b.example.com"], OWN),
        [("spec.hostnames[0]", "host-ownership", "tenant-b")],
        id="under-other-wildcard-on-own-parent",
    ),
    pytest.param(
        "HTTPRoute",
        route(["reviews"], SHARED),
        [("spec.hostnames[0]", "host-ownership", "platform")],
        id="single-label",
    ),
    pytest.param(
        "HTTPRoute",
        route(["api.example.net"], SHARED),
        [("spec.hostnames[0]", "host-unclaimed", "unclaimed")],
        id="unclaimed",
    ),
    pytest.param(
        "HTTPRoute",
        route(["exa_mple.com"], SHARED),
        [("spec.hostnames[0]", "host-invalid", None)],
        id="invalid",
    ),
    # --- the other route kinds
    pytest.param("GRPCRoute", route(["a.example.com"], SHARED), [], id="grpc-shared"),
    pytest.param("GRPCRoute", route([], SHARED), SHARED_NO_HOSTNAMES, id="grpc-shared-empty"),
    pytest.param(
        "TLSRoute",
        route(["shop.example.org"], OWN),
        [("spec.hostnames[0]", "host-ownership", "tenant-b")],
        id="tls-other-claim",
    ),
    pytest.param("TCPRoute", route(ABSENT, OWN), [], id="tcp-own-parent"),
    pytest.param(
        "TCPRoute",
        route(ABSENT, OWN, SHARED),
        [("spec.parentRefs[1]", "shared-parent", "platform")],
        id="tcp-shared-parent",
    ),
    pytest.param(
        "UDPRoute",
        route(ABSENT, SHARED_LISTENERSET),
        [("spec.parentRefs[0]", "shared-parent", "platform")],
        id="udp-shared-listenerset",
    ),
    # --- every violation at once
    pytest.param(
        "HTTPRoute",
        route([], OTHER_TENANT, SHARED, PLATFORM),
        [
            ("spec.parentRefs[0]", "parent-ref", "tenant-b"),
            ("spec.parentRefs[2]", "parent-ref", "platform"),
            ("spec.hostnames", "shared-parent", "platform"),
        ],
        id="all-at-once",
    ),
]


@pytest.mark.parametrize(("kind", "spec", "expected"), ROUTE_ROWS)
def test_route(kind: str, spec: dict[str, Any], expected: list[Any]) -> None:
    violations = gatewayapi.check_route(
        {"spec": spec}, kind, "tenant-a", "reviews", "tenant-a", make_view(), default_config()
    )
    assert _summary(violations) == expected

    decision = validate(request_of(gateway_api_review(kind, spec)))
    assert decision.allowed is (not expected)
    assert _summary(decision.violations) == expected
    if expected:
        assert message_of(decision).count(f"{kind} tenant-a/reviews: ") == len(expected)


NO_HOST = {"name": "http", "port": 80, "protocol": "HTTP"}  # a listener without a hostname

LISTENER_ROWS = [
    pytest.param(
        "Gateway",
        {"listeners": [NO_HOST]},
        [],
        id="gateway-listener-without-hostname",
    ),
    pytest.param(
        "Gateway",
        {
            "listeners": [
                {**NO_HOST, "hostname": "A.example.com."},
                NO_HOST,
                {**NO_HOST, "hostname": "*.a.example.com"},
            ]
        },
        [],
        id="gateway-own-hostnames",
    ),
    pytest.param(
        "Gateway",
        {"listeners": [NO_HOST, NO_HOST, {**NO_HOST, "hostname": "shop.example.org"}]},
        [("spec.listeners[2].hostname", "host-ownership", "tenant-b")],
        id="gateway-other-claim",
    ),
    pytest.param(
        "ListenerSet",
        {"parentRef": {"name": "tenant-a-gateway"}, "listeners": [NO_HOST]},
        [],
        id="listenerset-own-parent-no-hostname",
    ),
    pytest.param(
        "ListenerSet",
        {"parentRef": SHARED, "listeners": [{**NO_HOST, "hostname": "a.example.com"}]},
        [],
        id="listenerset-shared-parent-own-hostname",
    ),
    pytest.param(
        "ListenerSet",
        {"parentRef": SHARED, "listeners": [{**NO_HOST, "hostname": "a.example.com"}, NO_HOST]},
        [("spec.listeners[1].hostname", "shared-parent", "platform")],
        id="listenerset-shared-parent-listener-without-hostname",
    ),
    pytest.param(
        "ListenerSet",
        {"parentRef": SHARED, "listeners": [{**NO_HOST, "hostname": "*.example.com"}]},
        [("spec.listeners[0].hostname", "host-ownership", "tenant-b")],
        id="listenerset-wildcard-over-other-claims",
    ),
    pytest.param(
        "ListenerSet",
        {"parentRef": OTHER_TENANT, "listeners": [NO_HOST]},
        [("spec.parentRef", "parent-ref", "tenant-b")],
        id="listenerset-other-tenants-gateway",
    ),
    pytest.param(
        "ListenerSet",
        {"parentRef": PLATFORM, "listeners": [{**NO_HOST, "hostname": "a.example.com"}]},
        [("spec.parentRef", "parent-ref", "platform")],
        id="listenerset-platform-gateway-not-shared",
    ),
    # --- the experimental channel's XListenerSet, judged like a ListenerSet
    pytest.param(
        "XListenerSet",
        {"parentRef": {"name": "tenant-a-gateway"}, "listeners": [NO_HOST]},
        [],
        id="xlistenerset-own-parent-no-hostname",
    ),
    pytest.param(
        "XListenerSet",
        {"parentRef": SHARED, "listeners": [{**NO_HOST, "hostname": "www.a.example.com"}]},
        [],
        id="xlistenerset-shared-parent-own-hostname",
    ),
    pytest.param(
        "XListenerSet",
        {"parentRef": SHARED, "listeners": [{**NO_HOST, "hostname": "Shop.Example.Org."}]},
        [("spec.listeners[0].hostname", "host-ownership", "tenant-b")],
        id="xlistenerset-shared-parent-other-tenants-hostname",
    ),
    pytest.param(
        "XListenerSet",
        {"parentRef": SHARED, "listeners": [NO_HOST]},
        [("spec.listeners[0].hostname", "shared-parent", "platform")],
        id="xlistenerset-shared-parent-listener-without-hostname",
    ),
    pytest.param(
        "XListenerSet",
        {"parentRef": {**OTHER_TENANT, "kind": "Gateway"}, "listeners": [NO_HOST]},
        [("spec.parentRef", "parent-ref", "tenant-b")],
        id="xlistenerset-other-tenants-gateway",
    ),
    pytest.param(
        "XListenerSet",
        {"parentRef": PLATFORM, "listeners": [{**NO_HOST, "hostname": "a.example.com"}]},
        [("spec.parentRef", "parent-ref", "platform")],
        id="xlistenerset-platform-gateway-not-shared",
    ),
]


@pytest.mark.parametrize(("kind", "spec", "expected"), LISTENER_ROWS)
def test_listeners(kind: str, spec: dict[str, Any], expected: list[Any]) -> None:
    violations = gatewayapi.check_listeners(
        {"spec": spec}, kind, "tenant-a", "tenant-a", make_view(), default_config()
    )
    assert _summary(violations) == expected

    decision = validate(request_of(gateway_api_review(kind, spec)))
    assert decision.allowed is (not expected)
    assert _summary(decision.violations) == expected
    shown = "Gateway.gateway.networking.k8s.io" if kind == "Gateway" else kind
    assert decision.kind == shown
    if expected:
        assert message_of(decision).startswith(f"{shown} tenant-a/reviews: ")


# --- a Gateway's addresses: the Services whose pods it would program -----------------------


def gateway_with(*addresses: Any) -> dict[str, Any]:
    return {"addresses": list(addresses), "listeners": [{**NO_HOST, "hostname": "a.example.com"}]}


def hostname(value: str, address_type: Any = "Hostname") -> dict[str, Any]:
    address: dict[str, Any] = {"value": value}
    if address_type is not ABSENT:
        address["type"] = address_type
    return address


SHARED_INGRESS = "istio-ingressgateway.istio-system.svc.cluster.local"
ADDRESS = "spec.addresses[0].value"
PLATFORM_ADDRESS = [(ADDRESS, "gateway-address", "platform")]
TENANT_B_ADDRESS = [(ADDRESS, "gateway-address", "tenant-b")]

ADDRESS_ROWS = [
    # --- the platform's shared ingress, in every form of its Service host name
    pytest.param(gateway_with(hostname(SHARED_INGRESS)), PLATFORM_ADDRESS, id="platform-fqdn"),
    pytest.param(
        gateway_with(hostname("istio-ingressgateway.istio-system.svc")),
        PLATFORM_ADDRESS,
        id="platform-svc",
    ),
    pytest.param(
        gateway_with(hostname("istio-ingressgateway.istio-system")),
        PLATFORM_ADDRESS,
        id="platform-name-namespace",
    ),
    pytest.param(
        gateway_with(hostname("Istio-IngressGateway.ISTIO-SYSTEM.svc.Cluster.Local.")),
        PLATFORM_ADDRESS,
        id="platform-case-trailing-dot",
    ),
    pytest.param(
        gateway_with(hostname("istio-ingressgateway.istio-system.svc.cluster.local", "hostname")),
        PLATFORM_ADDRESS,
        id="platform-type-lower-case",
    ),
    pytest.param(
        gateway_with(hostname(SHARED_INGRESS, ABSENT)),
        PLATFORM_ADDRESS,
        id="platform-no-type-istio-reads-hostname",
    ),
    pytest.param(
        gateway_with(hostname("ingress.legacy.svc.cluster.local")),
        PLATFORM_ADDRESS,
        id="labelled-but-not-tenant-namespace",
    ),
    pytest.param(
        gateway_with(hostname("ingress.not-yet.svc.cluster.local")),
        PLATFORM_ADDRESS,
        id="unknown-namespace",
    ),
    pytest.param(
        gateway_with(hostname("ingress.not-yet")),
        PLATFORM_ADDRESS,
        id="unknown-namespace-two-labels",
    ),
    # --- another tenant's Service
    pytest.param(
        gateway_with(hostname("gw-istio.tenant-b.svc.cluster.local")),
        TENANT_B_ADDRESS,
        id="other-tenant-fqdn",
    ),
    pytest.param(
        gateway_with(hostname("gw-istio.tenant-b")), TENANT_B_ADDRESS, id="other-tenant-short"
    ),
    pytest.param(
        gateway_with(hostname("a.b.gw-istio.tenant-b.svc")),
        TENANT_B_ADDRESS,
        id="other-tenant-deeper-name",
    ),
    # --- names that are no Service of the tenant: ServiceEntries, wildcards, the cluster
    pytest.param(
        gateway_with(hostname("ingress.example.com")),
        PLATFORM_ADDRESS,
        id="external-name-serviceentry",
    ),
    pytest.param(
        gateway_with(hostname("a.example.com")), PLATFORM_ADDRESS, id="own-claim-is-no-service"
    ),
    pytest.param(
        gateway_with(hostname("*.tenant-a.svc.cluster.local")),
        [(ADDRESS, "gateway-address", "nobody")],
        id="wildcard",
    ),
    pytest.param(
        gateway_with(hostname("ingress.cluster.local")),
        PLATFORM_ADDRESS,
        id="cluster-name",
    ),
    pytest.param(
        gateway_with(hostname("exa_mple.istio-system")),
        [(ADDRESS, "host-invalid", None)],
        id="invalid",
    ),
    # --- the tenant's own Services: allowed
    pytest.param(gateway_with(hostname("my-gateway")), [], id="short-name-own-namespace"),
    pytest.param(
        gateway_with(hostname("My-Gateway.Tenant-A.svc.cluster.local.")), [], id="own-fqdn"
    ),
    pytest.param(gateway_with(hostname("gw.tenant-a-dev.svc")), [], id="same-tenant-namespace"),
    pytest.param(gateway_with(hostname("gw.tenant-a-dev")), [], id="same-tenant-two-labels"),
    # --- addresses that are not host names: Istio deploys the Gateway's own pods
    pytest.param(gateway_with(hostname("10.0.0.7", "IPAddress")), [], id="ip-address"),
    pytest.param(gateway_with(hostname("10.0.0.7", ABSENT)), [], id="ip-address-no-type"),
    pytest.param(gateway_with(hostname("fd00::7", ABSENT)), [], id="ipv6-no-type"),
    pytest.param(
        gateway_with(hostname(SHARED_INGRESS, "example.com/cloud-address")),
        [],
        id="implementation-specific-type",
    ),
    pytest.param({"listeners": [NO_HOST]}, [], id="no-addresses"),
    pytest.param({"addresses": None, "listeners": [NO_HOST]}, [], id="null-addresses"),
    # --- every address is judged, every violation at once
    pytest.param(
        gateway_with(
            hostname("my-gateway"),
            hostname(SHARED_INGRESS),
            hostname("gw.tenant-b"),
        ),
        [
            ("spec.addresses[1].value", "gateway-address", "platform"),
            ("spec.addresses[2].value", "gateway-address", "tenant-b"),
        ],
        id="several-addresses",
    ),
]


@pytest.mark.parametrize(("spec", "expected"), ADDRESS_ROWS)
def test_gateway_addresses(spec: dict[str, Any], expected: list[Any]) -> None:
    violations = gatewayapi.check_listeners(
        {"spec": spec}, "Gateway", "tenant-a", "tenant-a", make_view(), default_config()
    )
    assert _summary(violations) == expected

    decision = validate(request_of(gateway_api_review("Gateway", spec)))
    assert decision.allowed is (not expected)
    assert _summary(decision.violations) == expected


def test_gateway_address_message_names_the_service_and_the_fix() -> None:
    decision = validate(
        request_of(gateway_api_review("Gateway", gateway_with(hostname(SHARED_INGRESS))))
    )
    assert message_of(decision) == (
        "Gateway.gateway.networking.k8s.io tenant-a/reviews: spec.addresses[0].value "
        f'"{SHARED_INGRESS}" names a Service of namespace "istio-system" of the platform: '
        "Istio would program that Service's pods with this Gateway's listeners. Fix: leave "
        "spec.addresses out (Istio then deploys this Gateway's own pods), or name a Service in "
        'a namespace of tenant "tenant-a" (e.g. my-gateway, '
        "my-gateway.tenant-a.svc.cluster.local)"
    )


def test_gateway_address_uses_the_configured_cluster_domain() -> None:
    config = make_config(clusterDomain="corp.internal")
    other = gateway_with(hostname("istio-ingressgateway.istio-system.svc.corp.internal"))
    own = gateway_with(hostname("gw.tenant-a.svc.corp.internal"))
    assert (
        _summary(
            validate(request_of(gateway_api_review("Gateway", other)), config=config).violations
        )
        == PLATFORM_ADDRESS
    )
    assert validate(request_of(gateway_api_review("Gateway", own)), config=config).allowed
    # cluster.local is no Service name in that cluster: not the tenant's either.
    default_domain = gateway_with(hostname("gw.tenant-a.svc.cluster.local"))
    assert not validate(
        request_of(gateway_api_review("Gateway", default_domain)), config=config
    ).allowed


def test_only_a_gateway_has_addresses_judged() -> None:
    # A ListenerSet has no addresses of its own; whatever is there is not read as a link.
    spec = {"parentRef": {"name": "tenant-a-gateway"}, **gateway_with(hostname(SHARED_INGRESS))}
    assert validate(request_of(gateway_api_review("ListenerSet", spec))).allowed


# --- collisions across APIs ------------------------------------------------------------------


def _routes(*entries: tuple[str, str, str, str]) -> dict[str, set[RouteRef]]:
    """{route_key: {RouteRef}} from (host, kind, namespace, name)."""
    routes: dict[str, set[RouteRef]] = {}
    for host, kind, namespace, name in entries:
        key = route_key(host, namespace, "cluster.local")
        assert key is not None
        routes.setdefault(key, set()).add(RouteRef(kind, namespace, name))
    return routes


COLLISION = ("host-collision", "tenant-b")

# (kind of the new object, its hosts, the index, expected (rule, owner) or None). The new
# object is tenant-a/reviews, with unclaimedHosts: allow so that only collisions count.
CROSS_API_ROWS = [
    pytest.param(
        "HTTPRoute",
        "api.example.net",
        _routes(("api.example.net", "VirtualService", "tenant-b", "api")),
        COLLISION,
        id="route-vs-existing-virtualservice",
    ),
    pytest.param(
        "HTTPRoute",
        "API.Example.NET.",
        _routes(("*.example.net", "VirtualService", "tenant-b", "api")),
        COLLISION,
        id="route-under-virtualservice-wildcard",
    ),
    pytest.param(
        "GRPCRoute",
        "api.example.net",
        _routes(("api.example.net", "HTTPRoute", "tenant-b", "web")),
        COLLISION,
        id="grpcroute-vs-existing-httproute",
    ),
    pytest.param(
        "VirtualService",
        "api.example.net",
        _routes(("api.example.net", "HTTPRoute", "tenant-b", "web")),
        COLLISION,
        id="virtualservice-vs-existing-httproute",
    ),
    pytest.param(
        "VirtualService",
        "api.example.net",
        _routes(("*.example.net", "TLSRoute", "tenant-b", "web")),
        COLLISION,
        id="virtualservice-under-tlsroute-wildcard",
    ),
    pytest.param(
        "HTTPRoute",
        "api.example.net",
        _routes(("api.example.net", "VirtualService", "tenant-a-dev", "api")),
        None,
        id="same-tenant-virtualservice",
    ),
    pytest.param(
        "HTTPRoute",
        "api.example.net",
        _routes(("api.example.net", "HTTPRoute", "tenant-a", "reviews")),
        None,
        id="update-does-not-collide-with-itself",
    ),
    pytest.param(
        "HTTPRoute",
        "api.example.net",
        _routes(("other.example.net", "VirtualService", "tenant-b", "api")),
        None,
        id="other-host",
    ),
]


@pytest.mark.parametrize(("kind", "host", "routes", "expected"), CROSS_API_ROWS)
def test_collisions_across_apis(
    kind: str, host: str, routes: dict[str, set[RouteRef]], expected: Any
) -> None:
    config = make_config(unclaimedHosts="allow")
    view = make_view(routes=routes)
    if kind == "VirtualService":
        violations = vs_policy.check_hosts([host], "tenant-a", "reviews", "tenant-a", view, config)
        request = vs_request([host])
    else:
        violations = gatewayapi.check_route(
            {"spec": route([host], OWN)}, kind, "tenant-a", "reviews", "tenant-a", view, config
        )
        request = request_of(gateway_api_review(kind, route([host], OWN)))
    assert [(v.rule, v.owner) for v in violations] == ([expected] if expected else [])

    decision = validate(request, view, config)
    assert decision.allowed is (expected is None)
    if expected:
        (ref,) = (r for refs in routes.values() for r in refs)
        assert f"is already routed by {ref.kind} {ref.namespace}/{ref.name}" in message_of(decision)


# --- the captured reviews, versions, dry-run, shapes -----------------------------------------


def test_captured_httproute_is_judged_by_its_hostname() -> None:
    # As captured: its own Gateway, and reviews.tenant-a.example.com, which nobody claims.
    decision = validate(request_of(derive(HTTPROUTE_CREATE)))
    assert _summary(decision.violations) == [("spec.hostnames[0]", "host-unclaimed", "unclaimed")]
    claimed = make_config(
        tenants={"tenant-a": {"hosts": ["*.tenant-a.example.com"]}, "tenant-b": {}}
    )
    assert validate(request_of(derive(HTTPROUTE_CREATE)), config=claimed).allowed


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(route(["a.example.com"], SHARED), id="allowed"),
        pytest.param(route([], SHARED, OTHER_TENANT), id="denied"),
    ],
)
def test_dry_run_gives_the_same_answer(spec: dict[str, Any]) -> None:
    real = validate(request_of(derive(HTTPROUTE_CREATE, spec=spec, uid="u")))
    dry = validate(request_of(derive(HTTPROUTE_CREATE_DRYRUN, spec=spec, uid="u")))
    assert without_uid(real) == without_uid(dry)


@pytest.mark.parametrize(
    ("kind", "version"),
    [
        ("HTTPRoute", "v1beta1"),
        ("Gateway", "v1beta1"),
        ("HTTPRoute", "v1"),
        # Versions of the experimental channel: the dispatch never looks at the version.
        ("HTTPRoute", "v1alpha2"),
        ("ListenerSet", "v1alpha1"),
        ("XListenerSet", "v1alpha1"),
        ("XListenerSet", "v1alpha2"),
    ],
)
def test_every_served_version_is_judged_alike(kind: str, version: str) -> None:
    spec = (
        route(["shop.example.org"], SHARED)
        if kind == "HTTPRoute"
        else {
            "parentRef": {"name": "tenant-a-gateway"},
            "listeners": [
                {"name": "h", "port": 80, "protocol": "HTTP", "hostname": "shop.example.org"}
            ],
        }
    )
    decision = validate(request_of(gateway_api_review(kind, spec, version=version)))
    assert [(v.rule, v.owner) for v in decision.violations] == [("host-ownership", "tenant-b")]


def test_gateway_api_gateway_is_not_taken_for_an_istio_one() -> None:
    # Same kind name, other group: a Gateway API object sent as an Istio Gateway is refused.
    review = gateway_api_review("Gateway", {"listeners": []})
    review["request"]["resource"]["group"] = "networking.istio.io"
    decision = validate(request_of(review))
    assert not decision.allowed
    assert decision.response["response"]["status"]["code"] == 400


@pytest.mark.parametrize(
    ("kind", "spec", "field"),
    [
        pytest.param(
            "HTTPRoute", route("a.example.com", OWN), "spec.hostnames", id="hostnames-str"
        ),
        pytest.param("HTTPRoute", route([1], OWN), "spec.hostnames[0]", id="hostname-number"),
        pytest.param(
            "HTTPRoute",
            {"parentRefs": SHARED, "hostnames": []},
            "spec.parentRefs",
            id="parents-map",
        ),
        pytest.param("HTTPRoute", route([], "infra/shared"), "spec.parentRefs[0]", id="parent-str"),
        pytest.param(
            "HTTPRoute", route([], {"namespace": "infra"}), "spec.parentRefs[0].name", id="no-name"
        ),
        pytest.param(
            "HTTPRoute",
            route([], {"name": "gw", "namespace": 7}),
            "spec.parentRefs[0].namespace",
            id="namespace-number",
        ),
        pytest.param(
            "TCPRoute", {"parentRefs": [None]}, "spec.parentRefs[0]", id="tcp-null-parent"
        ),
        pytest.param(
            "Gateway", {"listeners": {"hostname": "x"}}, "spec.listeners", id="listeners-map"
        ),
        pytest.param(
            "Gateway",
            {"listeners": [{"hostname": ["a"]}]},
            "spec.listeners[0].hostname",
            id="hostname-list",
        ),
        pytest.param(
            "ListenerSet", {"listeners": []}, "spec.parentRef", id="listenerset-no-parent"
        ),
        pytest.param(
            "XListenerSet", {"listeners": []}, "spec.parentRef", id="xlistenerset-no-parent"
        ),
        pytest.param(
            "XListenerSet",
            {"parentRef": "infra/shared-gateway", "listeners": []},
            "spec.parentRef",
            id="xlistenerset-parent-string",
        ),
        pytest.param(
            "Gateway",
            {"addresses": {"type": "Hostname", "value": SHARED_INGRESS}},
            "spec.addresses",
            id="addresses-map",
        ),
        pytest.param(
            "Gateway", {"addresses": [SHARED_INGRESS]}, "spec.addresses[0]", id="address-str"
        ),
        pytest.param(
            "Gateway",
            {"addresses": [{"type": "Hostname"}]},
            "spec.addresses[0].value",
            id="address-without-value",
        ),
        pytest.param(
            "Gateway",
            {"addresses": [{"type": "Hostname", "value": [SHARED_INGRESS]}]},
            "spec.addresses[0].value",
            id="address-value-list",
        ),
        pytest.param(
            "Gateway",
            {"addresses": [{"type": 1, "value": SHARED_INGRESS}]},
            "spec.addresses[0].type",
            id="address-type-number",
        ),
    ],
)
def test_wrong_shapes_are_refused_not_admitted(kind: str, spec: Any, field: str) -> None:
    decision = validate(request_of(gateway_api_review(kind, spec)))
    assert not decision.allowed
    assert decision.response["response"]["status"]["code"] == 400
    assert f"{field} must be" in message_of(decision)
