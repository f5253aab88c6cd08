"""When the audit loop runs a pass: after the first lists, at once after a config reload,
after changes once they settle (debounce) or at the latest after max_delay, and now and then
in a quiet cluster. A clock of the test's own; the watches are a stand-in with no objects."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from webhook.audit.auditor import AuditLoop
from webhook.audit.judging import AuditedKind
from webhook.cluster import CacheStatus
from webhook.config.model import Config, parse_config
from webhook.tenancy.gatewaypods import NOT_LISTED, GatewayPods, index_gateway_pods


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Watches:
    """No objects, every kind listed."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], None]] = []

    def objects(self) -> list[tuple[AuditedKind, Mapping[str, Any]]]:
        return []

    def statuses(self) -> dict[AuditedKind, CacheStatus]:
        return {}

    def subscribe(self, callback: Callable[[], None]) -> None:
        self.callbacks.append(callback)

    def changed(self) -> None:
        for callback in self.callbacks:
            callback()


class Setup:
    def __init__(self) -> None:
        self.clock = Clock()
        self.watches = Watches()
        self.config: Config = parse_config({})
        self.namespaces: Mapping[str, Mapping[str, str]] | None = None
        self.routes: Mapping[str, Any] = {}
        self.gateway_pods: GatewayPods | None = GatewayPods()
        self.loop = AuditLoop(
            self.watches,  # type: ignore[arg-type]
            current_config=lambda: self.config,
            namespaces=lambda: self.namespaces,
            routes=lambda: self.routes,
            gateway_pods=lambda: self.gateway_pods,
            debounce=2.0,
            max_delay=30.0,
            resync=600.0,
            clock=self.clock,
        )

    def step(self, after: float = 0.0) -> bool:
        self.clock.now += after
        return self.loop.step() is not None


@pytest.fixture
def setup() -> Setup:
    return Setup()


def test_no_pass_before_the_namespaces_are_listed_then_one_at_once(setup: Setup) -> None:
    assert not setup.step()
    setup.namespaces = {"shop": {"tenant": "shop"}}
    assert setup.step()
    assert not setup.step(1.0)


def test_a_config_reload_passes_at_once(setup: Setup) -> None:
    setup.namespaces = {}
    assert setup.step()
    setup.config = parse_config({"unclaimedHosts": "allow"})
    assert setup.step(0.1)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda s: s.watches.changed(), id="an-audited-object"),
        pytest.param(lambda s: setattr(s, "namespaces", {"new": {}}), id="namespace-labels"),
        pytest.param(lambda s: setattr(s, "routes", {"x": frozenset()}), id="the-route-index"),
        pytest.param(
            lambda s: setattr(s, "gateway_pods", index_gateway_pods({"b/gw": {"istio": "b"}})),
            id="the-gateway-pods",
        ),
    ],
)
def test_changes_pass_once_settled(setup: Setup, change: Callable[[Setup], None]) -> None:
    setup.namespaces = {}
    assert setup.step()
    change(setup)
    assert not setup.step(0.5)
    assert not setup.step(1.0)
    assert setup.step(1.0)
    assert not setup.step(5.0)


def test_a_stream_of_changes_passes_at_the_latest_after_max_delay(setup: Setup) -> None:
    setup.namespaces = {}
    assert setup.step()
    passes = 0
    for _ in range(40):  # a change every second for 40 s: never settled for 2 s
        setup.watches.changed()
        passes += setup.step(1.0)
    assert passes == 1


def test_a_quiet_cluster_still_gets_a_pass_every_resync(setup: Setup) -> None:
    setup.namespaces = {}
    assert setup.step()
    assert not setup.step(599.0)
    assert setup.step(2.0)


def test_the_first_pass_waits_for_the_gateway_pods_but_not_for_ever(setup: Setup) -> None:
    setup.gateway_pods = NOT_LISTED
    setup.namespaces = {}
    assert not setup.step()
    assert not setup.step(29.0)
    assert setup.step(2.0)  # the sync grace (30 s) is over: audited without them
    assert setup.loop.last is not None and setup.loop.last.skipped == ("pods",)
    assert setup.loop.notes() == [
        "audit: pods: initial list not complete; Istio Gateway selectors are audited against "
        "sharedGatewayWorkloads only until it lists"
    ]
    setup.gateway_pods = GatewayPods()  # listed: a change, and a pass once settled
    assert not setup.step(0.5)
    assert setup.step(2.0)
    assert setup.loop.last is not None and setup.loop.last.skipped == ()
