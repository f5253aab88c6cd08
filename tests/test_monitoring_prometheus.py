"""The shipped rules and dashboard on a real Prometheus: it scrapes a running tenant-guard
(`serve --kubeconfig` against the fake API server, real TLS, the honor_labels scrape the
ServiceMonitor makes) and a loopback exporter of synthetic Istio and API server series, loads
deploy/components/monitoring/tenant-guard.rules.yaml, and every query of every dashboard panel,
evaluated through its HTTP API, returns the tenants it should; with the tenant variable set, only
that tenant's. Skipped, saying why, when the `prometheus` program is absent (Debian package
prometheus)."""

from __future__ import annotations

import copy
import math
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.builders import load_review
from tests.fake_apiserver import FakeApiServer
from tests.monitoring import RULES, dashboard
from tests.server_harness import free_port
from tests.test_cluster import eventually
from webhook.certificates.authority import generate_bundle, write_bundle

ISTIO = "networking.istio.io"
CONFIG: dict[str, Any] = {
    "unclaimedHosts": "allow",
    "sharedNamespaces": ["istio-system", "shared-cache"],
    "tenants": {"tenant-a": {"hosts": ["*.a.example.com"]}, "tenant-b": {}, "tenant-c": {}},
}
NAMESPACES: dict[str, dict[str, str]] = {
    "tenant-a": {"tenant": "tenant-a"},
    "tenant-a-dev": {"tenant": "tenant-a"},
    "tenant-b": {"tenant": "tenant-b"},
    # tenant-c is moving in: warn mode
    "tenant-c": {"tenant": "tenant-c", "tenant-guard.io/enforcement": "warn"},
    # a tenant namespace every tenant may reach (one of sharedNamespaces)
    "shared-cache": {"tenant": "tenant-c"},
    "istio-system": {},
}
# Synthetic mesh traffic: (metric, source namespace, destination namespace, code, per second).
TRAFFIC: tuple[tuple[str, str, str, str, float], ...] = (
    ("istio_requests_total", "tenant-b", "tenant-a", "403", 1.0),  # crosses, refused
    ("istio_requests_total", "tenant-a-dev", "tenant-a", "200", 2.0),  # one tenant
    ("istio_requests_total", "istio-system", "tenant-a", "200", 5.0),  # the ingress gateway
    ("istio_requests_total", "tenant-b", "istio-system", "200", 1.0),  # to a shared namespace
    ("istio_requests_total", "tenant-b", "shared-cache", "200", 1.0),  # to a shared one, too
    ("istio_requests_total", "tenant-a", "unknown", "200", 1.0),  # out of the mesh
    ("istio_tcp_connections_opened_total", "tenant-c", "tenant-b", "", 0.5),  # crosses, TCP
    ("istio_tcp_connections_opened_total", "tenant-b", "tenant-b", "", 0.5),
)
RATE_INTERVAL = "10s"  # what Grafana's $__rate_interval is for a 1 s scrape, about


def find_prometheus() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.skip("prometheus is not installed (Debian package prometheus): not evaluated")
    return found


# --- the synthetic exporter -----------------------------------------------------------------


class _Exporter(ThreadingHTTPServer):
    daemon_threads = True
    started: float


class _ExporterHandler(BaseHTTPRequestHandler):
    server: _Exporter

    def do_GET(self) -> None:
        elapsed = time.monotonic() - self.server.started
        lines = []
        for metric, source, destination, code, rate in TRAFFIC:
            common = (
                f'source_workload_namespace="{source}",destination_service_namespace="{destination}"'
                + (f',response_code="{code}"' if code else "")
            )
            # Both proxies report each request; the rules count the receiving one's.
            for reporter in ("destination", "source"):
                lines.append(f'{metric}{{reporter="{reporter}",{common}}} {rate * elapsed:.3f}')
        failures = 0.5 * elapsed
        lines.append(
            'apiserver_admission_webhook_rejection_count{name="tenant-rules.tenant-guard.io",'
            'type="validating",operation="CREATE",error_type="calling_webhook_error",'
            f'rejection_code="503"}} {failures:.3f}'
        )
        lines.append(
            'apiserver_admission_webhook_rejection_count{name="validate.kyverno.svc",'
            'type="validating",operation="CREATE",error_type="calling_webhook_error",'
            f'rejection_code="503"}} {failures:.3f}'
        )
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def synthetic_exporter() -> Iterator[int]:
    server = _Exporter(("127.0.0.1", 0), _ExporterHandler)
    server.started = time.monotonic()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


