"""Cluster mode end to end without a cluster: the real server over TLS, tenancy from watch
caches fed by the HTTP-level fake API server, and `serve --kubeconfig` as a process."""

from __future__ import annotations

import copy
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import kubernetes.client
import pytest

from tests.conftest import EXAMPLE_CONFIG, load_fixture
from tests.fake_apiserver import GRPCROUTES, HTTPROUTES, TLSROUTES, FakeApiServer
from tests.server_harness import (
    RunningServer,
    cluster_config_file,
    free_port,
    running_server,
    serve_process,
)
from tests.test_cluster import FAST, eventually, settled, without_istiod
from webhook.certificates.authority import generate_bundle, write_bundle
from webhook.config.model import parse_config
from webhook.config.store import ConfigStore
from webhook.server.app import Runtime
from webhook.tenancy import tenants as tenant_objects
from webhook.tenancy.hosts import route_key
from webhook.tenancy.live import ClusterTenancy
from webhook.tenancy.watches import ClusterView

CONFIG = {
    "unclaimedHosts": "allow",
    "tenants": {"tenant-a": {"hosts": ["*.a.example.com"]}, "tenant-b": {}},
    "proxyDefaults": {"cpu": "100m", "cpuLimit": "500m"},
}


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        server.add_namespace("tenant-a", {"tenant": "tenant-a"})
        server.add_namespace("tenant-b", {"tenant": "tenant-b"})
        server.add_namespace("istio-system", {})
        server.add_virtualservice("tenant-a", "partner", ["api.partner.example", "reviews"])
        yield server


@pytest.fixture
def live(fake: FakeApiServer, tmp_path: Path) -> Iterator[tuple[RunningServer, ClusterView]]:
    with live_server(fake, tmp_path) as running:
        yield running


@contextmanager
def live_server(fake: FakeApiServer, tmp_path: Path) -> Iterator[tuple[RunningServer, ClusterView]]:
    """The real server over TLS, its tenancy read from `fake` through the watch caches."""
    config = parse_config(CONFIG)
    api = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=fake.url))
    cluster = ClusterView(
        api, host_key=lambda ns, h: route_key(h, ns, "cluster.local"), tuning=FAST, stale_after=0.5
    )
    cluster.start()
    assert cluster.wait_synced(5), cluster.readiness()
    eventually(lambda: settled(cluster), what="the Gateway API route watches to settle")
    tenancy = ClusterTenancy(cluster, lookup_timeout=0.5)
    runtime = Runtime(ConfigStore.fixed(config), tenancy)
    tenancy.export_metrics(runtime.metrics)
    try:
        with running_server(runtime, tmp_path) as server:
            yield server, cluster
    finally:
        cluster.stop()


def vs_review(
    namespace: str, name: str, hosts: list[str], operation: str = "CREATE"
) -> dict[str, Any]:
    review = copy.deepcopy(load_fixture("virtualservice-create-short-host.json"))
    request = review["request"]
    request.update(namespace=namespace, name=name, operation=operation)
    obj = request["object"]
    obj["metadata"].update(namespace=namespace, name=name)
    obj["spec"]["hosts"] = hosts
    obj["spec"]["exportTo"] = ["."]
    if operation == "UPDATE":
        request["oldObject"] = copy.deepcopy(obj)
    return review


def answer(server: RunningServer, path: str, review: dict[str, Any]) -> dict[str, Any]:
    with server.client() as client:
        response = client.post(path, json=review)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["response"]
    return result


def test_host_routed_by_another_tenants_virtualservice_is_a_collision(live: Any) -> None:
    server, _ = live
    response = answer(server, "/validate", vs_review("tenant-b", "steal", ["api.partner.example"]))
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert 'already routed by VirtualService tenant-a/partner of tenant "tenant-a"' in message


def test_short_name_collides_with_its_expanded_form(live: Any) -> None:
    server, _ = live
    review = vs_review("tenant-b", "steal", ["reviews.tenant-a.svc.cluster.local"])
    message = answer(server, "/validate", review)["status"]["message"]
    # Ownership comes first: the host is tenant-a's service, whoever routes it.
    assert 'belongs to tenant "tenant-a"' in message


