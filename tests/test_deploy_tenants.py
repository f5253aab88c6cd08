"""deploy/components/tenants (SPEC.md §12): both overlays install the Tenant CRD and its
webhooks; tenant-guard's RBAC is exactly TENANT_RBAC; the tenant-admin role is aggregated to
nothing, so no built-in role lets tenants read Tenants."""

from __future__ import annotations

import pytest
import yaml

from tests.test_deploy import MUTATING, OVERLAYS, VALIDATING, Doc, objects, one, rbac_rules, render
from webhook.tenancy.publisher import LEASE_NAME
from webhook.tenancy.tenants import GROUP, KIND, MAX_HOSTS, PLURAL, VERSION
from webhook.tenancy.watches import TENANT_RBAC


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_both_overlays_install_the_crd(overlay: str) -> None:
    crd = one(render(overlay), "CustomResourceDefinition", f"{PLURAL}.{GROUP}")["spec"]
    assert crd["group"] == GROUP and crd["scope"] == "Cluster"
    assert crd["names"]["kind"] == KIND
    (version,) = crd["versions"]
    assert version["name"] == VERSION and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Namespaces", "Hosts", "Violations", "Ready", "Reason", "Age"]
    hosts = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["hosts"]
    assert hosts["maxItems"] == MAX_HOSTS  # tenant-guard holds stored Tenants to the same bound


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_tenant_guard_may_read_tenants_and_write_only_their_status(overlay: str) -> None:
    rules = [r for k, n, r in rbac_rules(render(overlay)) if n == "tenant-guard-tenants"]
    assert rules == [dict(rule) for rule in TENANT_RBAC]
    lease = [r for k, n, r in rbac_rules(render(overlay)) if n == "tenant-guard-tenants-lease"]
    for rule in lease:
        assert rule["resources"] == ["leases"]
        if rule["verbs"] != ["create"]:
            assert rule["resourceNames"] == [LEASE_NAME]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_tenant_admin_role_is_aggregated_to_nothing(overlay: str) -> None:
    docs = render(overlay)
    role = one(docs, "ClusterRole", "tenant-guard-tenant-admin")
    labels = role["metadata"].get("labels") or {}
    assert not [k for k in labels if k.startswith("rbac.authorization.k8s.io/aggregate-to")]
    assert "aggregationRule" not in role
    # No shipped role but tenant-guard's own and the admins' names tenants.
    readers = {
        n
        for k, n, r in rbac_rules(docs)
        if any(res.startswith(PLURAL) for res in r["resources"]) and GROUP in r["apiGroups"]
    }
    assert readers == {"tenant-guard-tenants", "tenant-guard-tenant-admin"}
    assert not [d for d in objects(docs, "ClusterRole") if "aggregationRule" in d]


def webhook(docs: tuple[Doc, ...], name: str) -> Doc:
    kind, config = (
        ("MutatingWebhookConfiguration", MUTATING)
        if name.startswith("namespace-owner")
        else ("ValidatingWebhookConfiguration", VALIDATING)
    )
    (hook,) = [w for w in one(docs, kind, config)["webhooks"] if w["name"] == name]
    return hook


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_webhooks_of_the_component(overlay: str) -> None:
    docs = render(overlay)
    tenants = webhook(docs, "tenants.tenant-guard.io")
    assert tenants["failurePolicy"] == "Fail" and tenants["sideEffects"] == "None"
    (rule,) = tenants["rules"]
    assert rule["resources"] == [PLURAL] and rule["scope"] == "Cluster"
    assert rule["operations"] == ["CREATE", "UPDATE", "DELETE"]
    owner = webhook(docs, "namespace-owner.tenant-guard.io")
    # Every plain namespace creation matches it: it must not make the cluster depend on us.
    assert owner["failurePolicy"] == "Ignore"
    assert owner["clientConfig"]["service"]["path"] == "/mutate"
    assert owner["objectSelector"] == {
        "matchExpressions": [{"key": "tenant", "operator": "DoesNotExist"}]
    }
    (rule,) = owner["rules"]
    assert rule["resources"] == ["namespaces"] and rule["operations"] == ["CREATE"]


def test_the_crd_file_is_one_document() -> None:
    from tests.e2e.harness import TENANTS_COMPONENT

    docs = list(yaml.safe_load_all((TENANTS_COMPONENT / "crd.yaml").read_text()))
    assert len(docs) == 1 and docs[0]["kind"] == "CustomResourceDefinition"