# --- tenant-guard, with reviews coming in -------------------------------------------------------


@dataclass
class Guard:
    port: int
    ca_file: Path

    def ready(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            response = httpx.get(f"https://127.0.0.1:{self.port}/readyz", verify=context)
        except httpx.HTTPError:
            return False
        return response.status_code == 200


@contextmanager
def tenant_guard(fake: FakeApiServer, tmp_path: Path) -> Iterator[Guard]:
    """`tenant-guard serve --kubeconfig` (a child process), listening on 127.0.0.1, its log
    (a decision line per review) in a file."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    write_bundle(generate_bundle("tenant-guard", "tenant-guard"), tmp_path / "tls")
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(CONFIG))
    port = free_port()
    args = ["--config", str(config_file), "--cert-dir", str(tmp_path / "tls")]
    args += ["--port", str(port), "--kubeconfig", str(fake.write_kubeconfig(tmp_path / "kc"))]
    args += ["--namespace", "tenant-guard", "--audit-debounce-seconds", "0.2"]
    log_file = tmp_path / "tenant-guard.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "webhook", "serve", *args], stdout=log, stderr=subprocess.STDOUT
        )
        guard = Guard(port, tmp_path / "tls" / "ca.crt")
        try:
            # Reviews only once ready, as a Service sends them (before its caches have listed,
            # tenant-guard refuses every review as tenancy-unknown).
            eventually(lambda: guard.ready(), timeout=60, what="tenant-guard to be ready")
            yield guard
        finally:
            process.terminate()
            process.wait(timeout=30)
    output = log_file.read_text()
    assert process.returncode in (0, -15), output
    assert "Application shutdown complete" in output, output[-3000:]


def reviews() -> list[tuple[str, Any]]:
    """What the poster sends, over and over: a denial (tenant-b), a mutated Pod (tenant-a), a
    warning (tenant-c, warn mode), a review tenant-guard cannot check, and a body that is not
    JSON."""
    denied = load_review("virtualservice-create-v1alpha3-cross-tenant-host.json")
    warned = copy.deepcopy(denied)
    warned["request"]["namespace"] = "tenant-c"
    warned["request"]["object"]["metadata"]["namespace"] = "tenant-c"
    pod = load_review("pod-create-plain.json", mutating=True)
    wrong_shape = copy.deepcopy(load_review("pod-create-plain.json"))
    wrong_shape["request"]["object"]["kind"] = "Service"
    return [
        ("/validate", denied),
        ("/mutate", pod),
        ("/validate", warned),
        ("/validate", wrong_shape),
        ("/validate", b"not json"),
    ]


@contextmanager
def reviews_coming_in(guard: Guard) -> Iterator[None]:
    """Reviews posted every 0.2 s, as an API server would, so every rate has increases."""
    stop = threading.Event()
    context = ssl.create_default_context(cafile=str(guard.ca_file))
    sent = reviews()

    def post() -> None:
        with httpx.Client(base_url=f"https://127.0.0.1:{guard.port}", verify=context) as client:
            while not stop.is_set():
                for path, body in sent:
                    try:
                        if isinstance(body, bytes):
                            client.post(path, content=body)
                        else:
                            client.post(path, json=body)
                    except httpx.HTTPError:
                        pass  # not listening yet
                stop.wait(0.2)

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


# --- Prometheus ------------------------------------------------------------------------------


@dataclass
class Prometheus:
    url: str

    def get(self, path: str, **params: str) -> Any:
        response = httpx.get(self.url + path, params=params, timeout=10)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result


@contextmanager
def prometheus(tmp_path: Path, guard: Guard, exporter_port: int) -> Iterator[Prometheus]:
    binary = find_prometheus()
    tmp_path.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                # As the shipped ServiceMonitor scrapes it: HTTPS verified against the CA,
                # honor_labels, and target labels of the same names as the metrics' own.
                "job_name": "tenant-guard",
                "scheme": "https",
                "honor_labels": True,
                "tls_config": {"ca_file": str(guard.ca_file), "server_name": "127.0.0.1"},
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{guard.port}"],
                        "labels": {"namespace": "tenant-guard", "endpoint": "https"},
                    }
                ],
            },
            {
                "job_name": "mesh",
                "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
            },
        ],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Prometheus(f"http://127.0.0.1:{port}")

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError((tmp_path / "prometheus.log").read_text())
        try:
            return httpx.get(server.url + "/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        eventually(ready, timeout=60, what="Prometheus to be ready")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


# --- the dashboard's queries, as Grafana sends them -------------------------------------------


def grafana_expr(expr: str, tenant: str) -> str:
    """A panel query with the dashboard's variables replaced as Grafana does (`$tenant` is a
    regex: All is `.*`)."""
    return expr.replace("$__rate_interval", RATE_INTERVAL).replace("$tenant", tenant)


def panels_by_title() -> dict[str, dict[str, Any]]:
    return {p["title"]: p for p in dashboard()["panels"] if p["type"] != "row"}


Series = list[dict[str, Any]]


def labels(series: Series, *names: str) -> set[tuple[str, ...]]:
    return {tuple(s["metric"].get(n, "") for n in names) for s in series}


def value(sample: dict[str, Any]) -> float:
    return float(sample["value"][1])


def by(series: Series, name: str) -> dict[str, float]:
    return {s["metric"].get(name, ""): value(s) for s in series}


def near(actual: float, expected: float) -> bool:
    return math.isclose(actual, expected, rel_tol=0.15)


Check = Callable[[list[Series]], None]


def raw_rate(server: Prometheus, metric: str, source: str, destination: str) -> float:
    """The rate the receiving proxy reports for one pair, straight from the synthetic series
    over the recording rules' window (5m: while the data is younger than that, every rate over
    it is that much lower, the rules' and this alike)."""
    selector = (
        f'reporter="destination", source_workload_namespace="{source}", '
        f'destination_service_namespace="{destination}"'
    )
    (sample,) = server.query(f"sum(rate({metric}{{{selector}}}[5m]))")
    return value(sample)