def test_update_of_the_same_virtualservice_does_not_collide_with_itself(live: Any) -> None:
    server, _ = live
    review = vs_review("tenant-a", "partner", ["api.partner.example", "reviews"], "UPDATE")
    assert answer(server, "/validate", review)["allowed"] is True


def test_collision_follows_the_watch(live: Any, fake: FakeApiServer) -> None:
    server, cluster = live
    fake.update_virtualservice("tenant-a", "partner", ["reviews"])
    eventually(lambda: "api.partner.example" not in cluster.routes, what="routes updated")
    review = vs_review("tenant-b", "steal", ["api.partner.example"])
    assert answer(server, "/validate", review)["allowed"] is True


def test_namespace_created_a_moment_ago_is_read_with_one_get(
    live: Any, fake: FakeApiServer
) -> None:
    server, cluster = live
    fake.hold_watch_events()  # as in one ArgoCD sync: the namespace exists, the cache lags
    fake.add_namespace("fresh", {"tenant": "tenant-b"})
    assert "fresh" not in cluster.namespaces
    review = vs_review("fresh", "hijack", ["reviews.tenant-a.svc.cluster.local"])
    response = answer(server, "/validate", review)
    assert response["allowed"] is False
    assert 'belongs to tenant "tenant-a"' in response["status"]["message"]
    answer(server, "/validate", vs_review("fresh", "mine", ["reviews"]))
    assert fake.count("/api/v1/namespaces/fresh") == 1
    fake.release_watch_events()


def test_namespace_that_cannot_be_read_fails_closed(live: Any, fake: FakeApiServer) -> None:
    server, _ = live
    fake.namespace_get_fault = "hang"
    started = time.monotonic()
    response = answer(server, "/validate", vs_review("unseen", "x", ["reviews"]))
    assert time.monotonic() - started < 3
    assert response["allowed"] is False
    assert response["status"]["code"] == 503
    assert "could not determine the tenancy of namespace 'unseen'" in response["status"]["message"]


def test_requests_before_the_first_list_are_refused_not_judged(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    # A cache that has not listed knows no owners and no routes: a hijack would read as "not
    # yours" and a collision would pass. Both are refused until the caches are in.
    api = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=fake.url))
    cluster = ClusterView(api, host_key=lambda ns, h: route_key(h, ns, "cluster.local"))
    tenancy = ClusterTenancy(cluster, lookup_timeout=0.5)
    runtime = Runtime(ConfigStore.fixed(parse_config(CONFIG)), tenancy)
    with running_server(runtime, tmp_path) as server:
        for review in (
            vs_review("tenant-b", "hijack", ["reviews.tenant-a.svc.cluster.local"]),
            vs_review("tenant-b", "collide", ["api.partner.example"]),
            vs_review("tenant-b", "own", ["reviews"]),
        ):
            result = answer(server, "/validate", review)
            assert result["allowed"] is False and result["status"]["code"] == 503, result
            message = result["status"]["message"]
            assert "caches have not finished their first list" in message, message
            assert message.endswith("retry in a moment"), message
        with server.client() as client:
            assert client.get("/readyz").status_code == 503
        cluster.start()
        try:
            assert cluster.wait_synced(5), cluster.readiness()
            result = answer(server, "/validate", vs_review("tenant-b", "own", ["reviews"]))
            assert result["allowed"] is True, result
        finally:
            cluster.stop()


def test_readyz_reports_a_watch_that_keeps_failing(live: Any, fake: FakeApiServer) -> None:
    server, _ = live
    with server.client() as client:
        eventually(lambda: client.get("/readyz").status_code == 200, what="ready at first")
        fake.stop()

        def namespaces_reported() -> bool:
            # Both watches fail; either may be reported first.
            response = client.get("/readyz")
            detail = " ".join(response.json()["detail"])
            return response.status_code == 503 and "namespaces" in detail

        eventually(namespaces_reported, timeout=10, what="readyz to report the namespace watch")
        metrics = client.get("/metrics").text
    assert 'tenant_guard_cache_objects{resource="namespaces"} 3.0' in metrics


