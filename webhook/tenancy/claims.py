"""Tenants and their host claims, from the config file and from Tenant objects, as one index.

The index is persistent (hash array mapped tries, `immutables.Map`): `apply()` returns a new
index that shares everything but the paths it changed with the old one, so a change to one
tenant costs O(its claims x log n), never a rebuild of every claim, and a request keeps
reading the index it started with, unchanged, while the watch thread builds the next.

A claim key is a normalised host (`shop.example.com`) or wildcard (`*.example.com`). Two
tenants claiming one key (a race between two Tenant objects, or a Tenant against the config)
do not break anything: one holds it, by rank, and the other's claim is not in force (its
status says so). The config file ranks first, then Tenants by creation time, then by name.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from immutables import Map

from webhook.tenancy.hosts import is_wildcard, proper_suffixes, wildcard_base

CONFIG_SOURCE = "config"
OBJECT_SOURCE = "Tenant"

_NO_PROXY: Mapping[str, str] = MappingProxyType({})
_EMPTY: Map[Any, Any] = Map()
# Fix texts an index keeps (see TenantIndex.remembered): a few per tenant namespace in use.
_TEXTS_KEPT = 4096


@dataclass(frozen=True, slots=True)
class TenantEntry:
    """One tenant as the policies read it, whichever source defined it."""

    name: str
    hosts: tuple[str, ...] = ()  # normalised claims
    source: str = CONFIG_SOURCE
    created: str = ""  # a Tenant's creationTimestamp (RFC 3339 sorts as text)
    # proxyDefaults keys -> quantity text
    proxy: Mapping[str, str] = field(default_factory=lambda: _NO_PROXY)
    enforcement: str | None = None  # "warn" | "enforce" for the whole tenant
    owner_users: frozenset[str] = frozenset()
    owner_groups: frozenset[str] = frozenset()
    namespace_quota: int | None = None

    @property
    def rank(self) -> tuple[int, str, str]:
        """Who holds a contested claim: the config first, then the oldest Tenant, then name."""
        return (0 if self.source == CONFIG_SOURCE else 1, self.created, self.name)

    def owned_by(self, username: str | None, groups: Iterable[str]) -> bool:
        if username is not None and username in self.owner_users:
            return True
        return any(group in self.owner_groups for group in groups)

    def __hash__(self) -> int:  # the proxy mapping is not hashable; names are unique anyway
        return hash((self.name, self.source, self.hosts))


def _domains(key: str) -> Iterator[str]:
    """The domains a claim sits below (what a wildcard over any of them would capture)."""
    if is_wildcard(key):
        base = wildcard_base(key)
        yield base
        yield from proper_suffixes(base)
    else:
        yield from proper_suffixes(key)


def _subjects(entry: TenantEntry) -> Iterator[str]:
    for user in entry.owner_users:
        yield f"user:{user}"
    for group in entry.owner_groups:
        yield f"group:{group}"


class TenantIndex:
    """Every tenant in force and who holds each host claim; see the module docstring.

    `exact` maps a claimed name to its holder and `wildcards` the base `d` of a claim `*.d`
    to its holder, so `owner()` costs one look-up per label of the host; `below` maps each
    domain to the tenants (with a count of their claims) holding something under it, which is
    what a wildcard `*.d` would capture. `contested` keeps, only for keys more than one
    tenant claims, every claimant in rank order, so that the next one takes over when the
    holder lets go.
    """

    __slots__ = (
        "_below",
        "_claimed",
        "_contested",
        "_exact",
        "_owners",
        "_texts",
        "_wildcards",
        "entries",
    )

    def __init__(
        self,
        entries: Map[str, TenantEntry] = _EMPTY,
        exact: Map[str, str] = _EMPTY,
        wildcards: Map[str, str] = _EMPTY,
        below: Map[str, Map[str, int]] = _EMPTY,
        contested: Map[str, tuple[str, ...]] = _EMPTY,
        owners: Map[str, Map[str, bool]] = _EMPTY,
    ) -> None:
        self.entries = entries
        self._exact = exact
        self._wildcards = wildcards
        self._below = below
        self._contested = contested
        self._owners = owners
        # claimed_hosts() per tenant: every denial's fix text lists them. The index never
        # changes (apply() returns a new one), so what is remembered here cannot go stale.
        self._claimed: dict[str, tuple[str, ...]] = {}
        self._texts: dict[Hashable, str] = {}

    # --- building ---------------------------------------------------------------------------

    @classmethod
    def build(cls, claims: Mapping[str, Iterable[str]]) -> TenantIndex:
        """Index normalised claims {tenant: [host, ...]} of the config; ValueError on a clash."""
        return cls.of_config(TenantEntry(t, tuple(hosts)) for t, hosts in claims.items())

    @classmethod
    def of_config(cls, entries: Iterable[TenantEntry]) -> TenantIndex:
        """The config file's tenants, where one host claimed twice is an error (ValueError)."""
        return cls.of_entries(entries, strict=True)

    @classmethod
    def of_entries(cls, entries: Iterable[TenantEntry], *, strict: bool = False) -> TenantIndex:
        """An index of these tenants in one pass: contested claims by rank, or, `strict`, a
        ValueError naming both tenants (the config file's rule).

        Built in plain dicts and frozen once, which is several times faster than applying the
        tenants one by one: the start-up path (the config, the first list of the Tenants, a
        relist). A change after that is applied in place (`apply`).
        """
        listed = list(entries)
        if not strict:
            listed.sort(key=lambda entry: entry.rank)  # the first claimant of a key holds it
        by_name: dict[str, TenantEntry] = {}
        exact: dict[str, str] = {}
        wildcards: dict[str, str] = {}
        below: dict[str, dict[str, int]] = {}
        contested: dict[str, list[str]] = {}
        owners: dict[str, dict[str, bool]] = {}
        for entry in listed:
            tenant = entry.name
            by_name[tenant] = entry
            for host in entry.hosts:
                table, key = (
                    (wildcards, wildcard_base(host)) if is_wildcard(host) else (exact, host)
                )
                holder = table.get(key)
                if holder == tenant:
                    continue  # the same claim twice (`A.com` and `a.com`): one claim
                if holder is not None:
                    if strict:
                        raise ValueError(f"{host!r} is claimed by both {holder!r} and {tenant!r}")
                    contested.setdefault(host, [holder]).append(tenant)
                    continue
                table[key] = tenant
                for domain in _domains(host):
                    counts = below.setdefault(domain, {})
                    counts[tenant] = counts.get(tenant, 0) + 1
            for subject in _subjects(entry):
                owners.setdefault(subject, {})[tenant] = True
        return cls(
            Map(by_name),
            Map(exact),
            Map(wildcards),
            Map({d: Map(c) for d, c in below.items()}),
            Map({key: tuple(names) for key, names in contested.items()}),
            Map({s: Map(t) for s, t in owners.items()}),
        )

    def apply(
        self, changes: Iterable[tuple[str, TenantEntry | None]]
    ) -> tuple[TenantIndex, frozenset[str]]:
        """The index with each named tenant set to its entry (None: gone), and the tenants
        whose claims in force may have changed (the changed ones, and every other claimant of
        a key whose holder changed), for their status."""
        entries = self.entries.mutate()
        exact = self._exact.mutate()
        wildcards = self._wildcards.mutate()
        below = self._below.mutate()
        contested = self._contested.mutate()
        owners = self._owners.mutate()
        affected: set[str] = set()
        changed = False

        def table(key: str) -> tuple[Any, str]:
            return (wildcards, wildcard_base(key)) if is_wildcard(key) else (exact, key)

        def move_below(key: str, tenant: str, delta: int) -> None:
            for domain in _domains(key):
                counts = below.get(domain, _EMPTY)
                count = counts.get(tenant, 0) + delta
                counts = counts.set(tenant, count) if count > 0 else counts.delete(tenant)
                if counts:
                    below[domain] = counts
                elif domain in below:
                    del below[domain]

        def hand_over(key: str, before: str | None, after: str | None) -> None:
            if before == after:
                return
            holders, slot = table(key)
            if before is not None:
                move_below(key, before, -1)
                affected.add(before)
            if after is not None:
                holders[slot] = after
                move_below(key, after, +1)
                affected.add(after)
            elif slot in holders:
                del holders[slot]

        def claimants(key: str) -> tuple[str, ...]:
            listed = contested.get(key)
            if listed is not None:
                return tuple(listed)
            holders, slot = table(key)
            holder = holders.get(slot)
            return () if holder is None else (holder,)

        def settle(key: str, names: list[str]) -> None:
            before = claimants(key)
            names.sort(key=lambda name: entries[name].rank)
            if len(names) > 1:
                contested[key] = tuple(names)
            elif key in contested:
                del contested[key]
            if len(names) > 1 or len(before) > 1:
                affected.update(names)
            hand_over(key, before[0] if before else None, names[0] if names else None)

        for name, new in changes:
            old = entries.get(name)
            if old == new:
                continue
            changed = True
            affected.add(name)
            # Ranks decide who holds a contested key: if this tenant's rank moved (it went
            # from the config to a Tenant), every one of its keys is settled again.
            keep = (
                set(old.hosts) & set(new.hosts) if old and new and old.rank == new.rank else set()
            )
            gone = [key for key in (old.hosts if old else ()) if key not in keep]
            for key in gone:
                settle(key, [n for n in claimants(key) if n != name])
            for subject in _subjects(old) if old else ():
                tenants = owners.get(subject, _EMPTY).delete(name)
                if tenants:
                    owners[subject] = tenants
                else:
                    del owners[subject]
            if new is None:
                del entries[name]
                continue
            entries[name] = new
            for key in new.hosts:
                if key not in keep:
                    settle(key, [*(n for n in claimants(key) if n != name), name])
            for subject in _subjects(new):
                owners[subject] = owners.get(subject, _EMPTY).set(name, True)
        if not changed:
            # Nothing in force changed (a status write, a label): the same index, so that the
            # views and the audit, which compare identities, see no change either.
            return self, frozenset()
        index = TenantIndex(
            entries.finish(),
            exact.finish(),
            wildcards.finish(),
            below.finish(),
            contested.finish(),
            owners.finish(),
        )
        return index, frozenset(affected)

    # --- reading ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, tenant: object) -> bool:
        return tenant in self.entries

    def entry(self, tenant: str) -> TenantEntry | None:
        return self.entries.get(tenant)

    def owner(self, host: str) -> str | None:
        """The tenant whose most specific claim covers a normalised external host."""
        if is_wildcard(host):
            base = wildcard_base(host)
            tenant = self._wildcards.get(base)
            if tenant is not None:
                return tenant
            candidates: Iterable[str] = proper_suffixes(base)
        else:
            tenant = self._exact.get(host)
            if tenant is not None:
                return tenant
            candidates = proper_suffixes(host)
        for domain in candidates:
            tenant = self._wildcards.get(domain)
            if tenant is not None:
                return tenant
        return None

    def tenants_below(self, wildcard: str) -> frozenset[str]:
        """Tenants with a claim in force that the wildcard `*.d` would capture."""
        return frozenset(self._below.get(wildcard_base(wildcard), _EMPTY).keys())

    def holder(self, key: str) -> str | None:
        """Who holds one claim key (a host or `*.d`), exactly: not the most specific cover."""
        if is_wildcard(key):
            return self._wildcards.get(wildcard_base(key))
        return self._exact.get(key)

    def claimants(self, key: str) -> tuple[str, ...]:
        """Every tenant claiming one key, the holder first."""
        listed = self._contested.get(key)
        if listed is not None:
            return tuple(listed)
        holder = self.holder(key)
        return () if holder is None else (holder,)

    def claimed_hosts(self, tenant: str) -> list[str]:
        """The tenant's claims in force (a claim another tenant holds is left out)."""
        claimed = self._claimed.get(tenant)
        if claimed is None:
            entry = self.entries.get(tenant)
            if entry is None:
                return []
            claimed = tuple(host for host in entry.hosts if self.holder(host) == tenant)
            self._claimed[tenant] = claimed
        return list(claimed)

    def remembered(self, key: Hashable, build: Callable[[], str]) -> str:
        """A message text built from this index (and what `key` names), built once: a denial
        repeats its fix text for every host refused. Bounded, as keys name namespaces."""
        text = self._texts.get(key)
        if text is None:
            if len(self._texts) >= _TEXTS_KEPT:
                self._texts.clear()
            text = self._texts[key] = build()
        return text

    def lost_claims(self, tenant: str) -> list[tuple[int, str, str]]:
        """(position in hosts, host, holder) for each claim of the tenant another one holds."""
        entry = self.entries.get(tenant)
        if entry is None:
            return []
        lost = []
        for position, host in enumerate(entry.hosts):
            holder = self.holder(host)
            if holder is not None and holder != tenant:
                lost.append((position, host, holder))
        return lost

    def owned_by(self, username: str | None, groups: Iterable[str]) -> list[str]:
        """The tenants whose owners include this user or one of these groups, sorted."""
        subjects = [f"group:{group}" for group in groups]
        if username is not None:
            subjects.append(f"user:{username}")
        tenants: set[str] = set()
        for subject in subjects:
            tenants.update(self._owners.get(subject, _EMPTY).keys())
        return sorted(tenants)

    def contested_keys(self) -> int:
        return len(self._contested)
