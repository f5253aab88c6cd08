"""`analyze --kubeconfig` and `audit` as a user runs them, against the fake API server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.builders import ABSENT, config_data
from tests.fake_apiserver import ISTIO_GROUP, FakeApiServer
from webhook.cluster import ClusterReader, load_api_client

SHARED_HOST = "api.partner.example.net"  # claimed by nobody; allowed (unclaimedHosts: allow)
CLUSTER_CONFIG = config_data(namespaces=ABSENT, unclaimedHosts="allow")


def destination_rule(namespace: str, name: str, export_to: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{ISTIO_GROUP}/v1",
        "kind": "DestinationRule",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"host": name, "exportTo": export_to},
    }


def virtualservice(namespace: str, name: str, hosts: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{ISTIO_GROUP}/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"hosts": hosts, "exportTo": ["."]},
    }


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeApiServer, Path]]:
    """Tenants a and b (b also owns `shop`, known only to the cluster), a platform namespace,
    existing routes, DestinationRules, a Pod, and tenant-guard's ConfigMap."""
    with FakeApiServer() as fake:
        for name, labels in (
            ("tenant-a", {"tenant": "tenant-a"}),
            ("tenant-b", {"tenant": "tenant-b"}),
            ("shop", {"tenant": "tenant-b"}),
            ("istio-system", {}),
            ("tenant-guard", {}),
        ):
            fake.add_namespace(name, labels)
        fake.add_virtualservice("tenant-a", "reviews", ["reviews"])
        fake.add_virtualservice("tenant-b", "partner", [SHARED_HOST])
        fake.add_virtualservice("tenant-a", "partner-too", [SHARED_HOST])
        fake.add_virtualservice("istio-system", "catch-all", ["*"])
        fake.add_object(
            ISTIO_GROUP, "destinationrules", destination_rule("tenant-b", "leaky", ["*"])
        )
        fake.add_object(
            ISTIO_GROUP, "destinationrules", destination_rule("tenant-a", "fine", ["."])
        )
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "tenant-a"},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]},
        }
        fake.add_object("", "pods", pod)
        config_map = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "tenant-guard-config", "namespace": "tenant-guard"},
            "data": {"config.yaml": yaml.safe_dump(CLUSTER_CONFIG)},
        }
        fake.add_object("", "configmaps", config_map)
        yield fake, fake.write_kubeconfig(tmp_path / "kubeconfig")