def all_tenants_checks(server: Prometheus) -> dict[str, Check]:
    """Per panel: what its queries (one result per target) return with every tenant shown."""
    b_to_a = raw_rate(server, "istio_requests_total", "tenant-b", "tenant-a")
    c_to_b = raw_rate(server, "istio_tcp_connections_opened_total", "tenant-c", "tenant-b")
    assert b_to_a > 0 and c_to_b > 0

    def answers(results: list[Series]) -> None:
        (series,) = results
        assert labels(series, "tenant", "decision") == {
            ("tenant-a", "allowed"),  # the Pod, mutated
            ("tenant-b", "denied"),
            ("tenant-c", "warned"),
            ("", "denied"),  # the review of the wrong shape: no tenant is known
        }

    def denials(results: list[Series]) -> None:
        (series,) = results
        # The captured review breaks two rules: another tenant's host, and no exportTo.
        assert labels(series, "tenant", "rule") == {
            ("tenant-b", "host-ownership"),
            ("tenant-b", "export-to"),
        }

    def warnings(results: list[Series]) -> None:
        (series,) = results
        assert labels(series, "tenant", "rule") == {
            ("tenant-c", "host-ownership"),
            ("tenant-c", "export-to"),
        }

    def latency(results: list[Series]) -> None:
        for series in results:  # p50, p99
            assert labels(series, "endpoint") == {("validate",), ("mutate",)}
            assert all(0 < value(s) <= 1.0 for s in series), series

    def not_judged(results: list[Series]) -> None:
        unjudged, refused, failed = results
        assert labels(unjudged, "endpoint", "reason") == {("validate", "not-checkable")}
        assert labels(refused, "reason") == {("not-json",)}
        assert labels(failed, "name") == {("tenant-rules.tenant-guard.io",)}
        assert near(value(failed[0]), 0.5)

    def audit_table(results: list[Series]) -> None:
        (series,) = results
        assert labels(series, "tenant", "kind", "rule") == {
            ("tenant-b", "DestinationRule", "export-to")
        }
        assert value(series[0]) == 2  # two entries of one DestinationRule's exportTo

    def audit_by_tenant(results: list[Series]) -> None:
        (series,) = results
        assert by(series, "tenant") == {"tenant-b": 2.0}

    def last_pass(results: list[Series]) -> None:
        ((sample,),) = results
        assert 0 <= value(sample) < 60

    def cross_http(results: list[Series]) -> None:
        (series,) = results
        assert labels(series, "source_tenant", "destination_tenant") == {("tenant-b", "tenant-a")}
        assert near(value(series[0]), b_to_a)  # once, not once per reporting proxy

    def cross_tcp(results: list[Series]) -> None:
        (series,) = results
        assert labels(series, "source_tenant", "destination_tenant") == {("tenant-c", "tenant-b")}
        assert near(value(series[0]), c_to_b)

    def cross_namespaces(results: list[Series]) -> None:
        (series,) = results
        names = (
            "source_tenant",
            "source_workload_namespace",
            "destination_tenant",
            "destination_service_namespace",
            "protocol",
        )
        assert labels(series, *names) == {
            ("tenant-b", "tenant-b", "tenant-a", "tenant-a", "http"),
            ("tenant-c", "tenant-c", "tenant-b", "tenant-b", "tcp"),
        }

    def forbidden(results: list[Series]) -> None:
        (series,) = results
        rates = by(series, "destination_tenant")
        # tenant-c answers (shared-cache) without 403: 0, so a rise has a baseline.
        assert set(rates) == {"tenant-a", "tenant-c"}
        assert near(rates["tenant-a"], b_to_a) and rates["tenant-c"] == 0

    def namespaces(results: list[Series]) -> None:
        (series,) = results
        assert labels(series, "namespace", "tenant") == {
            ("tenant-a", "tenant-a"),
            ("tenant-a-dev", "tenant-a"),
            ("tenant-b", "tenant-b"),
            ("tenant-c", "tenant-c"),
            ("shared-cache", "tenant-c"),
        }

    def certificate(results: list[Series]) -> None:
        ((sample,),) = results
        assert 300 * 24 * 3600 < value(sample) <= 825 * 24 * 3600  # the test bundle's leaf

    def config_accepted(results: list[Series]) -> None:
        ((sample,),) = results
        assert value(sample) == 1

    def caches(results: list[Series]) -> None:
        (series,) = results
        counts = by(series, "resource")
        assert counts["namespaces"] == len(NAMESPACES)
        assert counts["audit:destinationrules.networking.istio.io"] == 1

    return {
        "Admission answers by tenant and decision": answers,
        "Denials by tenant and rule": denials,
        "Warnings by tenant and rule (warn mode)": warnings,
        "Webhook latency": latency,
        "Reviews not judged and failed calls": not_judged,
        "Audit violations by tenant, kind and rule": audit_table,
        "Audit violations by tenant": audit_by_tenant,
        "Since the last audit pass": last_pass,
        "Cross-tenant HTTP requests/s: source tenant x destination tenant": cross_http,
        "Cross-tenant TCP connections/s: source tenant x destination tenant": cross_tcp,
        "Cross-tenant traffic by namespace": cross_namespaces,
        "403 responses by tenant": forbidden,
        "Tenant namespaces": namespaces,
        "Serving certificate expires in": certificate,
        "Config file in place accepted": config_accepted,
        "Watch cache objects": caches,
    }


