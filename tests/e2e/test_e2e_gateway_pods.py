"""Dedicated gateways end to end (SPEC.md §8): a tenant's Istio Gateway whose selector matches
another tenant's gateway pods is denied naming that namespace, the audit reports a Gateway
that a later pod made match, and /readyz says whether istiod runs with
PILOT_SCOPE_GATEWAY_TO_NAMESPACE. No scheduler or kubelet here: the pods stay Pending, but
their labels are what the API server stores and sends."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.e2e.harness import Cluster, TenantGuard, wait_for
from tests.e2e.test_e2e_edge import DENIED_BY, istio_gateway
from webhook.cluster import list_call, load_api_client
from webhook.cluster.watch import metadata_only

SCOPE = "PILOT_SCOPE_GATEWAY_TO_NAMESPACE"


def pod(
    namespace: str,
    name: str,
    labels: dict[str, str],
    annotations: dict[str, str] | None = None,
    env: list[dict[str, str]] | None = None,
) -> str:
    container: dict[str, Any] = {"name": "discovery" if env else "istio-proxy", "image": "auto"}
    if env:
        container["image"] = "docker.io/istio/pilot:1.24.0"
        container["env"] = env
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": {"containers": [container]},
        }
    )


# tenant-b's dedicated ingress, as Istio's gateway chart deploys it (gateway injection).
INGRESS_B = pod(
    "tenant-b",
    "dedicated-ingress-0",
    {"istio": "tenant-b-dedicated", "app": "tenant-b-dedicated", "sidecar.istio.io/inject": "true"},
    {"inject.istio.io/templates": "gateway"},
)


@pytest.fixture
def guard(cluster: Cluster) -> TenantGuard:
    assert cluster.guard is not None
    return cluster.guard


def delete_pod(cluster: Cluster, namespace: str, name: str) -> None:
    # Never scheduled, so deleted at once (no kubelet has to confirm it).
    cluster.kubectl("-n", namespace, "delete", "pod", name, "--ignore-not-found", "--wait=false")


def apply_denied(cluster: Cluster, text: str, *extra: str) -> str | None:
    """kubectl's error when the apply is denied by tenant-rules, else None."""
    result = cluster.apply(text, *extra, check=False)
    if result.returncode == 0:
        return None
    assert DENIED_BY in result.stderr, result.stderr
    return result.stderr


@pytest.fixture
def dedicated_ingress(cluster: Cluster) -> Iterator[None]:
    cluster.apply(INGRESS_B)
    yield
    delete_pod(cluster, "tenant-b", "dedicated-ingress-0")


def test_a_gateway_on_another_tenants_dedicated_ingress_pods_is_denied(
    cluster: Cluster, dedicated_ingress: None
) -> None:
    takeover = istio_gateway(
        "tenant-a", "takeover", {"istio": "tenant-b-dedicated"}, ["./www.a.example.com"]
    )
    # The pod reaches tenant-guard's cache through the watch, a moment after it is stored.
    wait_for(
        lambda: apply_denied(cluster, takeover, "--dry-run=server") is not None,
        "the Gateway on tenant-b's ingress pods to be denied",
        timeout=30,
    )
    for extra in ((), ("--dry-run=server",)):
        stderr = apply_denied(cluster, takeover, *extra)
        assert stderr is not None
        assert "Error from server (Forbidden)" in stderr
        assert (
            'Gateway tenant-a/takeover: spec.selector {"istio": "tenant-b-dedicated"} matches '
            'gateway pods in namespace "tenant-b" of tenant "tenant-b" (pod dedicated-ingress-0). '
            'Fix: select only tenant "tenant-a"\'s own gateway pods'
        ) in stderr
    assert cluster.kubectl("-n", "tenant-a", "get", "gateway", "takeover", check=False).returncode


def test_a_gateway_on_own_gateway_pods_is_created(cluster: Cluster) -> None:
    labels = {"gateway.networking.k8s.io/gateway-name": "a-edge", "app": "a-edge"}
    cluster.apply(pod("tenant-a", "a-edge-0", labels))
    try:
        text = istio_gateway(
            "tenant-a",
            "a-edge",
            {"gateway.networking.k8s.io/gateway-name": "a-edge"},
            ["./edge.a.example.com"],
        )
        assert "gateway.networking.istio.io/a-edge created" in cluster.apply(text).stdout
    finally:
        delete_pod(cluster, "tenant-a", "a-edge-0")
        cluster.kubectl("-n", "tenant-a", "delete", "gateway", "a-edge", "--ignore-not-found")