# --- collisions across APIs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "kind", "hostnames", "host", "routed"),
    [
        pytest.param(
            HTTPROUTES,
            "HTTPRoute",
            ["shop.partner-b.example"],
            "shop.partner-b.example",
            "",
            id="httproute-same-host",
        ),
        pytest.param(
            HTTPROUTES,
            "HTTPRoute",
            ["SHOP.partner-b.example."],
            "shop.partner-b.example",
            "",
            id="httproute-host-normalised",
        ),
        pytest.param(
            GRPCROUTES,
            "GRPCRoute",
            ["*.rpc-b.example"],
            "api.rpc-b.example",
            " (as *.rpc-b.example)",
            id="grpcroute-wildcard-covers-it",
        ),
        pytest.param(
            TLSROUTES,
            "TLSRoute",
            ["db.partner-b.example"],
            "db.partner-b.example",
            "",
            id="tlsroute-same-host",
        ),
    ],
)
def test_host_routed_by_another_tenants_gateway_api_route_is_a_collision(
    live: Any,
    fake: FakeApiServer,
    resource: str,
    kind: str,
    hostnames: list[str],
    host: str,
    routed: str,
) -> None:
    server, cluster = live
    fake.add_route(resource, "tenant-b", "edge", hostnames)
    eventually(lambda: cluster.stats()[f"{resource}_items"] == 1, what=f"the {kind}")
    response = answer(server, "/validate", vs_review("tenant-a", "steal", [host]))
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert (
        f'VirtualService tenant-a/steal: spec.hosts[0] "{host}" is already routed by '
        f'{kind} tenant-b/edge of tenant "tenant-b"{routed}' in message
    )


def test_route_of_the_same_tenant_or_without_hostnames_does_not_collide(
    live: Any, fake: FakeApiServer
) -> None:
    server, cluster = live
    fake.add_route(HTTPROUTES, "tenant-a", "own", ["own.partner.example"])
    fake.add_route(HTTPROUTES, "tenant-b", "catch-all", None)
    eventually(lambda: cluster.stats()["httproutes_items"] == 2, what="both routes")
    review = vs_review("tenant-a", "mine", ["own.partner.example"])
    assert answer(server, "/validate", review)["allowed"] is True


def test_collision_with_a_route_ends_when_the_route_is_deleted(
    live: Any, fake: FakeApiServer
) -> None:
    server, cluster = live
    fake.add_route(HTTPROUTES, "tenant-b", "shop", ["shop.partner-b.example"])
    review = vs_review("tenant-a", "steal", ["shop.partner-b.example"])
    eventually(lambda: "shop.partner-b.example" in cluster.routes, what="the HTTPRoute")
    assert answer(server, "/validate", review)["allowed"] is False
    fake.delete_route(HTTPROUTES, "tenant-b", "shop")
    eventually(lambda: "shop.partner-b.example" not in cluster.routes, what="DELETED")
    assert answer(server, "/validate", review)["allowed"] is True


def gauge(name: str, resource: str) -> str:
    return f'tenant_guard_{name}{{resource="{resource}"}}'


