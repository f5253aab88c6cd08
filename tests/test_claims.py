"""The persistent tenant index (webhook.tenancy.claims): every change applied in place gives
the index a rebuild from scratch would give, contested claims go by rank, snapshots stay."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.tenancy.claims import CONFIG_SOURCE, OBJECT_SOURCE, TenantEntry, TenantIndex
from webhook.tenancy.hosts import is_wildcard, proper_suffixes, wildcard_base

HOSTS = [
    "a.example.com",
    "*.example.com",
    "shop.example.com",
    "*.shop.example.com",
    "x.shop.example.com",
    "example.org",
    "*.org",
    "b.example.org",
]
NAMES = ["t1", "t2", "t3", "t4"]


def tenant(name: str, *hosts: str, created: str = "", source: str = OBJECT_SOURCE) -> TenantEntry:
    return TenantEntry(name, tuple(hosts), source=source, created=created or f"2026-01-0{name[-1]}")


def expected_holders(entries: dict[str, TenantEntry]) -> dict[str, str]:
    holders: dict[str, TenantEntry] = {}
    for entry in entries.values():
        for host in entry.hosts:
            if host not in holders or entry.rank < holders[host].rank:
                holders[host] = entry
    return {host: entry.name for host, entry in holders.items()}


def brute_owner(holders: dict[str, str], host: str) -> str | None:
    if host in holders:
        return holders[host]
    base = wildcard_base(host) if is_wildcard(host) else host
    for domain in proper_suffixes(base):
        if f"*.{domain}" in holders:
            return holders[f"*.{domain}"]
    return None


def brute_below(holders: dict[str, str], wildcard: str) -> frozenset[str]:
    base = wildcard_base(wildcard)
    found = set()
    for key, name in holders.items():
        inner = wildcard_base(key) if is_wildcard(key) else key
        if (is_wildcard(key) and inner == base) or inner.endswith("." + base):
            found.add(name)
    return frozenset(found)


def assert_matches(index: TenantIndex, entries: dict[str, TenantEntry]) -> None:
    holders = expected_holders(entries)
    for host in [*HOSTS, "z.example.com", "q.b.example.org", "*.x.example.com"]:
        assert index.owner(host) == brute_owner(holders, host), host
        if is_wildcard(host):
            assert index.tenants_below(host) == brute_below(holders, host), host
    for host, name in holders.items():
        assert index.holder(host) == name
        claimants = sorted((e for e in entries.values() if host in e.hosts), key=lambda e: e.rank)
        assert index.claimants(host) == tuple(e.name for e in claimants)
    for name, entry in entries.items():
        assert index.entry(name) == entry
        assert index.claimed_hosts(name) == [h for h in entry.hosts if holders[h] == name]
    assert len(index) == len(entries)


changes = st.lists(
    st.tuples(
        st.sampled_from(NAMES),
        st.one_of(
            st.none(),
            st.tuples(
                st.lists(st.sampled_from(HOSTS), max_size=4, unique=True),
                st.sampled_from(["2026-01-01", "2026-01-02", "2026-01-03"]),
                st.sampled_from([CONFIG_SOURCE, OBJECT_SOURCE]),
            ),
        ),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(changes)
def test_changes_applied_one_at_a_time_match_a_rebuild(steps: list[tuple[str, object]]) -> None:
    index = TenantIndex()
    entries: dict[str, TenantEntry] = {}
    for name, spec in steps:
        if spec is None:
            entries.pop(name, None)
            new = None
        else:
            hosts, created, source = spec  # type: ignore[misc]
            new = TenantEntry(name, tuple(hosts), source=source, created=created)
            entries[name] = new
        index, _ = index.apply([(name, new)])
        assert_matches(index, entries)


def test_the_older_tenant_holds_a_contested_host_and_the_next_takes_over() -> None:
    index, _ = TenantIndex().apply([("t2", tenant("t2", "shop.example.com"))])
    index, affected = index.apply([("t1", tenant("t1", "shop.example.com"))])
    assert index.holder("shop.example.com") == "t1"  # created earlier
    assert affected == {"t1", "t2"}  # t2 lost its claim: its status must say so
    assert index.lost_claims("t2") == [(0, "shop.example.com", "t1")]
    assert index.claimed_hosts("t2") == []
    index, affected = index.apply([("t1", None)])
    assert index.holder("shop.example.com") == "t2"
    assert "t2" in affected and index.lost_claims("t2") == []


def test_the_config_outranks_any_tenant_object() -> None:
    index = TenantIndex.build({"platform": ["shop.example.com"]})
    index, _ = index.apply([("early", tenant("early", "shop.example.com", created="2000-01-01"))])
    assert index.owner("shop.example.com") == "platform"


def test_a_snapshot_does_not_change_when_the_index_moves_on() -> None:
    before, _ = TenantIndex().apply([("t1", tenant("t1", "a.example.com", "*.example.org"))])
    after, _ = before.apply([("t1", tenant("t1", "b.example.com"))])
    assert before.owner("a.example.com") == "t1" and before.tenants_below("*.org") == {"t1"}
    assert after.owner("a.example.com") is None and after.owner("b.example.com") == "t1"


def test_an_unchanged_entry_changes_nothing() -> None:
    index, _ = TenantIndex().apply([("t1", tenant("t1", "a.example.com"))])
    _, affected = index.apply([("t1", tenant("t1", "a.example.com"))])
    assert affected == frozenset()


def test_owners_are_indexed_by_user_and_group() -> None:
    shop = TenantEntry("shop", owner_users=frozenset({"alice"}), owner_groups=frozenset({"devs"}))
    blog = TenantEntry("blog", owner_groups=frozenset({"devs"}))
    index, _ = TenantIndex().apply([("shop", shop), ("blog", blog)])
    assert index.owned_by("alice", []) == ["shop"]
    assert index.owned_by("bob", ["devs"]) == ["blog", "shop"]
    assert index.owned_by(None, ["other"]) == []
    index, _ = index.apply([("shop", None)])
    assert index.owned_by("alice", ["devs"]) == ["blog"]


def test_the_config_refuses_one_host_claimed_twice() -> None:
    with pytest.raises(ValueError, match="claimed by both"):
        TenantIndex.build({"a": ["shop.example.com"], "b": ["shop.example.com"]})
    # The same claim twice by one tenant is one claim.
    index = TenantIndex.build({"a": ["shop.example.com", "shop.example.com"]})
    index, _ = index.apply([("a", None)])
    assert index.owner("shop.example.com") is None and index.tenants_below("*.com") == set()


def test_a_tenant_with_5000_hosts_is_indexed_and_removed_whole() -> None:
    hosts = tuple(f"h{i}.big.example.net" for i in range(5000))
    index, _ = TenantIndex.build({"small": ["small.example.net"]}).apply(
        [("big", tenant("big", *hosts))]
    )
    assert index.owner("h4999.big.example.net") == "big"
    assert index.tenants_below("*.example.net") == {"big", "small"}
    index, _ = index.apply([("big", None)])
    assert index.owner("h1.big.example.net") is None
    assert index.owner("small.example.net") == "small"
    assert index.tenants_below("*.example.net") == {"small"}


@settings(max_examples=200, deadline=None)
@given(changes)
def test_one_pass_gives_the_index_the_changes_give(steps: list[tuple[str, object]]) -> None:
    entries: dict[str, TenantEntry] = {}
    for name, spec in steps:
        if spec is None:
            entries.pop(name, None)
        else:
            hosts, created, source = spec  # type: ignore[misc]
            entries[name] = TenantEntry(name, tuple(hosts), source=source, created=created)
    assert_matches(TenantIndex.of_entries(entries.values()), entries)


def test_claimed_hosts_are_those_of_the_index_asked() -> None:
    # Each index remembers its answers; an index applied from it must not answer with them.
    before = TenantIndex.build({"t1": ["shop.example.com", "a.example.com"]})
    assert before.claimed_hosts("t1") == ["shop.example.com", "a.example.com"]
    after, _ = before.apply([("t1", tenant("t1", "a.example.com", source=CONFIG_SOURCE))])
    assert after.claimed_hosts("t1") == ["a.example.com"]
    assert before.claimed_hosts("t1") == ["shop.example.com", "a.example.com"]
    # A caller changing the list it got changes nothing for the next caller.
    after.claimed_hosts("t1").append("x.example.com")
    assert after.claimed_hosts("t1") == ["a.example.com"]
    assert after.claimed_hosts("nobody") == []
