"""Admission of Tenant objects (SPEC.md §12): malformed or colliding claims refused naming the
owner, DELETE refused while namespaces carry the label; reviews derived from captured ones."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    ADMIN,
    make_config,
    make_view,
    message_of,
    request_of,
    tenant_entry,
    tenant_review,
    validate,
    view_with_tenants,
)

SHOP = {"hosts": ["shop.example.net", "*.shop.example.net"]}


def test_a_well_formed_tenant_is_admitted() -> None:
    decision = validate(request_of(tenant_review("shop", SHOP)))
    assert decision.allowed, message_of(decision)
    assert decision.kind == "Tenant"


def test_a_claim_under_another_tenants_wildcard_is_admitted() -> None:
    # The most specific claim wins, as in the config: not an overlap that cannot be resolved.
    decision = validate(request_of(tenant_review("blog", {"hosts": ["blog.a.example.com"]})))
    assert decision.allowed, message_of(decision)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"hosts": ["shop.example.com"]},
            'Tenant shop: spec.hosts[0] "shop.example.com" is already claimed by tenant '
            '"tenant-a" (in the tenant-guard config). Fix: claim only names no other tenant '
            "claims",
            id="config-tenants-host",
        ),
        pytest.param(
            {"hosts": ["SHOP.example.com."]},
            'spec.hosts[0] "SHOP.example.com." is already claimed by tenant "tenant-a"',
            id="config-tenants-host-other-case-trailing-dot",
        ),
        pytest.param(
            {"hosts": ["*.b.example.com"]},
            'spec.hosts[0] "*.b.example.com" is already claimed by tenant "tenant-b"',
            id="same-wildcard",
        ),
        pytest.param(
            {"hosts": ["*"]},
            'spec.hosts[0] "*" cannot be claimed: it would capture every host in the mesh',
            id="star",
        ),
        pytest.param(
            {"hosts": ["reviews.tenant-b.svc.cluster.local"]},
            "inside the mesh; claims are for external host names only",
            id="service-name",
        ),
        pytest.param(
            {"hosts": ["*.svc"]},
            "inside the mesh",
            id="every-service",
        ),
        pytest.param(
            {"hosts": ["a..example.com"]},
            'spec.hosts[0] "a..example.com" is not a valid host name',
            id="empty-label",
        ),
        pytest.param(
            {"hosts": ["shöp.example.com"]},
            "non-ASCII host name",
            id="non-ascii",
        ),
        pytest.param(
            {"hosts": [f"h{i}.example.net" for i in range(1001)]},
            "spec.hosts (1001 entries) is more than the 1000 claims a Tenant may hold",
            id="too-many-hosts",
        ),
        pytest.param(
            {"proxy": {"cpu": "2"}},
            "Tenant shop: spec.proxy proxy cpu '2' is larger than cpuLimit '500m'",
            id="request-above-the-default-limit",
        ),
        pytest.param(
            {"proxy": {"cpu": "lots"}},
            "spec.proxy.cpu 'lots' is not a Kubernetes quantity",
            id="bad-quantity",
        ),
        pytest.param(
            {"enforcement": "audit"},
            "spec.enforcement Input should be 'enforce' or 'warn'",
            id="bad-mode",
        ),
        pytest.param(
            {"namespaceQuota": -2},
            "spec.namespaceQuota Input should be greater than or equal to 0",
            id="negative-quota",
        ),
        pytest.param({"hostz": []}, "spec.hostz unknown key", id="unknown-field"),
    ],
)
def test_a_malformed_or_colliding_tenant_is_refused(spec: dict[str, Any], expected: str) -> None:
    decision = validate(request_of(tenant_review("shop", spec)))
    assert not decision.allowed
    assert decision.response["response"]["status"]["code"] == 403
    assert expected in message_of(decision)


def test_every_problem_is_listed_at_once() -> None:
    spec = {"hosts": ["shop.example.com", "*", "ok.example.net"], "enforcement": "x"}
    message = message_of(validate(request_of(tenant_review("shop", spec))))
    assert message.startswith("3 tenant-guard violations:")
    assert (
        "(1) Tenant shop: spec.hosts[0]" in message and "(2) Tenant shop: spec.hosts[1]" in message
    )


def test_a_host_another_tenant_object_claims_is_refused_naming_it() -> None:
    view = view_with_tenants(tenant_entry("blog", "blog.example.net"))
    decision = validate(request_of(tenant_review("shop", {"hosts": ["blog.example.net"]})), view)
    assert 'is already claimed by tenant "blog" (by Tenant "blog")' in message_of(decision)


def test_an_update_does_not_collide_with_its_own_claims_nor_with_the_config_of_its_name() -> None:
    # Migration: `tenants export` output applied while the config still lists the tenant.
    view = view_with_tenants(tenant_entry("shop", "shop.example.net"))
    review = tenant_review(
        "tenant-a",
        {"hosts": ["a.example.com", "shop2.example.net"]},
        operation="UPDATE",
        old_spec={"hosts": ["a.example.com"]},
    )
    assert validate(request_of(review), view).allowed
    review = tenant_review("shop", {"hosts": ["shop.example.net", "new.example.net"]})
    assert validate(request_of(review), view).allowed


def test_a_name_that_is_not_a_label_value_is_refused() -> None:
    decision = validate(request_of(tenant_review("x" * 64, SHOP)))
    assert "metadata.name" in message_of(decision) and "not a valid label value" in message_of(
        decision
    )


def test_hosts_of_the_wrong_shape_are_not_checkable() -> None:
    decision = validate(request_of(tenant_review("shop", {"hosts": "shop.example.net"})))
    assert not decision.allowed
    assert decision.response["response"]["status"]["code"] == 400
    assert "spec.hosts must be a list" in message_of(decision)


def test_delete_is_refused_while_namespaces_carry_the_label() -> None:
    view = view_with_tenants(
        tenant_entry("shop", "shop.example.net"),
        namespaces={"shop": {"tenant": "shop"}, "shop-dev": {"tenant": "shop"}, "x": {}},
    )
    decision = validate(request_of(tenant_review("shop", SHOP, operation="DELETE")), view)
    assert not decision.allowed
    assert message_of(decision) == (
        'Tenant shop: metadata.name "shop" is the tenant label of 2 namespace(s) (shop, '
        "shop-dev); deleting the Tenant would unclaim the host names they serve. Fix: delete "
        "those namespaces or move them to another tenant first (kubectl get namespaces -l "
        "tenant=shop)"
    )


def test_delete_of_an_unused_tenant_is_allowed() -> None:
    view = view_with_tenants(tenant_entry("shop", "shop.example.net"))
    assert validate(request_of(tenant_review("shop", SHOP, operation="DELETE")), view).allowed


def test_delete_of_a_tenant_the_config_also_defines_is_allowed() -> None:
    # tenant-a's namespaces exist, but its claims stay in force through the config.
    decision = validate(request_of(tenant_review("tenant-a", SHOP, operation="DELETE")))
    assert decision.allowed


def test_delete_by_an_exempt_user_is_allowed_and_the_mutating_endpoint_never_refuses() -> None:
    view = make_view(namespaces={"shop": {"tenant": "shop"}})
    config = make_config(exempt={"users": ["kubernetes-admin"], "groups": []})
    review = request_of(tenant_review("shop", SHOP, operation="DELETE", user=ADMIN))
    assert validate(review, view, config).allowed
    assert not validate(review, view).allowed


def test_warn_mode_admits_with_warnings() -> None:
    decision = validate(
        request_of(tenant_review("shop", {"hosts": ["*"]})), config=make_config(enforcement="warn")
    )
    assert decision.allowed and decision.warnings