def test_readyz_and_metrics_without_the_tlsroute_crd(fake: FakeApiServer, tmp_path: Path) -> None:
    fake.serve_gateway_route(TLSROUTES, ())
    fake.add_route(HTTPROUTES, "tenant-b", "shop", ["shop.partner-b.example"])
    fake.add_route(GRPCROUTES, "tenant-b", "rpc", None)
    with live_server(fake, tmp_path) as (server, cluster), server.client() as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200
        body = ready.json()
        assert body["ready"] is True
        (detail,) = without_istiod(body["detail"])
        assert detail.startswith(
            "tlsroutes.gateway.networking.k8s.io: watch waiting, no served version of "
            "gateway.networking.k8s.io"
        )

        fake.serve_gateway_route(TLSROUTES, ("v1alpha2",))
        fake.add_route(TLSROUTES, "tenant-b", "db", ["db.partner-b.example"])

        def started() -> bool:
            body = client.get("/readyz").json()
            return body["ready"] is True and without_istiod(body["detail"]) == []

        eventually(started, what="the TLSRoute watch to start")
        eventually(lambda: "db.partner-b.example" in cluster.routes, what="the TLSRoute")
        metrics = client.get("/metrics").text
    assert f"{gauge('cache_objects', 'httproutes')} 1.0" in metrics
    assert f"{gauge('cache_objects', 'grpcroutes')} 1.0" in metrics
    assert f"{gauge('cache_objects', 'tlsroutes')} 1.0" in metrics
    for resource in (HTTPROUTES, GRPCROUTES, TLSROUTES):
        assert f"{gauge('watch_restarts', resource)} 0.0" in metrics
    assert f"{gauge('cache_objects', 'pods')} 0.0" in metrics  # no gateway pod, no istiod


# --- the command: serve --kubeconfig ---------------------------------------------------------


def test_serve_with_kubeconfig_waits_for_the_caches_then_admits(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    config_file = cluster_config_file(EXAMPLE_CONFIG, tmp_path)
    write_bundle(generate_bundle("tenant-guard", "tenant-guard"), tmp_path / "tls")
    port = free_port()
    args = ["--config", str(config_file), "--cert-dir", str(tmp_path / "tls")]
    args += ["--port", str(port), "--kubeconfig", str(fake.write_kubeconfig(tmp_path / "kc"))]
    with serve_process(args):
        context = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.crt"))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context) as client:

            def ready() -> bool:
                try:
                    return client.get("/readyz").status_code == 200
                except httpx.TransportError:
                    return False

            eventually(ready, timeout=20, what="the server to be ready")
            review = load_fixture("pod-create-plain.json", mutating=True)
            response = client.post("/mutate", json=review).json()["response"]
            assert response["allowed"] is True and response["patchType"] == "JSONPatch"
            assert fake.count("/api/v1/namespaces", watch=True) >= 1


def test_requests_are_refused_until_the_tenants_have_listed(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    # The namespaces and VirtualServices are in, the served Tenants are not: a view now would
    # know no Tenant's claims (an unclaimed host passes with unclaimedHosts: allow), so the
    # review is refused, not judged, until the Tenants list.
    config = parse_config(CONFIG)
    fake.serve_kind(tenant_objects.GROUP, "v1alpha1", tenant_objects.PLURAL, "Tenant")
    tenants_path = f"/apis/{tenant_objects.GROUP}/v1alpha1/{tenant_objects.PLURAL}"
    fake.forbidden_paths.add(tenants_path)
    api = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=fake.url))
    cluster = ClusterView(
        api,
        host_key=lambda ns, h: route_key(h, ns, "cluster.local"),
        tuning=FAST,
        read_tenant=lambda obj: tenant_objects.read_tenant(obj, config),
    )
    cluster.start()
    try:
        eventually(
            lambda: cluster.cache_status()[0].synced and cluster.cache_status()[1].synced,
            what="the namespaces and VirtualServices",
        )
        tenancy = ClusterTenancy(cluster, lookup_timeout=0.5)
        with running_server(Runtime(ConfigStore.fixed(config), tenancy), tmp_path) as server:
            review = vs_review("tenant-a", "web", ["reviews"])
            result = answer(server, "/validate", review)
            assert result["allowed"] is False and result["status"]["code"] == 503, result
            assert (
                "Tenant caches have not finished their first list" in (result["status"]["message"])
            )
            fake.forbidden_paths.discard(tenants_path)
            eventually(lambda: cluster.listed, what="the Tenants")
            assert answer(server, "/validate", review)["allowed"] is True
    finally:
        cluster.stop()
