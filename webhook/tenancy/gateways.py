"""The cluster's gateway pods, live: one list+watch of pods (metadata only, through KindCaches)
that keeps the gateway pods and istiod's pods and nothing else, the label index a Gateway's
selector is matched against, and a reader of istiod's PILOT_SCOPE_GATEWAY_TO_NAMESPACE.

A cluster has far more pods than gateways: the watch asks for PartialObjectMetadata, so the API
server sends each pod's metadata instead of the whole object, and the cache keeps the labels of
the pods that webhook.tenancy.gatewaypods says are gateways (and istiod's), dropping the rest
as they arrive. Their events still arrive (every pod's status change is one); their cost is
measured in benchmarks/gateway_pods.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from webhook.cluster.rest import ApiClient, ClusterApiError, RestClient, api_path
from webhook.cluster.watch import (
    CacheStatus,
    KindCaches,
    Subscriber,
    WatchCache,
    WatchTuning,
    list_call,
    metadata_only,
)
from webhook.tenancy import gatewaypods
from webhook.tenancy.gatewaypods import GatewayPods, Labels, ScopeReport
from webhook.tenancy.snapshot import Change

log = logging.getLogger("tenant_guard.gateways")

# The API footprint of the pod cache and the istiod read (ClusterRole rules): list and watch,
# never get (the istiod pods are listed by label).
GATEWAY_POD_RBAC: tuple[Mapping[str, Sequence[str]], ...] = (
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
)


POD_PAGE_SIZE = 100


class CachedPod(NamedTuple):
    """What the pod cache keeps of a pod: its labels, and whether it is istiod's."""

    labels: Labels
    istiod: bool


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def keep_pod(obj: Mapping[str, Any]) -> bool:
    """Whether the cache keeps this pod: a gateway pod, or one of istiod's."""
    metadata = _metadata(obj)
    return gatewaypods.is_gateway_pod(metadata) or gatewaypods.is_istiod(metadata)


def cached_pod(obj: Mapping[str, Any]) -> CachedPod:
    metadata = _metadata(obj)
    return CachedPod(gatewaypods.pod_labels(metadata), gatewaypods.is_istiod(metadata))