def run(*args: str | Path, stdin: str | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "webhook", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def verdicts(stdout: str) -> dict[tuple[str, str, str], str]:
    return {
        (o["kind"], o["namespace"], o["name"]): o["status"] for o in json.loads(stdout)["objects"]
    }


def test_audit_judges_what_is_in_tenant_namespaces_with_one_list_per_kind(
    cluster: tuple[FakeApiServer, Path],
) -> None:
    fake, kubeconfig = cluster
    result = run("audit", "--kubeconfig", kubeconfig, "--output", "json")
    assert result.returncode == 1, result.stderr
    assert verdicts(result.stdout) == {
        ("VirtualService", "tenant-a", "reviews"): "allowed",
        ("VirtualService", "tenant-a", "partner-too"): "denied",
        ("VirtualService", "tenant-b", "partner"): "denied",
        ("DestinationRule", "tenant-a", "fine"): "allowed",
        ("DestinationRule", "tenant-b", "leaky"): "denied",
        ("Pod", "tenant-a", "web"): "allowed",
    }
    objects = {o["name"]: o for o in json.loads(result.stdout)["objects"]}
    assert objects["partner-too"]["violations"][0]["rule"] == "host-collision"
    assert "already routed by VirtualService tenant-b/partner" in objects["partner-too"]["message"]
    assert objects["leaky"]["violations"][0]["rule"] == "export-to"
    assert {m["field"]: m["value"] for m in objects["web"]["mutations"]}[
        'metadata.labels["tenant"]'
    ] == "tenant-a"
    for path in (
        f"/apis/{ISTIO_GROUP}/v1/virtualservices",
        f"/apis/{ISTIO_GROUP}/v1/destinationrules",
        "/api/v1/pods",
        "/api/v1/services",
    ):
        assert fake.count(path, watch=False) == 1, path
    # Not a request per object: nothing read by name but the ConfigMap.
    by_name = [r.path for r in fake.requests if r.path.count("/") > 5]
    assert by_name == ["/api/v1/namespaces/tenant-guard/configmaps/tenant-guard-config"]


def test_audit_text_and_a_config_file_instead_of_the_configmap(
    cluster: tuple[FakeApiServer, Path], tmp_path: Path
) -> None:
    _, kubeconfig = cluster
    strict = tmp_path / "config.yaml"
    strict.write_text(yaml.safe_dump(config_data(namespaces=ABSENT, unclaimedHosts="deny")))
    result = run("audit", "--kubeconfig", kubeconfig, "--config", strict)
    assert result.returncode == 1, result.stderr
    assert "VirtualService tenant-b/partner: DENIED" in result.stdout
    assert (
        f'spec.hosts[0] "{SHARED_HOST}" is not claimed by any tenant (unclaimedHosts: deny)'
        in result.stdout
    )
    assert "catch-all" not in result.stdout  # platform namespaces are not audited


def test_audit_without_a_config_anywhere_exits_2(tmp_path: Path) -> None:
    with FakeApiServer() as fake:
        fake.add_namespace("tenant-a", {"tenant": "tenant-a"})
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
        result = run("audit", "--kubeconfig", kubeconfig)
    assert result.returncode == 2
    assert "ConfigMap tenant-guard/tenant-guard-config" in result.stderr
    assert "pass --config FILE" in result.stderr


def test_audit_of_an_unreachable_cluster_exits_2(tmp_path: Path) -> None:
    fake = FakeApiServer().start()
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    fake.stop()
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CLUSTER_CONFIG))
    result = run("audit", "--kubeconfig", kubeconfig, "--config", config)
    assert result.returncode == 2
    assert "tenant-guard audit: GET /api/v1/namespaces" in result.stderr


def test_analyze_with_a_kubeconfig_reads_tenancy_live_objects_and_routes(
    cluster: tuple[FakeApiServer, Path],
) -> None:
    fake, kubeconfig = cluster
    manifests = yaml.safe_dump_all(
        [
            # Exists: judged as an UPDATE; its new host is already routed by tenant-b.
            virtualservice("tenant-a", "reviews", ["reviews", SHARED_HOST]),
            # `shop` is tenant-b's only in the cluster's labels.
            virtualservice("shop", "hijack", ["reviews.tenant-a.svc.cluster.local"]),
            virtualservice("shop", "storefront", ["storefront"]),
        ]
    )
    result = run("analyze", "--kubeconfig", kubeconfig, "-o", "json", "-", stdin=manifests)
    assert result.returncode == 1, result.stderr
    objects = {o["name"]: o for o in json.loads(result.stdout)["objects"]}
    reviews, hijack, storefront = objects["reviews"], objects["hijack"], objects["storefront"]
    assert (reviews["operation"], reviews["status"]) == ("UPDATE", "denied")
    assert reviews["violations"][0]["rule"] == "host-collision"
    assert (hijack["operation"], hijack["status"], hijack["tenant"]) == (
        "CREATE",
        "denied",
        "tenant-b",
    )
    assert hijack["violations"][0]["owner"] == "tenant-a"
    assert (storefront["status"], storefront["tenant"]) == ("allowed", "tenant-b")
    # One list per (resource, namespace) of the input, nothing read object by object.
    assert fake.count(f"/apis/{ISTIO_GROUP}/v1/namespaces/tenant-a/virtualservices") == 1
    assert fake.count(f"/apis/{ISTIO_GROUP}/v1/namespaces/shop/virtualservices") == 1
    assert fake.count(f"/apis/{ISTIO_GROUP}/v1/namespaces/tenant-a/virtualservices/reviews") == 0


