"""Collisions across APIs against a real control plane: a host another tenant routes with a
Gateway API route is denied to a VirtualService, through the shipped webhook configurations."""

from __future__ import annotations

from typing import Any

import yaml

from tests.e2e.harness import Cluster, virtualservice, wait_for

# Unclaimed, so both tenants own it (unclaimedHosts: allow) and only the collision decides.
HOST = "checkout.partner-b.example"


def httproute(namespace: str, name: str, hostnames: list[str]) -> str:
    # The parent is a Gateway in the route's own namespace, which its tenant may attach to.
    spec: dict[str, Any] = {
        "parentRefs": [{"name": "edge"}],
        "hostnames": hostnames,
        "rules": [{"backendRefs": [{"name": "checkout", "port": 8080}]}],
    }
    return yaml.safe_dump(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def test_virtualservice_for_a_host_another_tenants_httproute_routes_is_denied(
    cluster: Cluster,
) -> None:
    cluster.apply(httproute("tenant-b", "checkout", [HOST]))
    manifest = virtualservice("tenant-a", "checkout", [HOST])

    def denied() -> bool:
        result = cluster.apply(manifest, "--dry-run=server", check=False)
        return result.returncode == 1 and (
            f'"{HOST}" is already routed by HTTPRoute tenant-b/checkout of tenant "tenant-b"'
            in result.stderr
        )

    wait_for(denied, "the HTTPRoute watch to see tenant-b/checkout", timeout=15)
    result = cluster.apply(manifest, check=False)
    assert result.returncode == 1
    assert 'admission webhook "tenant-rules.tenant-guard.io" denied the request' in result.stderr


def test_host_is_free_again_once_the_httproute_is_deleted(cluster: Cluster) -> None:
    host = "returns.partner-b.example"
    cluster.apply(httproute("tenant-b", "returns", [host]))
    manifest = virtualservice("tenant-a", "returns", [host])

    def dry_run() -> tuple[int, str]:
        result = cluster.apply(manifest, "--dry-run=server", check=False)
        return result.returncode, result.stderr

    wait_for(lambda: "already routed by HTTPRoute" in dry_run()[1], "the HTTPRoute", 15)
    cluster.kubectl("-n", "tenant-b", "delete", "httproute", "returns")
    wait_for(lambda: dry_run()[0] == 0, "the DELETED event to free the host", 15)


def test_readyz_names_the_route_watch_that_waits_for_its_crd(cluster: Cluster) -> None:
    # The shipped Gateway API CRDs (standard channel) have no TLSRoute: that watch waits,
    # the others run, and the server stays ready.
    assert cluster.guard is not None
    response = cluster.guard.readyz()
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert (
        "tlsroutes.gateway.networking.k8s.io: watch waiting, no served version of "
        "gateway.networking.k8s.io (v1, v1beta1) lists tlsroutes (is its CRD installed?); "
        "collisions with these routes are not checked until it starts"
    ) in body["detail"]
    assert not [d for d in body["detail"] if d.startswith(("httproutes", "grpcroutes"))]
    metrics = cluster.guard.get("/metrics").text
    for resource in ("httproutes", "grpcroutes", "tlsroutes"):
        assert f'tenant_guard_cache_objects{{resource="{resource}"}}' in metrics


def test_httproute_for_a_host_another_tenants_route_or_virtualservice_routes_is_denied(
    cluster: Cluster,
) -> None:
    # "Whichever API each side uses": a route against another tenant's route, and a route
    # against another tenant's VirtualService.
    cluster.apply(virtualservice("tenant-b", "orders", ["orders.partner-c.example"]))
    cluster.apply(httproute("tenant-b", "invoices", ["invoices.partner-c.example"]))
    cases = {
        "invoices.partner-c.example": "HTTPRoute tenant-b/invoices",
        "orders.partner-c.example": "VirtualService tenant-b/orders",
    }
    for host, owner in cases.items():
        manifest = httproute("tenant-a", host.split(".")[0], [host])

        def denied(manifest: str = manifest, owner: str = owner) -> bool:
            result = cluster.apply(manifest, "--dry-run=server", check=False)
            return result.returncode == 1 and f"is already routed by {owner}" in result.stderr

        wait_for(denied, f"the watches to see {owner}", timeout=15)
