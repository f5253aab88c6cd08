"""What the gateway pod cache costs in a cluster of 100,000 pods: memory, the initial list and
the watch, for the shipped cache and two alternatives it is measured against.

    .venv/bin/python -m benchmarks.gateway_pods                      # the fake API server
    .venv/bin/python -m benchmarks.gateway_pods --pods 20000 --events 2000
    KUBEBUILDER_ASSETS=DIR .venv/bin/python -m benchmarks.gateway_pods --apiserver --pods 20000

The pods are spread over 1,000 namespaces; one in `--gateway-every` (default 200: 500 of
100,000) is a gateway pod as Istio's gateway chart makes it, the rest application pods with an
injected sidecar, each about as large as such a pod is in etcd (labels, annotations, owner,
managedFields, two containers and an init container, status). Three caches list and watch
them, one after the other, through the real kubernetes client:

* **shipped**: webhook.tenancy.gateways.GatewayPodWatch, as `serve` runs it: a metadata-only
  list and watch (PartialObjectMetadata) that keeps the gateway pods' labels and drops the
  rest as they arrive;
* **whole pods**: the same cache asking for whole pods (what metadata-only saves on the wire
  and in parsing);
* **every pod**: metadata only, but every pod's labels kept (what dropping the non-gateway
  pods saves in memory).

For each: wall and CPU seconds of the initial list (CPU of the cache's watch thread: the
client reading and parsing; the wall time includes the server producing the list), the JSON
bytes the cache received (counted where it parses them), the pods kept, and the memory they
hold (tracemalloc in a second list of its own, after a garbage collection: what stays
allocated while the cache lives, the client included; and the peak during the list), and how
long a thread that wants the interpreter every 0.5 ms waits for it during the list (a review
waits as long). Then `--events` status changes of application pods (what the kubelet sends
all day) go through the watch: CPU of the watch thread and bytes received, per event (the
`every pod` cache gets at most 1,000: each of its events copies its whole snapshot). Nothing
in the shipped cache changes for them, so the index (and a pending audit pass) stays put.

Against the fake API server (tests/fake_apiserver.py) in a process of its own, so its memory
and CPU are not counted; it serialises with Python's json, so its wall times are slower than
a kube-apiserver's. With --apiserver, etcd and kube-apiserver from KUBEBUILDER_ASSETS
(tests/e2e/harness.py) on the same machine: the pods are created first through the API (about
100 a second on two cores, so 100,000 take a quarter of an hour), the events are status
patches.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes.client

from benchmarks.run import machine
from webhook.admission.decide import decide
from webhook.admission.review import AdmissionReview
from webhook.cluster import KindCaches, WatchCache, WatchTuning, list_call, load_api_client
from webhook.cluster import watch as watch_module
from webhook.cluster.watch import metadata_only
from webhook.config.model import parse_config
from webhook.tenancy.gateways import GatewayPodWatch, cached_pod, keep_pod
from webhook.tenancy.view import TenancyView

NAMESPACES = 1000
PODS_PATH = "/api/v1/pods"
TUNING = WatchTuning(watch_timeout=600, request_timeout=120.0, page_size=100)  # as shipped


# --- the pods ------------------------------------------------------------------------------


def namespace_of(index: int) -> str:
    return f"team-{index % NAMESPACES:04d}"


def _managed_fields() -> list[dict[str, Any]]:
    # What the API server records of who wrote which fields: the controller's create and the
    # kubelet's status updates. Sent with metadata-only answers too.
    return [
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2024-05-02T10:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {
                    "f:generateName": {},
                    "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}},
                    "f:ownerReferences": {".": {}, 'k:{"uid":"5c0d1e2f"}': {}},
                },
                "f:spec": {
                    "f:containers": {'k:{"name":"app"}': {".": {}, "f:image": {}, "f:name": {}}},
                    "f:dnsPolicy": {},
                    "f:restartPolicy": {},
                    "f:schedulerName": {},
                    "f:terminationGracePeriodSeconds": {},
                },
            },
        },
        {
            "manager": "kubelet",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2024-05-02T10:00:07Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:status": {
                    "f:conditions": {'k:{"type":"Ready"}': {".": {}, "f:status": {}}},
                    "f:containerStatuses": {},
                    "f:podIP": {},
                    "f:startTime": {},
                }
            },
            "subresource": "status",
        },
    ]


MANAGED_FIELDS = _managed_fields()  # shared by the pods the fake stores (never changed in place)


def _container(name: str, image: str, args: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "args": args,
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
            {"name": "LOG_LEVEL", "value": "info"},
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "volumeMounts": [
            {
                "name": "kube-api-access",
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            }
        ],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }


def pod_spec(gateway: bool) -> dict[str, Any]:
    proxy_args = [
        "proxy",
        "router" if gateway else "sidecar",
        "--domain",
        "$(POD_NAMESPACE).svc.cluster.local",
    ]
    containers = [_container("istio-proxy", "docker.io/istio/proxyv2:1.24.0", proxy_args)]
    if not gateway:
        containers.insert(
            0, _container("app", "registry.example.com/shop/web:2.14.1", ["--port=8080"])
        )
    return {
        "initContainers": []
        if gateway
        else [
            _container(
                "istio-init", "docker.io/istio/proxyv2:1.24.0", ["istio-iptables", "-p", "15001"]
            )
        ],
        "containers": containers,
        "volumes": [
            {"name": "istio-envoy", "emptyDir": {"medium": "Memory"}},
            {
                "name": "kube-api-access",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}
                    ]
                },
            },
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "schedulerName": "default-scheduler",
        "enableServiceLinks": True,
        "tolerations": [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ],
    }


def pod_status(restarts: int = 0) -> dict[str, Any]:
    return {
        "phase": "Running",
        "conditions": [
            {"type": kind, "status": "True", "lastTransitionTime": "2024-05-02T10:00:07Z"}
            for kind in (
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled",
            )
        ],
        "hostIP": "10.0.4.17",
        "podIP": "10.8.3.41",
        "startTime": "2024-05-02T10:00:00Z",
        "containerStatuses": [
            {
                "name": "app",
                "ready": True,
                "restartCount": restarts,
                "image": "registry.example.com/shop/web:2.14.1",
                "started": True,
                "state": {"running": {"startedAt": "2024-05-02T10:00:05Z"}},
            },
            {
                "name": "istio-proxy",
                "ready": True,
                "restartCount": 0,
                "image": "docker.io/istio/proxyv2:1.24.0",
                "started": True,
                "state": {"running": {"startedAt": "2024-05-02T10:00:06Z"}},
            },
        ],
        "qosClass": "Burstable",
    }


# What Istio's injector records on an injected pod.
SIDECAR_STATUS = json.dumps(
    {
        "initContainers": ["istio-init"],
        "containers": ["istio-proxy"],
        "volumes": ["istio-envoy", "istio-data", "istio-podinfo", "istio-token", "istiod-ca-cert"],
        "imagePullSecrets": None,
        "revision": "default",
    },
    separators=(",", ":"),
)


def pod_metadata(index: int, gateway: bool) -> dict[str, Any]:
    namespace = namespace_of(index)
    if gateway:
        labels = {
            "app": f"{namespace}-ingress",
            "istio": f"{namespace}-ingress",
            "sidecar.istio.io/inject": "true",
            "pod-template-hash": "6c9d7f",
        }
        annotations = {
            "inject.istio.io/templates": "gateway",
            "prometheus.io/port": "15020",
            "prometheus.io/scrape": "true",
        }
    else:
        labels = {
            "app": f"web-{index % 50}",
            "pod-template-hash": "7d4b9c",
            "security.istio.io/tlsMode": "istio",
            "service.istio.io/canonical-name": f"web-{index % 50}",
            "service.istio.io/canonical-revision": "latest",
            "tenant": namespace,
        }
        annotations = {
            "kubectl.kubernetes.io/default-container": "app",
            "sidecar.istio.io/status": SIDECAR_STATUS,
            "sidecar.istio.io/proxyCPU": "100m",
            "sidecar.istio.io/proxyCPULimit": "500m",
            "sidecar.istio.io/proxyMemory": "128Mi",
            "sidecar.istio.io/proxyMemoryLimit": "256Mi",
        }
    return {
        "name": f"{'ingress' if gateway else 'web'}-{index:06d}",
        "generateName": f"{'ingress' if gateway else 'web'}-7d4b9c-",
        "namespace": namespace,
        "uid": f"5f1c{index:08x}-0000-4000-8000-0000000000{index % 100:02d}",
        "creationTimestamp": "2024-05-02T10:00:00Z",
        "labels": labels,
        "annotations": annotations,
        "ownerReferences": [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web-7d4b9c",
                "uid": "5c0d1e2f",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
        "managedFields": MANAGED_FIELDS,
    }


def is_gateway(index: int, every: int) -> bool:
    return index % every == every // 2


def pods(count: int, every: int) -> Iterator[dict[str, Any]]:
    # The specs and statuses are shared between pods (the fake never changes a stored one).
    specs = {False: pod_spec(False), True: pod_spec(True)}
    status = pod_status()
    for index in range(count):
        gateway = is_gateway(index, every)
        yield {"metadata": pod_metadata(index, gateway), "spec": specs[gateway], "status": status}


# --- the fake API server, in a process of its own -----------------------------------------


def serve_fake(count: int, every: int) -> None:
    """The child: the fake with `count` pods and an istiod; commands on stdin (`churn N`: N
    status changes of application pods, answered with the last resourceVersion), answers on
    stdout."""
    from tests.fake_apiserver import FakeApiServer

    fake = FakeApiServer().start()
    fake.no_delay = True
    fake.load_objects("", "pods", pods(count, every))
    fake.put_object("", "pods", ISTIOD)
    print(json.dumps({"port": fake.port}), flush=True)
    churned = 0
    for line in sys.stdin:
        command, *args = line.split()
        if command == "churn":
            rv = ""
            for _ in range(int(args[0])):
                index = application_pod(churned, count, every)
                churned += 1
                name = pod_metadata(index, False)["name"]
                stored = fake.stored_object("", "pods", namespace_of(index), name)
                assert stored is not None
                stored["status"] = pod_status(restarts=churned)
                rv = fake.put_object("", "pods", stored, manager="kubelet")
            print(json.dumps({"rv": rv}), flush=True)
        elif command == "quit":
            break
    fake.stop()


ISTIOD = {
    "metadata": {"name": "istiod-1", "namespace": "istio-system", "labels": {"app": "istiod"}},
    "spec": {
        "containers": [
            {
                "name": "discovery",
                "image": "docker.io/istio/pilot:1.24.0",
                "env": [{"name": "PILOT_SCOPE_GATEWAY_TO_NAMESPACE", "value": "false"}],
            }
        ]
    },
}


def application_pod(n: int, count: int, every: int) -> int:
    """The index of the n-th application pod to change, spread over all of them."""
    index = (n * 7919) % count
    while is_gateway(index, every):
        index = (index + 1) % count
    return index


class Target:
    """Where the pods are."""

    def client(self) -> kubernetes.client.ApiClient:
        raise NotImplementedError

    def churn(self, events: int) -> str:
        """`events` status changes of application pods; the resourceVersion of the last."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class FakeTarget(Target):
    """The fake API server in a process of its own."""

    def __init__(self, count: int, every: int) -> None:
        command = [sys.executable, "-m", "benchmarks.gateway_pods", "--serve-fake"]
        self.process = subprocess.Popen(
            [*command, str(count), str(every)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = f"http://127.0.0.1:{self._ask('')['port']}"

    def _ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        if command:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def client(self) -> kubernetes.client.ApiClient:
        return kubernetes.client.ApiClient(kubernetes.client.Configuration(host=self.url))

    def churn(self, events: int) -> str:
        return str(self._ask(f"churn {events}")["rv"])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class ApiServerTarget(Target):
    """etcd and kube-apiserver from KUBEBUILDER_ASSETS, `count` pods created through the API
    (no scheduler: they stay Pending); the events are status patches."""

    def __init__(self, count: int, every: int, workdir: Path, workers: int = 8) -> None:
        from tests.e2e.harness import ControlPlane, why_skipped

        reason = why_skipped()
        if reason is not None:
            raise SystemExit(f"--apiserver: {reason}")
        self.count, self.every = count, every
        self.rounds = 0  # each churn writes what no earlier one did (a no-op patch sends nothing)
        self.plane = ControlPlane(workdir)
        self.plane.start()
        self.plane.wait_ready()
        started = time.perf_counter()
        self._namespaces()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(self._create, (range(w, count, workers) for w in range(workers))))
        self._create_istiod()
        seconds = time.perf_counter() - started
        print(f"created {count} pods in {seconds:.0f} s ({count / seconds:.0f}/s)", file=sys.stderr)

    def _namespaces(self) -> None:
        with self.plane.api() as api:
            for name in [*(namespace_of(n) for n in range(NAMESPACES)), "istio-system"]:
                api.post("/api/v1/namespaces", json={"metadata": {"name": name}})
                # No controller-manager: the ServiceAccount admission plugin needs this.
                sa = {"metadata": {"name": "default", "namespace": name}}
                api.post(f"/api/v1/namespaces/{name}/serviceaccounts", json=sa)

    def _create(self, indexes: range) -> None:
        with self.plane.api(timeout=120) as api:
            for index in indexes:
                gateway = is_gateway(index, self.every)
                metadata = pod_metadata(index, gateway)
                body = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {k: metadata[k] for k in ("name", "labels", "annotations")},
                    "spec": pod_spec(gateway),
                }
                response = api.post(f"/api/v1/namespaces/{metadata['namespace']}/pods", json=body)
                if response.status_code != 201:
                    raise AssertionError(f"creating {metadata['name']}: {response.text[:300]}")

    def _create_istiod(self) -> None:
        with self.plane.api() as api:
            body = {"apiVersion": "v1", "kind": "Pod", **ISTIOD}
            api.post("/api/v1/namespaces/istio-system/pods", json=body).raise_for_status()

    def client(self) -> kubernetes.client.ApiClient:
        return load_api_client(kubeconfig=str(self.plane.kubeconfig), in_cluster=False)

    def churn(self, events: int) -> str:
        rv = ""
        self.rounds += 1
        with self.plane.api(timeout=120) as api:
            for n in range(events):
                metadata = pod_metadata(application_pod(n, self.count, self.every), False)
                path = f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}/status"
                message = f"bench {self.rounds}-{n}"
                condition = {"type": "PodScheduled", "status": "False", "message": message}
                response = api.patch(
                    path,
                    json={"status": {"conditions": [condition]}},
                    headers={"Content-Type": "application/strategic-merge-patch+json"},
                )
                response.raise_for_status()
                rv = str(response.json()["metadata"]["resourceVersion"])
        return rv

    def close(self) -> None:
        self.plane.stop()


