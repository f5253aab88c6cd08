"""The gateway pods in cluster mode, without a cluster: the pod watch against the HTTP-level fake
API server through the real client (metadata only, the gateway pods kept and nothing else,
istiod's PILOT_SCOPE_GATEWAY_TO_NAMESPACE read and reported), and a tenant's attacks on
another tenant's gateway pods through the real TLS server."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from tests.builders import GW_CREATE, VS_CREATE, derive
from tests.fake_apiserver import FakeApiServer
from tests.server_harness import RunningServer, assert_verdict, running_server
from tests.test_cluster import FAST, eventually, settled
from webhook.cluster import KindCaches
from webhook.config.model import parse_config
from webhook.config.store import ConfigStore
from webhook.server.app import Runtime
from webhook.tenancy.gatewaypods import INJECT_TEMPLATES_ANNOTATION, SCOPE_ENV, Scope
from webhook.tenancy.gateways import GatewayPodWatch
from webhook.tenancy.hosts import route_key
from webhook.tenancy.live import ClusterTenancy
from webhook.tenancy.watches import ClusterView

PODS_PATH = "/api/v1/pods"
CONFIG = {
    "unclaimedHosts": "allow",
    "tenants": {"tenant-a": {"hosts": ["*.a.example.com"]}, "tenant-b": {}},
    "sharedGateways": ["istio-system/public-gateway"],
    "sharedGatewayWorkloads": [{"istio": "ingressgateway", "app": "istio-ingressgateway"}],
}


def pod(
    namespace: str,
    name: str,
    labels: dict[str, str],
    annotations: dict[str, str] | None = None,
    env: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A pod as the API server stores it: a spec and a status the metadata-only watch never
    sends, so a test can tell that it was not sent."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    container: dict[str, Any] = {"name": "discovery" if env is not None else "app", "image": "x"}
    if env is not None:
        container["env"] = env
    return {
        "metadata": metadata,
        "spec": {"containers": [container], "nodeName": "node-1"},
        "status": {"phase": "Running", "podIP": "10.0.0.7"},
    }


def istiod_pod(name: str, scope: str | None) -> dict[str, Any]:
    env = [{"name": "PILOT_TRACE_SAMPLING", "value": "1"}]
    if scope is not None:
        env.append({"name": SCOPE_ENV, "value": scope})
    return pod("istio-system", name, {"app": "istiod", "istio": "pilot"}, env=env)


def put_pod(fake: FakeApiServer, obj: dict[str, Any]) -> None:
    fake.put_object("", "pods", obj)


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        for name, tenant in (("tenant-a", "tenant-a"), ("tenant-b", "tenant-b")):
            server.add_namespace(name, {"tenant": tenant})
        server.add_namespace("istio-system", {})
        # tenant-b's dedicated ingress, as the gateway chart deploys it, and an application.
        put_pod(server, pod("tenant-b", "ingress-1", {"istio": "tenant-b-ingress", "app": "in"}))
        put_pod(
            server,
            pod(
                "tenant-b",
                "ingress-2",
                {"sidecar.istio.io/inject": "true", "app": "in2", "tier": "edge"},
                {INJECT_TEMPLATES_ANNOTATION: "gateway"},
            ),
        )
        put_pod(server, pod("tenant-b", "web-1", {"app": "web", "tier": "edge"}))
        put_pod(server, istiod_pod("istiod-1", "true"))
        yield server


def client_for(fake: FakeApiServer) -> kubernetes.client.ApiClient:
    return kubernetes.client.ApiClient(kubernetes.client.Configuration(host=fake.url))


@pytest.fixture
def watch(fake: FakeApiServer) -> Iterator[GatewayPodWatch]:
    pods = GatewayPodWatch(client_for(fake), KindCaches(), tuning=FAST, istiod_settle=0.01)
    pods.start()
    try:
        assert pods.wait_synced(5)
        eventually(lambda: pods.scope is not None, what="istiod's pods to be read")
        yield pods
    finally:
        pods.stop()


def keys(watch: GatewayPodWatch) -> list[str]:
    return sorted(watch.gateway_pods.pods)


def test_pods_are_listed_and_watched_as_metadata_only(
    fake: FakeApiServer, watch: GatewayPodWatch
) -> None:
    eventually(lambda: fake.count(PODS_PATH, watch=True) >= 1, what="the pod watch")
    calls = [r for r in fake.requests_to(PODS_PATH) if "labelSelector" not in r.query]
    assert calls and all(r.metadata_only for r in calls)
    assert {r.is_watch for r in calls} == {False, True}
    # istiod's pods are read whole, by label, to see their environment.
    (istiod_read,) = [r for r in fake.requests_to(PODS_PATH) if "labelSelector" in r.query]
    assert istiod_read.query["labelSelector"] == "app=istiod" and not istiod_read.metadata_only


def test_only_gateway_and_istiod_pods_are_kept(fake: FakeApiServer, watch: GatewayPodWatch) -> None:
    for n in range(30):
        put_pod(fake, pod("tenant-a", f"app-{n}", {"app": f"app-{n}"}))
    put_pod(fake, pod("tenant-a", "gw", {"gateway.networking.k8s.io/gateway-name": "own"}))
    eventually(lambda: "tenant-a/gw" in watch.gateway_pods.pods, what="tenant-a's gateway pod")
    assert keys(watch) == ["tenant-a/gw", "tenant-b/ingress-1", "tenant-b/ingress-2"]
    assert sorted(watch.cache.items) == sorted([*keys(watch), "istio-system/istiod-1"])
    assert watch.cache.items["tenant-b/ingress-1"].labels == {
        "istio": "tenant-b-ingress",
        "app": "in",
    }


def test_the_index_follows_labels_and_ignores_everything_else(
    fake: FakeApiServer, watch: GatewayPodWatch
) -> None:
    index = watch.gateway_pods
    # Status changes and other pods' churn are events too, but change no gateway pod's labels.
    changed = copy.deepcopy(fake.stored_object("", "pods", "tenant-b", "ingress-1"))
    assert changed is not None
    changed["status"]["phase"] = "Failed"
    put_pod(fake, changed)
    for n in range(5):
        put_pod(fake, pod("tenant-a", f"churn-{n}", {"app": "churn"}))
    rv = fake.resource_version
    eventually(lambda: watch.cache.state.resource_version == rv, what="the watch to catch up")
    assert watch.gateway_pods is index

    # An application pod that becomes a gateway, and a gateway that stops being one.
    put_pod(fake, pod("tenant-b", "web-1", {"app": "web", "istio": "now-a-gateway"}))
    put_pod(fake, pod("tenant-b", "ingress-1", {"app": "in"}))
    eventually(lambda: "tenant-b/web-1" in watch.gateway_pods.pods, what="web-1 as a gateway")
    eventually(lambda: "tenant-b/ingress-1" not in watch.gateway_pods.pods, what="ingress-1 gone")
    assert watch.gateway_pods.matching({"istio": "now-a-gateway"}) == ["tenant-b/web-1"]
    assert watch.gateway_pods.matching({"istio": "tenant-b-ingress"}) == []
    fake.remove_object("", "pods", "tenant-b", "web-1")
    eventually(lambda: keys(watch) == ["tenant-b/ingress-2"], what="web-1 deleted")


def test_istiod_scope_is_read_and_follows_a_rollout(
    fake: FakeApiServer, watch: GatewayPodWatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert watch.scope is not None and watch.scope.scope is Scope.NAMESPACE
    (note,) = watch.notes()
    assert note.startswith(
        f'istiod runs with {SCOPE_ENV}=true (istio-system/istiod-1 (revision default): ="true")'
    )
    with caplog.at_level(logging.INFO, logger="tenant_guard.gateways"):
        # A rollout: a new istiod pod without the setting, then the old one goes.
        put_pod(fake, istiod_pod("istiod-2", None))
        fake.remove_object("", "pods", "istio-system", "istiod-1")
        eventually(
            lambda: (
                watch.scope is not None
                and [s.pod for s in watch.scope.settings] == ["istio-system/istiod-2"]
            ),
            what="the rollout to be read",
        )
    assert watch.scope is not None and watch.scope.scope is Scope.MESH
    logged = [r for r in caplog.records if r.getMessage().startswith("istiod runs without")]
    assert logged and logged[-1].fields["gateway_selector_scope"] == "mesh"  # type: ignore[attr-defined]


def test_without_rbac_on_pods_the_notes_say_why_istiod_is_unknown(fake: FakeApiServer) -> None:
    fake.forbidden_paths.add(PODS_PATH)
    pods = GatewayPodWatch(client_for(fake), KindCaches(), tuning=FAST, istiod_settle=0.01)
    pods.start()
    try:
        eventually(lambda: pods.scope_error is not None, what="the istiod read to fail")
        eventually(lambda: pods.status().last_error is not None, what="the list to fail")
        (note,) = pods.notes()
        assert note.startswith(f"istiod: {SCOPE_ENV} not known: listing istiod's pods: ")
        assert "403" in note
        assert not pods.gateway_pods.synced
    finally:
        pods.stop()


# --- through the server -----------------------------------------------------------------------


@contextmanager
def live_server(
    fake: FakeApiServer, tmp_path: Path, wait: bool = True
) -> Iterator[tuple[RunningServer, ClusterView]]:
    cluster = ClusterView(
        client_for(fake),
        host_key=lambda ns, h: route_key(h, ns, "cluster.local"),
        tuning=FAST,
        istiod_settle=0.01,
    )
    cluster.start()
    try:
        if wait:
            assert cluster.wait_synced(5)
            eventually(lambda: settled(cluster), what="the caches to list")
        tenancy = ClusterTenancy(cluster, lookup_timeout=0.5)
        runtime = Runtime(ConfigStore.fixed(parse_config(CONFIG)), tenancy)
        tenancy.export_metrics(runtime.metrics)
        with running_server(runtime, tmp_path) as server:
            yield server, cluster
    finally:
        cluster.stop()


def gateway(selector: dict[str, str], namespace: str = "tenant-a") -> dict[str, Any]:
    port = {"name": "https", "number": 443, "protocol": "HTTPS"}
    spec = {"selector": selector, "servers": [{"hosts": ["./www.a.example.com"], "port": port}]}
    return derive(GW_CREATE, namespace=namespace, spec=spec)


ATTACKS = [
    pytest.param(
        {"istio": "tenant-b-ingress"},
        False,
        'spec.selector {"istio": "tenant-b-ingress"} matches gateway pods in namespace '
        '"tenant-b" of tenant "tenant-b" (pod ingress-1)',
        id="tenant-b-dedicated-ingress-by-its-istio-label",
    ),
    pytest.param(
        {"app": "in2"},
        False,
        'matches gateway pods in namespace "tenant-b" of tenant "tenant-b" (pod ingress-2)',
        id="tenant-b-gateway-injected-pod-by-another-label",
    ),
    pytest.param(
        {"tier": "edge"},
        False,
        "(pod ingress-2)",  # web-1 has the label too, but is no gateway: not named
        id="shared-label-names-the-gateway-pod-only",
    ),
    pytest.param({"app": "web"}, True, "", id="application-pod-of-tenant-b-is-no-gateway"),
    pytest.param({"istio": "tenant-a-gateway"}, True, "", id="own-selector-nothing-there-yet"),
    pytest.param(
        {"istio": "ingressgateway"},
        False,
        "matches the platform's shared gateway pods",
        id="shared-ingress-from-the-config",
    ),
]


@pytest.mark.parametrize(("selector", "allowed", "message"), ATTACKS)
def test_attacks_on_other_tenants_gateway_pods(
    fake: FakeApiServer, tmp_path: Path, selector: dict[str, str], allowed: bool, message: str
) -> None:
    with live_server(fake, tmp_path) as (server, _):
        assert_verdict(server, gateway(selector), allowed, message)


def test_a_later_pod_makes_a_selector_deny_and_its_deletion_allows_again(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    with live_server(fake, tmp_path) as (server, cluster):
        review = gateway({"istio": "later"})
        assert_verdict(server, review, True, "")
        put_pod(fake, pod("tenant-b", "later-1", {"istio": "later"}))
        eventually(lambda: "tenant-b/later-1" in cluster.gateway_pods.pods, what="the pod")
        assert_verdict(server, review, False, 'namespace "tenant-b" of tenant "tenant-b"')
        fake.remove_object("", "pods", "tenant-b", "later-1")
        eventually(lambda: "tenant-b/later-1" not in cluster.gateway_pods.pods, what="deletion")
        assert_verdict(server, review, True, "")
        with server.client() as client:
            body = client.get("/readyz").json()
            metrics = client.get("/metrics").text
    assert body["ready"] is True
    assert [d for d in body["detail"] if d.startswith("istiod")] == [
        f"istiod runs with {SCOPE_ENV}=true (istio-system/istiod-1 (revision default): "
        '="true"): Istio matches a Gateway\'s selector only against gateway pods in the '
        "Gateway's own namespace, which closes cross-namespace selector attacks by itself; "
        "tenant-guard's selector rules stay on"
    ]
    # Kept: tenant-b's two gateway pods and istiod's; the application pod is not.
    assert 'tenant_guard_cache_objects{resource="pods"} 3.0' in metrics


def test_without_the_pods_not_ready_and_gateways_are_refused_if_sent_anyway(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    fake.forbidden_paths.add(PODS_PATH)
    with live_server(fake, tmp_path, wait=False) as (server, cluster):
        eventually(lambda: cluster.gateway_pod_watch.status().last_error is not None, what="403")
        eventually(lambda: cluster.listed, what="the namespaces and VirtualServices")
        with server.client() as client:
            answer = client.post("/validate", json=gateway({"istio": "tenant-a-gateway"})).json()
            body = client.get("/readyz")
        response = answer["response"]
        assert response["allowed"] is False
        assert "cannot be checked yet" in response["status"]["message"]
        vs = derive(VS_CREATE, spec={"hosts": ["reviews"], "exportTo": ["."]})
        assert_verdict(server, vs, True, "")
    assert body.status_code == 503
    reasons = body.json()["detail"]
    assert any(
        r.startswith("pods: initial list not complete (last error: HTTP 403") for r in reasons
    )
