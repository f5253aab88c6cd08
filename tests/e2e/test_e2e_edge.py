"""The edge (SPEC.md §8, §11) end to end: Gateway API routes and Gateways, Istio Gateways and
Sidecars applied with kubectl through the shipped webhook configuration."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.e2e.harness import Cluster

SHARED_PARENT = {"name": "shared-gateway", "namespace": "infra"}
DENIED_BY = 'admission webhook "tenant-rules.tenant-guard.io" denied the request'


def manifest(api_version: str, kind: str, namespace: str, name: str, spec: Any) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def httproute(namespace: str, name: str, hostnames: list[str], version: str = "v1") -> str:
    spec = {
        "parentRefs": [SHARED_PARENT],
        "hostnames": hostnames,
        "rules": [{"backendRefs": [{"name": "web", "port": 8080}]}],
    }
    return manifest(f"gateway.networking.k8s.io/{version}", "HTTPRoute", namespace, name, spec)


def istio_gateway(namespace: str, name: str, selector: dict[str, str], hosts: list[str]) -> str:
    spec = {
        "selector": selector,
        "servers": [{"hosts": hosts, "port": {"name": "http", "number": 80, "protocol": "HTTP"}}],
    }
    return manifest("networking.istio.io/v1", "Gateway", namespace, name, spec)


def assert_denied(cluster: Cluster, text: str, *messages: str) -> None:
    for extra in ((), ("--dry-run=server",)):
        result = cluster.apply(text, *extra, check=False)
        assert result.returncode == 1, result.stdout
        assert "Error from server (Forbidden)" in result.stderr
        assert DENIED_BY in result.stderr
        for message in messages:
            assert message in result.stderr


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_httproute_for_another_tenants_hostname_is_denied(cluster: Cluster, version: str) -> None:
    assert_denied(
        cluster,
        httproute("tenant-b", "hijack", ["www.a.example.com"], version),
        'HTTPRoute tenant-b/hijack: spec.hostnames[0] "www.a.example.com" belongs to tenant '
        '"tenant-a" (claimed in the tenant-guard config)',
    )


def test_httproute_without_hostnames_on_the_shared_gateway_is_denied(cluster: Cluster) -> None:
    assert_denied(
        cluster,
        httproute("tenant-b", "catch-all", []),
        "HTTPRoute tenant-b/catch-all: spec.hostnames [] leaves a route on the shared parent "
        '"infra/shared-gateway" without hostnames',
    )


def test_httproute_with_own_hostname_on_the_shared_gateway_is_created(cluster: Cluster) -> None:
    result = cluster.apply(httproute("tenant-a", "web", ["www.a.example.com"]))
    assert "httproute.gateway.networking.k8s.io/web created" in result.stdout
    hostnames = cluster.kubectl(
        "-n", "tenant-a", "get", "httproute", "web", "-o", "jsonpath={.spec.hostnames}"
    ).stdout
    assert hostnames == '["www.a.example.com"]'


def test_istio_gateway_on_the_shared_ingress_pods_is_denied(cluster: Cluster) -> None:
    assert_denied(
        cluster,
        istio_gateway("tenant-a", "takeover", {"istio": "ingressgateway"}, ["*/www.a.example.com"]),
        'Gateway tenant-a/takeover: spec.selector {"istio": "ingressgateway"} matches the '
        "platform's shared gateway pods (app=istio-ingressgateway, istio=ingressgateway)",
        'spec.servers[0].hosts[0] "*/www.a.example.com" binds VirtualServices of every namespace',
    )


def test_istio_gateway_on_own_pods_with_own_hosts_is_created(cluster: Cluster) -> None:
    text = istio_gateway("tenant-a", "own", {"istio": "tenant-a-gateway"}, ["./www.a.example.com"])
    result = cluster.apply(text)
    assert "gateway.networking.istio.io/own created" in result.stdout


def test_sidecar_importing_every_namespace_is_denied_and_a_scoped_one_created(
    cluster: Cluster,
) -> None:
    wide = manifest(
        "networking.istio.io/v1", "Sidecar", "tenant-b", "default", {"egress": [{"hosts": ["*/*"]}]}
    )
    assert_denied(cluster, wide, 'spec.egress[0].hosts[0] "*/*" imports the services of every')
    scoped = manifest(
        "networking.istio.io/v1",
        "Sidecar",
        "tenant-b",
        "default",
        {"egress": [{"hosts": ["./*", "istio-system/*"]}]},
    )
    assert "sidecar.networking.istio.io/default created" in cluster.apply(scoped).stdout


def gateway_api_gateway(namespace: str, name: str, address: str) -> str:
    """A Gateway API Gateway with one Hostname address: Istio's manual deployment links it to
    that Service and programs the Service's pods with the listeners."""
    spec = {
        "gatewayClassName": "istio",
        "addresses": [{"type": "Hostname", "value": address}],
        "listeners": [
            {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "www.a.example.com"}
        ],
    }
    return manifest("gateway.networking.k8s.io/v1", "Gateway", namespace, name, spec)


@pytest.mark.parametrize(
    ("address", "owner"),
    [
        pytest.param(
            "istio-ingressgateway.istio-system.svc.cluster.local",
            'namespace "istio-system" of the platform',
            id="shared-ingress-fqdn",
        ),
        pytest.param(
            "istio-ingressgateway.istio-system.svc",
            'namespace "istio-system" of the platform',
            id="shared-ingress-svc",
        ),
        pytest.param(
            "gateway-istio.tenant-b", 'namespace "tenant-b" of tenant "tenant-b"', id="other-tenant"
        ),
    ],
)
def test_gateway_linked_to_a_service_of_others_is_denied(
    cluster: Cluster, address: str, owner: str
) -> None:
    assert_denied(
        cluster,
        gateway_api_gateway("tenant-a", "takeover", address),
        f'Gateway.gateway.networking.k8s.io tenant-a/takeover: spec.addresses[0].value "{address}" '
        f"names a Service of {owner}: Istio would program that Service's pods with this "
        "Gateway's listeners",
    )


def test_gateway_linked_to_its_own_service_is_created(cluster: Cluster) -> None:
    result = cluster.apply(gateway_api_gateway("tenant-a", "manual", "manual-gateway"))
    assert "gateway.gateway.networking.k8s.io/manual created" in result.stdout