# --- the caches measured -------------------------------------------------------------------


@dataclass
class Figures:
    name: str
    list_wall: float = 0.0
    list_cpu: float = 0.0
    list_bytes: int = 0
    kept: int = 0
    gateway_pods: int = 0
    retained: int = 0  # bytes allocated and alive after the list (tracemalloc)
    peak: int = 0
    pause_p99: float = 0.0  # seconds another thread waited for the interpreter during the list
    pause_max: float = 0.0
    events: int = 0
    event_cpu: float = 0.0
    event_bytes: int = 0
    index_unchanged: bool = True


def whole_pods_cache(api: kubernetes.client.ApiClient) -> WatchCache[Any]:
    connect = lambda: list_call(api, "", "v1", "pods")  # noqa: E731
    return WatchCache("pods", connect, cached_pod, keep=keep_pod, tuning=TUNING)


def every_pod_cache(api: kubernetes.client.ApiClient) -> WatchCache[Any]:
    connect = lambda: metadata_only(list_call(api, "", "v1", "pods"))  # noqa: E731
    return WatchCache("pods", connect, cached_pod, tuning=TUNING)


# Every event of a cache that keeps every pod copies its whole snapshot (100,000 entries): a
# few milliseconds each, so it gets fewer events to measure that by.
EVENTS_CAP = {"every pod": 1000}