TENANT_LABELS = ("tenant", "source_tenant", "destination_tenant")
README = Path(__file__).resolve().parents[1] / "README.md"


def readme_join() -> str:
    """The PromQL of the README's monitoring section."""
    text = README.read_text()
    section = text[text.index("## Monitoring the mesh by tenant") :]
    return section.split("```promql\n", 1)[1].split("```", 1)[0]


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        server.no_delay = True
        server.serve_kind(ISTIO, "v1", "destinationrules", "DestinationRule")
        for name, namespace_labels in NAMESPACES.items():
            server.add_namespace(name, namespace_labels)
        server.put_object(
            ISTIO,
            "destinationrules",
            {
                "apiVersion": f"{ISTIO}/v1",
                "kind": "DestinationRule",
                "metadata": {"name": "everywhere", "namespace": "tenant-b"},
                "spec": {"host": "web", "exportTo": ["*", "tenant-a"]},
            },
        )
        yield server


def test_every_dashboard_query_on_a_real_prometheus(fake: FakeApiServer, tmp_path: Path) -> None:
    find_prometheus()
    with (
        tenant_guard(fake, tmp_path / "guard") as guard,
        reviews_coming_in(guard),
        synthetic_exporter() as exporter,
        prometheus(tmp_path / "prometheus", guard, exporter) as server,
    ):

        def scraped_and_recorded() -> bool:
            return (
                len(server.query("tenant_guard:cross_tenant_traffic:rate5m")) == 2
                and len(server.query("tenant_guard_audit_violations")) == 1
                and bool(
                    server.query(
                        f"rate(tenant_guard_admission_duration_seconds_count[{RATE_INTERVAL}]) > 0"
                    )
                )
                and len(server.query('tenant_guard_admission_requests_total{decision="warned"}'))
                > 0
            )

        eventually(scraped_and_recorded, timeout=90, what="the scrapes and the recording rules")
        targets = server.get("/api/v1/targets")["activeTargets"]
        assert {t["labels"]["job"]: t["health"] for t in targets} == {
            "tenant-guard": "up",
            "mesh": "up",
        }

        checks = all_tenants_checks(server)
        panels = panels_by_title()
        assert set(checks) == set(panels), "a panel without a check, or a check without a panel"
        for title, panel in panels.items():
            results = [server.query(grafana_expr(t["expr"], ".*")) for t in panel["targets"]]
            checks[title](results)

        # The tenant variable: its values, and a panel filtered to one tenant shows only it
        # (the traffic panels: pairs with it on either side).
        assert set(
            server.get(
                "/api/v1/label/tenant/values", **{"match[]": "tenant_guard_namespace_tenant"}
            )
        ) == {"tenant-a", "tenant-b", "tenant-c"}
        filtered = 0
        for title, panel in panels.items():
            for target in panel["targets"]:
                if "$tenant" not in target["expr"]:
                    continue
                traffic = "source_tenant" in target["expr"]
                for series in server.query(grafana_expr(target["expr"], "tenant-a")):
                    shown = {series["metric"][n] for n in TENANT_LABELS if n in series["metric"]}
                    # Traffic: the pairs with tenant-a on either side; the rest: tenant-a's.
                    assert "tenant-a" in shown if traffic else shown == {"tenant-a"}, title
                    filtered += 1
        assert filtered >= 5
        http_pairs = panels["Cross-tenant HTTP requests/s: source tenant x destination tenant"]
        (matrix,) = http_pairs["targets"]
        assert (
            labels(
                server.query(grafana_expr(matrix["expr"], "tenant-c")),
                "source_tenant",
                "destination_tenant",
            )
            == set()
        )

        # The join the README shows, as written there.
        assert labels(server.query(readme_join()), "source_tenant", "destination_tenant") == {
            ("tenant-b", "tenant-a"),
            ("tenant-a", "tenant-a"),  # tenant-a-dev -> tenant-a
            ("tenant-b", "tenant-c"),  # to shared-cache: shared, but a tenant's namespace
        }

        # Every shipped rule evaluates on this data without an error, and the cross-tenant
        # alert is on its way (pending: `for: 5m`) for the two pairs, and only them.
        groups = server.get("/api/v1/rules")["groups"]
        assert {g["name"] for g in groups} == {
            "tenant-guard.mesh.rules",
            "tenant-guard.mesh.alerts",
            "tenant-guard.alerts",
        }
        unhealthy = [
            (r["name"], r.get("lastError"))
            for g in groups
            for r in g["rules"]
            if r["health"] != "ok"
        ]
        assert unhealthy == []
        alerts = server.get("/api/v1/alerts")["alerts"]
        crossing = {
            (
                a["labels"]["source_tenant"],
                a["labels"]["destination_tenant"],
                a["labels"]["protocol"],
            )
            for a in alerts
            if a["labels"]["alertname"] == "TenantGuardCrossTenantTraffic"
        }
        assert crossing == {("tenant-b", "tenant-a", "http"), ("tenant-c", "tenant-b", "tcp")}
        assert {a["state"] for a in alerts} == {"pending"}
        pending = {a["labels"]["alertname"] for a in alerts}
        assert "TenantGuardWebhookCallsFailing" in pending
        assert "TenantGuardUncheckableRequests" in pending
        assert "TenantGuardConfigReloadFailing" not in pending
        assert "TenantGuardAdmissionErrors" not in pending  # not-checkable is not an error
