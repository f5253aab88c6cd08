"""The tenant baseline against a real control plane (SPEC.md §11): with the shipped baseline
templates in the config, a labelled namespace gets its objects within seconds, a tenant user
cannot delete them, an admin's deletion is undone, and the allow list follows the tenant's
namespaces. The Istio security CRDs come from shared/fixtures/crds, as the harness installs them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.harness import CONFIG, ROOT, Cluster, namespace, wait_for
from webhook.baseline.api import BaselineApi
from webhook.baseline.lease import LeaderElector, LeaseApi
from webhook.baseline.reconciler import LEASE_NAME
from webhook.baseline.templates import MANAGED_KINDS as MANAGED_KINDS_TABLE
from webhook.cluster import load_api_client
from webhook.cluster.rest import ClusterApiError

SHIPPED = ROOT / "deploy" / "base" / "config.yaml"
TENANT_USER = "bob"
MANAGED_KINDS = "authorizationpolicies,peerauthentications,sidecars"


def baseline_config(resync_seconds: float) -> dict[str, Any]:
    """The suite's config with the shipped `baseline:` and `sharedNamespaces:`."""
    shipped = yaml.safe_load(SHIPPED.read_text())
    baseline = dict(shipped["baseline"])
    # Restoring a deleted object waits for the periodic pass; make it quick for the test.
    baseline["resyncSeconds"] = resync_seconds
    return {**CONFIG, "sharedNamespaces": shipped["sharedNamespaces"], "baseline": baseline}