class Measured:
    """A cache to measure: started, synced, stopped; its index when it has one."""

    def __init__(self, name: str, api: kubernetes.client.ApiClient) -> None:
        self.name = name
        self.watch: GatewayPodWatch | None = None
        self.cache: WatchCache[Any]
        if name == "shipped":
            self.watch = GatewayPodWatch(api, KindCaches(), tuning=TUNING, istiod_first_wait=0.0)
            self.cache = self.watch.cache
        elif name == "whole pods":
            self.cache = whole_pods_cache(api)
        else:
            self.cache = every_pod_cache(api)

    def start(self) -> None:
        (self.watch or self.cache).start()

    def stop(self) -> None:
        (self.watch or self.cache).stop(10)

    def index(self) -> object:
        return self.watch.gateway_pods if self.watch is not None else None

    def thread_cpu(self) -> float:
        """CPU seconds of the cache's watch thread so far (its list and its events)."""
        (thread,) = [t for t in threading.enumerate() if t.name == "watch-pods"]
        assert thread.ident is not None
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


class Received:
    """The JSON bytes the watch machinery parses (list pages and watch events), counted by
    standing in for the `json` module it calls."""

    def __init__(self) -> None:
        self.bytes = 0

    def loads(self, data: str | bytes) -> Any:
        self.bytes += len(data)
        return json.loads(data)

    def __enter__(self) -> Received:
        self._saved = watch_module.json
        watch_module.json = self  # type: ignore[assignment]
        return self

    def __exit__(self, *_: object) -> None:
        watch_module.json = self._saved


