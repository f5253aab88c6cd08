"""Tenant records, the live registry and the status they give (SPEC.md §12): invalid Tenants
set aside without stopping the others, shadowing by the config, conflicts by rank, rebasing on
a config reload."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.builders import make_config
from webhook.config.model import Config
from webhook.tenancy.registry import LiveTenants, TenantMembers
from webhook.tenancy.snapshot import Change
from webhook.tenancy.status import desired_status, needs_write
from webhook.tenancy.tenants import TenantRecord, read_tenant

NOW = "2026-12-03T12:00:00Z"


def stored(name: str, created: str, generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tenant-guard.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "generation": generation,
            "creationTimestamp": created,
        },
        "spec": spec,
    }


class Registry:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.live = LiveTenants(lambda: self.config)
        self.records: dict[str, TenantRecord] = {}

    def put(self, obj: dict[str, Any]) -> TenantRecord:
        record = read_tenant(obj, self.config)
        self.live.on_tenant_changes([Change(record.name, self.records.get(record.name), record)])
        self.records[record.name] = record
        return record

    def delete(self, name: str) -> None:
        self.live.on_tenant_changes([Change(name, self.records.pop(name), None)])

    def status(self, name: str, namespaces: tuple[str, ...] = ()) -> dict[str, Any]:
        return desired_status(
            self.records[name], self.live.current, self.config.tenants, namespaces, None, NOW
        )


def ready(status: dict[str, Any]) -> dict[str, Any]:
    (condition,) = status["conditions"]
    return condition


def test_a_tenant_in_force_is_ready_with_its_namespaces() -> None:
    registry = Registry(make_config())
    registry.put(stored("shop", "2026-01-01T00:00:00Z", 3, hosts=["shop.example.net"]))
    status = registry.status("shop", ("shop-dev", "shop"))
    assert status["observedGeneration"] == 3 and status["namespaceCount"] == 2
    assert status["namespaces"] == ["shop", "shop-dev"] and status["hostsInForce"] == 1
    assert ready(status)["status"] == "True" and ready(status)["reason"] == "ClaimsInForce"
    assert registry.live.current.owner("shop.example.net") == "shop"


def test_an_invalid_stored_tenant_is_set_aside_and_stops_nobody() -> None:
    registry = Registry(make_config())
    registry.put(stored("good", "2026-01-02T00:00:00Z", hosts=["good.example.net"]))
    # Stored before the schema tightened: 5,000 hosts, one of them another tenant's.
    hosts = ["shop.example.com", *(f"h{i}.big.example.net" for i in range(4999))]
    record = registry.put(stored("big", "2026-01-01T00:00:00Z", hosts=hosts))
    assert record.entry is None and "5000 entries" in record.problems[0]
    record = registry.put(stored("odd", "2026-01-01T00:00:00Z", hosts="x", proxy=[]))
    assert record.entry is None
    index = registry.live.current
    assert index.owner("shop.example.com") == "tenant-a"  # the config's claim is untouched
    assert index.owner("h1.big.example.net") is None and index.owner("good.example.net") == "good"
    status = registry.status("big")
    assert ready(status)["reason"] == "Invalid" and status["hostsInForce"] == 0
    assert (
        "set aside, none of its claims are in force: spec.hosts: 5000 entries"
        in (ready(status)["message"])
    )


def test_the_older_of_two_racing_tenants_holds_the_host() -> None:
    registry = Registry(make_config())
    registry.put(
        stored("late", "2026-01-02T00:00:00Z", hosts=["race.example.net", "l.example.net"])
    )
    registry.put(stored("early", "2026-01-01T00:00:00Z", hosts=["race.example.net"]))
    assert registry.live.current.owner("race.example.net") == "early"
    late = registry.status("late")
    assert ready(late)["reason"] == "Conflict" and late["hostsInForce"] == 1
    assert ready(late)["message"] == (
        'spec.hosts[0] "race.example.net" is held by "early" (its Tenant is older). 1 of 2 '
        "claims in force; remove the others or have them moved"
    )
    assert ready(registry.status("early"))["reason"] == "ClaimsInForce"
    dirty = registry.live.take_dirty()
    assert {"early", "late"} <= dirty
    registry.delete("early")
    assert registry.live.current.owner("race.example.net") == "late"
    assert "late" in registry.live.take_dirty()
    assert ready(registry.status("late"))["reason"] == "ClaimsInForce"


def test_a_name_the_config_defines_is_shadowed_and_takes_over_when_the_config_drops_it() -> None:
    registry = Registry(make_config())
    registry.put(stored("tenant-b", "2026-01-01T00:00:00Z", hosts=["new-b.example.net"]))
    assert ready(registry.status("tenant-b"))["reason"] == "ShadowedByConfig"
    assert registry.live.current.owner("shop.example.org") == "tenant-b"  # the config's claim
    assert registry.live.current.owner("new-b.example.net") is None
    # The config drops tenant-b: the Tenant object's spec is in force after the rebase.
    data = make_config().model_dump(by_alias=True, exclude_none=True)
    del data["tenants"]["tenant-b"]
    registry.config = Config.model_validate(data)
    assert registry.live.rebase_if_needed()
    assert not registry.live.rebase_if_needed()  # once per reload
    assert registry.live.current.owner("new-b.example.net") == "tenant-b"
    assert registry.live.current.owner("shop.example.org") is None
    assert ready(registry.status("tenant-b"))["reason"] == "ClaimsInForce"


def test_the_transition_time_stays_while_the_condition_does_not_change() -> None:
    registry = Registry(make_config())
    record = registry.put(stored("shop", "2026-01-01T00:00:00Z", hosts=["shop.example.net"]))
    first = registry.status("shop")
    obj = stored("shop", "2026-01-01T00:00:00Z", hosts=["shop.example.net"])
    obj["status"] = first
    record = registry.put(obj)
    later = desired_status(record, registry.live.current, (), (), None, "2027-01-01T00:00:00Z")
    assert ready(later)["lastTransitionTime"] == NOW
    assert not needs_write(record.status, later)
    assert needs_write(record.status, {**later, "namespaceCount": 1})
    assert not needs_write({**record.status, "violations": 2}, later)  # count not known yet


def test_members_follow_the_namespace_labels() -> None:
    touched: list[str] = []
    members = TenantMembers("tenant", on_change=touched.extend)
    members.on_namespace_changes(
        [Change("a1", None, {"tenant": "a"}), Change("a2", None, {"tenant": "a"})]
    )
    members.on_namespace_changes([Change("a2", {"tenant": "a"}, {"tenant": "b"})])
    assert members.of("a") == {"a1"} and members.of("b") == {"a2"}
    members.on_namespace_changes([Change("a1", {"tenant": "a"}, None)])
    assert members.of("a") == frozenset() and touched == ["a", "a", "a", "b", "a"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["hosts", "proxy", "enforcement", "owners", "namespaceQuota", "x"]),
        json_values,
        max_size=5,
    ),
    json_values,
)
def test_any_stored_shape_gives_a_record_and_never_raises(spec: Any, metadata: Any) -> None:
    config = make_config()
    for obj in ({"metadata": {"name": "shop"}, "spec": spec}, {"metadata": metadata, "spec": spec}):
        record = read_tenant(obj, config)
        assert (record.entry is None) == bool(record.problems)
        registry = Registry(config)
        if record.name:
            registry.live.on_tenant_changes([Change(record.name, None, record)])
            assert registry.live.current.owner("shop.example.com") == "tenant-a"


def test_a_first_list_of_many_tenants_is_indexed_in_one_pass_like_one_at_a_time() -> None:
    config = make_config()
    objects = [
        stored(f"t{i}", f"2026-01-01T00:00:{i % 60:02d}Z", hosts=[f"x{i % 700}.example.net"])
        for i in range(1200)
    ] + [stored("tenant-b", "2026-01-01T00:00:00Z", hosts=["shop.example.org", "b2.example.net"])]
    records = [read_tenant(obj, config) for obj in objects]
    bulk = LiveTenants(lambda: config)
    bulk.on_tenant_changes([Change(r.name, None, r) for r in records])  # one list: one pass
    single = LiveTenants(lambda: config)
    for record in records:
        single.on_tenant_changes([Change(record.name, None, record)])
    for host in [f"x{i}.example.net" for i in range(700)] + ["shop.example.org", "b2.example.net"]:
        assert bulk.current.claimants(host) == single.current.claimants(host), host
    assert bulk.current.owner("shop.example.org") == "tenant-b"  # the config's, not shadowed
    assert bulk.current.owner("b2.example.net") is None
    assert len(bulk.take_dirty()) == len(records)
