"""A Tenant's owners create its namespaces (SPEC.md §12): `kubectl create namespace` by an owner
of one tenant gets that tenant's label, an owner may create labelled namespaces up to the
quota, everyone else still meets the tenant label guard (§5b). Captured Namespace reviews."""

from __future__ import annotations

import jsonpatch

from tests.builders import (
    ADMIN,
    derive,
    mutate,
    patch_of,
    request_of,
    tenant_entry,
    validate,
    view_with_tenants,
)
from webhook.tenancy.claims import TenantEntry
from webhook.tenancy.view import TenancyView

ALICE = {"username": "alice@example.com", "groups": ["system:authenticated"]}
SHOP_ADMIN = {"username": "bob@example.com", "groups": ["shop-admins", "system:authenticated"]}
PLAIN = "namespace-create-kubectl-create-no-labels.json"  # `kubectl create namespace scratch`
LABELLED = "namespace-create-tenant-a.json"

SHOP = tenant_entry(
    "shop",
    "shop.example.net",
    owner_users=frozenset({"alice@example.com"}),
    owner_groups=frozenset({"shop-admins"}),
    namespace_quota=2,
)
BLOG = tenant_entry("blog", "blog.example.net", owner_groups=frozenset({"shop-admins"}))


def view(*namespaces: str, tenants: tuple[TenantEntry, ...] = (SHOP,)) -> TenancyView:
    known = {name: {"tenant": "shop"} for name in namespaces}
    return view_with_tenants(*tenants, namespaces=known)


def test_an_owner_of_one_tenant_gets_its_label_on_a_plain_namespace() -> None:
    review = derive(PLAIN, mutating=True, user=ALICE)
    decision = mutate(request_of(review), view())
    patch = patch_of(decision)
    assert patch is not None
    created = jsonpatch.apply_patch(review["request"]["object"], patch)
    assert created["metadata"]["labels"] == {
        "kubernetes.io/metadata.name": "scratch",
        "tenant": "shop",
    }
    assert decision.warnings == ['Namespace scratch: labelled tenant=shop (you own tenant "shop")']
    # The validating webhook then sees the labelled namespace, and admits it for the owner.
    labelled = derive(PLAIN, user=ALICE, labels=created["metadata"]["labels"])
    assert validate(request_of(labelled), view()).allowed
    # A second call on the labelled namespace patches nothing.
    again = derive(PLAIN, mutating=True, user=ALICE, labels=created["metadata"]["labels"])
    assert patch_of(mutate(request_of(again), view())) is None


def test_an_owner_of_several_tenants_is_told_to_choose() -> None:
    decision = mutate(
        request_of(derive(PLAIN, mutating=True, user=SHOP_ADMIN)), view(tenants=(SHOP, BLOG))
    )
    assert patch_of(decision) is None
    assert (
        "you own tenants blog, shop; to create one for a tenant, set the label tenant="
        in (decision.warnings[0])
    )


def test_nobody_else_gets_a_label() -> None:
    for user in (ADMIN, {"username": "mallory", "groups": ["system:authenticated"]}):
        assert patch_of(mutate(request_of(derive(PLAIN, mutating=True, user=user)), view())) is None


def test_an_owner_creates_labelled_namespaces_up_to_the_quota() -> None:
    review = request_of(derive(LABELLED, name="shop-2", user=ALICE, labels={"tenant": "shop"}))
    assert validate(review, view("shop-1")).allowed
    denied = validate(review, view("shop-1", "shop-0"))
    assert not denied.allowed
    message = denied.response["response"]["status"]["message"]
    assert message == (
        'Namespace shop-2: metadata.labels["tenant"] "shop" would be namespace 3 of tenant '
        '"shop", whose namespaceQuota is 2 (it has shop-0, shop-1). Fix: delete a namespace of '
        'tenant "shop" first, or ask the platform team to raise spec.namespaceQuota of Tenant '
        '"shop"'
    )
    # The platform is not limited by the quota.
    admin = request_of(derive(LABELLED, name="shop-2", user=ADMIN, labels={"tenant": "shop"}))
    assert validate(admin, view("shop-1", "shop-0")).allowed


def test_a_group_owner_without_a_quota_is_not_limited() -> None:
    review = request_of(derive(LABELLED, name="blog-9", user=SHOP_ADMIN, labels={"tenant": "blog"}))
    assert validate(review, view_with_tenants(BLOG)).allowed


def test_an_owner_may_not_label_for_another_tenant_nor_set_the_enforcement_label() -> None:
    other = request_of(derive(LABELLED, name="x", user=ALICE, labels={"tenant": "tenant-b"}))
    message = validate(other, view()).response["response"]["status"]["message"]
    assert "only labelAdmins may do that" in message
    assert "Fix: create namespaces only for a tenant you own (shop)" in message
    warn = request_of(
        derive(
            LABELLED,
            name="x",
            user=ALICE,
            labels={"tenant": "shop", "tenant-guard.io/enforcement": "warn"},
        )
    )
    assert not validate(warn, view()).allowed


def test_an_owner_may_not_move_an_existing_namespace_into_the_tenant() -> None:
    update = request_of(
        derive(
            "namespace-update-add-label.json",
            user=ALICE,
            labels={"tenant": "shop"},
            old_labels={},
        )
    )
    assert not validate(update, view()).allowed