def warm_up() -> None:
    """Build what the client builds on its first call (pydantic validators), so the first
    cache measured does not pay for it."""
    nowhere = kubernetes.client.Configuration(host="http://127.0.0.1:9")
    call = list_call(kubernetes.client.ApiClient(nowhere), "", "v1", "pods")
    with contextlib.suppress(Exception):
        call(limit=1, _preload_content=False, _request_timeout=(0.01, 0.01))


def measure(target: Target, name: str, events: int) -> Figures:
    figures = Figures(name)
    events = min(events, EVENTS_CAP.get(name, events))
    # Timing: no tracemalloc (it slows every allocation down).
    gc.collect()
    measured = Measured(name, target.client())
    with Received() as received, Pauses() as pauses:
        wall = time.perf_counter()
        measured.start()
        assert measured.cache.wait_synced(1800), f"{name}: the list did not complete"
        figures.list_wall = time.perf_counter() - wall
        figures.list_cpu = measured.thread_cpu()
        figures.list_bytes = received.bytes
    figures.pause_p99, figures.pause_max = pauses.p99(), max(pauses.gaps)
    figures.kept = len(measured.cache.items)
    if measured.watch is not None:
        figures.gateway_pods = len(measured.watch.gateway_pods.pods)
    index = measured.index()
    if events:
        time.sleep(1.0)  # the watch is open
        with Received() as received:
            cpu = measured.thread_cpu()
            rv = target.churn(events)
            deadline = time.monotonic() + 1800
            while not _caught_up(measured.cache.state.resource_version, rv):
                if time.monotonic() > deadline:
                    raise AssertionError(f"{name}: the watch did not catch up with {rv}")
                time.sleep(0.01)
            figures.event_cpu = measured.thread_cpu() - cpu
            figures.event_bytes = received.bytes
        if not figures.event_bytes:
            raise AssertionError(f"{name}: the {events} changes sent no event")
        figures.events = events
        figures.index_unchanged = measured.index() is index
    measured.stop()
    del measured
    # Memory: a list of its own, under tracemalloc.
    gc.collect()
    tracemalloc.start()
    measured = Measured(name, target.client())
    measured.start()
    assert measured.cache.wait_synced(1800)
    gc.collect()
    figures.retained, figures.peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    measured.stop()
    return figures


