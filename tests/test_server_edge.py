"""The edge (SPEC.md §8, §11) through the real TLS server with the example config: the
captured Gateway, HTTPRoute and Sidecar reviews and what a tenant would try with them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    GW_CREATE,
    HTTPROUTE_CREATE,
    HTTPROUTE_CREATE_DRYRUN,
    SIDECAR_CREATE,
    VS_CREATE,
    derive,
    gateway_api_review,
    load_review,
)
from tests.server_harness import RunningServer, assert_verdict

# The example config: tenant-a claims a.example.com, *.a.example.com, shop.example.com;
# tenant-b shop.example.org, *.b.example.com; the shared gateway pods are labelled
# istio=ingressgateway, app=istio-ingressgateway; the shared parent is infra/shared-gateway.
OWN_PODS = {"istio": "tenant-a-gateway"}
SHARED = {"name": "shared-gateway", "namespace": "infra"}
PORT = {"name": "https", "number": 443, "protocol": "HTTPS"}


def gateway(hosts: list[str], selector: Any = OWN_PODS) -> dict[str, Any]:
    return derive(
        GW_CREATE, spec={"selector": selector, "servers": [{"hosts": hosts, "port": PORT}]}
    )


def route(hostnames: Any, *parents: dict[str, Any], kind: str = "HTTPRoute") -> dict[str, Any]:
    spec: dict[str, Any] = {"parentRefs": list(parents)}
    if hostnames is not None:
        spec["hostnames"] = hostnames
    return gateway_api_review(kind, spec)


def addressed(value: str) -> dict[str, Any]:
    """A Gateway API Gateway whose one address is a Hostname: Istio links it to that Service."""
    listener = {"name": "h", "port": 443, "protocol": "HTTPS", "hostname": "a.example.com"}
    return {"addresses": [{"type": "Hostname", "value": value}], "listeners": [listener]}


def sidecar(*hosts: str) -> dict[str, Any]:
    return derive(SIDECAR_CREATE, spec={"egress": [{"hosts": list(hosts)}]})


ATTACKS = [
    # --- Istio Gateway
    pytest.param(
        derive(GW_CREATE),
        False,
        'spec.selector {"istio": "ingressgateway"} matches the platform\'s shared gateway pods',
        id="captured-gateway-selects-shared-pods",
    ),
    pytest.param(
        gateway(["./a.example.com"], {**OWN_PODS, "istio": "ingressgateway", "app": "x"}),
        True,
        "",
        id="selector-superset-of-shared-labels-matches-none",
    ),
    pytest.param(
        gateway(["./a.example.com"], {"app": "istio-ingressgateway"}),
        False,
        "matches the platform's shared gateway pods",
        id="selector-subset-of-shared-labels",
    ),
    pytest.param(
        gateway(["./a.example.com"], {}), False, "matches every gateway pod", id="empty-selector"
    ),
    pytest.param(
        gateway(["*/a.example.com"]),
        False,
        "binds VirtualServices of every namespace of the mesh",
        id="star-namespace",
    ),
    pytest.param(
        gateway(["tenant-b/a.example.com"]),
        False,
        'binds VirtualServices of namespace "tenant-b" of tenant "tenant-b"',
        id="other-tenants-namespace",
    ),
    pytest.param(
        gateway(["./SHOP.Example.ORG."]),
        False,
        '"./SHOP.Example.ORG." belongs to tenant "tenant-b"',
        id="other-claim-upper-case-trailing-dot",
    ),
    pytest.param(
        gateway(["./*.example.com"]),
        False,
        'would capture hosts of tenant(s) "tenant-b"',
        id="wildcard-over-other-claims",
    ),
    pytest.param(gateway(["tenant-a/*.a.example.com"]), True, "", id="own-gateway-own-hosts"),
    # --- Gateway API
    pytest.param(
        load_review(HTTPROUTE_CREATE),
        False,
        'spec.hostnames[0] "reviews.tenant-a.example.com" is not claimed by any tenant',
        id="captured-httproute-unclaimed-hostname",
    ),
    pytest.param(
        load_review(HTTPROUTE_CREATE_DRYRUN),
        False,
        'spec.hostnames[0] "reviews.tenant-a.example.com" is not claimed by any tenant',
        id="captured-dry-run-httproute",
    ),
    pytest.param(route(["A.Example.COM."], SHARED), True, "", id="own-hostname-on-shared-parent"),
    pytest.param(
        route([], SHARED),
        False,
        'spec.hostnames [] leaves a route on the shared parent "infra/shared-gateway" without',
        id="empty-hostnames-on-shared-parent",
    ),
    pytest.param(
        route(None, SHARED),
        False,
        "spec.hostnames absent leaves a route on the shared parent",
        id="absent-hostnames-on-shared-parent",
    ),
    pytest.param(
        route(["a.example.com"], SHARED, {"name": "gw", "namespace": "tenant-b"}),
        False,
        'spec.parentRefs[1] "tenant-b/gw" is a Gateway in namespace "tenant-b"',
        id="second-parent-not-allowed",
    ),
    pytest.param(
        route(["WWW.B.example.com."], SHARED),
        False,
        'spec.hostnames[0] "WWW.B.example.com." belongs to tenant "tenant-b"',
        id="hostname-under-other-wildcard-claim",
    ),
    pytest.param(
        route(["*.example.com"], SHARED),
        False,
        'would capture hosts of tenant(s) "tenant-b"',
        id="wildcard-hostname-over-other-claims",
    ),
    pytest.param(
        route(None, SHARED, kind="TCPRoute"),
        False,
        "a TCPRoute takes the whole port",
        id="tcproute-on-shared-parent",
    ),
    pytest.param(
        gateway_api_review(
            "ListenerSet",
            {"parentRef": SHARED, "listeners": [{"name": "h", "port": 443, "protocol": "HTTPS"}]},
        ),
        False,
        "spec.listeners[0].hostname absent leaves a listener on the shared parent",
        id="listenerset-on-shared-parent-without-hostname",
    ),
    pytest.param(
        gateway_api_review(
            "Gateway",
            {
                "listeners": [
                    {"name": "h", "port": 80, "protocol": "HTTP", "hostname": "shop.example.org"}
                ]
            },
        ),
        False,
        "Gateway.gateway.networking.k8s.io tenant-a/reviews: spec.listeners[0].hostname "
        '"shop.example.org" belongs to tenant "tenant-b"',
        id="gateway-api-gateway-listener-of-other-tenant",
    ),
    # --- a Gateway API Gateway linked to existing pods (Istio's manual deployment)
    pytest.param(
        gateway_api_review(
            "Gateway", addressed("istio-ingressgateway.istio-system.svc.cluster.local")
        ),
        False,
        'spec.addresses[0].value "istio-ingressgateway.istio-system.svc.cluster.local" names a '
        'Service of namespace "istio-system" of the platform: Istio would program that '
        "Service's pods",
        id="gateway-linked-to-shared-ingress",
    ),
    pytest.param(
        gateway_api_review("Gateway", addressed("Istio-IngressGateway.Istio-System.")),
        False,
        'names a Service of namespace "istio-system" of the platform',
        id="gateway-linked-to-shared-ingress-short-form-case-dot",
    ),
    pytest.param(
        gateway_api_review("Gateway", addressed("gw-istio.tenant-b.svc")),
        False,
        'names a Service of namespace "tenant-b" of tenant "tenant-b"',
        id="gateway-linked-to-other-tenants-service",
    ),
    pytest.param(
        gateway_api_review("Gateway", addressed("ingress.example.com")),
        False,
        "is not a Service in a namespace of this tenant",
        id="gateway-linked-to-a-serviceentry-host",
    ),
    pytest.param(
        gateway_api_review("Gateway", addressed("my-gateway")),
        True,
        "",
        id="gateway-linked-to-own-service",
    ),
    # --- the experimental channel's XListenerSet
    pytest.param(
        gateway_api_review(
            "XListenerSet",
            {
                "parentRef": SHARED,
                "listeners": [
                    {"name": "h", "port": 443, "protocol": "HTTPS", "hostname": "shop.example.org"}
                ],
            },
        ),
        False,
        'XListenerSet tenant-a/reviews: spec.listeners[0].hostname "shop.example.org" belongs '
        'to tenant "tenant-b"',
        id="xlistenerset-on-shared-parent-with-other-tenants-hostname",
    ),
    pytest.param(
        gateway_api_review(
            "XListenerSet",
            {
                "parentRef": SHARED,
                "listeners": [
                    {"name": "h", "port": 443, "protocol": "HTTPS", "hostname": "a.example.com"}
                ],
            },
        ),
        True,
        "",
        id="xlistenerset-on-shared-parent-with-own-hostname",
    ),
    # --- Sidecar
    pytest.param(load_review(SIDECAR_CREATE), True, "", id="captured-sidecar"),
    pytest.param(sidecar("./*", "*/*"), False, '"*/*" imports the services of every', id="star"),
    pytest.param(
        sidecar("tenant-b/*"),
        False,
        'imports namespace "tenant-b" of tenant "tenant-b"',
        id="other",
    ),
    # --- VirtualService destinations on a gateway
    pytest.param(
        derive(
            VS_CREATE,
            spec={
                "hosts": ["a.example.com"],
                "gateways": ["istio-system/public-gateway"],
                "exportTo": [".", "istio-system"],
                "http": [
                    {
                        "route": [{"destination": {"host": "reviews"}}],
                        "mirror": {"host": "admin.tenant-b.svc.cluster.local"},
                    }
                ],
            },
        ),
        False,
        'spec.http[0].mirror.host "admin.tenant-b.svc.cluster.local" belongs to tenant "tenant-b"',
        id="mirror-to-other-tenant",
    ),
    pytest.param(
        derive(
            VS_CREATE,
            spec={
                "hosts": ["a.example.com"],
                "gateways": ["istio-system/public-gateway"],
                "exportTo": [".", "istio-system"],
                "tls": [
                    {
                        "match": [{"port": 443, "sniHosts": ["shop.example.org"]}],
                        "route": [{"destination": {"host": "reviews"}}],
                    }
                ],
            },
        ),
        False,
        'spec.tls[0].match[0].sniHosts[0] "shop.example.org" belongs to tenant "tenant-b"',
        id="sni-host-of-other-tenant-on-shared-gateway",
    ),
    pytest.param(
        derive(
            VS_CREATE,
            spec={
                "hosts": ["a.example.com"],
                "gateways": ["istio-system/public-gateway"],
                "exportTo": [".", "istio-system"],
                "tcp": [{"route": [{"destination": {"host": "reviews"}}]}],
            },
        ),
        False,
        'spec.gateways[0] "istio-system/public-gateway" is shared by every tenant: the routes of '
        "spec.tcp would take the whole of each TCP or TLS-terminating server",
        id="tcp-routes-on-shared-gateway",
    ),
]


@pytest.mark.parametrize(("review", "allowed", "message"), ATTACKS)
def test_edge_attack_through_the_server(
    server: RunningServer, review: dict[str, Any], allowed: bool, message: str
) -> None:
    assert_verdict(server, review, allowed, message)


WRONG_SHAPES = [
    pytest.param(route("a.example.com", SHARED), "spec.hostnames must be", id="hostnames-string"),
    pytest.param(
        gateway_api_review("HTTPRoute", {"hostnames": [], "parentRefs": SHARED}),
        "spec.parentRefs must be",
        id="parentrefs-not-a-list",
    ),
    pytest.param(
        derive(GW_CREATE, spec={"selector": OWN_PODS, "servers": "a.example.com"}),
        "spec.servers must be",
        id="servers-string",
    ),
    pytest.param(
        derive(SIDECAR_CREATE, spec={"egress": {"hosts": ["*/*"]}}),
        "spec.egress must be",
        id="egress-map",
    ),
]


@pytest.mark.parametrize(("review", "message"), WRONG_SHAPES)
def test_wrong_shapes_are_a_400_denial(
    server: RunningServer, review: dict[str, Any], message: str
) -> None:
    with server.client() as client:
        response = client.post("/validate", json=review).json()["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    assert message in response["status"]["message"]


def test_new_kinds_show_up_in_metrics_by_kind(server: RunningServer) -> None:
    listener = {"name": "h", "port": 80, "protocol": "HTTP", "hostname": "shop.example.org"}
    reviews = [
        load_review(HTTPROUTE_CREATE),
        derive(GW_CREATE),
        gateway_api_review("Gateway", {"listeners": [listener]}),
        load_review(SIDECAR_CREATE),
    ]
    with server.client() as client:
        for review in reviews:
            client.post("/validate", json=review).raise_for_status()
        text = client.get("/metrics").text
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("tenant_guard_admission_requests_total{")
    ]

    def counted(kind: str, decision: str, rule: str) -> bool:
        wanted = (f'kind="{kind}"', f'decision="{decision}"', f'rule="{rule}"')
        return any(all(part in line for part in wanted) for line in lines)

    assert counted("HTTPRoute", "denied", "host-unclaimed")
    assert counted("Gateway", "denied", "gateway-selector")
    assert counted("Gateway.gateway.networking.k8s.io", "denied", "host-ownership")
    assert counted("Sidecar", "allowed", "none")


def test_experimental_kinds_and_addresses_show_up_in_metrics(server: RunningServer) -> None:
    listener = {"name": "h", "port": 80, "protocol": "HTTP", "hostname": "shop.example.org"}
    reviews = [
        gateway_api_review("XListenerSet", {"parentRef": SHARED, "listeners": [listener]}),
        gateway_api_review("Gateway", addressed("istio-ingressgateway.istio-system")),
    ]
    with server.client() as client:
        for review in reviews:
            client.post("/validate", json=review).raise_for_status()
        text = client.get("/metrics").text
    assert any(
        line.startswith("tenant_guard_admission_requests_total{")
        and 'kind="XListenerSet"' in line
        and 'rule="host-ownership"' in line
        for line in text.splitlines()
    )
    assert any(
        'kind="Gateway.gateway.networking.k8s.io"' in line and 'rule="gateway-address"' in line
        for line in text.splitlines()
    )
