"""Destinations of gateway-bound VirtualServices (SPEC.md §8): only the tenant's own services
may be published on a gateway; mesh-only VirtualServices and external names are not limited."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import VS_CREATE, derive, message_of, request_of, validate

SHARED_GATEWAY = "istio-system/public-gateway"


def vs(gateways: list[str] | None, **sections: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": ["a.example.com"], "exportTo": [".", "istio-system"]}
    if gateways is not None:
        spec["gateways"] = gateways
    spec.update(sections)
    return spec


def to(host: str) -> dict[str, Any]:
    return {"destination": {"host": host, "port": {"number": 9080}}}


def http_to(host: str) -> list[dict[str, Any]]:
    return [{"route": [to(host)]}]


ROUTE = "spec.http[0].route[0].destination.host"

# (sections of a VirtualService in tenant-a on the shared gateway, expected [(field, owner)])
ROWS = [
    pytest.param({"http": http_to("reviews")}, [], id="short-name"),
    pytest.param({"http": http_to("reviews.tenant-a")}, [], id="svc.own-ns"),
    pytest.param(
        {"http": http_to("reviews.tenant-a-dev.svc.cluster.local")}, [], id="same-tenant-fqdn"
    ),
    pytest.param({"http": http_to("api.example.net")}, [], id="external"),
    pytest.param({"http": http_to("shop.example.org")}, [], id="other-tenants-external-claim"),
    pytest.param(
        {"http": http_to("admin.tenant-b.svc.cluster.local")}, [(ROUTE, "tenant-b")], id="fqdn"
    ),
    pytest.param({"http": http_to("ADMIN.Tenant-B.")}, [(ROUTE, "tenant-b")], id="svc.ns-variant"),
    pytest.param({"http": http_to("admin.tenant-b.svc")}, [(ROUTE, "tenant-b")], id="svc.ns.svc"),
    pytest.param(
        {"http": http_to("grafana.istio-system.svc.cluster.local")},
        [(ROUTE, "platform")],
        id="platform-service",
    ),
    pytest.param({"http": http_to("foo.cluster.local")}, [(ROUTE, "platform")], id="cluster-name"),
    pytest.param(
        {"http": [{"route": [to("reviews")], "mirror": {"host": "admin.tenant-b"}}]},
        [("spec.http[0].mirror.host", "tenant-b")],
        id="mirror-to-other-tenant",
    ),
    pytest.param(
        {"http": [{"route": [to("reviews")], "mirrors": [to("reviews"), to("db.tenant-b")]}]},
        [("spec.http[0].mirrors[1].destination.host", "tenant-b")],
        id="second-mirror-to-other-tenant",
    ),
    pytest.param(
        {"http": [{"route": [to("reviews"), to("admin.tenant-b")]}]},
        [("spec.http[0].route[1].destination.host", "tenant-b")],
        id="weighted-second-route",
    ),
    pytest.param(
        {"tcp": [{"route": [to("db.tenant-b.svc.cluster.local")]}]},
        [("spec.tcp[0].route[0].destination.host", "tenant-b")],
        id="tcp",
    ),
    pytest.param(
        {"tls": [{"match": [{"sniHosts": ["a.example.com"]}], "route": [to("db.tenant-b")]}]},
        [("spec.tls[0].route[0].destination.host", "tenant-b")],
        id="tls",
    ),
    pytest.param(
        {"http": [{"delegate": {"name": "reviews", "namespace": "tenant-b"}}]},
        [("spec.http[0].delegate.namespace", "tenant-b")],
        id="delegate-other-tenant",
    ),
    pytest.param(
        {"http": [{"delegate": {"name": "reviews", "namespace": "kube-system"}}]},
        [("spec.http[0].delegate.namespace", "platform")],
        id="delegate-platform",
    ),
    pytest.param(
        {"http": [{"delegate": {"name": "reviews", "namespace": "tenant-a-dev"}}]},
        [],
        id="delegate-same-tenant",
    ),
    pytest.param({"http": [{"delegate": {"name": "reviews"}}]}, [], id="delegate-own-namespace"),
    pytest.param(
        {
            "http": [
                {"route": [to("admin.tenant-b")], "mirror": {"host": "x.tenant-c"}},
                {"delegate": {"name": "d", "namespace": "tenant-b"}},
            ],
            "tcp": [{"route": [to("db.tenant-b")]}],
        },
        [
            (ROUTE, "tenant-b"),
            ("spec.http[0].mirror.host", "tenant-c"),
            ("spec.tcp[0].route[0].destination.host", "tenant-b"),
            ("spec.http[1].delegate.namespace", "tenant-b"),
        ],
        id="all-at-once",
    ),
]


@pytest.mark.parametrize(("sections", "expected"), ROWS)
def test_gateway_bound_destinations(sections: dict[str, Any], expected: list[Any]) -> None:
    decision = validate(request_of(derive(VS_CREATE, spec=vs([SHARED_GATEWAY], **sections))))
    # TCP routes on the shared gateway are a violation of their own (test_shared_gateway_tcp).
    found = [v for v in decision.violations if v.rule != "shared-gateway"]
    assert [(v.field, v.owner) for v in found] == expected
    assert all(v.rule == "gateway-destination" for v in found)
    assert decision.allowed is (not expected)

    # The same VirtualService without a gateway is mesh-only: not limited.
    for gateways in (None, ["mesh"]):
        mesh_only = derive(VS_CREATE, spec=vs(gateways, **sections, exportTo=["."]))
        assert validate(request_of(mesh_only)).allowed


@pytest.mark.parametrize(
    ("gateways", "export_to"),
    [
        pytest.param(["public-gateway"], ["."], id="own-namespace-gateway"),
        pytest.param(["mesh", SHARED_GATEWAY], [".", "istio-system"], id="mesh-and-gateway"),
        pytest.param(["tenant-a-dev/gw"], [".", "tenant-a-dev"], id="same-tenant-gateway"),
    ],
)
def test_any_gateway_other_than_mesh_binds(gateways: list[str], export_to: list[str]) -> None:
    spec = vs(gateways, http=http_to("admin.tenant-b"), exportTo=export_to)
    decision = validate(request_of(derive(VS_CREATE, spec=spec)))
    assert [v.rule for v in decision.violations] == ["gateway-destination"]


def tls_to(*sni_hosts: str) -> list[dict[str, Any]]:
    return [{"match": [{"port": 443, "sniHosts": list(sni_hosts)}], "route": [to("reviews")]}]


SNI = "spec.tls[0].match[0].sniHosts"

# (sniHosts of a tls route of a VirtualService tenant-a/reviews with hosts [a.example.com] on
# the shared gateway, expected [(field, rule, owner)])
SNI_ROWS = [
    pytest.param(tls_to("a.example.com"), [], id="own-host"),
    pytest.param(tls_to("WWW.A.example.com."), [], id="under-own-wildcard-variant"),
    pytest.param(
        tls_to("a.example.com", "Shop.Example.ORG."),
        [(f"{SNI}[1]", "host-ownership", "tenant-b")],
        id="other-tenants-host",
    ),
    pytest.param(
        tls_to("*.example.com"),
        [(f"{SNI}[0]", "host-ownership", "tenant-b")],
        id="wildcard-over-other-claims",
    ),
    pytest.param(
        tls_to("api.example.net"), [(f"{SNI}[0]", "host-unclaimed", "unclaimed")], id="unclaimed"
    ),
    pytest.param(
        tls_to("db.tenant-b.svc.cluster.local"),
        [(f"{SNI}[0]", "host-ownership", "tenant-b")],
        id="other-tenants-service",
    ),
    pytest.param(tls_to("*"), [(f"{SNI}[0]", "host-ownership", "nobody")], id="star"),
    pytest.param(tls_to("exa_mple.com"), [(f"{SNI}[0]", "host-invalid", None)], id="invalid"),
    pytest.param(
        [{"match": [{"port": 443}], "route": [to("reviews")]}], [], id="no-sni-hosts-uses-hosts"
    ),
    pytest.param(
        [
            {"match": [{"sniHosts": ["a.example.com"]}], "route": [to("reviews")]},
            {"match": [{"port": 8443}, {"sniHosts": ["shop.example.org"]}], "route": []},
        ],
        [("spec.tls[1].match[1].sniHosts[0]", "host-ownership", "tenant-b")],
        id="second-rule-second-match",
    ),
]


@pytest.mark.parametrize(("tls", "expected"), SNI_ROWS)
def test_sni_hosts_on_a_gateway_are_hosts(tls: list[dict[str, Any]], expected: list[Any]) -> None:
    decision = validate(request_of(derive(VS_CREATE, spec=vs([SHARED_GATEWAY], tls=tls))))
    assert [(v.field, v.rule, v.owner) for v in decision.violations] == expected
    assert decision.allowed is (not expected)
    # Mesh-only, the VirtualService reaches only its own namespace's proxies: not limited.
    mesh_only = derive(VS_CREATE, spec=vs(["mesh"], tls=tls, exportTo=["."]))
    assert validate(request_of(mesh_only)).allowed


TCP_TO_OWN = [{"route": [to("db")]}]

# (gateways, exportTo, tcp, expected [(field, rule)]) of a VirtualService tenant-a/reviews.
SHARED_TCP_ROWS = [
    pytest.param(
        [SHARED_GATEWAY],
        [".", "istio-system"],
        TCP_TO_OWN,
        [("spec.gateways[0]", "shared-gateway")],
        id="shared-gateway",
    ),
    pytest.param(
        ["mesh", "public-gateway.istio-system"],
        [".", "istio-system"],
        TCP_TO_OWN,
        [("spec.gateways[1]", "shared-gateway")],
        id="shared-gateway-legacy-dotted-form",
    ),
    pytest.param(["tenant-a-dev/gw"], [".", "tenant-a-dev"], TCP_TO_OWN, [], id="same-tenant"),
    pytest.param(["edge"], ["."], TCP_TO_OWN, [], id="own-namespace-gateway"),
    pytest.param(["mesh"], ["."], TCP_TO_OWN, [], id="mesh-only"),
    pytest.param([SHARED_GATEWAY], [".", "istio-system"], [], [], id="shared-no-tcp"),
]


@pytest.mark.parametrize(("gateways", "export_to", "tcp", "expected"), SHARED_TCP_ROWS)
def test_shared_gateway_tcp(
    gateways: list[str], export_to: list[str], tcp: list[Any], expected: list[Any]
) -> None:
    spec = vs(gateways, tcp=tcp, exportTo=export_to)
    decision = validate(request_of(derive(VS_CREATE, spec=spec)))
    assert [(v.field, v.rule) for v in decision.violations] == expected
    for field, _ in expected:
        index = int(field.removeprefix("spec.gateways[").removesuffix("]"))
        assert (
            f'VirtualService tenant-a/reviews: {field} "{gateways[index]}" is shared by every '
            "tenant: the routes of spec.tcp would take the whole of each TCP or TLS-terminating "
            "server they match on it, other tenants' hosts too. Fix: route HTTP by host, or TLS "
            "by SNI (spec.tls[].match[].sniHosts), on the shared gateway, or bind the TCP routes "
            "to a gateway of your tenant"
        ) in message_of(decision)


def test_message_says_why_and_how_to_fix() -> None:
    spec = vs(
        [SHARED_GATEWAY], http=[{"route": [to("reviews")], "mirror": {"host": "admin.tenant-b"}}]
    )
    decision = validate(request_of(derive(VS_CREATE, spec=spec)))
    assert message_of(decision) == (
        'VirtualService tenant-a/reviews: spec.http[0].mirror.host "admin.tenant-b" belongs to '
        'tenant "tenant-b" (a service name of namespace "tenant-b"): a VirtualService bound to a '
        'gateway would publish it. Fix: route only services of tenant "tenant-a" (e.g. reviews, '
        'reviews.tenant-a.svc.cluster.local), or hosts claimed by tenant "tenant-a": '
        "a.example.com, *.a.example.com, shop.example.com"
    )


@pytest.mark.parametrize(
    ("sections", "field"),
    [
        pytest.param({"http": {"route": []}}, "spec.http", id="http-map"),
        pytest.param({"http": [{"route": "reviews"}]}, "spec.http[0].route", id="route-string"),
        pytest.param(
            {"http": [{"route": [{"destination": "reviews"}]}]},
            "spec.http[0].route[0].destination",
            id="destination-string",
        ),
        pytest.param(
            {"http": [{"route": [{"destination": {}}]}]},
            "spec.http[0].route[0].destination.host",
            id="no-host",
        ),
        pytest.param(
            {"http": [{"mirror": {"host": 1}}]}, "spec.http[0].mirror.host", id="mirror-host-number"
        ),
        pytest.param({"tcp": ["x"]}, "spec.tcp[0]", id="tcp-string"),
        pytest.param(
            {"http": [{"delegate": {"namespace": ["x"]}}]},
            "spec.http[0].delegate.namespace",
            id="delegate-ns-list",
        ),
        pytest.param({"tls": [{"match": "x"}]}, "spec.tls[0].match", id="tls-match-string"),
        pytest.param({"tls": [{"match": [7]}]}, "spec.tls[0].match[0]", id="tls-match-number"),
        pytest.param(
            {"tls": [{"match": [{"sniHosts": "a.example.com"}]}]},
            "spec.tls[0].match[0].sniHosts",
            id="sni-hosts-string",
        ),
        pytest.param(
            {"tls": [{"match": [{"sniHosts": [None]}]}]},
            "spec.tls[0].match[0].sniHosts[0]",
            id="sni-host-null",
        ),
    ],
)
def test_wrong_shapes_are_refused_not_admitted(sections: dict[str, Any], field: str) -> None:
    decision = validate(request_of(derive(VS_CREATE, spec=vs([SHARED_GATEWAY], **sections))))
    assert not decision.allowed
    assert decision.response["response"]["status"]["code"] == 400
    assert f"{field} must be" in message_of(decision)
