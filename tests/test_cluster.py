"""ClusterView and WatchCache against a fake API server, through the real kubernetes client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from tests.fake_apiserver import (
    GRPCROUTES,
    HTTPROUTES,
    NAMESPACES,
    TLSROUTES,
    VIRTUALSERVICES,
    FakeApiServer,
)
from webhook.audit.judging import audited_kinds
from webhook.audit.watches import REQUIRED_RBAC
from webhook.cluster import WatchCache, WatchTuning, list_call, load_api_client
from webhook.tenancy.watches import ClusterView, NamespaceLookupError, choose_version

VS_PATH = "/apis/networking.istio.io/v1/virtualservices"
NS_PATH = "/api/v1/namespaces"

FAST = WatchTuning(
    watch_timeout=30,
    request_timeout=5.0,
    connect_timeout=2.0,
    backoff_base=0.02,
    backoff_cap=0.2,
    quick_end=0.3,
    discovery_cap=0.2,
)


def host_key(namespace: str, host: str) -> str | None:
    """A stand-in for the real normaliser: enough to tell short names from FQDNs."""
    host = host.lower().rstrip(".")
    if not host or ".." in host:
        return None
    return host if "." in host else f"{host}.{namespace}.svc.cluster.local"


def eventually(check: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def without_istiod(detail: list[str]) -> list[str]:
    """/readyz's detail without the line on istiod's PILOT_SCOPE_GATEWAY_TO_NAMESPACE, which
    every cluster view gives (tests/test_gateway_pods.py checks it)."""
    return [note for note in detail if not note.startswith("istiod")]


def readiness_of(view: ClusterView) -> tuple[bool, list[str]]:
    ready, detail = view.readiness()
    return ready, without_istiod(detail)


def settled(view: ClusterView) -> bool:
    """Every Gateway API route watch has listed once, or is waiting for its resource, and the
    gateway pods have been listed."""
    routes = all(s.synced or s.waiting for s in view.gateway_route_status().values())
    return routes and view.gateway_pod_watch.status().synced


def routes_of(view: ClusterView) -> dict[str, set[tuple[str, str]]]:
    """{host: {(namespace, name)}} of the VirtualServices routing each host."""
    routes: dict[str, set[tuple[str, str]]] = {}
    for host, members in view.routes.items():
        assert {ref.kind for ref in members} == {"VirtualService"}
        routes[host] = {(ref.namespace, ref.name) for ref in members}
    return routes


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        yield server


def client_for(server: FakeApiServer) -> Any:
    return kubernetes.client.ApiClient(kubernetes.client.Configuration(host=server.url))


@pytest.fixture
def make_view(fake: FakeApiServer) -> Iterator[Callable[..., ClusterView]]:
    views: list[ClusterView] = []

    def make(
        server: FakeApiServer | None = None,
        *,
        start: bool = True,
        stale_after: float = 60.0,
        tuning: WatchTuning = FAST,
        key: Callable[[str, str], str | None] = host_key,
    ) -> ClusterView:
        view = ClusterView(
            client_for(server or fake), host_key=key, stale_after=stale_after, tuning=tuning
        )
        views.append(view)
        if start:
            view.start()
            assert view.wait_synced(5), view.readiness()
            eventually(lambda: settled(view), what="the Gateway API route watches to settle")
        return view

    yield make
    for view in views:
        view.stop()


# --- initial list -----------------------------------------------------------------------------


def test_initial_list_populates_both_snapshots(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    fake.add_namespace("team-a", {"tenant": "a"})
    fake.add_namespace("istio-system")
    fake.add_virtualservice("team-a", "web", ["Web.Example.com.", "frontend"])
    fake.add_virtualservice("team-a", "api", ["api.example.com", "web.example.com"])

    view = make_view()

    assert {k: dict(v) for k, v in view.namespaces.items()} == {
        "team-a": {"tenant": "a"},
        "istio-system": {},
    }
    assert routes_of(view) == {
        "web.example.com": {("team-a", "web"), ("team-a", "api")},
        "frontend.team-a.svc.cluster.local": {("team-a", "web")},
        "api.example.com": {("team-a", "api")},
    }
    assert readiness_of(view) == (True, [])
    stats = view.stats()
    assert (stats["namespaces_items"], stats["virtualservices_items"], stats["routes_hosts"]) == (
        2,
        2,
        3,
    )
    assert stats["namespaces_restarts"] == stats["virtualservices_restarts"] == 0


def test_snapshots_are_immutable(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    fake.add_namespace("team-a", {"tenant": "a"})
    fake.add_virtualservice("team-a", "web", ["web.example.com"])
    view = make_view()
    with pytest.raises(TypeError):
        view.namespaces["x"] = {}  # type: ignore[index]
    with pytest.raises(TypeError):
        view.namespaces["team-a"]["tenant"] = "b"  # type: ignore[index]
    with pytest.raises(TypeError):
        view.routes["x"] = frozenset()  # type: ignore[index]


def test_paged_list_follows_continue_tokens(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    for i in range(5):
        fake.add_namespace(f"ns-{i}", {"tenant": str(i)})
    view = make_view(tuning=replace(FAST, page_size=2))
    assert sorted(view.namespaces) == [f"ns-{i}" for i in range(5)]
    lists = fake.requests_to(NS_PATH, watch=False)
    assert [r.query.get("continue") is not None for r in lists] == [False, True, True]


def test_expired_continue_token_restarts_the_list(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    for i in range(5):
        fake.add_namespace(f"ns-{i}")
    fake.expire_next_continue()
    view = make_view(tuning=replace(FAST, page_size=2))
    assert len(view.namespaces) == 5
    first_pages = [r for r in fake.requests_to(NS_PATH, watch=False) if "continue" not in r.query]
    assert len(first_pages) == 2  # the list started over from the beginning


def test_not_ready_before_the_first_list(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    view = make_view(start=False)
    ready, reasons = readiness_of(view)
    assert not ready
    assert reasons == [
        "namespaces: initial list not complete",
        "virtualservices.networking.istio.io: initial list not complete",
        "pods: initial list not complete",
        *(
            f"{plural}.gateway.networking.k8s.io: initial list not complete "
            "(collisions with these routes may be missed)"
            for plural in (HTTPROUTES, GRPCROUTES, TLSROUTES)
        ),
    ]
    assert view.stats()["namespaces_synced"] == 0


def test_not_ready_without_istio_and_says_why(make_view: Callable[..., ClusterView]) -> None:
    with FakeApiServer(istio_versions=()) as bare:
        view = make_view(bare, start=False)
        view.start()
        eventually(lambda: "not served" in " ".join(view.readiness()[1]), what="discovery error")
        eventually(lambda: settled(view), what="the Gateway API route watches to settle")
        ready, reasons = readiness_of(view)
        assert not ready
        assert len(reasons) == 1  # namespaces are fine
        assert "is Istio installed?" in reasons[0]
        view.stop()


# --- watch events ------------------------------------------------------------------------------


def test_namespace_events_update_the_snapshot(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    view = make_view()
    before = view.namespaces

    fake.add_namespace("team-a", {"tenant": "a"})
    eventually(lambda: "team-a" in view.namespaces, what="ADDED")
    fake.update_namespace("team-a", {"tenant": "b", "env": "dev"})
    eventually(lambda: view.namespaces["team-a"].get("tenant") == "b", what="MODIFIED")
    assert dict(view.namespaces["team-a"]) == {"tenant": "b", "env": "dev"}
    fake.delete_namespace("team-a")
    eventually(lambda: "team-a" not in view.namespaces, what="DELETED")

    assert dict(before) == {}  # a reader's old snapshot never changes under it
    assert fake.count(NS_PATH, watch=False) == 1


def test_virtualservice_update_moves_its_hosts(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    fake.add_virtualservice("team-a", "web", ["a.example.com", "shared.example.com"])
    fake.add_virtualservice("team-b", "web", ["shared.example.com"])
    view = make_view()
    web_a, web_b = ("team-a", "web"), ("team-b", "web")

    fake.update_virtualservice("team-a", "web", ["b.example.com", "frontend"])
    eventually(lambda: "b.example.com" in view.routes, what="MODIFIED VirtualService")
    assert routes_of(view) == {
        "b.example.com": {web_a},
        "frontend.team-a.svc.cluster.local": {web_a},
        "shared.example.com": {web_b},
    }

    fake.add_virtualservice("team-c", "dup", ["B.example.com."])
    eventually(lambda: len(view.routes["b.example.com"]) == 2, what="ADDED VirtualService")
    fake.delete_virtualservice("team-a", "web")
    eventually(lambda: "frontend.team-a.svc.cluster.local" not in view.routes, what="DELETED")
    assert routes_of(view) == {
        "b.example.com": {("team-c", "dup")},
        "shared.example.com": {web_b},
    }


def test_invalid_or_failing_host_keys_are_skipped(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    def fussy(namespace: str, host: str) -> str | None:
        if host == "boom":
            raise RuntimeError("normaliser bug")
        return host_key(namespace, host)

    fake.add_virtualservice("team-a", "web", ["bad..host", "boom", "ok.example.com"])
    view = make_view(key=fussy)
    assert routes_of(view) == {"ok.example.com": {("team-a", "web")}}


# --- 410, reconnects, bookmarks ----------------------------------------------------------------


@pytest.mark.parametrize(
    "expire",
    [
        pytest.param(lambda f: f.expire_open_watches(NAMESPACES), id="error-event-on-open-watch"),
        pytest.param(
            lambda f: (f.expire_next_watch(NAMESPACES), f.drop_watches(NAMESPACES)),
            id="error-event-at-watch-start",
        ),
        pytest.param(
            lambda f: (f.fail_next_watch(NAMESPACES, 410), f.drop_watches(NAMESPACES)),
            id="http-410-api-exception",
        ),
    ],
)
def test_410_gone_relists_and_converges(
    fake: FakeApiServer,
    make_view: Callable[..., ClusterView],
    expire: Callable[[FakeApiServer], object],
) -> None:
    fake.add_namespace("old", {"tenant": "a"})
    view = make_view()
    fake.hold_watch_events()  # these changes reach the cache only through the relist
    fake.add_namespace("new", {"tenant": "b"})
    fake.delete_namespace("old")
    expire(fake)
    eventually(lambda: set(view.namespaces) == {"new"}, what="convergence after relist")
    assert fake.count(NS_PATH, watch=False) == 2
    assert view.stats()["namespaces_relists"] == 1
    assert readiness_of(view) == (True, [])
    fake.release_watch_events()


def test_other_error_events_reconnect_without_relist(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    view = make_view()
    rv = fake.add_namespace("team-a")
    eventually(lambda: "team-a" in view.namespaces, what="first event")
    fake.fail_open_watches(NAMESPACES, 500)
    eventually(lambda: fake.count(NS_PATH, watch=True) == 2, what="reconnect")
    assert fake.requests_to(NS_PATH, watch=True)[1].query["resourceVersion"] == rv
    assert fake.count(NS_PATH, watch=False) == 1
    status = view.cache_status()[0]
    assert status.last_error is not None and "500 InternalError" in status.last_error
    assert (status.relists, status.reconnects) == (0, 1)


def test_dropped_watch_resumes_from_the_last_resource_version(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    view = make_view()
    rv = fake.add_namespace("first")
    eventually(lambda: "first" in view.namespaces, what="first event")
    fake.hold_watch_events()
    assert fake.drop_watches(NAMESPACES) == 1
    fake.add_namespace("while-down")  # delivered from history when the watch resumes
    fake.release_watch_events()

    eventually(lambda: "while-down" in view.namespaces, what="event missed while disconnected")
    watches = fake.requests_to(NS_PATH, watch=True)
    assert len(watches) == 2
    assert watches[1].query["resourceVersion"] == rv
    assert watches[1].query["allowWatchBookmarks"] == "true"
    assert fake.count(NS_PATH, watch=False) == 1  # no relist
    stats = view.stats()
    assert (stats["namespaces_reconnects"], stats["namespaces_relists"]) == (1, 0)


def test_bookmark_advances_the_resume_point(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    view = make_view()
    fake.add_virtualservice("team-a", "web", ["x.example.com"])  # moves the shared counter
    bookmark_rv = fake.send_bookmark(NAMESPACES)
    eventually(
        lambda: view.cache_status()[0].resource_version == bookmark_rv, what="bookmark applied"
    )
    fake.drop_watches(NAMESPACES)
    eventually(lambda: fake.count(NS_PATH, watch=True) == 2, what="re-watch")
    assert fake.requests_to(NS_PATH, watch=True)[1].query["resourceVersion"] == bookmark_rv
    assert dict(view.namespaces) == {}


def test_normal_stream_end_rewatches_without_relist_or_backoff(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    view = make_view(tuning=replace(FAST, watch_timeout=1))
    eventually(lambda: fake.count(NS_PATH, watch=True) >= 3, timeout=5, what="two stream ends")
    assert fake.count(NS_PATH, watch=False) == 1
    assert all(r.query["timeoutSeconds"] == "1" for r in fake.requests_to(NS_PATH, watch=True))
    ns_status = view.cache_status()[0]
    assert ns_status.last_error is None
    assert ns_status.reconnects >= 2


def test_streams_that_end_at_once_back_off_and_turn_stale(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    view = make_view(stale_after=0.3)
    fake.end_watches_immediately = True
    fake.drop_watches()
    started = time.monotonic()
    eventually(lambda: not view.readiness()[0], timeout=5, what="stale readiness")
    elapsed = time.monotonic() - started
    reasons = " ".join(view.readiness()[1])
    assert "ended after" in reasons
    # Backoff keeps the retry rate down; a loop without it would make hundreds of requests.
    assert fake.count(NS_PATH, watch=True) < 10 + 2 * elapsed / (FAST.backoff_cap / 2)
    fake.end_watches_immediately = False
    fake.add_namespace("back")
    eventually(lambda: "back" in view.namespaces and view.readiness()[0], what="recovery")


def test_readiness_turns_stale_when_the_api_server_goes_away(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    fake.add_namespace("team-a", {"tenant": "a"})
    view = make_view(stale_after=0.3)
    fake.stop()
    eventually(lambda: len(readiness_of(view)[1]) == 6, timeout=5, what="all caches stale")
    ready, reasons = readiness_of(view)
    assert not ready
    assert reasons[0].startswith("namespaces: watch failing since ")
    assert reasons[1].startswith("virtualservices.networking.istio.io: watch failing since ")
    assert reasons[2].startswith("pods: watch failing since ")
    for plural, reason in zip((HTTPROUTES, GRPCROUTES, TLSROUTES), reasons[3:], strict=True):
        assert reason.startswith(f"{plural}.gateway.networking.k8s.io: watch failing since ")
        assert reason.endswith("(collisions with these routes may be missed)")
    assert "last error:" in reasons[0] and "Connection refused" in reasons[0]
    assert dict(view.namespaces["team-a"]) == {"tenant": "a"}  # last good data still served
    assert view.stats()["namespaces_consecutive_failures"] >= 1

    fake.restart()
    fake.add_namespace("team-b", {"tenant": "b"})
    eventually(lambda: view.readiness()[0], timeout=5, what="ready again")
    eventually(lambda: "team-b" in view.namespaces, what="resumed watch")


# --- namespace lookups on a cache miss ------------------------------------------------------


def test_lookup_fills_a_miss_and_the_next_request_hits(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    view = make_view()
    fake.hold_watch_events()  # the watch lags: the namespace exists but the cache lacks it
    fake.add_namespace("fresh", {"tenant": "a"})
    assert "fresh" not in view.namespaces

    labels = view.lookup_namespace("fresh")
    assert labels is not None and dict(labels) == {"tenant": "a"}
    assert "fresh" in view.namespaces
    assert view.lookup_namespace("fresh") == labels
    assert fake.count(f"{NS_PATH}/fresh") == 1

    fake.release_watch_events()
    fake.delete_namespace("fresh")  # the watch still has the last word
    eventually(lambda: "fresh" not in view.namespaces, what="DELETED after a remembered GET")


def test_lookup_of_a_missing_namespace_returns_none(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    view = make_view()
    assert view.lookup_namespace("nope") is None
    assert "nope" not in view.namespaces
    assert view.lookup_namespace("Not_A_Name") is None
    assert fake.count(f"{NS_PATH}/nope") == 1
    assert fake.count(f"{NS_PATH}/Not_A_Name") == 0  # no request for an impossible name


def test_lookup_that_hangs_fails_within_the_timeout(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    view = make_view()
    fake.namespace_get_fault = "hang"
    started = time.monotonic()
    with pytest.raises(NamespaceLookupError) as info:
        view.lookup_namespace("slow", timeout=0.3)
    assert time.monotonic() - started < 1.0
    assert "longer than 0.3s" in info.value.reason


def test_lookup_server_error_raises_with_the_reason(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    view = make_view()
    fake.namespace_get_fault = 500
    with pytest.raises(NamespaceLookupError) as info:
        view.lookup_namespace("team-x")
    assert "HTTP 500" in info.value.reason and "injected failure" in info.value.reason


def test_concurrent_lookups_share_one_request(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    view = make_view()
    fake.hold_watch_events()
    fake.add_namespace("burst", {"tenant": "a"})
    fake.namespace_get_delay = 0.2
    results: list[Mapping[str, str] | None] = []

    def lookup() -> None:
        results.append(view.lookup_namespace("burst"))

    threads = [threading.Thread(target=lookup) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(results) == 6
    assert all(r is not None and dict(r) == {"tenant": "a"} for r in results)
    assert fake.count(f"{NS_PATH}/burst") == 1
    fake.release_watch_events()


# --- discovery ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("served", "preferred", "expected"),
    [
        pytest.param(("v1", "v1beta1", "v1alpha3"), "v1", "v1", id="preferred-v1"),
        pytest.param(("v1", "v1beta1"), "v1beta1", "v1beta1", id="preferred-is-honoured"),
        pytest.param(("v1alpha3", "v1beta1"), None, "v1beta1", id="no-preferred-falls-back"),
        pytest.param(("v1alpha3",), None, "v1alpha3", id="only-oldest"),
    ],
)
def test_virtualservices_use_the_preferred_version(
    make_view: Callable[..., ClusterView],
    served: tuple[str, ...],
    preferred: str | None,
    expected: str,
) -> None:
    with FakeApiServer(istio_versions=served, preferred_version=preferred) as server:
        server.add_virtualservice("team-a", "web", ["web.example.com"])
        view = make_view(server)
        assert view.virtualservice_version == expected
        assert set(view.routes) == {"web.example.com"}
        path = f"/apis/networking.istio.io/{expected}/virtualservices"
        assert server.count(path, watch=False) == 1
        eventually(lambda: server.count(path, watch=True) == 1, what="watch on that version")
        view.stop()


@pytest.mark.parametrize(
    ("preferred", "served", "expected"),
    [
        pytest.param("v2", ["v2", "v1"], "v2", id="preferred-wins"),
        pytest.param(None, ["v1beta1", "v1"], "v1", id="v1-first"),
        pytest.param(None, ["v1alpha3", "v1beta1"], "v1beta1", id="then-v1beta1"),
        pytest.param(None, ["v1alpha3"], "v1alpha3", id="then-v1alpha3"),
        pytest.param(None, ["v9"], None, id="nothing-known"),
    ],
)
def test_choose_version(preferred: str | None, served: list[str], expected: str | None) -> None:
    assert choose_version(preferred, served) == expected


# --- lifecycle and configuration ----------------------------------------------------------------


def test_stop_is_prompt_even_with_long_watches(
    fake: FakeApiServer, make_view: Callable[..., ClusterView]
) -> None:
    view = make_view(tuning=replace(FAST, watch_timeout=300))
    eventually(lambda: fake.open_watches(NAMESPACES) == fake.open_watches(VIRTUALSERVICES) == 1)
    started = time.monotonic()
    view.stop()
    assert time.monotonic() - started < 1.0
    assert not [t for t in threading.enumerate() if t.name.startswith("watch-")]


def test_load_api_client_from_a_kubeconfig(fake: FakeApiServer, tmp_path: Path) -> None:
    kubeconfig = fake.write_kubeconfig(tmp_path / "config")
    fake.add_namespace("team-a", {"tenant": "a"})
    api = load_api_client(kubeconfig=str(kubeconfig), in_cluster=False)
    view = ClusterView(api, host_key=host_key, tuning=FAST)
    view.start()
    try:
        assert view.wait_synced(5)
        assert dict(view.namespaces["team-a"]) == {"tenant": "a"}
    finally:
        view.stop()


def test_load_api_client_rejects_both_sources() -> None:
    with pytest.raises(ValueError):
        load_api_client(kubeconfig="/dev/null", in_cluster=True)


def test_required_rbac_is_read_only() -> None:
    granted = {
        (group, resource)
        for rule in REQUIRED_RBAC
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    # The caches requests read, and the audit's watches of every kind it judges.
    audited = {(kind.group, kind.resource) for kind in audited_kinds()}
    assert granted == {
        ("", "namespaces"),
        ("networking.istio.io", "virtualservices"),
        ("gateway.networking.k8s.io", "httproutes"),
        ("gateway.networking.k8s.io", "grpcroutes"),
        ("gateway.networking.k8s.io", "tlsroutes"),
        ("", "pods"),  # the gateway pods (a metadata-only watch) and istiod's, listed by label
        *audited,
    }
    assert ("", "secrets") not in granted
    verbs = {
        (group, resource): list(rule["verbs"])
        for rule in REQUIRED_RBAC
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    # Pods are never read one by one: no get.
    assert verbs.pop(("", "pods")) == ["list", "watch"]
    assert all(v == ["get", "list", "watch"] for v in verbs.values())


# --- a cache that keeps only some objects (keep=) ----------------------------------------------


def test_a_cache_keeps_only_what_keep_accepts_and_drops_what_stops_fitting(
    fake: FakeApiServer,
) -> None:
    """The namespaces labelled `tenant`, among others: the unlabelled are never stored, one
    that loses the label leaves (a change its subscriber sees), one that gains it enters."""
    fake.add_namespace("team-a", {"tenant": "a"})
    fake.add_namespace("scratch")
    seen: list[tuple[str, object, object]] = []
    cache: WatchCache[Mapping[str, str]] = WatchCache(
        "namespaces",
        lambda: list_call(client_for(fake), "", "v1", "namespaces"),
        lambda obj: dict((obj.get("metadata") or {}).get("labels") or {}),
        on_change=lambda changes: seen.extend((c.key, c.old, c.new) for c in changes),
        keep=lambda obj: "tenant" in ((obj.get("metadata") or {}).get("labels") or {}),
        tuning=FAST,
    )
    cache.start()
    try:
        assert cache.wait_synced(5)
        assert dict(cache.items) == {"team-a": {"tenant": "a"}}
        items = cache.items
        fake.add_namespace("other")  # refused: no change at all
        fake.update_namespace("scratch", {"env": "dev"})
        eventually(lambda: cache.state.resource_version == fake.resource_version, what="events")
        assert cache.items is items
        fake.update_namespace("scratch", {"tenant": "b"})
        fake.update_namespace("team-a", {"team": "a"})
        eventually(lambda: "team-a" not in cache.items, what="team-a to leave")
        assert dict(cache.items) == {"scratch": {"tenant": "b"}}
        fake.delete_namespace("other")
        fake.delete_namespace("scratch")
        eventually(lambda: not cache.items, what="scratch deleted")
        assert seen == [
            ("team-a", None, {"tenant": "a"}),
            ("scratch", None, {"tenant": "b"}),
            ("team-a", {"tenant": "a"}, None),
            ("scratch", {"tenant": "b"}, None),
        ]
    finally:
        cache.stop()


# --- memory ----------------------------------------------------------------------------------


def test_each_list_gives_the_memory_it_freed_back(
    fake: FakeApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first list and after a relist (410), never per event: a list's pages and the
    state it replaced are garbage once it is done (webhook.memory.return_freed)."""
    from webhook.cluster import watch

    calls: list[int] = []  # the lists served when each trim ran
    monkeypatch.setattr(
        watch, "return_freed", lambda: calls.append(fake.count(NS_PATH, watch=False))
    )
    fake.add_namespace("team-a", {"tenant": "a"})
    cache: WatchCache[Mapping[str, str]] = WatchCache(
        "namespaces",
        lambda: list_call(client_for(fake), "", "v1", "namespaces"),
        lambda obj: dict((obj.get("metadata") or {}).get("labels") or {}),
        tuning=FAST,
    )
    cache.start()
    try:
        assert cache.wait_synced(5)
        eventually(lambda: calls == [1], what="the first list's trim")
        fake.add_namespace("team-b", {"tenant": "b"})
        eventually(lambda: "team-b" in cache.items, what="an event")
        assert calls == [1]
        fake.expire_open_watches(NAMESPACES)
        fake.add_namespace("team-c", {"tenant": "c"})
        eventually(lambda: "team-c" in cache.items, what="the relist")
        eventually(lambda: calls == [1, 2], what="the relist's trim")
    finally:
        cache.stop()
