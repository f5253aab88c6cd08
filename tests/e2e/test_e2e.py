"""End to end against a real control plane: kubectl apply and --dry-run=server through the
shipped webhook configurations, with tenant-guard reading the cluster."""

from __future__ import annotations

import yaml

from tests.e2e.harness import Cluster, namespace, virtualservice, wait_for


def test_cross_tenant_virtualservice_is_denied_with_the_message(cluster: Cluster) -> None:
    manifest = virtualservice("tenant-b", "hijack", ["reviews.tenant-a.svc.cluster.local"])
    for extra in ((), ("--dry-run=server",)):
        result = cluster.apply(manifest, *extra, check=False)
        assert result.returncode == 1
        assert "Error from server (Forbidden)" in result.stderr
        assert 'admission webhook "tenant-rules.tenant-guard.io" denied the request' in (
            result.stderr
        )
        assert (
            "VirtualService tenant-b/hijack: spec.hosts[0] "
            '"reviews.tenant-a.svc.cluster.local" belongs to tenant "tenant-a"' in result.stderr
        )


def test_allowed_virtualservice_is_created_with_a_local_export(cluster: Cluster) -> None:
    cluster.apply(virtualservice("tenant-a", "reviews", ["reviews", "www.a.example.com"]))
    export_to = cluster.kubectl(
        "-n", "tenant-a", "get", "virtualservice", "reviews", "-o", "jsonpath={.spec.exportTo}"
    ).stdout
    assert export_to == '["."]'  # filled by the mutating webhook


def test_pod_gets_its_tenant_label_and_sidecar_bounds(cluster: Cluster) -> None:
    cluster.kubectl(
        "-n",
        "tenant-a",
        "run",
        "web",
        "--image=nginx:1.25",
        "--restart=Never",
        "--annotations=sidecar.istio.io/proxyCPULimit=4",
    )
    pod = yaml.safe_load(
        cluster.kubectl("-n", "tenant-a", "get", "pod", "web", "-o", "yaml").stdout
    )
    assert pod["metadata"]["labels"]["tenant"] == "tenant-a"
    annotations = pod["metadata"]["annotations"]
    assert annotations["sidecar.istio.io/proxyCPULimit"] == "500m"  # clamped from 4
    assert annotations["sidecar.istio.io/proxyMemoryLimit"] == "256Mi"


def test_namespace_and_virtualservice_in_one_apply_are_judged_correctly(
    cluster: Cluster,
) -> None:
    manifest = (
        namespace("tenant-b-new", "tenant-b")
        + "---\n"
        + virtualservice("tenant-b-new", "hijack", ["www.a.example.com"])
    )
    result = cluster.apply(manifest, check=False)
    assert result.returncode == 1
    assert "namespace/tenant-b-new created" in result.stdout
    assert 'belongs to tenant "tenant-a"' in result.stderr
    own = virtualservice("tenant-b-new", "shop", ["shop.example.org"])
    cluster.apply(own)


def test_collision_with_another_tenants_virtualservice_is_denied(cluster: Cluster) -> None:
    cluster.apply(virtualservice("tenant-a", "partner", ["api.partner.example"]))
    manifest = virtualservice("tenant-b", "partner", ["api.partner.example"])

    def denied() -> bool:
        result = cluster.apply(manifest, "--dry-run=server", check=False)
        return result.returncode == 1 and "already routed by VirtualService tenant-a/partner" in (
            result.stderr
        )

    wait_for(denied, "the VirtualService watch to see tenant-a/partner", timeout=15)


def test_tenant_label_change_by_a_tenant_user_is_denied(cluster: Cluster) -> None:
    cluster.kubectl(
        "create",
        "clusterrolebinding",
        "e2e-tenant-edit",
        "--clusterrole=cluster-admin",
        "--user=alice",
    )
    result = cluster.kubectl(
        "--as=alice",
        "label",
        "namespace",
        "tenant-b",
        "tenant=tenant-a",
        "--overwrite",
        check=False,
    )
    assert result.returncode == 1
    assert 'admission webhook "namespace-label.tenant-guard.io" denied the request' in (
        result.stderr
    )
