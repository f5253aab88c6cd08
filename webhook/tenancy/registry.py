"""The live tenants (SPEC.md §12): the config file's and the Tenant objects' in one index,
kept in step with the Tenant watch cache one change at a time, and each tenant's namespaces,
kept in step with the namespace cache.

A Tenant change costs an `apply()` of that one tenant on the persistent index
(webhook.tenancy.claims). A config reload rebases the Tenants on the new config's own index
(its tenants shadow Tenant objects of the same name): that is O(Tenants), once per reload.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from immutables import Map

from webhook.config.model import Config
from webhook.tenancy.claims import TenantEntry, TenantIndex
from webhook.tenancy.snapshot import Change
from webhook.tenancy.tenants import TenantRecord

log = logging.getLogger(__name__)

Labels = Mapping[str, str]
# More Tenant changes than this at once (a list, a relist) build the index in one pass.
BULK = 1000
_NONE: frozenset[str] = frozenset()


class LiveTenants:
    """The index requests read (`current`), and what changed since the status writer looked."""

    def __init__(self, current_config: Callable[[], Config]) -> None:
        self._current_config = current_config
        self._lock = threading.Lock()
        self._records: dict[str, TenantRecord] = {}
        config = current_config()
        self._base: Config = config
        self._index: TenantIndex = config.claims
        self._dirty: set[str] = set()
        self.updates = 0  # Tenant changes that changed the index (a status write does not)
        self.last_update_cpu = 0.0  # seconds of CPU the last of them cost, in this thread
        self.last_rebase_seconds = 0.0

    @property
    def current(self) -> TenantIndex:
        return self._index

    @property
    def base(self) -> Config:
        """The config the current index was built on."""
        return self._base

    def records(self) -> Mapping[str, TenantRecord]:
        with self._lock:
            return dict(self._records)

    def take_dirty(self) -> set[str]:
        """Tenants whose claims in force may have changed since the last call."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            return dirty

    def mark_dirty(self, names: Sequence[str]) -> None:
        with self._lock:
            self._dirty.update(names)

    def _effective(self, name: str, config: Config) -> TenantEntry | None:
        # A name the config defines is the config's (the Tenant is shadowed).
        if name in config.tenants:
            return config.claims.entry(name)
        record = self._records.get(name)
        return record.entry if record is not None else None

    def on_tenant_changes(self, changes: Sequence[Change[TenantRecord]]) -> None:
        """Subscriber to the Tenant cache (its watch thread)."""
        started = time.thread_time()
        with self._lock:
            config = self._base
            moves: list[tuple[str, TenantEntry | None]] = []
            for change in changes:
                name = change.key
                new = change.new
                if (
                    new is not None
                    and new.problems
                    and (change.old is None or change.old.problems != new.problems)
                ):
                    log.warning(
                        "Tenant %s is set aside (status reason Invalid): %s",
                        name,
                        "; ".join(new.problems),
                    )
                if change.new is None:
                    self._records.pop(name, None)
                else:
                    self._records[name] = change.new
                self._dirty.add(name)
                if name not in config.tenants:
                    moves.append((name, change.new.entry if change.new is not None else None))
            if len(moves) > BULK:
                # The first list (or a relist): every Tenant at once, built in one pass.
                self._index = self._bulk(config)
                self._dirty.update(self._records)
                self.updates += 1
                self.last_update_cpu = time.thread_time() - started
            elif moves:
                index, affected = self._index.apply(moves)
                self._dirty.update(affected)
                if index is not self._index:
                    self._index = index
                    # Counted only when claims in force changed: a status write is no update.
                    self.updates += 1
                    self.last_update_cpu = time.thread_time() - started

    def _bulk(self, config: Config) -> TenantIndex:
        """The config's tenants and every usable Tenant not shadowed, in one pass."""
        return _one_pass(config, self._records)

    def rebase_if_needed(self) -> bool:
        """After a config reload: the Tenants on the new config's index. True if it ran."""
        config = self._current_config()
        if config is self._base:
            return False
        started = time.monotonic()
        with self._lock:
            records = dict(self._records)
        index = _one_pass(config, records)
        with self._lock:
            # Changes that arrived meanwhile are applied again on top: apply() is idempotent.
            late = [
                (name, record.entry)
                for name, record in self._records.items()
                if records.get(name) is not record and name not in config.tenants
            ]
            late += [
                (name, None)
                for name in records
                if name not in self._records and name not in config.tenants
            ]
            if late:
                index, _ = index.apply(late)
            self._index, self._base = index, config
            self._dirty.update(self._records)  # shadowing, and claims of the config, changed
        self.last_rebase_seconds = time.monotonic() - started
        return True


def _one_pass(config: Config, records: Mapping[str, TenantRecord]) -> TenantIndex:
    entries = [*config.claims.entries.values()]
    entries += [
        record.entry
        for name, record in records.items()
        if record.entry is not None and name not in config.tenants
    ]
    return TenantIndex.of_entries(entries)


class TenantMembers:
    """tenant -> its namespaces, under the tenant label in force when it started (a new
    tenantLabel is read by scanning instead, until the next start)."""

    def __init__(self, label: str, on_change: Callable[[Sequence[str]], None] | None = None):
        self.label = label
        self._members: Map[str, frozenset[str]] = Map()
        self._on_change = on_change
        self._lock = threading.Lock()

    def of(self, tenant: str) -> frozenset[str]:
        return self._members.get(tenant, _NONE)

    def counts(self) -> Mapping[str, int]:
        return {tenant: len(names) for tenant, names in self._members.items()}

    def on_namespace_changes(self, changes: Sequence[Change[Labels]]) -> None:
        touched: list[str] = []
        with self._lock:
            members = self._members.mutate()
            for change in changes:
                before = change.old.get(self.label) if change.old else None
                after = change.new.get(self.label) if change.new else None
                if before == after:
                    continue
                if before:
                    remaining = members.get(before, _NONE) - {change.key}
                    if remaining:
                        members[before] = remaining
                    elif before in members:
                        del members[before]
                    touched.append(before)
                if after:
                    members[after] = members.get(after, _NONE) | {change.key}
                    touched.append(after)
            self._members = members.finish()
        if touched and self._on_change is not None:
            self._on_change(touched)