def get(cluster: Cluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl(
        "-n", namespace, "get", kind, name, "-o", "json", "--show-managed-fields", check=False
    )
    if result.returncode != 0:
        return None
    obj: dict[str, Any] = json.loads(result.stdout)
    return obj


def allowed_namespaces(cluster: Cluster, namespace: str) -> list[str]:
    policy = get(cluster, "authorizationpolicy", namespace, "allow-same-tenant")
    assert policy is not None
    return list(policy["spec"]["rules"][0]["from"][0]["source"]["namespaces"])


def managed_in(cluster: Cluster, namespace: str) -> list[str]:
    result = cluster.kubectl(
        "-n",
        namespace,
        "get",
        MANAGED_KINDS,
        "-l",
        "app.kubernetes.io/managed-by=tenant-guard",
        "-o",
        "name",
    )
    return sorted(result.stdout.split())


def write_config(path: Path, config: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def baseline(cluster: Cluster) -> Iterator[Cluster]:
    """The running tenant-guard with the shipped baseline in its config (polled every second);
    afterwards the baseline is emptied (tenant-guard removes what it applied) and the suite's
    config restored."""
    assert cluster.guard is not None
    config_file = cluster.guard.config_file
    original = config_file.read_text()
    write_config(config_file, baseline_config(resync_seconds=2))
    cluster.kubectl(
        "create",
        "clusterrole",
        "e2e-baseline-editor",
        "--verb=get,list,create,update,patch,delete",
        "--resource=authorizationpolicies.security.istio.io,sidecars.networking.istio.io,"
        "peerauthentications.security.istio.io",
    )
    try:
        yield cluster
    finally:
        emptied = baseline_config(resync_seconds=2)
        emptied["baseline"]["objects"] = []
        write_config(config_file, emptied)
        wait_for(lambda: managed_in(cluster, "tenant-a") == [], "the baseline to be removed", 30)
        config_file.write_text(original)
        cluster.kubectl("delete", "clusterrole", "e2e-baseline-editor", check=False)


def test_a_labelled_namespace_gets_its_baseline_within_seconds(baseline: Cluster) -> None:
    baseline.apply(namespace("shop-web", "tenant-a"))
    wait_for(
        lambda: len(managed_in(baseline, "shop-web")) == 4, "the baseline of shop-web", timeout=15
    )
    assert managed_in(baseline, "shop-web") == [
        "authorizationpolicy.security.istio.io/allow-same-tenant",
        "authorizationpolicy.security.istio.io/default-deny",
        "peerauthentication.security.istio.io/default",
        "sidecar.networking.istio.io/default",
    ]
    peer = get(baseline, "peerauthentication", "shop-web", "default")
    assert peer is not None and peer["spec"] == {"mtls": {"mode": "STRICT"}}
    managers = {m["manager"] for m in peer["metadata"]["managedFields"]}
    assert managers == {"tenant-guard"}
    assert {m["operation"] for m in peer["metadata"]["managedFields"]} == {"Apply"}
    assert {"shop-web", "tenant-a"} <= set(allowed_namespaces(baseline, "shop-web"))
    assert not {"tenant-b"} & set(allowed_namespaces(baseline, "shop-web"))
    sidecar = get(baseline, "sidecar", "shop-web", "default")
    assert sidecar is not None
    hosts = sidecar["spec"]["egress"][0]["hosts"]
    shared = [f"{ns}/*" for ns in baseline_config(2)["sharedNamespaces"]]
    assert hosts[0] == "./*" and "tenant-a/*" in hosts and hosts[-len(shared) :] == shared
    # Platform namespaces get nothing.
    assert managed_in(baseline, "default") == []


def test_a_tenant_user_cannot_delete_or_change_it(baseline: Cluster) -> None:
    wait_for(lambda: len(managed_in(baseline, "tenant-a")) == 4, "the baseline of tenant-a", 15)
    baseline.kubectl(
        "-n",
        "tenant-a",
        "create",
        "rolebinding",
        "e2e-bob-edits-policies",
        "--clusterrole=e2e-baseline-editor",
        f"--user={TENANT_USER}",
    )
    as_bob = ("--as", TENANT_USER, "-n", "tenant-a")
    deleted = baseline.kubectl(
        *as_bob, "delete", "authorizationpolicy", "default-deny", check=False
    )
    assert deleted.returncode == 1
    assert 'admission webhook "managed-objects.tenant-guard.io" denied the request' in (
        deleted.stderr
    )
    assert "AuthorizationPolicy tenant-a/default-deny" in deleted.stderr
    assert "the platform manages this object" in deleted.stderr
    assert "bob may not delete it" in deleted.stderr

    changed = baseline.kubectl(
        *as_bob,
        "patch",
        "peerauthentication",
        "default",
        "--type=merge",
        "-p",
        '{"spec":{"mtls":{"mode":"PERMISSIVE"}}}',
        check=False,
    )
    assert changed.returncode == 1
    assert "bob may not change it" in changed.stderr

    forged = yaml.safe_dump(
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "AuthorizationPolicy",
            "metadata": {
                "name": "allow-everyone",
                "namespace": "tenant-a",
                "labels": {"app.kubernetes.io/managed-by": "tenant-guard"},
            },
            "spec": {"action": "ALLOW", "rules": [{}]},
        }
    )
    created = baseline.kubectl("--as", TENANT_USER, "apply", "-f", "-", stdin=forged, check=False)
    assert created.returncode == 1
    assert "reserved for objects the platform manages" in created.stderr

    # The tenant's own objects never reach this webhook (objectSelector), so they stay its own.
    own = forged.replace("app.kubernetes.io/managed-by: tenant-guard", "app: web")
    baseline.kubectl("--as", TENANT_USER, "apply", "-f", "-", stdin=own)
    baseline.kubectl(*as_bob, "delete", "authorizationpolicy", "allow-everyone")
    assert get(baseline, "authorizationpolicy", "tenant-a", "default-deny") is not None


def test_deleted_by_an_admin_it_comes_back(baseline: Cluster) -> None:
    wait_for(lambda: len(managed_in(baseline, "tenant-b")) == 4, "the baseline of tenant-b", 15)
    before = get(baseline, "authorizationpolicy", "tenant-b", "default-deny")
    assert before is not None
    baseline.kubectl("-n", "tenant-b", "delete", "authorizationpolicy", "default-deny")

    def restored() -> bool:
        again = get(baseline, "authorizationpolicy", "tenant-b", "default-deny")
        return again is not None and again["metadata"]["uid"] != before["metadata"]["uid"]

    wait_for(restored, "default-deny to be restored in tenant-b", timeout=20)


def test_a_second_namespace_of_the_tenant_appears_in_the_allow_list(baseline: Cluster) -> None:
    wait_for(lambda: len(managed_in(baseline, "tenant-b")) == 4, "the baseline of tenant-b", 15)
    assert "bank-api" not in allowed_namespaces(baseline, "tenant-b")
    baseline.apply(namespace("bank-api", "tenant-b"))

    def listed() -> bool:
        return "bank-api" in allowed_namespaces(baseline, "tenant-b")

    wait_for(listed, "bank-api in tenant-b's allow list", timeout=15)
    sidecar = get(baseline, "sidecar", "tenant-b", "default")
    assert sidecar is not None and "bank-api/*" in sidecar["spec"]["egress"][0]["hosts"]
    assert {"bank-api", "tenant-b"} <= set(allowed_namespaces(baseline, "bank-api"))
    assert "tenant-a" not in allowed_namespaces(baseline, "bank-api")


def test_a_namespace_that_leaves_its_tenant_loses_its_baseline(baseline: Cluster) -> None:
    baseline.apply(namespace("shop-old", "tenant-a"))
    wait_for(lambda: len(managed_in(baseline, "shop-old")) == 4, "the baseline of shop-old", 15)
    baseline.kubectl("label", "namespace", "shop-old", "tenant-")
    wait_for(lambda: managed_in(baseline, "shop-old") == [], "shop-old's baseline removed", 15)
    wait_for(
        lambda: "shop-old" not in allowed_namespaces(baseline, "tenant-a"),
        "shop-old gone from tenant-a's allow list",
        15,
    )


# Minimal objects of every kind the baseline writes, unlabelled (so no webhook judges them):
# probes for the write access deploy/components/baseline grants.
PROBES = {
    "authorizationpolicies": {"spec": {"action": "ALLOW"}},
    "peerauthentications": {"spec": {"mtls": {"mode": "STRICT"}}},
    "sidecars": {"spec": {"egress": [{"hosts": ["./*"]}]}},
    "networkpolicies": {"spec": {"podSelector": {}}},
    "resourcequotas": {"spec": {"hard": {"pods": "10"}}},
    "limitranges": {"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}}]}},
}


def service_account_kubeconfig(cluster: Cluster, directory: Path) -> Path:
    """A kubeconfig for tenant-guard's service account, with only the shipped RBAC bound."""
    service_account = yaml.safe_dump_all(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant-guard"}},
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "tenant-guard", "namespace": "tenant-guard"},
            },
        ]
    )
    cluster.apply(service_account)
    cluster.kubectl("apply", "-f", str(ROOT / "deploy" / "components" / "baseline" / "rbac.yaml"))
    token = cluster.kubectl("-n", "tenant-guard", "create", "token", "tenant-guard").stdout.strip()
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": "admin", "user": {"token": token}}]
    path = directory / "service-account-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_baseline_rbac_component_is_enough_to_write_every_kind_and_the_lease(
    baseline: Cluster, tmp_path: Path
) -> None:
    client = load_api_client(
        kubeconfig=str(service_account_kubeconfig(baseline, tmp_path)), in_cluster=False
    )
    api = BaselineApi(client)
    try:
        for kind in MANAGED_KINDS_TABLE:
            body = {
                "apiVersion": f"{kind.group}/v1" if kind.group else "v1",
                "kind": kind.kind,
                "metadata": {"name": "rbac-probe", "namespace": "tenant-a"},
                **PROBES[kind.resource],
            }
            # Server-side apply that creates, then one that changes nothing, then list, delete.
            api.apply(kind.group, "v1", kind.resource, body)
            api.apply(kind.group, "v1", kind.resource, body)
            listed = api.list_objects(kind.group, "v1", kind.resource, "")
            assert ("tenant-a", "rbac-probe") in listed, kind.kind
            assert api.delete(kind.group, "v1", kind.resource, "tenant-a", "rbac-probe")

        elector = LeaderElector(
            LeaseApi(client),
            namespace="tenant-guard",
            name=LEASE_NAME,
            identity="rbac-probe",
            renew_every=0,
        )
        assert elector.try_lead() is True  # create
        assert elector.try_lead() is True  # get + update
        elector.release()
        with pytest.raises(ClusterApiError) as forbidden:
            LeaseApi(client).read("default", LEASE_NAME)  # only its own namespace
        assert forbidden.value.status == 403
    finally:
        api.close()
    sa = "--as=system:serviceaccount:tenant-guard:tenant-guard"
    for verb, resource in (("get", "secrets"), ("create", "deployments"), ("update", "pods")):
        answer = baseline.kubectl(
            "auth", "can-i", sa, verb, resource, "-n", "tenant-a", check=False
        )
        assert answer.stdout.strip() == "no", f"{verb} {resource}"