class Pauses:
    """How long a thread that wants the interpreter every 0.5 ms (as the server's event loop
    does for a review) waits for it, while a `with` block runs: the list's JSON parsing holds
    the interpreter lock a page at a time."""

    def __enter__(self) -> Pauses:
        self.gaps: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(0.0005)
            now = time.perf_counter()
            self.gaps.append(now - last - 0.0005)
            last = now

    def p99(self) -> float:
        ordered = sorted(self.gaps)
        return ordered[int(len(ordered) * 0.99)] if ordered else 0.0


def _caught_up(current: str, wanted: str) -> bool:
    return current.isdigit() and wanted.isdigit() and int(current) >= int(wanted)


# --- admission with the index -------------------------------------------------------------


def decide_micros(pod_count: int, every: int) -> float:
    """decide() of an Istio Gateway against the gateway pods of `pod_count` pods (median µs)."""
    from webhook.tenancy.gatewaypods import gateway_pods_of

    index = gateway_pods_of(
        {"metadata": pod_metadata(i, True)} for i in range(pod_count) if is_gateway(i, every)
    )
    namespaces = {namespace_of(n): {"tenant": namespace_of(n)} for n in range(NAMESPACES)}
    view = TenancyView(namespaces, {}, index)
    config = parse_config({"unclaimedHosts": "allow"})
    target = namespace_of(every // 2)
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u",
            "kind": {"group": "networking.istio.io", "version": "v1", "kind": "Gateway"},
            "resource": {"group": "networking.istio.io", "version": "v1", "resource": "gateways"},
            "namespace": namespace_of(1),
            "name": "takeover",
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {
                "apiVersion": "networking.istio.io/v1",
                "kind": "Gateway",
                "metadata": {"name": "takeover", "namespace": namespace_of(1)},
                "spec": {
                    "selector": {"istio": f"{target}-ingress"},
                    "servers": [
                        {
                            "hosts": ["./x.example.net"],
                            "port": {"number": 80, "name": "h", "protocol": "HTTP"},
                        }
                    ],
                },
            },
        },
    }
    request = AdmissionReview.model_validate(review).request
    assert not decide(request, "validate", view, config).allowed
    runs = []
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(2000):
            decide(request, "validate", view, config)
        runs.append((time.perf_counter() - started) / 2000 * 1e6)
    return sorted(runs)[3]