def test_lists_are_read_a_page_at_a_time(tmp_path: Path) -> None:
    with FakeApiServer() as fake:
        for index in range(5):
            rule = destination_rule("tenant-a", f"rule-{index}", ["."])
            fake.add_object(ISTIO_GROUP, "destinationrules", rule)
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
        reader = ClusterReader(
            load_api_client(kubeconfig=str(kubeconfig), in_cluster=False), page_size=2
        )
        listed = reader.list(ISTIO_GROUP, "v1", "destinationrules")
        missing = reader.list(ISTIO_GROUP, "v1", "sidecars")
        pages = fake.requests_to(f"/apis/{ISTIO_GROUP}/v1/destinationrules")
    assert [o["metadata"]["name"] for o in listed or ()] == [f"rule-{i}" for i in range(5)]
    assert {(o["apiVersion"], o["kind"]) for o in listed or ()} == {
        (f"{ISTIO_GROUP}/v1", "DestinationRule")
    }
    assert [(p.query.get("limit"), p.query.get("continue")) for p in pages] == [
        ("2", None),
        ("2", "2"),
        ("2", "4"),
    ]
    assert missing is None  # a resource the server does not serve


def istio_gateway(namespace: str, name: str, selector: dict[str, str]) -> dict[str, Any]:
    port = {"name": "http", "number": 80, "protocol": "HTTP"}
    return {
        "apiVersion": f"{ISTIO_GROUP}/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": selector, "servers": [{"hosts": ["./a.example.com"], "port": port}]},
    }


def add_tenant_b_ingress(fake: FakeApiServer) -> None:
    """tenant-b's dedicated ingress pod, as Istio's gateway chart labels it."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "ingress-7c9d",
            "namespace": "tenant-b",
            "labels": {"istio": "tenant-b-ingress", "app": "tenant-b-ingress"},
            "annotations": {"inject.istio.io/templates": "gateway"},
        },
        "spec": {"containers": [{"name": "istio-proxy", "image": "auto"}]},
    }
    fake.add_object("", "pods", pod)


def test_analyze_with_a_kubeconfig_judges_gateway_selectors_against_the_live_pods(
    cluster: tuple[FakeApiServer, Path],
) -> None:
    fake, kubeconfig = cluster
    add_tenant_b_ingress(fake)
    manifests = yaml.safe_dump_all(
        [
            istio_gateway("tenant-a", "takeover", {"istio": "tenant-b-ingress"}),
            istio_gateway("tenant-a", "own", {"istio": "tenant-a-ingress"}),
        ]
    )
    result = run("analyze", "--kubeconfig", kubeconfig, "-o", "json", "-", stdin=manifests)
    assert result.returncode == 1, result.stderr
    objects = {o["name"]: o for o in json.loads(result.stdout)["objects"]}
    takeover, own = objects["takeover"], objects["own"]
    assert takeover["status"] == "denied"
    (violation,) = takeover["violations"]
    assert (violation["rule"], violation["owner"]) == ("gateway-selector", "tenant-b")
    assert (
        'matches gateway pods in namespace "tenant-b" of tenant "tenant-b"' in takeover["message"]
    )
    assert own["status"] == "allowed"
    assert takeover["notes"] == own["notes"] == []  # the pods were known
    (listed,) = [r for r in fake.requests_to("/api/v1/pods")]
    assert listed.metadata_only


def test_audit_reports_a_stored_gateway_on_another_tenants_pods(
    cluster: tuple[FakeApiServer, Path],
) -> None:
    fake, kubeconfig = cluster
    add_tenant_b_ingress(fake)
    fake.add_object(
        ISTIO_GROUP,
        "gateways",
        istio_gateway("tenant-a", "takeover", {"istio": "tenant-b-ingress"}),
    )
    result = run("audit", "--kubeconfig", kubeconfig, "--output", "json")
    assert result.returncode == 1, result.stderr
    objects = {o["name"]: o for o in json.loads(result.stdout)["objects"]}
    assert objects["takeover"]["status"] == "denied"
    assert objects["takeover"]["violations"][0]["owner"] == "tenant-b"
    # The pods were listed once, as the audit lists them anyway.
    assert fake.count("/api/v1/pods", watch=False) == 1