def audit_count(guard: TenantGuard) -> float:
    """tenant_guard_audit_violations for tenant-a's Gateways' selectors (0 when absent)."""
    found = re.search(
        r'^tenant_guard_audit_violations\{kind="Gateway",rule="gateway-selector",'
        r'tenant="tenant-a"\} (\S+)$',
        guard.get("/metrics").text,
        re.M,
    )
    return float(found.group(1)) if found else 0.0


def test_the_audit_reports_a_gateway_that_a_later_pod_made_match(
    cluster: Cluster, guard: TenantGuard
) -> None:
    text = istio_gateway("tenant-a", "later", {"istio": "e2e-later"}, ["./later.a.example.com"])
    assert "gateway.networking.istio.io/later created" in cluster.apply(text).stdout
    try:
        wait_for(lambda: "tenant_guard_audit_passes_total" in guard.get("/metrics").text, "audit")
        before = audit_count(guard)
        # tenant-b's new ingress pods carry the label tenant-a's stored Gateway selects.
        cluster.apply(pod("tenant-b", "later-ingress-0", {"istio": "e2e-later"}))
        wait_for(lambda: audit_count(guard) == before + 1, "the audit to report it", timeout=60)
        delete_pod(cluster, "tenant-b", "later-ingress-0")
        wait_for(lambda: audit_count(guard) == before, "the report to go with the pod", timeout=60)
    finally:
        delete_pod(cluster, "tenant-b", "later-ingress-0")
        cluster.kubectl("-n", "tenant-a", "delete", "gateway", "later", "--ignore-not-found")


def istiod_detail(guard: TenantGuard) -> list[str]:
    return [d for d in guard.readyz().json()["detail"] if d.startswith("istiod")]


def test_readyz_and_the_log_say_whether_istiod_scopes_gateway_selectors(
    cluster: Cluster, guard: TenantGuard
) -> None:
    cluster.kubectl("create", "namespace", "istio-system", check=False)
    cluster.kubectl("-n", "istio-system", "create", "serviceaccount", "default", check=False)
    wait_for(
        lambda: (
            istiod_detail(guard)
            and istiod_detail(guard)[0].startswith("istiod: no pod labelled app=istiod found")
        ),
        "no istiod yet",
    )
    env = [
        {"name": "PILOT_ENABLE_ALPHA_GATEWAY_API", "value": "true"},
        {"name": SCOPE, "value": "true"},
    ]
    cluster.apply(pod("istio-system", "istiod-e2e-0", {"app": "istiod", "istio": "pilot"}, env=env))
    try:
        expected = (
            f"istiod runs with {SCOPE}=true (istio-system/istiod-e2e-0 (revision default): "
            '="true"): Istio matches a Gateway\'s selector only against gateway pods in the '
            "Gateway's own namespace"
        )
        wait_for(
            lambda: any(d.startswith(expected) for d in istiod_detail(guard)),
            "/readyz to name istiod's setting",
            timeout=30,
        )
        assert guard.readyz().status_code == 200
        messages = [
            json.loads(line).get("msg", "")
            for line in guard.log_file.read_text().splitlines()
            if line.startswith("{")
        ]
        said = f"istiod runs with {SCOPE}=true (istio-system/istiod-e2e-0"
        assert any(message.startswith(said) for message in messages)
    finally:
        delete_pod(cluster, "istio-system", "istiod-e2e-0")
    wait_for(
        lambda: istiod_detail(guard)[0].startswith("istiod: no pod labelled app=istiod found"),
        "istiod gone again",
        timeout=30,
    )


def test_the_real_api_server_answers_the_pod_watch_with_metadata_only(
    cluster: Cluster, dedicated_ingress: None
) -> None:
    api = load_api_client(kubeconfig=str(cluster.kubeconfig), in_cluster=False)
    call = metadata_only(list_call(api, "", "v1", "pods"))
    response = call(limit=500, _preload_content=False)
    body = yaml.safe_load(response.data)
    assert (body["kind"], body["apiVersion"]) == ("PartialObjectMetadataList", "meta.k8s.io/v1")
    items = {i["metadata"]["name"]: i for i in body["items"]}
    ingress = items["dedicated-ingress-0"]
    assert (ingress["kind"], ingress["apiVersion"]) == ("PartialObjectMetadata", "meta.k8s.io/v1")
    assert "spec" not in ingress and "status" not in ingress
    assert ingress["metadata"]["annotations"]["inject.istio.io/templates"] == "gateway"
    # As stored after tenant-guard's mutating webhook: the tenant label is on it.
    assert ingress["metadata"]["labels"]["tenant"] == "tenant-b"
