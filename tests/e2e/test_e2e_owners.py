"""A Tenant's owners on a real API server (SPEC.md §12): `kubectl create namespace` by an owner
gives the namespace the tenant's label, the quota refuses one too many with a message that
says so; tenant admins write Tenants with the shipped ClusterRole, tenants cannot read them."""

from __future__ import annotations

import json
import time

import yaml

from tests.e2e.harness import TENANTS_COMPONENT, Cluster

OWNER = "owner-olga"
DENIED_BY_LABEL_GUARD = 'admission webhook "namespace-label.tenant-guard.io" denied the request'


def labels_of(cluster: Cluster, name: str) -> dict[str, str]:
    obj = json.loads(cluster.kubectl("get", "namespace", name, "-o", "json").stdout)
    labels: dict[str, str] = obj["metadata"].get("labels") or {}
    return labels


def test_an_owner_creates_namespaces_for_its_tenant_up_to_the_quota(cluster: Cluster) -> None:
    # The platform grants `create namespaces` with RBAC; the Tenant names the owner.
    cluster.kubectl(
        "create",
        "clusterrole",
        "e2e-namespace-creator",
        "--verb=create,get",
        "--resource=namespaces",
    )
    cluster.kubectl(
        "create",
        "clusterrolebinding",
        "e2e-namespace-creator",
        "--clusterrole=e2e-namespace-creator",
        f"--user={OWNER}",
    )
    tenant = {
        "apiVersion": "tenant-guard.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": "e2e-own"},
        "spec": {"hosts": ["own.e2e.example"], "owners": {"users": [OWNER]}, "namespaceQuota": 2},
    }
    cluster.apply(yaml.safe_dump(tenant))
    created: list[str] = []
    try:
        time.sleep(1.0)  # the Tenant watch delivers the owner
        for name in ("e2e-own-1", "e2e-own-2"):
            result = cluster.kubectl("--as", OWNER, "create", "namespace", name, check=False)
            assert result.returncode == 0, result.stderr
            created.append(name)
            assert labels_of(cluster, name)["tenant"] == "e2e-own"
            time.sleep(0.5)  # the namespace watch counts it
        result = cluster.kubectl("--as", OWNER, "create", "namespace", "e2e-own-3", check=False)
        assert result.returncode == 1
        assert DENIED_BY_LABEL_GUARD in result.stderr
        assert (
            'Namespace e2e-own-3: metadata.labels["tenant"] "e2e-own" would be namespace 3 of '
            'tenant "e2e-own", whose namespaceQuota is 2 (it has e2e-own-1, e2e-own-2). Fix: '
            'delete a namespace of tenant "e2e-own" first, or ask the platform team to raise '
            'spec.namespaceQuota of Tenant "e2e-own"'
        ) in result.stderr
        # A labelled namespace for a tenant the owner does not own is refused as before.
        other = yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": "e2e-own-x", "labels": {"tenant": "tenant-b"}},
            }
        )
        result = cluster.kubectl("--as", OWNER, "create", "-f", "-", stdin=other, check=False)
        assert result.returncode == 1 and DENIED_BY_LABEL_GUARD in result.stderr
        assert "create namespaces only for a tenant you own (e2e-own)" in result.stderr
        # Somebody who owns nothing gets a plain namespace, as without tenant-guard.
        cluster.kubectl(
            "create",
            "clusterrolebinding",
            "e2e-namespace-creator-2",
            "--clusterrole=e2e-namespace-creator",
            "--user=nobody-nick",
        )
        cluster.kubectl("--as", "nobody-nick", "create", "namespace", "e2e-plain-nick")
        assert "tenant" not in labels_of(cluster, "e2e-plain-nick")
        # Owners cannot read Tenants: nothing shipped grants it to them.
        result = cluster.kubectl("--as", OWNER, "get", "tenants", check=False)
        assert result.returncode == 1 and "Forbidden" in result.stderr
    finally:
        for name in created:
            cluster.kubectl("label", "namespace", name, "tenant-", check=False)
        cluster.kubectl("delete", "tenant", "e2e-own", check=False)


def test_tenant_admins_write_tenants_and_the_builtin_roles_do_not_read_them(
    cluster: Cluster,
) -> None:
    cluster.apply((TENANTS_COMPONENT / "tenant-admin.yaml").read_text())
    cluster.kubectl(
        "create",
        "clusterrolebinding",
        "e2e-tenant-admin",
        "--clusterrole=tenant-guard-tenant-admin",
        "--user=platform-pat",
    )
    for role in ("admin", "edit", "view"):
        cluster.kubectl(
            "create",
            "clusterrolebinding",
            f"e2e-builtin-{role}",
            f"--clusterrole={role}",
            f"--user=tenant-{role}",
        )
    tenant = {
        "apiVersion": "tenant-guard.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": "e2e-admin-made"},
        "spec": {"hosts": ["made.e2e.example"]},
    }
    try:
        cluster.kubectl("--as", "platform-pat", "apply", "-f", "-", stdin=yaml.safe_dump(tenant))
        assert "e2e-admin-made" in cluster.kubectl("--as", "platform-pat", "get", "tenants").stdout
        for role in ("admin", "edit", "view"):
            result = cluster.kubectl("--as", f"tenant-{role}", "get", "tenants", check=False)
            assert result.returncode == 1 and "Forbidden" in result.stderr, role
    finally:
        cluster.kubectl("delete", "tenant", "e2e-admin-made", check=False)
