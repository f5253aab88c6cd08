"""The Tenant CRD (SPEC.md §12) on a real API server: its schema refuses malformed Tenants
before any webhook is asked, and `kubectl get tenants` shows the printer columns."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.e2e.harness import Cluster


def tenant(name: str, **spec: Any) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "tenant-guard.io/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


@pytest.mark.parametrize(
    ("name", "spec", "message"),
    [
        pytest.param(
            "crd-upper",
            {"hosts": ["Shop.Example.com"]},
            "spec.hosts[0]: Invalid value",
            id="upper-case-host",
        ),
        pytest.param("crd-star", {"hosts": ["*"]}, "spec.hosts[0]: Invalid value", id="star-alone"),
        pytest.param(
            "crd-inner-star",
            {"hosts": ["a.*.example.com"]},
            "spec.hosts[0]: Invalid value",
            id="star-not-leftmost",
        ),
        pytest.param(
            "crd-single-label", {"hosts": ["reviews"]}, "spec.hosts[0]", id="single-label"
        ),
        pytest.param(
            "crd-trailing-dot",
            {"hosts": ["shop.example.com."]},
            "spec.hosts[0]: Invalid value",
            id="trailing-dot",
        ),
        pytest.param(
            "crd-svc",
            {"hosts": ["reviews.shop.svc"]},
            "in-cluster service names",
            id="service-name",
        ),
        pytest.param(
            "crd-unicode",
            {"hosts": ["shöp.example.com"]},
            "spec.hosts[0]: Invalid value",
            id="non-ascii",
        ),
        pytest.param(
            "crd-duplicate",
            {"hosts": ["a.example.net", "a.example.net"]},
            ".spec.hosts: duplicate entries",
            id="duplicate-host",
        ),
        pytest.param(
            "crd-too-many",
            {"hosts": [f"h{i}.many.example.net" for i in range(1001)]},
            "must have at most 1000 items",
            id="1001-hosts",
        ),
        pytest.param(
            "x" * 64,
            {"hosts": ["long.example.net"]},
            "at most 63 characters",
            id="name-longer-than-a-label-value",
        ),
        pytest.param(
            "crd-mode", {"enforcement": "audit"}, "spec.enforcement: Unsupported value", id="mode"
        ),
        pytest.param(
            "crd-quantity",
            {"proxy": {"cpu": "1x"}},
            "must be a non-negative Kubernetes quantity",
            id="bad-quantity",
        ),
        pytest.param(
            "crd-negative",
            {"proxy": {"memory": "-1Gi"}},
            "must be a non-negative Kubernetes quantity",
            id="negative-quantity",
        ),
        pytest.param(
            "crd-request-above-limit",
            {"proxy": {"cpu": "2", "cpuLimit": "1500m"}},
            "cpu is larger than cpuLimit",
            id="request-above-limit",
        ),
        pytest.param(
            "crd-proxy-key",
            {"proxy": {"cpuLimits": "1"}},
            ".spec.proxy.cpuLimits: field not declared in schema",
            id="misspelt-proxy-key",
        ),
        pytest.param(
            "crd-quota", {"namespaceQuota": -1}, "spec.namespaceQuota: Invalid value", id="quota"
        ),
        pytest.param(
            "crd-quota-no-owner",
            {"namespaceQuota": 3},
            "name at least one owner",
            id="quota-without-owners",
        ),
        pytest.param(
            "crd-owner-shape",
            {"owners": {"users": "alice"}},
            ".spec.owners.users: expected list",
            id="owners-not-a-list",
        ),
    ],
)
def test_the_api_server_refuses_a_malformed_tenant(
    cluster: Cluster, name: str, spec: dict[str, Any], message: str
) -> None:
    result = cluster.apply(
        tenant(name, **spec), "--server-side", "--validate=strict", "--dry-run=server", check=False
    )
    assert result.returncode != 0, result.stdout
    assert message in result.stderr, result.stderr
    assert "admission webhook" not in result.stderr, "the schema must refuse it, not a webhook"


def test_a_well_formed_tenant_is_stored_and_listed_with_its_columns(cluster: Cluster) -> None:
    cluster.apply(
        tenant(
            "crd-shop",
            hosts=["crd-shop.example.net", "*.crd-shop.example.net"],
            proxy={"cpu": 1, "cpuLimit": "1500m", "memoryLimit": "1Gi"},
            enforcement="warn",
            owners={"users": ["alice"], "groups": ["shop-admins"]},
            namespaceQuota=3,
        ),
        "--server-side",
        "--validate=strict",
    )
    try:
        stored = yaml.safe_load(cluster.kubectl("get", "tenant", "crd-shop", "-o", "yaml").stdout)
        assert stored["spec"]["proxy"]["cpu"] == 1  # int-or-string, as in a pod's resources
        header = cluster.kubectl("get", "tenants").stdout.splitlines()[0].split()
        assert header == ["NAME", "NAMESPACES", "HOSTS", "VIOLATIONS", "READY", "REASON", "AGE"]
        crd = yaml.safe_load(
            cluster.kubectl("get", "crd", "tenants.tenant-guard.io", "-o", "yaml").stdout
        )
        assert crd["spec"]["scope"] == "Cluster"
        assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}
    finally:
        cluster.kubectl("delete", "tenant", "crd-shop", "--wait=false", check=False)
