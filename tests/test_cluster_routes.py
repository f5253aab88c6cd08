"""The Gateway API route watches and the one routed-host index they share with VirtualServices,
against the fake API server through the real kubernetes client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fake_apiserver import GRPCROUTES, HTTPROUTES, TLSROUTES, FakeApiServer
from tests.test_cluster import FAST, client_for, eventually, host_key, readiness_of, settled
from webhook.audit.watches import REQUIRED_RBAC
from webhook.cluster import version_candidates
from webhook.cluster.discovery import version_priority
from webhook.tenancy.routes import route_keys
from webhook.tenancy.routing import GATEWAY_ROUTES
from webhook.tenancy.watches import ClusterView

GROUP = "gateway.networking.k8s.io"
RBAC_YAML = Path(__file__).resolve().parent.parent / "deploy" / "base" / "rbac.yaml"

Index = dict[str, set[tuple[str, str, str]]]


def index_of(view: ClusterView) -> Index:
    """{host key: {(kind, namespace, name)}} of everything routing each host."""
    return {key: {tuple(ref) for ref in refs} for key, refs in view.routes.items()}


@pytest.fixture
def start_view() -> Iterator[Callable[[FakeApiServer], ClusterView]]:
    views: list[ClusterView] = []

    def start(server: FakeApiServer) -> ClusterView:
        view = ClusterView(client_for(server), host_key=host_key, tuning=FAST)
        views.append(view)
        view.start()
        assert view.wait_synced(5), view.readiness()
        eventually(lambda: settled(view), what="the Gateway API route watches to settle")
        return view

    yield start
    for view in views:
        view.stop()


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        yield server


# --- pure parts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preferred", "served", "expected"),
    [
        pytest.param("v1", ["v1", "v1beta1"], ["v1", "v1beta1"], id="preferred-first"),
        pytest.param(
            "v1beta1",
            ["v1", "v1beta1", "v1alpha2"],
            ["v1beta1", "v1", "v1alpha2"],
            id="preferred-first-even-if-older",
        ),
        pytest.param(
            None,
            ["v1alpha2", "v1", "v1beta1"],
            ["v1", "v1beta1", "v1alpha2"],
            id="no-preferred-newest-first",
        ),
        pytest.param(
            "v2", ["v1", "v1alpha3"], ["v1", "v1alpha3"], id="preferred-not-served-is-ignored"
        ),
        pytest.param(
            None,
            ["v1alpha2", "v1alpha10", "v1beta1", "v2beta1", "v2"],
            ["v2", "v2beta1", "v1beta1", "v1alpha10", "v1alpha2"],
            id="kubernetes-version-priority",
        ),
        pytest.param(
            None, ["foo", "v1alpha1", "bar"], ["v1alpha1", "foo", "bar"], id="odd-names-last"
        ),
        pytest.param(None, [], [], id="nothing-served"),
    ],
)
def test_version_candidates(preferred: str | None, served: list[str], expected: list[str]) -> None:
    assert version_candidates(preferred, served) == expected


def test_version_priority_orders_ga_beta_alpha() -> None:
    ordered = ["v2", "v1", "v1beta2", "v1beta1", "v1alpha3", "v1alpha1"]
    assert sorted(reversed(ordered), key=version_priority, reverse=True) == ordered


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"hostnames": ["Shop.Example.org.", "api.example.org"]},
            {"shop.example.org", "api.example.org"},
            id="normalised-through-host-key",
        ),
        pytest.param({"hostnames": ["web"]}, {"web.team-b.svc.cluster.local"}, id="short-name"),
        pytest.param({}, set(), id="no-hostnames"),
        pytest.param({"hostnames": []}, set(), id="empty-hostnames"),
        pytest.param({"hostnames": "shop.example.org"}, set(), id="not-a-list"),
        pytest.param({"hostnames": [7, None, "bad..host"]}, set(), id="invalid-entries-skipped"),
        pytest.param({"hosts": ["shop.example.org"]}, set(), id="other-field-ignored"),
    ],
)
def test_route_keys_of_a_route(spec: dict[str, Any], expected: set[str]) -> None:
    obj = {"metadata": {"namespace": "team-b", "name": "r"}, "spec": spec}
    assert route_keys(obj, "hostnames", host_key) == expected


def test_rbac_yaml_grants_exactly_the_required_rules() -> None:
    (role,) = [d for d in yaml.safe_load_all(RBAC_YAML.read_text()) if d["kind"] == "ClusterRole"]
    as_tuples = {
        (group, resource, tuple(rule["verbs"]))
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    required = {
        (group, resource, tuple(rule["verbs"]))
        for rule in REQUIRED_RBAC
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert as_tuples == required
    assert {(GROUP, r.plural, ("get", "list", "watch")) for r in GATEWAY_ROUTES} <= required


# --- the index ----------------------------------------------------------------------------------


def test_every_route_kind_and_virtualservices_share_one_index(
    fake: FakeApiServer, start_view: Callable[[FakeApiServer], ClusterView]
) -> None:
    fake.add_virtualservice("team-a", "web", ["shop.example.org"])
    fake.add_route(HTTPROUTES, "team-b", "shop", ["Shop.Example.org.", "www.example.org"])
    fake.add_route(HTTPROUTES, "team-b", "catch-all", None)  # no hostnames: indexes nothing
    fake.add_route(GRPCROUTES, "team-c", "rpc", ["*.rpc.example.org"])
    fake.add_route(TLSROUTES, "team-d", "passthrough", ["db.example.org"])

    view = start_view(fake)

    assert index_of(view) == {
        "shop.example.org": {
            ("VirtualService", "team-a", "web"),
            ("HTTPRoute", "team-b", "shop"),
        },
        "www.example.org": {("HTTPRoute", "team-b", "shop")},
        "*.rpc.example.org": {("GRPCRoute", "team-c", "rpc")},
        "db.example.org": {("TLSRoute", "team-d", "passthrough")},
    }
    assert readiness_of(view) == (True, [])
    stats = view.stats()
    assert (stats["httproutes_items"], stats["grpcroutes_items"], stats["tlsroutes_items"]) == (
        2,
        1,
        1,
    )
    assert stats["routes_hosts"] == 4
    assert dict(view.gateway_route_versions) == {
        HTTPROUTES: "v1",
        GRPCROUTES: "v1",
        TLSROUTES: "v1alpha2",  # not in the preferred v1: the newest version that lists it
    }


def test_route_events_update_the_index(
    fake: FakeApiServer, start_view: Callable[[FakeApiServer], ClusterView]
) -> None:
    fake.add_virtualservice("team-a", "web", ["shop.example.org"])
    view = start_view(fake)
    vs = ("VirtualService", "team-a", "web")
    shop = ("HTTPRoute", "team-b", "shop")

    fake.add_route(HTTPROUTES, "team-b", "shop", ["shop.example.org", "a.example.org"])
    eventually(lambda: "a.example.org" in view.routes, what="ADDED HTTPRoute")
    assert index_of(view) == {"shop.example.org": {vs, shop}, "a.example.org": {shop}}

    fake.update_route(HTTPROUTES, "team-b", "shop", ["b.example.org"])
    eventually(lambda: "b.example.org" in view.routes, what="MODIFIED HTTPRoute")
    assert index_of(view) == {"shop.example.org": {vs}, "b.example.org": {shop}}

    fake.update_route(HTTPROUTES, "team-b", "shop", None)  # hostnames removed
    eventually(lambda: "b.example.org" not in view.routes, what="hostnames removed")
    assert index_of(view) == {"shop.example.org": {vs}}
    assert view.stats()["httproutes_items"] == 1

    fake.update_route(HTTPROUTES, "team-b", "shop", ["shop.example.org"])
    eventually(lambda: len(view.routes["shop.example.org"]) == 2, what="hostnames back")
    fake.delete_route(HTTPROUTES, "team-b", "shop")
    eventually(lambda: len(view.routes["shop.example.org"]) == 1, what="DELETED HTTPRoute")
    assert index_of(view) == {"shop.example.org": {vs}}
    assert view.stats()["httproutes_items"] == 0


def test_same_name_in_two_kinds_are_two_members(
    fake: FakeApiServer, start_view: Callable[[FakeApiServer], ClusterView]
) -> None:
    fake.add_route(HTTPROUTES, "team-b", "edge", ["edge.example.org"])
    fake.add_route(GRPCROUTES, "team-b", "edge", ["edge.example.org"])
    view = start_view(fake)
    fake.delete_route(GRPCROUTES, "team-b", "edge")
    eventually(lambda: len(view.routes["edge.example.org"]) == 1, what="DELETED GRPCRoute")
    assert index_of(view) == {"edge.example.org": {("HTTPRoute", "team-b", "edge")}}


@pytest.mark.parametrize(
    "expire",
    [
        pytest.param(lambda f: f.expire_open_watches(HTTPROUTES), id="error-event-on-open-watch"),
        pytest.param(
            lambda f: (f.fail_next_watch(HTTPROUTES, 410), f.drop_watches(HTTPROUTES)),
            id="http-410-api-exception",
        ),
    ],
)
def test_route_watch_relists_after_410_and_diffs_the_index(
    fake: FakeApiServer,
    start_view: Callable[[FakeApiServer], ClusterView],
    expire: Callable[[FakeApiServer], object],
) -> None:
    fake.add_route(HTTPROUTES, "team-b", "old", ["old.example.org"])
    fake.add_route(HTTPROUTES, "team-b", "moved", ["before.example.org"])
    fake.add_virtualservice("team-a", "web", ["old.example.org"])
    view = start_view(fake)
    fake.hold_watch_events()  # these changes reach the cache only through the relist
    fake.delete_route(HTTPROUTES, "team-b", "old")
    fake.update_route(HTTPROUTES, "team-b", "moved", ["after.example.org"])
    fake.add_route(HTTPROUTES, "team-c", "new", ["new.example.org"])
    expire(fake)
    eventually(lambda: "new.example.org" in view.routes, what="convergence after relist")
    assert index_of(view) == {
        "old.example.org": {("VirtualService", "team-a", "web")},
        "after.example.org": {("HTTPRoute", "team-b", "moved")},
        "new.example.org": {("HTTPRoute", "team-c", "new")},
    }
    assert fake.count(f"/apis/{GROUP}/v1/httproutes", watch=False) == 2
    assert view.stats()["httproutes_relists"] == 1
    fake.release_watch_events()


def test_concurrent_watches_lose_no_index_update(
    fake: FakeApiServer, start_view: Callable[[FakeApiServer], ClusterView]
) -> None:
    view = start_view(fake)
    for i in range(40):
        fake.add_virtualservice("team-a", f"vs-{i}", [f"vs-{i}.example.org"])
        fake.add_route(HTTPROUTES, "team-b", f"http-{i}", [f"http-{i}.example.org"])
        fake.add_route(GRPCROUTES, "team-c", f"grpc-{i}", [f"grpc-{i}.example.org"])
    eventually(lambda: view.stats()["grpcroutes_items"] == 40, what="every event")
    eventually(lambda: view.stats()["httproutes_items"] == 40, what="every event")
    eventually(lambda: view.stats()["virtualservices_items"] == 40, what="every event")
    assert len(view.routes) == 120


# --- discovery and waiting for a CRD ------------------------------------------------------------


@pytest.mark.parametrize(
    ("served", "preferred", "expected"),
    [
        pytest.param({HTTPROUTES: ("v1", "v1beta1")}, None, "v1", id="preferred-v1"),
        pytest.param(
            {HTTPROUTES: ("v1", "v1beta1")}, "v1beta1", "v1beta1", id="preferred-is-honoured"
        ),
        pytest.param(
            {GRPCROUTES: ("v1",), HTTPROUTES: ("v1beta1",)},
            None,
            "v1beta1",
            id="preferred-does-not-list-it",
        ),
        pytest.param(
            {GRPCROUTES: ("v1",), HTTPROUTES: ("v1alpha2", "v1beta1")},
            None,
            "v1beta1",
            id="newest-that-lists-it",
        ),
    ],
)
def test_route_watch_uses_a_version_that_lists_the_resource(
    start_view: Callable[[FakeApiServer], ClusterView],
    served: Mapping[str, Sequence[str]],
    preferred: str | None,
    expected: str,
) -> None:
    with FakeApiServer(gateway_routes=served, gateway_preferred_version=preferred) as server:
        server.add_route(HTTPROUTES, "team-b", "shop", ["shop.example.org"])
        view = start_view(server)
        assert view.gateway_route_versions[HTTPROUTES] == expected
        assert index_of(view) == {"shop.example.org": {("HTTPRoute", "team-b", "shop")}}
        path = f"/apis/{GROUP}/{expected}/httproutes"
        assert server.count(path, watch=False) == 1
        eventually(lambda: server.count(path, watch=True) == 1, what="watch on that version")
        view.stop()


def waiting_note(plural: str, why: str) -> str:
    return (
        f"{plural}.{GROUP}: watch waiting, {why} (is its CRD installed?); "
        "collisions with these routes are not checked until it starts"
    )


def test_cluster_without_gateway_api_is_ready_and_says_what_waits(
    start_view: Callable[[FakeApiServer], ClusterView],
) -> None:
    with FakeApiServer(gateway_routes={}) as bare:
        bare.add_virtualservice("team-a", "web", ["shop.example.org"])
        view = start_view(bare)
        started = time.monotonic()
        first = bare.count("/apis")
        time.sleep(1.0)
        ready, detail = readiness_of(view)
        assert ready is True
        why = f"API group {GROUP} is not served"
        assert detail == [waiting_note(p, why) for p in (HTTPROUTES, GRPCROUTES, TLSROUTES)]
        assert index_of(view) == {"shop.example.org": {("VirtualService", "team-a", "web")}}
        statuses = view.gateway_route_status()
        assert all(s.consecutive_failures == 0 and s.last_error is None for s in statuses.values())
        assert all(s.restarts == 0 and not s.synced for s in statuses.values())
        stats = view.stats()
        assert [stats[f"{p}_waiting"] for p in (HTTPROUTES, GRPCROUTES, TLSROUTES)] == [1, 1, 1]
        # Discovery is re-checked, with backoff: not a tight loop, not a single look.
        rechecks = bare.count("/apis") - first
        elapsed = time.monotonic() - started
        assert 3 <= rechecks < 3 * (6 + elapsed / (FAST.discovery_cap / 2))
        assert bare.count(f"/apis/{GROUP}/v1/httproutes") == 0
        view.stop()


def test_route_watch_starts_once_its_crd_appears(
    start_view: Callable[[FakeApiServer], ClusterView],
) -> None:
    standard = {HTTPROUTES: ("v1", "v1beta1"), GRPCROUTES: ("v1",)}  # no TLSRoute CRD
    with FakeApiServer(gateway_routes=standard) as server:
        server.add_route(TLSROUTES, "team-d", "db", ["db.example.org"])  # stored, not served
        server.add_route(HTTPROUTES, "team-b", "shop", ["shop.example.org"])
        view = start_view(server)
        why = f"no served version of {GROUP} (v1, v1beta1) lists tlsroutes"
        assert readiness_of(view) == (True, [waiting_note(TLSROUTES, why)])
        assert index_of(view) == {"shop.example.org": {("HTTPRoute", "team-b", "shop")}}

        server.serve_gateway_route(TLSROUTES, ("v1alpha2",))
        eventually(lambda: "db.example.org" in view.routes, what="the TLSRoute watch to start")
        assert index_of(view)["db.example.org"] == {("TLSRoute", "team-d", "db")}
        assert readiness_of(view) == (True, [])
        assert view.gateway_route_versions[TLSROUTES] == "v1alpha2"
        status = view.gateway_route_status()[TLSROUTES]
        assert (status.waiting, status.relists, status.consecutive_failures) == (None, 0, 0)

        server.add_route(TLSROUTES, "team-d", "cache", ["cache.example.org"])
        eventually(lambda: "cache.example.org" in view.routes, what="a TLSRoute event")
        view.stop()


def test_route_watch_waits_again_when_its_crd_goes_away(
    fake: FakeApiServer, start_view: Callable[[FakeApiServer], ClusterView]
) -> None:
    fake.add_route(GRPCROUTES, "team-c", "rpc", ["rpc.example.org"])
    view = start_view(fake)
    fake.serve_gateway_route(GRPCROUTES, ())
    fake.drop_watches(GRPCROUTES)  # the real server ends the watches of a deleted CRD
    eventually(
        lambda: view.gateway_route_status()[GRPCROUTES].waiting is not None,
        what="the GRPCRoute watch to wait",
    )
    ready, detail = readiness_of(view)
    assert ready is True
    assert detail == [
        waiting_note(
            GRPCROUTES, f"no served version of {GROUP} (v1, v1beta1, v1alpha2) lists grpcroutes"
        )
    ]
    fake.serve_gateway_route(GRPCROUTES, ("v1",))
    eventually(lambda: view.gateway_route_status()[GRPCROUTES].waiting is None, what="restart")
    eventually(lambda: readiness_of(view) == (True, []), what="ready without notes")
    assert index_of(view) == {"rpc.example.org": {("GRPCRoute", "team-c", "rpc")}}
