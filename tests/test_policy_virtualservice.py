"""VirtualService (SPEC.md §3, §6): host ownership, collisions, gateways, messages, enforcement."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from tests.builders import (
    ENFORCEMENT_LABEL,
    VS_CREATE,
    VS_CREATE_DRYRUN,
    VS_CREATE_TWIN,
    VS_DELETE,
    VS_DELETE_DRYRUN,
    VS_UPDATE,
    VS_UPDATE_DRYRUN,
    VS_V1ALPHA3,
    VS_V1BETA1,
    default_config,
    make_config,
    make_request,
    make_view,
    message_of,
    mutate,
    patch_of,
    validate,
    vs_request,
    vs_spec,
    without_uid,
)
from webhook.config.model import Config
from webhook.policies import virtualservice as vs_policy
from webhook.policies.ownership import host_problem
from webhook.tenancy.hosts import route_key
from webhook.tenancy.snapshot import RouteRef

ANY = object()  # any owner: the row only fixes that the host is denied, and by which rule


@functools.cache
def config_for(unclaimed: str = "deny", domain: str = "cluster.local") -> Config:
    if (unclaimed, domain) == ("deny", "cluster.local"):
        return default_config()
    return make_config(unclaimedHosts=unclaimed, clusterDomain=domain)


def _verdict(problem: Any) -> tuple[str, str | None] | None:
    return None if problem is None else (problem.rule, problem.owner)


def _matches(actual: tuple[str, str | None] | None, expected: Any) -> bool:
    if expected is None or actual is None:
        return actual == expected
    rule, owner = expected
    return actual[0] == rule and (owner is ANY or actual[1] == owner)


OWN = None  # allowed
TENANT_A = ("host-ownership", "tenant-a")
TENANT_B = ("host-ownership", "tenant-b")
PLATFORM = ("host-ownership", "platform")
NOBODY = ("host-ownership", "nobody")
UNCLAIMED = ("host-unclaimed", "unclaimed")
INVALID = ("host-invalid", None)

# (namespace of the VirtualService, host, unclaimedHosts, verdict). Tenants as in
# tests/builders.py: tenant-a (namespaces tenant-a, tenant-a-dev) claims a.example.com,
# *.a.example.com, shop.example.com; tenant-b claims shop.example.org, *.b.example.com;
# tenant-c claims nothing; istio-system, kube-system and legacy are platform namespaces.
HOST_ROWS = [
    # --- a tenant's own hosts
    pytest.param("tenant-a", "reviews", "deny", OWN, id="short"),
    pytest.param("tenant-a", "REVIEWS.", "deny", OWN, id="short-upper-dot"),
    pytest.param("tenant-a", "reviews.tenant-a", "deny", OWN, id="svc.own-ns"),
    pytest.param("tenant-a", "reviews.tenant-a-dev", "deny", OWN, id="svc.same-tenant-ns"),
    pytest.param("tenant-a", "reviews.tenant-a.svc", "deny", OWN, id="svc.own-ns.svc"),
    pytest.param("tenant-a", "reviews.tenant-a.svc.cluster.local", "deny", OWN, id="own-fqdn"),
    pytest.param(
        "tenant-a", "Reviews.Tenant-A.SVC.cluster.local.", "deny", OWN, id="own-fqdn-variant"
    ),
    pytest.param(
        "tenant-a", "reviews.tenant-a-dev.svc.cluster.local", "deny", OWN, id="same-tenant-fqdn"
    ),
    pytest.param(
        "tenant-a", "*.tenant-a.svc.cluster.local", "deny", OWN, id="own-namespace-wildcard"
    ),
    pytest.param(
        "tenant-a", "*.tenant-a-dev.svc.cluster.local", "deny", OWN, id="same-tenant-ns-wildcard"
    ),
    pytest.param("tenant-a", "*.tenant-a", "deny", OWN, id="star.own-ns"),
    pytest.param("tenant-a", "a.example.com", "deny", OWN, id="own-exact-claim"),
    pytest.param("tenant-a", "www.a.example.com", "deny", OWN, id="under-own-wildcard-claim"),
    pytest.param("tenant-a", "*.a.example.com", "deny", OWN, id="own-wildcard-claim"),
    pytest.param("tenant-a", "*.x.a.example.com", "deny", OWN, id="wildcard-under-own-claim"),
    pytest.param("tenant-a", "Shop.Example.COM.", "deny", OWN, id="own-claim-variant"),
    pytest.param(
        "tenant-a-dev", "shop.example.com", "deny", OWN, id="claim-from-other-ns-of-tenant"
    ),
    pytest.param("tenant-b", "x.b.example.com", "deny", OWN, id="tenant-b-under-own-wildcard"),
    pytest.param("tenant-c", "api.example.net", "allow", OWN, id="unclaimed-allowed"),
    pytest.param("tenant-c", "*.example.net", "allow", OWN, id="unclaimed-wildcard-allowed"),
    # --- another tenant's services, in every form Istio reads
    pytest.param("tenant-a", "reviews.tenant-b", "deny", TENANT_B, id="svc.other-ns"),
    pytest.param("tenant-a", "REVIEWS.TENANT-B.", "deny", TENANT_B, id="svc.other-ns-variant"),
    pytest.param("tenant-a", "reviews.tenant-b.svc", "deny", TENANT_B, id="svc.other-ns.svc"),
    pytest.param(
        "tenant-a", "reviews.tenant-b.svc.cluster.local", "deny", TENANT_B, id="other-fqdn"
    ),
    pytest.param(
        "tenant-a", "Reviews.Tenant-B.Svc.Cluster.Local.", "deny", TENANT_B, id="other-fqdn-variant"
    ),
    pytest.param(
        "tenant-a",
        "pod-0.reviews.tenant-b.svc.cluster.local",
        "deny",
        TENANT_B,
        id="below-other-service",
    ),
    pytest.param(
        "tenant-a", "*.tenant-b.svc.cluster.local", "deny", TENANT_B, id="other-namespace-wildcard"
    ),
    pytest.param("tenant-a", "*.tenant-b.svc", "deny", TENANT_B, id="other-ns-wildcard-svc"),
    pytest.param("tenant-a", "*.tenant-b", "deny", TENANT_B, id="star.other-ns"),
    pytest.param(
        "tenant-b",
        "reviews.tenant-a-dev.svc.cluster.local",
        "deny",
        TENANT_A,
        id="tenant-b-on-a-dev",
    ),
    # --- another tenant's claimed names
    pytest.param("tenant-a", "shop.example.org", "deny", TENANT_B, id="other-exact-claim"),
    pytest.param("tenant-a", "SHOP.example.ORG.", "deny", TENANT_B, id="other-exact-claim-variant"),
    pytest.param(
        "tenant-a", "api.b.example.com", "deny", TENANT_B, id="exact-under-other-wildcard"
    ),
    pytest.param(
        "tenant-a", "api.b.example.com", "allow", TENANT_B, id="exact-under-other-wildcard-allow"
    ),
    pytest.param("tenant-a", "*.b.example.com", "deny", TENANT_B, id="other-wildcard-claim"),
    pytest.param(
        "tenant-a", "*.x.b.example.com", "deny", TENANT_B, id="wildcard-under-other-claim"
    ),
    pytest.param("tenant-b", "shop.example.com", "deny", TENANT_A, id="tenant-b-on-a-exact"),
    pytest.param("tenant-b", "Shop.Example.Com.", "deny", TENANT_A, id="tenant-b-on-a-variant"),
    pytest.param("tenant-b", "*.a.example.com", "deny", TENANT_A, id="tenant-b-on-a-wildcard"),
    pytest.param("tenant-b", "a.example.com", "allow", TENANT_A, id="tenant-b-on-a-allow-mode"),
    # --- wildcards that would capture another tenant's names
    pytest.param(
        # capturing another tenant's claims is reported before "unclaimed": claiming the
        # wildcard would not make it acceptable
        "tenant-b",
        "*.example.com",
        "deny",
        TENANT_A,
        id="star.example.com-unclaimed-deny",
    ),
    pytest.param("tenant-b", "*.example.com", "allow", TENANT_A, id="star.example.com-over-shop"),
    pytest.param(
        "tenant-c",
        "*.com",
        "allow",
        ("host-ownership", "tenant-a, tenant-b"),
        id="star.com",
    ),
    pytest.param("tenant-a", "*.example.org", "allow", TENANT_B, id="star-over-other-exact"),
    # --- the platform's names
    pytest.param(
        "tenant-a",
        "istio-ingressgateway.istio-system.svc.cluster.local",
        "deny",
        PLATFORM,
        id="platform-fqdn",
    ),
    pytest.param("tenant-a", "kube-dns.kube-system", "deny", PLATFORM, id="platform-svc.ns"),
    pytest.param("tenant-a", "reviews.legacy", "deny", PLATFORM, id="unlabelled-namespace"),
    pytest.param(
        "tenant-a", "*.istio-system.svc.cluster.local", "deny", PLATFORM, id="platform-ns-wildcard"
    ),
    pytest.param(
        "tenant-a", "reviews.no-such-ns.svc.cluster.local", "deny", PLATFORM, id="unknown-namespace"
    ),
    pytest.param("tenant-a", "reviews.future-ns", "deny", PLATFORM, id="x.y-not-yet-a-namespace"),
    pytest.param(
        "tenant-a", "reviews.future-ns", "allow", PLATFORM, id="x.y-not-yet-a-namespace-allow"
    ),
    pytest.param("tenant-a", "foo.cluster.local", "deny", PLATFORM, id="name-in-cluster-domain"),
    pytest.param(
        "tenant-a", "tenant-b.svc.cluster.local", "deny", PLATFORM, id="ns.svc.cluster-domain"
    ),
    pytest.param("tenant-a", "foo.svc", "deny", PLATFORM, id="x.svc"),
    # --- nobody's
    pytest.param("tenant-a", "*", "deny", NOBODY, id="star"),
    pytest.param("tenant-a", "*", "allow", NOBODY, id="star-allow-mode"),
    pytest.param("tenant-a", "*.svc.cluster.local", "deny", NOBODY, id="star.svc.cluster.local"),
    pytest.param("tenant-a", "*.cluster.local", "deny", NOBODY, id="star.cluster.local"),
    pytest.param("tenant-a", "*.svc", "deny", NOBODY, id="star.svc"),
    pytest.param(
        "tenant-a", "cluster.local", "deny", ("host-ownership", ANY), id="cluster-domain-itself"
    ),
    # --- unclaimed external names
    pytest.param("tenant-a", "api.example.net", "deny", UNCLAIMED, id="unclaimed-denied"),
    pytest.param("tenant-a", "*.example.net", "deny", UNCLAIMED, id="unclaimed-wildcard-denied"),
    pytest.param("tenant-a", "b.example.com", "deny", UNCLAIMED, id="base-of-wildcard-claim"),
    pytest.param("tenant-a", "b.example.com", "allow", OWN, id="base-of-wildcard-claim-allow"),
    # two labels read as `svc.ns` of a namespace that may come later: the platform's
    pytest.param("tenant-a", "example.com", "allow", PLATFORM, id="two-label-external-name"),
    # --- not host names
    pytest.param("tenant-a", "a..example.com", "deny", INVALID, id="empty-label"),
    pytest.param("tenant-a", "sh\u00f6p.example.com", "allow", INVALID, id="non-ascii"),
    pytest.param("tenant-b", "shop.ex\u0430mple.com", "allow", INVALID, id="cyrillic-look-alike"),
    pytest.param("tenant-a", "*x.example.com", "allow", INVALID, id="partial-star"),
    pytest.param("tenant-a", "a.*.example.com", "allow", INVALID, id="inner-star"),
    pytest.param("tenant-a", "", "allow", INVALID, id="empty"),
    pytest.param("tenant-a", "reviews:9080", "allow", INVALID, id="with-port"),
]

# A custom clusterDomain moves every in-mesh rule with it.
CUSTOM_DOMAIN_ROWS = [
    pytest.param("reviews.tenant-a.svc.corp.internal", OWN, id="own-fqdn"),
    pytest.param("reviews.tenant-b.svc.corp.internal", TENANT_B, id="other-fqdn"),
    pytest.param("*.tenant-b.svc.corp.internal", TENANT_B, id="other-namespace-wildcard"),
    pytest.param("*.corp.internal", NOBODY, id="star.domain"),
    pytest.param("*.svc.corp.internal", NOBODY, id="star.svc.domain"),
    pytest.param("foo.corp.internal", PLATFORM, id="name-in-domain"),
    pytest.param("reviews.tenant-b.svc", TENANT_B, id="svc.ns.svc"),
]


@pytest.mark.parametrize(("namespace", "host", "unclaimed", "expected"), HOST_ROWS)
def test_host_problem(namespace: str, host: str, unclaimed: str, expected: Any) -> None:
    config = config_for(unclaimed)
    view = make_view()
    tenant = view.tenant_of(namespace, config)
    assert tenant is not None
    actual = _verdict(host_problem(host, namespace, tenant, view, config))
    assert _matches(actual, expected), actual


@pytest.mark.parametrize(("namespace", "host", "unclaimed", "expected"), HOST_ROWS)
def test_host_through_decide(namespace: str, host: str, unclaimed: str, expected: Any) -> None:
    request = vs_request([host], namespace=namespace, name="hosts-test")
    decision = validate(request, make_view(), config_for(unclaimed))
    assert decision.allowed is (expected is None), message_of(decision)
    if expected is None:
        return
    message = message_of(decision)
    assert message.startswith("VirtualService " + namespace + "/hosts-test: spec.hosts[0] ")
    assert "Fix: " in message
    owner = expected[1]
    if isinstance(owner, str) and owner.startswith("tenant-"):
        for name in owner.split(", "):
            assert f'"{name}"' in message


@pytest.mark.parametrize(("host", "expected"), CUSTOM_DOMAIN_ROWS)
def test_host_with_custom_cluster_domain(host: str, expected: Any) -> None:
    config = config_for("deny", "corp.internal")
    problem = host_problem(host, "tenant-a", "tenant-a", make_view(), config)
    assert _matches(_verdict(problem), expected)


def test_a_wildcard_over_a_namespace_yet_to_come_is_not_a_tenants() -> None:
    # `x.future-ns` is kept for the platform so that a namespace created later cannot be
    # captured (see HOST_ROWS); `*.future-ns` captures every `svc.future-ns` the same way.
    config = config_for("allow")
    problem = host_problem("*.future-ns", "tenant-a", "tenant-a", make_view(), config)
    assert problem is not None, "*.future-ns allowed with unclaimedHosts: allow"
    assert problem.rule == "host-ownership"


def test_wildcard_message_names_only_the_captured_claims() -> None:
    config = make_config(
        unclaimedHosts="allow",
        tenants={"tenant-a": {"hosts": ["shop.example.com", "myexample.com"]}},
    )
    problem = host_problem("*.example.com", "tenant-b", "tenant-b", make_view(), config)
    assert problem is not None
    assert "shop.example.com" in problem.problem
    # `myexample.com` is not under `*.example.com`: naming it would mislead the reader.
    assert "myexample.com" not in problem.problem


# --- collisions with existing VirtualServices ------------------------------------------------


def _routes(*entries: tuple[str, str, str, str]) -> dict[str, set[RouteRef]]:
    """{route_key: {(kind, namespace, name)}} from (host, namespace of the VS, namespace, name)."""
    routes: dict[str, set[RouteRef]] = {}
    for host, vs_namespace, namespace, name in entries:
        key = route_key(host, vs_namespace, "cluster.local")
        assert key is not None
        routes.setdefault(key, set()).add(RouteRef("VirtualService", namespace, name))
    return routes


COLLISION_ROWS = [
    pytest.param(
        ["api.example.net"],
        _routes(("api.example.net", "tenant-b", "tenant-b", "api")),
        "CREATE",
        ("host-collision", "tenant-b"),
        id="routed-by-other-tenant",
    ),
    pytest.param(
        ["API.Example.NET."],
        _routes(("api.example.net", "tenant-b", "tenant-b", "api")),
        "CREATE",
        ("host-collision", "tenant-b"),
        id="variant-of-host-routed-by-other-tenant",
    ),
    pytest.param(
        ["api.example.net"],
        _routes(
            ("api.example.net", "tenant-a", "tenant-a", "reviews"),
            ("api.example.net", "tenant-b", "tenant-b", "api"),
        ),
        "UPDATE",
        ("host-collision", "tenant-b"),
        id="routed-by-itself-and-other-tenant",
    ),
    pytest.param(
        ["api.example.net", "reviews"],
        _routes(
            ("api.example.net", "tenant-a", "tenant-a", "reviews"),
            ("reviews", "tenant-a", "tenant-a", "reviews"),
        ),
        "UPDATE",
        None,
        id="update-does-not-collide-with-itself",
    ),
    pytest.param(
        ["reviews.tenant-a.svc.cluster.local"],
        _routes(("reviews", "tenant-a", "tenant-a", "reviews")),
        "UPDATE",
        None,
        id="update-short-name-to-fqdn-of-itself",
    ),
    pytest.param(
        ["a.example.com"],
        _routes(("a.example.com", "tenant-a-dev", "tenant-a-dev", "frontend")),
        "CREATE",
        None,
        id="same-tenant-other-vs",
    ),
    pytest.param(
        ["api.example.net"],
        _routes(("other.example.net", "tenant-b", "tenant-b", "api")),
        "CREATE",
        None,
        id="other-host-routed",
    ),
    pytest.param(
        ["api.example.net"],
        _routes(("*.example.net", "tenant-b", "tenant-b", "api")),
        "CREATE",
        ("host-collision", "tenant-b"),
        id="exact-host-under-another-tenants-routed-wildcard",
    ),
    pytest.param(
        ["api.example.net"],
        _routes(("*.example.net", "tenant-a-dev", "tenant-a-dev", "wild")),
        "CREATE",
        None,
        id="exact-host-under-own-tenants-routed-wildcard",
    ),
]


@pytest.mark.parametrize(("hosts", "routes", "operation", "expected"), COLLISION_ROWS)
def test_collision_with_existing_virtualservice(
    hosts: list[str], routes: dict[str, set[RouteRef]], operation: str, expected: Any
) -> None:
    config = config_for("allow")
    view = make_view(routes=routes)
    violations = vs_policy.check_hosts(hosts, "tenant-a", "reviews", "tenant-a", view, config)
    assert [(v.rule, v.owner) for v in violations] == ([] if expected is None else [expected])

    fixture = VS_UPDATE if operation == "UPDATE" else VS_CREATE
    request = vs_request(hosts, fixture=fixture, operation=operation)
    decision = validate(request, view, config)
    assert decision.allowed is (expected is None)
    if expected is not None:
        assert "VirtualService tenant-b/api" in message_of(decision)


# --- gateways --------------------------------------------------------------------------------

GATEWAY_ROWS = [
    pytest.param(["mesh"], [], set(), id="mesh"),
    pytest.param(["public-gateway"], [], set(), id="bare-name"),
    pytest.param(["tenant-a/public-gateway"], [], set(), id="same-namespace"),
    pytest.param(["tenant-a-dev/gw"], [], {"tenant-a-dev"}, id="same-tenant-other-namespace"),
    pytest.param(["istio-system/public-gateway"], [], {"istio-system"}, id="shared"),
    pytest.param(
        ["public-gateway.istio-system.svc.cluster.local"], [], {"istio-system"}, id="shared-legacy"
    ),
    pytest.param(["tenant-b/gw"], [(0, "tenant-b")], set(), id="other-tenant"),
    pytest.param(["istio-system/internal"], [(0, "platform")], set(), id="platform-not-shared"),
    pytest.param(
        ["kube-system/public-gateway"], [(0, "platform")], set(), id="shared-name-wrong-ns"
    ),
    pytest.param(["no-such-ns/gw"], [(0, "platform")], set(), id="unknown-namespace"),
    pytest.param(
        ["gw.tenant-b.svc.cluster.local"], [(0, "tenant-b")], set(), id="legacy-other-tenant"
    ),
    pytest.param(
        ["internal.istio-system.svc.cluster.local"], [(0, "platform")], set(), id="legacy-platform"
    ),
    pytest.param(
        ["mesh", "tenant-b/gw", "istio-system/public-gateway", "istio-system/internal"],
        [(1, "tenant-b"), (3, "platform")],
        {"istio-system"},
        id="mixed",
    ),
]


@pytest.mark.parametrize(("gateways", "violations", "namespaces"), GATEWAY_ROWS)
def test_judge_gateways(
    gateways: list[str], violations: list[tuple[int, str]], namespaces: set[str]
) -> None:
    judged = vs_policy.judge_gateways(
        gateways, "tenant-a", "tenant-a", make_view(), default_config()
    )
    assert [(v.field, v.owner) for v in judged.violations] == [
        (f"spec.gateways[{index}]", owner) for index, owner in violations
    ]
    assert judged.allowed_namespaces == namespaces


@pytest.mark.parametrize(("gateways", "violations", "namespaces"), GATEWAY_ROWS)
def test_gateways_through_decide(
    gateways: list[str], violations: list[tuple[int, str]], namespaces: set[str]
) -> None:
    export_to = [".", *sorted(namespaces)]
    decision = validate(vs_request(["reviews"], gateways=gateways, export_to=export_to))
    assert decision.allowed is not violations, message_of(decision)
    for index, _owner in violations:
        assert f"spec.gateways[{index}] {gateways[index]!r}".replace("'", '"') in message_of(
            decision
        )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param({"hosts": "reviews", "exportTo": ["."]}, "spec.hosts", id="hosts-not-a-list"),
        pytest.param(
            {"hosts": ["reviews", 7], "exportTo": ["."]}, "spec.hosts[1]", id="host-not-a-string"
        ),
        pytest.param(
            {"hosts": ["reviews"], "gateways": "mesh", "exportTo": ["."]},
            "spec.gateways",
            id="gateways-not-a-list",
        ),
        pytest.param(
            {"hosts": ["reviews"], "exportTo": "."}, "spec.exportTo", id="exportto-not-a-list"
        ),
        pytest.param(["reviews"], "spec", id="spec-not-an-object"),
    ],
)
def test_malformed_virtualservice_is_not_admitted(spec: Any, field: str) -> None:
    request = make_request(VS_CREATE, spec=spec)
    decisions = [validate(request)]
    if field in ("spec", "spec.exportTo"):  # what the mutating side reads
        decisions.append(mutate(request))
    for decision in decisions:
        response = decision.response["response"]
        assert response["allowed"] is False
        assert response["status"]["code"] == 400
        assert field in response["status"]["message"]


# --- check(): the whole object ---------------------------------------------------------------


def test_check_reports_every_violation_with_its_field() -> None:
    spec = vs_spec(
        ["reviews", "shop.example.org", "*", "reviews.tenant-b"],
        gateways=["mesh", "tenant-b/private"],
        export_to=["*"],
    )
    obj = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "spec": spec}
    violations = vs_policy.check(
        obj, "tenant-a", "frontend", "tenant-a", make_view(), default_config()
    )
    assert [(v.field, v.value, v.owner) for v in violations] == [
        ("spec.hosts[1]", '"shop.example.org"', "tenant-b"),
        ("spec.hosts[2]", '"*"', "nobody"),
        ("spec.hosts[3]", '"reviews.tenant-b"', "tenant-b"),
        ("spec.gateways[1]", '"tenant-b/private"', "tenant-b"),
        ("spec.exportTo[0]", '"*"', None),
    ]
    assert all(v.fix for v in violations)


# --- responses -------------------------------------------------------------------------------


def test_denial_lists_every_violation() -> None:
    request = vs_request(
        ["reviews", "shop.example.org", "*", "reviews.tenant-b"],
        gateways=["mesh", "tenant-b/private"],
        export_to=["*"],
        name="frontend",
    )
    decision = validate(request)
    envelope = decision.response
    assert envelope["apiVersion"] == "admission.k8s.io/v1"
    assert envelope["kind"] == "AdmissionReview"
    response = envelope["response"]
    assert response["uid"] == request.uid
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert response["status"]["reason"] == "Forbidden"
    assert "patch" not in response

    lines = response["status"]["message"].splitlines()
    assert lines[0] == "5 tenant-guard violations:"
    expected = [
        ("spec.hosts[1]", '"shop.example.org"', 'tenant "tenant-b"'),
        ("spec.hosts[2]", '"*"', "no tenant may route it"),
        ("spec.hosts[3]", '"reviews.tenant-b"', 'tenant "tenant-b"'),
        ("spec.gateways[1]", '"tenant-b/private"', 'tenant "tenant-b"'),
        ("spec.exportTo[0]", '"*"', "every namespace"),
    ]
    assert len(lines) == 1 + len(expected)
    for number, (line, (field, value, owner)) in enumerate(
        zip(lines[1:], expected, strict=True), 1
    ):
        assert line.startswith(f"({number}) VirtualService tenant-a/frontend: {field} {value} ")
        assert owner in line
        assert "Fix: " in line


def test_single_violation_is_one_readable_line() -> None:
    message = message_of(validate(vs_request(["shop.example.org"], name="shop")))
    assert "\n" not in message
    assert message.startswith('VirtualService tenant-a/shop: spec.hosts[0] "shop.example.org" ')
    assert 'tenant "tenant-b"' in message
    assert "Fix: " in message


# --- the captured requests, judged as they are -----------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "fields"),
    [
        pytest.param(VS_CREATE, ["spec.exportTo"], id="create-short-host-no-exportto"),
        pytest.param(VS_UPDATE, [], id="update-exportto-dot"),
        pytest.param("virtualservice-update-label.json", [], id="update-label"),
        pytest.param(
            VS_UPDATE_DRYRUN, ["spec.hosts[1]", "spec.exportTo[0]"], id="update-dryrun-star"
        ),
        pytest.param(
            "virtualservice-create-exportto.json", ["spec.exportTo[1]"], id="exportto-other-tenant"
        ),
        pytest.param(
            "virtualservice-create-wildcard-hosts-gateways.json",
            ["spec.hosts[0]", "spec.exportTo[0]"],
            id="unclaimed-wildcard-and-export-star",
        ),
        pytest.param(
            "virtualservice-create-dryrun-star-host-gateway.json",
            ["spec.hosts[0]", "spec.gateways[0]", "spec.exportTo"],
            id="star-host-platform-gateway",
        ),
        pytest.param(VS_V1ALPHA3, ["spec.hosts[0]", "spec.exportTo"], id="v1alpha3-cross-tenant"),
        pytest.param(VS_V1BETA1, ["spec.exportTo"], id="v1beta1-server-side-apply"),
    ],
)
def test_captured_requests(fixture: str, fields: list[str]) -> None:
    decision = validate(make_request(fixture))
    assert [v.field for v in decision.violations] == fields
    assert decision.allowed is not fields


# --- create, update, delete, dry-run, versions -----------------------------------------------

SPECS = [
    pytest.param(vs_spec(["reviews"], export_to=["."]), id="allowed"),
    pytest.param(vs_spec(["reviews"]), id="no-exportto"),
    pytest.param(vs_spec(["reviews.tenant-b", "*"], export_to=["*"]), id="several-violations"),
    pytest.param(
        vs_spec(
            ["shop.example.com"],
            gateways=["istio-system/public-gateway"],
            export_to=[".", "istio-system"],
        ),
        id="shared-gateway",
    ),
    pytest.param(
        vs_spec(["api.example.net"], gateways=["tenant-b/gw"], export_to=["."]),
        id="unclaimed-and-other-gateway",
    ),
]


@pytest.mark.parametrize("spec", SPECS)
def test_dry_run_gives_the_same_answer(spec: dict[str, Any]) -> None:
    dry = make_request(VS_CREATE_DRYRUN, spec=spec)
    wet = make_request(VS_CREATE_TWIN, spec=spec)
    assert (dry.dry_run, wet.dry_run) == (True, False)
    assert (dry.name, dry.namespace) == (wet.name, wet.namespace)
    dry_decision, wet_decision = validate(dry), validate(wet)
    assert dry_decision.response["response"]["uid"] == dry.uid
    assert wet_decision.response["response"]["uid"] == wet.uid
    assert without_uid(dry_decision) == without_uid(wet_decision)
    # the mutating side, from the mutating webhook's copies of the same two commands
    dry_m = make_request(VS_CREATE_DRYRUN, mutating=True, spec=spec)
    wet_m = make_request(VS_CREATE_TWIN, mutating=True, spec=spec)
    assert without_uid(mutate(dry_m)) == without_uid(mutate(wet_m))


@pytest.mark.parametrize("spec", SPECS)
def test_dry_run_update_gives_the_same_answer(spec: dict[str, Any]) -> None:
    dry = make_request(VS_UPDATE_DRYRUN, spec=spec)
    wet = make_request(VS_UPDATE, spec=spec)
    assert (dry.dry_run, wet.dry_run) == (True, False)
    assert without_uid(validate(dry)) == without_uid(validate(wet))


@pytest.mark.parametrize("fixture", [VS_V1ALPHA3, VS_V1BETA1])
@pytest.mark.parametrize("spec", SPECS)
def test_older_versions_are_judged_like_v1(fixture: str, spec: dict[str, Any]) -> None:
    old = make_request(fixture, spec=spec)
    assert old.kind.version != "v1"
    assert old.obj is not None and old.obj["apiVersion"] != "networking.istio.io/v1"
    twin = make_request(VS_CREATE, namespace=old.namespace, name=old.name, spec=spec)
    assert twin.kind.version == "v1"
    assert without_uid(validate(old)) == without_uid(validate(twin))


@pytest.mark.parametrize(
    ("old_hosts", "new_hosts", "allowed"),
    [
        pytest.param(["reviews"], ["reviews"], True, id="unchanged"),
        pytest.param(["reviews"], ["reviews.tenant-b"], False, id="update-steals-a-host"),
        pytest.param(["reviews.tenant-b"], ["reviews"], True, id="update-fixes-a-host"),
        # An object that predates tenant-guard is not grandfathered: the new object is judged.
        pytest.param(["reviews.tenant-b"], ["reviews.tenant-b"], False, id="old-violation-kept"),
    ],
)
def test_update_judges_the_new_object(
    old_hosts: list[str], new_hosts: list[str], allowed: bool
) -> None:
    request = make_request(
        VS_UPDATE,
        spec=vs_spec(new_hosts, export_to=["."]),
        old_spec=vs_spec(old_hosts, export_to=["."]),
    )
    assert request.operation == "UPDATE" and request.old_object is not None
    assert validate(request).allowed is allowed


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(lambda: make_request(VS_DELETE), id="captured-delete"),
        pytest.param(lambda: make_request(VS_DELETE_DRYRUN), id="captured-delete-dryrun"),
        pytest.param(
            lambda: make_request(
                VS_CREATE, operation="DELETE", spec=vs_spec(["*"], export_to=["*"])
            ),
            id="delete-of-violating-object",
        ),
    ],
)
def test_delete_is_always_allowed(request_: Any) -> None:
    request = request_()
    assert request.operation == "DELETE"
    for decision in (validate(request), mutate(request)):
        assert decision.allowed
        assert decision.response["response"] == {"uid": request.uid, "allowed": True}


@pytest.mark.parametrize(
    "namespace",
    [
        pytest.param("istio-system", id="unlabelled"),
        pytest.param("kube-system", id="kube-system"),
        pytest.param("legacy", id="labelled-without-tenant-label"),
        pytest.param("not-in-view", id="unknown"),
    ],
)
def test_platform_namespaces_are_not_judged(namespace: str) -> None:
    request = vs_request(["*", "shop.example.com"], namespace=namespace, export_to=["*"])
    for decision in (validate(request), mutate(request)):
        assert decision.response["response"] == {"uid": request.uid, "allowed": True}

    request = vs_request(["reviews"], namespace=namespace, export_to=None)
    assert patch_of(mutate(request)) is None


# --- enforcement and exemptions --------------------------------------------------------------

VIOLATING = {"hosts": ["reviews.tenant-b", "*"], "export_to": ["*"]}


def _violating(**changes: Any) -> Any:
    return vs_request(VIOLATING["hosts"], export_to=VIOLATING["export_to"], **changes)


@pytest.mark.parametrize(
    ("global_mode", "namespace_label", "denied"),
    [
        pytest.param("enforce", None, True, id="global-enforce"),
        pytest.param("warn", None, False, id="global-warn"),
        pytest.param("enforce", "warn", False, id="namespace-warn-over-global-enforce"),
        pytest.param("warn", "enforce", True, id="namespace-enforce-over-global-warn"),
        pytest.param("enforce", "off", True, id="unknown-label-value-keeps-global"),
        pytest.param("warn", "Enforce", False, id="label-value-is-case-sensitive"),
    ],
)
def test_enforcement_modes(global_mode: str, namespace_label: str | None, denied: bool) -> None:
    config = make_config(enforcement=global_mode)
    labels = {"tenant-a": {ENFORCEMENT_LABEL: namespace_label}} if namespace_label else None
    request = _violating()
    decision = validate(request, make_view(labels=labels), config)
    response = decision.response["response"]
    assert response["allowed"] is not denied
    assert response["uid"] == request.uid
    if denied:
        assert response["status"]["code"] == 403
        assert "warnings" not in response
        return
    assert "status" not in response
    warnings = response["warnings"]
    assert len(warnings) == 3
    for warning, field in zip(
        warnings, ["spec.hosts[0]", "spec.hosts[1]", "spec.exportTo[0]"], strict=True
    ):
        assert "VirtualService tenant-a/reviews" in warning
        assert field in warning
        assert len(warning) <= 240


def test_warn_label_on_another_namespace_does_not_apply() -> None:
    view = make_view(labels={"tenant-a-dev": {ENFORCEMENT_LABEL: "warn"}})
    assert not validate(_violating(), view).allowed


def test_warn_mode_allows_a_clean_object_without_warnings() -> None:
    decision = validate(vs_request(["reviews"]), config=make_config(enforcement="warn"))
    assert decision.response["response"] == {
        "uid": decision.response["response"]["uid"],
        "allowed": True,
    }


EXEMPT = make_config(exempt={"users": ["break-glass@example.com"], "groups": ["platform-oncall"]})


@pytest.mark.parametrize(
    ("user", "allowed"),
    [
        pytest.param({"username": "break-glass@example.com", "groups": []}, True, id="exempt-user"),
        pytest.param(
            {"username": "bob@example.com", "groups": ["system:authenticated", "platform-oncall"]},
            True,
            id="exempt-group",
        ),
        pytest.param(
            {"username": "Break-Glass@example.com", "groups": []}, False, id="user-name-is-exact"
        ),
        pytest.param(
            {"username": "bob@example.com", "groups": ["platform-oncall-2"]},
            False,
            id="other-group",
        ),
        pytest.param(
            {"username": "kubernetes-admin", "groups": ["system:masters"]},
            False,
            id="label-admin-is-not-exempt",
        ),
    ],
)
def test_exempt_users_and_groups(user: dict[str, Any], allowed: bool) -> None:
    request = _violating(user=user)
    decision = validate(request, config=EXEMPT)
    assert decision.allowed is allowed
    if allowed:
        assert decision.response["response"] == {"uid": request.uid, "allowed": True}