# --- output --------------------------------------------------------------------------------


def table(results: list[Figures], pods_count: int) -> str:
    mb = 1024 * 1024
    lines = [
        f"| cache ({pods_count:,} pods) | pods kept | list wall s | list CPU s | list MB received "
        "| memory held MB | peak MB | pause p99/max ms | CPU µs/event | bytes/event |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in results:
        per_event = f"{f.event_cpu / f.events * 1e6:.0f}" if f.events else ""
        per_bytes = f"{f.event_bytes / f.events:.0f}" if f.events else ""
        lines.append(
            f"| {f.name} | {f.kept:,} | {f.list_wall:.1f} | {f.list_cpu:.1f} "
            f"| {f.list_bytes / mb:.0f} | {f.retained / mb:.1f} | {f.peak / mb:.0f} "
            f"| {f.pause_p99 * 1000:.1f} / {f.pause_max * 1000:.0f} | {per_event} | {per_bytes} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pods", type=int, default=100_000)
    parser.add_argument("--gateway-every", type=int, default=200)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument(
        "--apiserver", action="store_true", help="a real kube-apiserver (KUBEBUILDER_ASSETS)"
    )
    parser.add_argument("--caches", default="shipped,whole pods,every pod")
    parser.add_argument("--serve-fake", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fake:
        serve_fake(*args.serve_fake)
        return 0
    print(json.dumps(machine()), file=sys.stderr)
    names = [n.strip() for n in args.caches.split(",") if n.strip()]
    warm_up()
    results: list[Figures] = []
    with tempfile.TemporaryDirectory() as work:
        target: Target = (
            ApiServerTarget(args.pods, args.gateway_every, Path(work))
            if args.apiserver
            else FakeTarget(args.pods, args.gateway_every)
        )
        try:
            for name in names:
                figures = measure(target, name, args.events)
                results.append(figures)
                print(json.dumps(figures.__dict__), file=sys.stderr, flush=True)
        finally:
            target.close()
    where = "a real kube-apiserver" if args.apiserver else "the fake API server (its own process)"
    print(f"gateway pod cache against {where}; 1 pod in {args.gateway_every} a gateway pod")
    print(table(results, args.pods))
    shipped = next((f for f in results if f.name == "shipped"), None)
    if shipped is not None:
        print(
            f"\nshipped cache: {shipped.gateway_pods} gateway pods indexed; index unchanged by "
            f"the {shipped.events} events: {shipped.index_unchanged}"
        )
    micros = decide_micros(args.pods, args.gateway_every)
    print(f"decide() of an Istio Gateway against the index of {args.pods:,} pods: {micros:.0f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
