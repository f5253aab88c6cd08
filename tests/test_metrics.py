"""The metrics that connect Istio's telemetry to tenants and say how tenant-guard itself is
doing, read from /metrics of the real server over TLS: the namespace -> tenant mapping
(offline from the config, in a cluster from the namespace cache, replaced as namespaces
change), the shared namespaces, whether the config in place is the one in use, and reviews
denied because they could not be judged."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes.client
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import EXAMPLE_CONFIG, load_fixture, swap
from tests.fake_apiserver import FakeApiServer
from tests.server_harness import RunningServer, running_server
from tests.test_cluster import FAST, eventually
from tests.test_server import _BrokenTenancy
from webhook.config.store import ConfigStore
from webhook.metrics import NamespaceTenants
from webhook.server.app import Runtime
from webhook.tenancy.hosts import route_key
from webhook.tenancy.live import ClusterTenancy
from webhook.tenancy.watches import ClusterView


def samples(text: str, name: str) -> list[dict[str, str]]:
    """The label sets of every sample of `name` (value 1 checked) in a Prometheus text page."""
    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                assert sample.value == 1.0, sample
                found.append(dict(sample.labels))
    return found


def mapping(client: httpx.Client) -> dict[str, str]:
    """tenant_guard_namespace_tenant as namespace -> tenant."""
    listed = samples(client.get("/metrics").text, "tenant_guard_namespace_tenant")
    pairs = {s["namespace"]: s["tenant"] for s in listed}
    assert len(pairs) == len(listed), "one series per namespace"
    return pairs


def shared(client: httpx.Client) -> set[str]:
    return {
        s["namespace"]
        for s in samples(client.get("/metrics").text, "tenant_guard_shared_namespace")
    }


def gauge(client: httpx.Client, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", client.get("/metrics").text, re.M)
    assert match is not None, name
    return float(match.group(1))


# --- offline: the config's namespaces map -----------------------------------------------------


def test_offline_every_tenant_namespace_of_the_config_and_only_those(
    server: RunningServer,
) -> None:
    with server.client() as client:
        assert mapping(client) == {
            "tenant-a": "tenant-a",
            "tenant-a-dev": "tenant-a",
            "tenant-b": "tenant-b",
            "tenant-c": "tenant-c",
        }  # istio-system and kube-system carry no tenant label: platform, not listed
        assert shared(client) == {"istio-system"}
        text = client.get("/metrics").text
    assert "# TYPE tenant_guard_namespace_tenant gauge" in text


def test_a_reload_replaces_the_series_and_a_refused_one_keeps_them(
    config_file: Path, tmp_path: Path
) -> None:
    store = ConfigStore(config_file)
    with running_server(Runtime(store), tmp_path / "certs") as server, server.client() as client:
        assert mapping(client)["tenant-b"] == "tenant-b"
        assert gauge(client, "tenant_guard_config_last_reload_successful") == 1.0
        data = yaml.safe_load(config_file.read_text())
        data["namespaces"]["tenant-b"] = {"tenant": "tenant-a"}  # moved to another tenant
        del data["namespaces"]["tenant-c"]  # gone
        data["namespaces"]["shop"] = {"tenant": "tenant-b"}  # new
        data["sharedNamespaces"] = ["istio-system", "observability"]
        data["namespaces"]["observability"] = {}
        swap(config_file, yaml.safe_dump(data))
        assert store.check_once()
        assert mapping(client) == {
            "tenant-a": "tenant-a",
            "tenant-a-dev": "tenant-a",
            "tenant-b": "tenant-a",
            "shop": "tenant-b",
        }
        assert shared(client) == {"istio-system", "observability"}

        swap(config_file, "tenants: {broken")
        assert not store.check_once()
        # Refused: the last good config still serves, its mapping with it, and the gauge says
        # the file in place is not the one in use.
        assert mapping(client)["shop"] == "tenant-b"
        assert gauge(client, "tenant_guard_config_last_reload_successful") == 0.0
        swap(config_file, yaml.safe_dump(data))
        assert store.check_once()
        assert gauge(client, "tenant_guard_config_last_reload_successful") == 1.0


def test_a_tenant_label_with_a_slash_and_values_that_need_no_escaping(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "tenantLabel": "example.com/tenant",
                "tenants": {"team.one": {}, "team_two": {}},
                "namespaces": {
                    "one": {"example.com/tenant": "team.one"},
                    "two": {"example.com/tenant": "team_two", "tenant": "decoy"},
                    "plain": {"tenant": "not-the-label"},
                    "empty": {"example.com/tenant": ""},
                },
            }
        )
    )
    runtime = Runtime(ConfigStore(path))
    with running_server(runtime, tmp_path / "certs") as server, server.client() as client:
        assert mapping(client) == {"one": "team.one", "two": "team_two"}
        assert shared(client) == set()


# --- in a cluster: the namespace cache ------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        server.add_namespace("tenant-a", {"tenant": "tenant-a"})
        server.add_namespace("tenant-b", {"tenant": "tenant-b"})
        server.add_namespace("istio-system", {})
        yield server


def test_in_a_cluster_the_series_follow_the_namespaces(fake: FakeApiServer, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"sharedNamespaces": ["istio-system"]}))
    store = ConfigStore(config)
    api = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=fake.url))
    cluster = ClusterView(
        api, host_key=lambda ns, h: route_key(h, ns, "cluster.local"), tuning=FAST
    )
    cluster.start()
    try:
        assert cluster.wait_synced(5), cluster.readiness()
        runtime = Runtime(store, ClusterTenancy(cluster))
        with running_server(runtime, tmp_path / "certs") as server, server.client() as client:
            assert mapping(client) == {"tenant-a": "tenant-a", "tenant-b": "tenant-b"}
            assert shared(client) == {"istio-system"}
            fake.add_namespace("tenant-a-dev", {"tenant": "tenant-a"})
            fake.update_namespace("tenant-b", {"tenant": "tenant-c"})
            expected = {"tenant-a": "tenant-a", "tenant-a-dev": "tenant-a", "tenant-b": "tenant-c"}
            eventually(lambda: mapping(client) == expected, what="the new namespace and tenant")
            fake.update_namespace("tenant-a-dev", {"team": "x"})  # left tenancy
            fake.delete_namespace("tenant-b")
            eventually(lambda: mapping(client) == {"tenant-a": "tenant-a"}, what="the series gone")
    finally:
        cluster.stop()


def test_the_collector_follows_a_new_label_and_a_new_snapshot() -> None:
    collector = NamespaceTenants()
    namespaces = {"a": {"tenant": "x"}, "b": {"team": "y"}}
    collector.update(namespaces, "tenant", ["istio-system", "istio-system"])
    first = list(collector.collect())
    assert [s.labels for s in first[0].samples] == [{"namespace": "a", "tenant": "x"}]
    assert [s.labels for s in first[1].samples] == [{"namespace": "istio-system"}]
    collector.update(namespaces, "team", [])
    assert [s.labels for s in next(iter(collector.collect())).samples] == [
        {"namespace": "b", "tenant": "y"}
    ]
    # A new snapshot (they are swapped whole, never edited) is read again.
    collector.update({**namespaces, "c": {"team": "z"}}, "team", [])
    assert len(next(iter(collector.collect())).samples) == 2


# --- reviews that could not be judged ---------------------------------------------------------


def errors(client: httpx.Client) -> dict[tuple[str, str], float]:
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "tenant_guard_admission_errors_total":
                found[(sample.labels["endpoint"], sample.labels["reason"])] = sample.value
    return found


def test_a_crashing_policy_counts_as_an_internal_error(tmp_path: Path) -> None:
    runtime = Runtime(ConfigStore(EXAMPLE_CONFIG), _BrokenTenancy())
    review = load_fixture("pod-create-plain.json", mutating=True)
    with running_server(runtime, tmp_path) as broken, broken.client() as client:
        for path in ("/mutate", "/validate"):
            assert client.post(path, json=review).json()["response"]["allowed"] is False
        assert errors(client) == {
            ("mutate", "internal-error"): 1.0,
            ("validate", "internal-error"): 1.0,
        }


def test_an_object_of_the_wrong_shape_counts_as_not_checkable_and_a_denial_not_at_all(
    server: RunningServer,
) -> None:
    with server.client() as client:
        before = errors(client)
        denied = load_fixture("virtualservice-create-v1alpha3-cross-tenant-host.json")
        assert client.post("/validate", json=denied).json()["response"]["allowed"] is False
        assert errors(client) == before  # a denial for a broken rule is no error
        wrong: dict[str, Any] = copy.deepcopy(load_fixture("pod-create-plain.json"))
        wrong["request"]["object"]["kind"] = "Service"
        assert client.post("/validate", json=wrong).json()["response"]["allowed"] is False
        after = errors(client)
    key = ("validate", "not-checkable")
    assert after.get(key, 0.0) == before.get(key, 0.0) + 1


def test_a_namespace_that_cannot_be_read_counts_as_tenancy_unknown(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    api = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=fake.url))
    cluster = ClusterView(
        api, host_key=lambda ns, h: route_key(h, ns, "cluster.local"), tuning=FAST
    )
    cluster.start()
    try:
        assert cluster.wait_synced(5), cluster.readiness()
        runtime = Runtime(ConfigStore(EXAMPLE_CONFIG), ClusterTenancy(cluster, lookup_timeout=0.5))
        fake.namespace_get_fault = "hang"
        review = copy.deepcopy(load_fixture("pod-create-plain.json", mutating=True))
        review["request"]["namespace"] = "unseen"
        review["request"]["object"]["metadata"]["namespace"] = "unseen"
        with running_server(runtime, tmp_path / "certs") as server, server.client() as client:
            response = client.post("/mutate", json=review).json()["response"]
            assert response["status"]["code"] == 503
            assert errors(client) == {("mutate", "tenancy-unknown"): 1.0}
    finally:
        fake.namespace_get_fault = None
        cluster.stop()


# --- the series every review updates (ReviewSeries) ----------------------------------------

# A series two of the reviews below update.
HOST_DENIAL = (
    "validate",
    "VirtualService",
    "CREATE",
    "denied",
    "vs-host-ownership",
    "tenant-b",
    "false",
)
REVIEWS = [
    (HOST_DENIAL, 0.0004),
    (("validate", "VirtualService", "CREATE", "denied", "export-to", "tenant-b", "false"), 0.0005),
    (("mutate", "Pod", "CREATE", "allowed", "none", "tenant-a", "true"), 0.0021),
    (HOST_DENIAL, 1.0),  # the same series again
    (("validate", "Service", "UPDATE", "warned", "service-external-name", "", "false"), 7.5),
    (("mutate", "Pod", "CREATE", "allowed", "none", "tenant-a", "true"), 0.0),
]


def _without_created_values(text: str) -> str:
    return re.sub(r"^(\S+_created\{[^}]*\}) \S+$", r"\1 T", text, flags=re.M)


@pytest.mark.parametrize("created", [True, False], ids=["created-series", "created-off"])
def test_review_series_expose_what_prometheus_clients_counter_and_histogram_expose(
    created: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client import metrics as prometheus_metrics

    from webhook.metrics import LATENCY_BUCKETS, REQUEST_LABELS, Metrics

    monkeypatch.setattr(prometheus_metrics, "_use_created", created)
    library = CollectorRegistry()
    counter = Counter(
        "tenant_guard_admission_requests",
        "Admission requests answered, by kind, operation, decision, rule, tenant and dry run",
        REQUEST_LABELS,
        registry=library,
    )
    histogram = Histogram(
        "tenant_guard_admission_duration_seconds",
        "Time to answer an admission request, from body read to response",
        ["endpoint"],
        buckets=LATENCY_BUCKETS,
        registry=library,
    )
    ours = Metrics()
    expected_empty = generate_latest(library).decode()
    shown_empty = generate_latest(ours.registry).decode()
    for labels, seconds in REVIEWS:
        counter.labels(*labels).inc()
        histogram.labels(labels[0]).observe(seconds)
        ours.count_request(labels)
        ours.observe_latency(labels[0], seconds)
    expected = _without_created_values(generate_latest(library).decode())
    shown = _without_created_values(generate_latest(ours.registry).decode())
    assert shown.startswith(expected)  # then the metrics Metrics has besides these two
    assert shown_empty.startswith(expected_empty)
    assert ("_created{" in shown) is created