class GatewayPodWatch:
    """The pod cache (created in `caches`, so no other reader lists pods again), the gateway
    pod index it feeds, and the istiod reader (a thread of its own: it reads istiod's pods
    whole, by label, at start, when istiod's pods change, and every `istiod_recheck` s)."""

    def __init__(
        self,
        api_client: ApiClient,
        caches: KindCaches,
        *,
        tuning: WatchTuning | None = None,
        istiod_recheck: float = 600.0,
        istiod_retry: float = 30.0,
        istiod_settle: float = 1.0,
        istiod_first_wait: float = 10.0,
    ) -> None:
        self._api = api_client
        tuning = tuning or WatchTuning()
        # Parsing a page of the list holds the interpreter lock, so a review waits for it:
        # pages of 100 pods hold it a few milliseconds (benchmarks/gateway_pods.py).
        self._tuning = replace(tuning, page_size=min(tuning.page_size, POD_PAGE_SIZE))
        self._rest = RestClient(
            api_client,
            connect_timeout=self._tuning.connect_timeout,
            request_timeout=self._tuning.request_timeout,
        )
        self._istiod_recheck = istiod_recheck
        self._istiod_retry = istiod_retry
        self._istiod_settle = istiod_settle
        self._istiod_first_wait = istiod_first_wait
        self._index = gatewaypods.NOT_LISTED
        self._lock = threading.Lock()
        self._istiod_due = threading.Event()  # istiod's pods changed: read them again
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.scope: ScopeReport | None = None  # None until istiod's pods were read once
        self.scope_error: str | None = None
        cache, created = caches.cache("", "pods", self._create)
        if not created:
            raise RuntimeError(f"{cache.resource} is already watched: the gateway pods own it")
        self.cache: WatchCache[CachedPod] = cache
        caches.subscribe("", "pods", self._changed)

    def _create(self, tell: Subscriber) -> WatchCache[CachedPod]:
        return WatchCache(
            "pods",
            lambda: metadata_only(list_call(self._api, "", "v1", "pods")),
            cached_pod,
            on_change=tell,
            keep=keep_pod,
            tuning=self._tuning,
        )

    # --- the index ---------------------------------------------------------------------------

    @property
    def gateway_pods(self) -> GatewayPods:
        """The current index: immutable, and the same object until a gateway pod's labels
        change, so identity says whether anything did."""
        index = self._index
        if index.synced or not self.cache.synced:
            return index
        with self._lock:  # the first list is complete: from now on the index is the truth
            if not self._index.synced:
                self._index = GatewayPods(self._index.pods, self._index.by_label, True)
            return self._index

    def _changed(self, changes: Sequence[Change[CachedPod]]) -> None:
        moved: list[tuple[str, Labels | None]] = []
        for change in changes:
            before, after = change.old, change.new
            if (before is not None and before.istiod) or (after is not None and after.istiod):
                self._istiod_due.set()
            was = before.labels if before is not None and not before.istiod else None
            now = after.labels if after is not None and not after.istiod else None
            if was != now:
                moved.append((change.key, now))
        if moved:
            with self._lock:
                self._index = gatewaypods.updated(self._index, moved)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.cache.start()
        self._thread = threading.Thread(target=self._run, name="istiod-scope", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._istiod_due.set()
        deadline = time.monotonic() + timeout
        self.cache.stop(timeout)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(max(0.0, deadline - time.monotonic()))

    def wait_synced(self, timeout: float) -> bool:
        return self.cache.wait_synced(timeout)

    def status(self) -> CacheStatus:
        return self.cache.status()

    # --- istiod ------------------------------------------------------------------------------

    def _run(self) -> None:
        # The first read waits a little for the pod list, whose istiod pods would otherwise
        # ask for a second read at once (not for a list that fails: that would fail too).
        deadline = time.monotonic() + self._istiod_first_wait
        while (
            not self.cache.synced
            and self.cache.status().last_error is None
            and time.monotonic() < deadline
        ):
            if self._stop.wait(0.05):
                return
        while not self._stop.is_set():
            self._istiod_due.clear()
            read = self.read_istiod()
            self._istiod_due.wait(self._istiod_recheck if read else self._istiod_retry)
            # A rollout replaces istiod's pods one event after another: read once they settle.
            if self._stop.wait(self._istiod_settle):
                return

    def read_istiod(self) -> bool:
        """Read istiod's pods and update `scope`; whether the read succeeded. A change of what
        they say is logged."""
        path = api_path("", "v1", "pods")
        query = [("labelSelector", gatewaypods.ISTIOD_SELECTOR)]
        try:
            pods = [
                item
                for page in self._rest.pages("listing istiod's pods", path, query, 100)
                for item in page.get("items") or ()
                if isinstance(item, Mapping)
            ]
        except ClusterApiError as exc:
            if self.scope_error != str(exc):
                log.warning("cannot read istiod's PILOT_SCOPE_GATEWAY_TO_NAMESPACE: %s", exc)
            self.scope_error = str(exc)
            return False
        report = gatewaypods.scope_report([gatewaypods.istiod_setting(p) for p in pods])
        if self.scope is None or report.text != self.scope.text:
            log.info(
                "%s",
                report.text,
                extra={
                    "fields": {
                        "gateway_selector_scope": report.scope.value,
                        "istiod_pods": [s.pod for s in report.settings],
                    }
                },
            )
        self.scope, self.scope_error = report, None
        return True

    # --- what /readyz says -------------------------------------------------------------------

    def notes(self) -> list[str]:
        """/readyz detail on istiod's PILOT_SCOPE_GATEWAY_TO_NAMESPACE (the pod cache itself is
        part of the tenancy view's readiness)."""
        if self.scope_error is not None:
            return [f"istiod: PILOT_SCOPE_GATEWAY_TO_NAMESPACE not known: {self.scope_error}"]
        return [self.scope.text] if self.scope is not None else []
