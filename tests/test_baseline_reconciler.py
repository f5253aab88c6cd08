"""The tenant baseline reconciler against the HTTP-level fake API server, through the real
kubernetes client: server-side apply, drift, namespaces moving between tenants, missing CRDs,
API errors, and one writer among replicas (the Lease)."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import kubernetes.client
import pytest

from tests.fake_apiserver import FakeApiServer
from tests.server_harness import free_port, running_server, serve_process
from tests.test_cluster import FAST, eventually, without_istiod
from webhook.baseline.api import BaselineApi
from webhook.baseline.lease import LeaderElector, LeaseApi
from webhook.baseline.reconciler import LEASE_NAME, BaselineReconciler, PassResult
from webhook.certificates.authority import generate_bundle, write_bundle
from webhook.cluster.rest import ClusterApiError
from webhook.config.model import Config, load_config, parse_config
from webhook.config.store import ConfigStore
from webhook.metrics import Metrics
from webhook.server.app import Runtime
from webhook.server.logs import JsonFormatter
from webhook.tenancy.hosts import route_key
from webhook.tenancy.watches import ClusterView

REPO = Path(__file__).resolve().parents[1]
SECURITY = "security.istio.io"
ISTIO = "networking.istio.io"
AP, PA, SIDECAR = "authorizationpolicies", "peerauthentications", "sidecars"


def shipped_config() -> Config:
    """deploy/base/config.yaml: the baseline tests exercise is the one that ships."""
    return load_config(REPO / "deploy" / "base" / "config.yaml")


def install_istio_security(fake: FakeApiServer) -> None:
    fake.serve_kind(SECURITY, "v1", AP, "AuthorizationPolicy")
    fake.serve_kind(SECURITY, "v1", PA, "PeerAuthentication")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Namespaces:
    """Stands in for the watch cache: each change is a new mapping, as a new snapshot is."""

    def __init__(self, labels: Mapping[str, Mapping[str, str]]) -> None:
        self.current: Mapping[str, Mapping[str, str]] = dict(labels)

    def set(self, name: str, labels: Mapping[str, str] | None) -> None:
        current = dict(self.current)
        if labels is None:
            current.pop(name, None)
        else:
            current[name] = dict(labels)
        self.current = current


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        server.no_delay = True  # no Nagle pauses: these tests make many small requests
        server.serve_kind(ISTIO, "v1", SIDECAR, "Sidecar")
        yield server


def api_client(fake: FakeApiServer) -> kubernetes.client.ApiClient:
    return kubernetes.client.ApiClient(kubernetes.client.Configuration(host=fake.url))


def make_reconciler(
    fake: FakeApiServer,
    namespaces: Namespaces,
    config: Config | None = None,
    *,
    identity: str = "replica-1",
    clock: Clock | None = None,
    current: Callable[[], Config] | None = None,
) -> BaselineReconciler:
    client = api_client(fake)
    clock = clock or Clock()
    elector = LeaderElector(
        LeaseApi(client),
        namespace="tenant-guard",
        name="baseline",
        identity=identity,
        duration=15,
        monotonic=clock,
    )
    chosen = config or shipped_config()
    return BaselineReconciler(
        BaselineApi(client),
        elector,
        current_config=current or (lambda: chosen),
        namespaces=lambda: namespaces.current,
        retry=5.0,
        clock=clock,
    )


def stored(fake: FakeApiServer, group: str, plural: str, namespace: str, name: str) -> Any:
    obj = fake.stored_object(group, plural, namespace, name)
    assert obj is not None, f"{plural} {namespace}/{name} was not written"
    return obj


def allowed_namespaces(fake: FakeApiServer, namespace: str) -> list[str]:
    policy = stored(fake, SECURITY, AP, namespace, "allow-same-tenant")
    return list(policy["spec"]["rules"][0]["from"][0]["source"]["namespaces"])


# The shipped config's sharedNamespaces, as the Sidecar's egress hosts list them.
SHARED = ["istio-system/*", "istio-ingress/*"]


def sidecar_hosts(fake: FakeApiServer, namespace: str) -> list[str]:
    return list(stored(fake, ISTIO, SIDECAR, namespace, "default")["spec"]["egress"][0]["hosts"])


def done(result: PassResult | None, action: str) -> list[str]:
    assert result is not None, "no pass ran"
    return sorted(result.done[action])


SHOP = {"tenant": "shop"}
BANK = {"tenant": "bank"}


# --- creating, by server-side apply ------------------------------------------------------------


def test_a_new_tenant_namespace_gets_its_baseline_by_server_side_apply(
    fake: FakeApiServer,
) -> None:
    install_istio_security(fake)
    namespaces = Namespaces({"shop": SHOP, "istio-system": {}, "kube-system": {}})
    result = make_reconciler(fake, namespaces).step()

    assert done(result, "created") == [
        "AuthorizationPolicy shop/allow-same-tenant",
        "AuthorizationPolicy shop/default-deny",
        "PeerAuthentication shop/default",
        "Sidecar shop/default",
    ]
    assert result is not None and result.clean
    applies = fake.applies
    assert len(applies) == 4
    for patch in applies:
        assert patch.content_type == "application/apply-patch+yaml"
        assert patch.query["fieldManager"] == "tenant-guard"
        assert patch.query["force"] == "true"
        labels = patch.body["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "tenant-guard"
        assert labels["tenant-guard.io/tenant"] == "shop"
        assert patch.body["metadata"]["namespace"] == "shop"
    assert {p.path for p in applies} == {
        "/apis/security.istio.io/v1/namespaces/shop/authorizationpolicies/default-deny",
        "/apis/security.istio.io/v1/namespaces/shop/authorizationpolicies/allow-same-tenant",
        "/apis/security.istio.io/v1/namespaces/shop/peerauthentications/default",
        "/apis/networking.istio.io/v1/namespaces/shop/sidecars/default",
    }
    assert stored(fake, SECURITY, AP, "shop", "default-deny")["spec"] == {}
    assert allowed_namespaces(fake, "shop") == ["shop"]
    rules = stored(fake, SECURITY, AP, "shop", "allow-same-tenant")["spec"]["rules"]
    assert rules[1]["from"][0]["source"]["principals"] == [
        "cluster.local/ns/istio-ingress/sa/istio-ingressgateway-service-account"
    ]
    assert stored(fake, SECURITY, PA, "shop", "default")["spec"] == {"mtls": {"mode": "STRICT"}}
    assert sidecar_hosts(fake, "shop") == ["./*", *SHARED]
    # Platform namespaces get nothing.
    assert set(fake.stored_objects(SECURITY, AP)) == {
        ("shop", "default-deny"),
        ("shop", "allow-same-tenant"),
    }


def test_a_pass_with_nothing_changed_writes_nothing(fake: FakeApiServer) -> None:
    install_istio_security(fake)
    clock = Clock()
    reconciler = make_reconciler(fake, Namespaces({"shop": SHOP}), clock=clock)
    reconciler.step()
    writes = len(fake.applies)
    assert reconciler.step() is None, "no change and no resync due: no pass"
    clock.now += 301  # the resync (resyncSeconds: 300) comes round
    result = reconciler.step()
    assert result is not None and not any(result.done.values())
    assert len(fake.applies) == writes, "objects in place and untouched are not applied again"


# --- drift ---------------------------------------------------------------------------------------


def test_an_edited_object_is_restored_by_taking_the_fields_back(fake: FakeApiServer) -> None:
    install_istio_security(fake)
    clock = Clock()
    reconciler = make_reconciler(fake, Namespaces({"shop": SHOP}), clock=clock)
    reconciler.step()
    edited = stored(fake, SECURITY, PA, "shop", "default")
    edited["spec"]["mtls"]["mode"] = "PERMISSIVE"
    fake.put_object(SECURITY, PA, edited, manager="kubectl-edit")

    clock.now += 301
    result = reconciler.step()

    assert done(result, "restored") == ["PeerAuthentication shop/default"]
    assert stored(fake, SECURITY, PA, "shop", "default")["spec"]["mtls"]["mode"] == "STRICT"
    # The fake answers 409 Conflict to an apply over another manager's fields unless forced.
    assert fake.applies[-1].query["force"] == "true"


def test_a_deleted_object_is_restored(fake: FakeApiServer) -> None:
    install_istio_security(fake)
    clock = Clock()
    reconciler = make_reconciler(fake, Namespaces({"shop": SHOP}), clock=clock)
    reconciler.step()
    fake.remove_object(SECURITY, AP, "shop", "default-deny")

    clock.now += 301
    result = reconciler.step()

    assert done(result, "restored") == ["AuthorizationPolicy shop/default-deny"]
    assert stored(fake, SECURITY, AP, "shop", "default-deny")["spec"] == {}


def test_a_label_someone_else_adds_is_not_drift(fake: FakeApiServer) -> None:
    install_istio_security(fake)
    clock = Clock()
    reconciler = make_reconciler(fake, Namespaces({"shop": SHOP}), clock=clock)
    reconciler.step()
    sidecar = stored(fake, ISTIO, SIDECAR, "shop", "default")
    sidecar["metadata"]["labels"]["team"] = "platform"
    fake.put_object(ISTIO, SIDECAR, sidecar, manager="kubectl-label")

    clock.now += 301
    result = reconciler.step()

    assert result is not None and not any(result.done.values())
    labels = stored(fake, ISTIO, SIDECAR, "shop", "default")["metadata"]["labels"]
    assert labels["team"] == "platform", "fields tenant-guard does not own are left alone"


# --- tenants gaining and losing namespaces -------------------------------------------------------


def test_a_namespace_moving_between_tenants_updates_every_namespace_of_both(
    fake: FakeApiServer,
) -> None:
    install_istio_security(fake)
    namespaces = Namespaces({"shop": SHOP, "shop-dev": SHOP, "bank": BANK})
    reconciler = make_reconciler(fake, namespaces)
    reconciler.step()
    assert allowed_namespaces(fake, "shop") == ["shop", "shop-dev"]
    assert sidecar_hosts(fake, "shop") == ["./*", "shop-dev/*", *SHARED]
    assert allowed_namespaces(fake, "bank") == ["bank"]

    namespaces.set("shop-dev", BANK)
    result = reconciler.step()

    assert allowed_namespaces(fake, "shop") == ["shop"]
    assert sidecar_hosts(fake, "shop") == ["./*", *SHARED]
    assert allowed_namespaces(fake, "bank") == ["bank", "shop-dev"]
    assert sidecar_hosts(fake, "bank") == ["./*", "shop-dev/*", *SHARED]
    assert allowed_namespaces(fake, "shop-dev") == ["bank", "shop-dev"]
    labels = stored(fake, SECURITY, AP, "shop-dev", "default-deny")["metadata"]["labels"]
    assert labels["tenant-guard.io/tenant"] == "bank"
    assert done(result, "updated") == [
        "AuthorizationPolicy bank/allow-same-tenant",
        "AuthorizationPolicy shop-dev/allow-same-tenant",
        "AuthorizationPolicy shop-dev/default-deny",
        "AuthorizationPolicy shop/allow-same-tenant",
        "PeerAuthentication shop-dev/default",
        "Sidecar bank/default",
        "Sidecar shop-dev/default",
        "Sidecar shop/default",
    ]


def test_a_namespace_leaving_tenancy_loses_its_baseline(fake: FakeApiServer) -> None:
    install_istio_security(fake)
    namespaces = Namespaces({"shop": SHOP, "shop-dev": SHOP})
    reconciler = make_reconciler(fake, namespaces)
    reconciler.step()

    namespaces.set("shop-dev", {})
    result = reconciler.step()

    assert done(result, "removed") == [
        "AuthorizationPolicy shop-dev/allow-same-tenant",
        "AuthorizationPolicy shop-dev/default-deny",
        "PeerAuthentication shop-dev/default",
        "Sidecar shop-dev/default",
    ]
    assert ("shop-dev", "default") not in fake.stored_objects(ISTIO, SIDECAR)
    assert allowed_namespaces(fake, "shop") == ["shop"]
    assert done(result, "updated") == [
        "AuthorizationPolicy shop/allow-same-tenant",
        "Sidecar shop/default",
    ]


def test_objects_not_managed_by_tenant_guard_are_never_removed(fake: FakeApiServer) -> None:
    install_istio_security(fake)
    own = {
        "metadata": {"name": "tenant-own", "namespace": "shop-dev", "labels": {"app": "web"}},
        "spec": {"action": "ALLOW"},
    }
    fake.put_object(SECURITY, AP, own)
    namespaces = Namespaces({"shop": SHOP, "shop-dev": SHOP})
    reconciler = make_reconciler(fake, namespaces)
    reconciler.step()
    namespaces.set("shop-dev", None)  # namespace deleted
    reconciler.step()
    assert ("shop-dev", "tenant-own") in fake.stored_objects(SECURITY, AP)


def test_a_template_change_updates_and_a_removed_template_is_pruned(
    fake: FakeApiServer,
) -> None:
    install_istio_security(fake)
    base = shipped_config().model_dump(by_alias=True, exclude_none=True)
    holder: dict[str, Config] = {"config": parse_config(base)}
    reconciler = make_reconciler(fake, Namespaces({"shop": SHOP}), current=lambda: holder["config"])
    reconciler.step()

    changed = copy.deepcopy(base)
    templates = changed["baseline"]["objects"]
    peer = next(t for t in templates if t["kind"] == "PeerAuthentication")
    peer["spec"]["portLevelMtls"] = {"8080": {"mode": "STRICT"}}
    changed["baseline"]["objects"] = [t for t in templates if t["kind"] != "Sidecar"]
    holder["config"] = parse_config(changed)  # a config reload is a new object
    result = reconciler.step()

    assert done(result, "updated") == ["PeerAuthentication shop/default"]
    assert done(result, "removed") == ["Sidecar shop/default"]


# --- missing CRDs and API errors -----------------------------------------------------------------


def test_missing_crds_are_reported_retried_and_never_stop_the_rest(fake: FakeApiServer) -> None:
    clock = Clock()
    reconciler = make_reconciler(fake, Namespaces({"shop": SHOP}), clock=clock)
    result = reconciler.step()

    assert result is not None
    assert sorted(result.missing) == [
        "authorizationpolicies.security.istio.io/v1",
        "peerauthentications.security.istio.io/v1",
    ]
    assert done(result, "created") == ["Sidecar shop/default"], "other kinds go ahead"
    notes = reconciler.notes()
    assert any("authorizationpolicies.security.istio.io/v1 not served" in n for n in notes)

    install_istio_security(fake)
    clock.now += 5  # retried after `retry`, not after the 300 s resync
    result = reconciler.step()
    assert result is not None and result.clean
    assert done(result, "created") == [
        "AuthorizationPolicy shop/allow-same-tenant",
        "AuthorizationPolicy shop/default-deny",
        "PeerAuthentication shop/default",
    ]
    assert reconciler.notes() == []


def test_api_errors_are_reported_and_retried(fake: FakeApiServer) -> None:
    install_istio_security(fake)
    clock = Clock()
    reconciler = make_reconciler(fake, Namespaces({"shop": SHOP}), clock=clock)
    path = "/apis/security.istio.io/v1/namespaces/shop/peerauthentications/default"
    fake.fail_next("PATCH", path, 500)

    result = reconciler.step()
    assert result is not None and len(result.errors) == 1
    assert "applying peerauthentications.security.istio.io shop/default" in result.errors[0]
    assert "HTTP 500" in result.errors[0]
    assert len(done(result, "created")) == 3

    clock.now += 1
    assert reconciler.step() is None, "retried after `retry` seconds, not at once"
    clock.now += 5
    result = reconciler.step()
    assert done(result, "created") == ["PeerAuthentication shop/default"]


def test_without_a_baseline_nothing_is_written_and_no_lease_is_taken(
    fake: FakeApiServer,
) -> None:
    config = parse_config({"tenants": {"shop": {}}})
    reconciler = make_reconciler(fake, Namespaces({"shop": SHOP}), config)
    assert reconciler.step() is None
    assert fake.applies == []
    assert fake.stored_objects("coordination.k8s.io", "leases") == {}


# --- one writer among replicas -------------------------------------------------------------------


def test_only_the_lease_holder_reconciles_and_another_takes_over_on_release(
    fake: FakeApiServer,
) -> None:
    install_istio_security(fake)
    namespaces = Namespaces({"shop": SHOP})
    clock = Clock()
    first = make_reconciler(fake, namespaces, identity="replica-1", clock=clock)
    second = make_reconciler(fake, namespaces, identity="replica-2", clock=clock)

    assert first.step() is not None
    assert second.step() is None
    lease = stored(fake, "coordination.k8s.io", "leases", "tenant-guard", "baseline")
    assert lease["spec"]["holderIdentity"] == "replica-1"
    assert second.elector.leading is False

    first.elector.release()
    assert second.step() is not None
    assert second.elector.leading is True
    lease = stored(fake, "coordination.k8s.io", "leases", "tenant-guard", "baseline")
    assert lease["spec"]["holderIdentity"] == "replica-2"
    assert lease["spec"]["leaseTransitions"] == 2


def test_a_lease_that_is_no_longer_renewed_is_taken_over(fake: FakeApiServer) -> None:
    namespaces = Namespaces({"shop": SHOP})
    clock = Clock()
    first = make_reconciler(fake, namespaces, identity="replica-1", clock=clock)
    second = make_reconciler(fake, namespaces, identity="replica-2", clock=clock)
    first.step()
    assert second.step() is None
    clock.now += 10
    assert second.step() is None, "renewed less than 15 s ago (as far as replica-2 knows)"
    clock.now += 6  # replica-1 stopped renewing 16 s ago
    assert second.step() is not None
    assert second.elector.leading is True


def test_racing_for_the_lease_one_replica_wins(fake: FakeApiServer) -> None:
    client = api_client(fake)
    api = LeaseApi(client)
    first = LeaderElector(api, namespace="tenant-guard", name="race", identity="a", renew_every=0)
    second = LeaderElector(api, namespace="tenant-guard", name="race", identity="b")
    assert first.try_lead() is True
    # b read "no Lease" just before a's create landed, so b creates too: 409 AlreadyExists.
    path = "/apis/coordination.k8s.io/v1/namespaces/tenant-guard/leases/race"
    fake.fail_next("GET", path, 404)
    assert second.try_lead() is False
    lease = stored(fake, "coordination.k8s.io", "leases", "tenant-guard", "race")
    assert lease["spec"]["holderIdentity"] == "a"
    # And a replace based on a stale read loses with 409 Conflict.
    stale = api.read("tenant-guard", "race")
    assert first.try_lead() is True  # a renews: the resourceVersion moves on
    with pytest.raises(ClusterApiError) as lost:
        api.write("tenant-guard", "race", {"holderIdentity": "b"}, stale)
    assert lost.value.conflict


# --- in the server: readiness detail and metrics ------------------------------------------------


def test_in_the_server_a_namespace_appearing_gets_its_baseline_and_missing_crds_show(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    config = shipped_config()
    client = api_client(fake)
    cluster = ClusterView(
        client, host_key=lambda ns, h: route_key(h, ns, "cluster.local"), tuning=FAST
    )
    cluster.start()
    assert cluster.wait_synced(5)
    elector = LeaderElector(
        LeaseApi(client), namespace="tenant-guard", name="baseline", identity="server"
    )
    reconciler = BaselineReconciler(
        BaselineApi(client),
        elector,
        current_config=lambda: config,
        namespaces=lambda: cluster.namespaces,
        tick=0.05,
        retry=0.2,
    )
    runtime = Runtime(ConfigStore.fixed(config))
    reconciler.attach(runtime)
    try:
        with running_server(runtime, tmp_path) as server, server.client() as http:
            fake.add_namespace("shop", SHOP)
            eventually(
                lambda: fake.stored_object(ISTIO, SIDECAR, "shop", "default") is not None,
                what="the Sidecar of a new tenant namespace",
            )
            missing = "peerauthentications.security.istio.io/v1 not served"
            eventually(
                lambda: any(missing in d for d in http.get("/readyz").json()["detail"]),
                what="the missing CRD in /readyz's detail",
            )
            assert http.get("/readyz").status_code == 200, "missing CRDs never make it unready"
            assert 'tenant_guard_baseline_objects_total{action="created"} 1.0' in metric_text(http)
            assert "tenant_guard_baseline_missing_apis 2.0" in metric_text(http)

            install_istio_security(fake)
            eventually(
                lambda: fake.stored_object(SECURITY, PA, "shop", "default") is not None,
                what="the PeerAuthentication once its CRD is installed",
            )
            eventually(
                lambda: without_istiod(http.get("/readyz").json()["detail"]) == [],
                what="detail clear",
            )
            text = metric_text(http)
            assert 'tenant_guard_baseline_objects_total{action="created"} 4.0' in text
            assert "tenant_guard_baseline_missing_apis 0.0" in text
            assert "tenant_guard_baseline_leader 1.0" in text
    finally:
        cluster.stop()


def metric_text(http: httpx.Client) -> str:
    return http.get("/metrics").text


def test_removing_the_baseline_from_the_config_hands_the_lease_back(fake: FakeApiServer) -> None:
    holder = {"config": shipped_config()}
    reconciler = make_reconciler(fake, Namespaces({"shop": SHOP}), current=lambda: holder["config"])
    reconciler.step()
    assert reconciler.elector.leading is True
    holder["config"] = parse_config({"tenants": {"shop": {}}})
    assert reconciler.step() is None
    assert reconciler.elector.leading is False
    lease = stored(fake, "coordination.k8s.io", "leases", "tenant-guard", "baseline")
    assert "holderIdentity" not in lease["spec"]
    # Nothing is removed: dropping the section is not a request to delete the baseline.
    assert len(fake.stored_objects(ISTIO, SIDECAR)) == 1


def test_serve_with_a_kubeconfig_reconciles_and_releases_the_lease_at_exit(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    install_istio_security(fake)
    fake.add_namespace("shop", SHOP)
    fake.add_namespace("istio-system", {})
    write_bundle(generate_bundle("tenant-guard", "tenant-guard"), tmp_path / "tls")
    args = ["--config", str(REPO / "deploy" / "base" / "config.yaml")]
    args += ["--cert-dir", str(tmp_path / "tls"), "--port", str(free_port())]
    args += ["--kubeconfig", str(fake.write_kubeconfig(tmp_path / "kc"))]
    args += ["--namespace", "tenant-guard"]
    with serve_process(args):
        eventually(
            lambda: len(fake.stored_objects(SECURITY, AP)) == 2,
            timeout=20,
            what="the baseline of shop, applied by the server process",
        )
        lease = stored(fake, "coordination.k8s.io", "leases", "tenant-guard", LEASE_NAME)
        assert lease["spec"]["holderIdentity"]
    lease = stored(fake, "coordination.k8s.io", "leases", "tenant-guard", LEASE_NAME)
    assert "holderIdentity" not in lease["spec"], "released at shutdown"


def test_the_holder_renews_the_lease_every_few_seconds_not_every_tick(
    fake: FakeApiServer,
) -> None:
    clock = Clock()
    reconciler = make_reconciler(fake, Namespaces({"shop": SHOP}), clock=clock)
    path = "/apis/coordination.k8s.io/v1/namespaces/tenant-guard/leases/baseline"

    def lease_writes() -> int:
        return sum(1 for r in fake.requests if r.path == path and r.method == "PUT")

    reconciler.step()  # creates the Lease (POST)
    for _ in range(4):
        clock.now += 1
        reconciler.step()
    assert lease_writes() == 0
    clock.now += 1  # 5 s since it was written
    reconciler.step()
    assert lease_writes() == 1
    assert reconciler.elector.leading is True


def test_managed_objects_are_listed_in_pages(fake: FakeApiServer) -> None:
    install_istio_security(fake)
    namespaces = Namespaces({f"shop-{i}": SHOP for i in range(3)})
    make_reconciler(fake, namespaces).step()
    api = BaselineApi(api_client(fake))
    listed = api.list_objects(SECURITY, "v1", AP, "app.kubernetes.io/managed-by", page_size=4)
    assert len(listed) == 6  # two AuthorizationPolicies in each of three namespaces
    pages = [
        r for r in fake.requests if r.path == f"/apis/{SECURITY}/v1/{AP}" and r.method == "GET"
    ]
    assert [r.query.get("continue") for r in pages[-2:]] == [None, "4"]
    assert all(r.query["limit"] == "4" for r in pages[-2:])


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(409, id="conflict"),
        pytest.param(403, id="forbidden-without-the-rbac-component"),
    ],
)
def test_a_refused_apply_is_an_error_retried_later(fake: FakeApiServer, code: int) -> None:
    install_istio_security(fake)
    clock = Clock()
    reconciler = make_reconciler(fake, Namespaces({"shop": SHOP}), clock=clock)
    reconciler.export_metrics(Metrics())
    path = "/apis/networking.istio.io/v1/namespaces/shop/sidecars/default"
    fake.fail_next("PATCH", path, code)
    result = reconciler.step()
    assert result is not None and [f"HTTP {code}" in e for e in result.errors] == [True]
    assert any(f"HTTP {code}" in note for note in reconciler.notes())
    clock.now += 5
    assert done(reconciler.step(), "created") == ["Sidecar shop/default"]
    assert reconciler.notes() == []


def test_each_pass_that_changes_something_logs_one_json_line(
    fake: FakeApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    install_istio_security(fake)
    namespaces = Namespaces({"shop": SHOP})
    reconciler = make_reconciler(fake, namespaces)
    with caplog.at_level(logging.INFO, logger="tenant_guard.baseline"):
        reconciler.step()
    (record,) = [r for r in caplog.records if r.name == "tenant_guard.baseline"]
    fields = record.__dict__["fields"]
    assert fields["baseline"]["created"][0] == "AuthorizationPolicy shop/allow-same-tenant"
    assert fields["errors"] == [] and fields["missing_apis"] == []
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "baseline reconciled" and len(line["baseline"]["created"]) == 4


def test_a_lease_that_cannot_be_taken_is_reported(fake: FakeApiServer) -> None:
    clock = Clock()
    reconciler = make_reconciler(fake, Namespaces({"shop": SHOP}), clock=clock)
    path = "/apis/coordination.k8s.io/v1/namespaces/tenant-guard/leases/baseline"
    fake.forbidden_paths.add(path)  # as without deploy/components/baseline
    assert reconciler.step() is None
    (note,) = reconciler.notes()
    assert note.startswith("baseline: cannot take the Lease: reading Lease tenant-guard/baseline")
    assert "HTTP 403" in note
    fake.forbidden_paths.discard(path)
    clock.now += 1
    assert reconciler.step() is not None
    assert not any("Lease" in n for n in reconciler.notes())
