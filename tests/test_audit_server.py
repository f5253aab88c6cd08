"""The in-server audit against the HTTP-level fake API server, through the real kubernetes
client and the real TLS server: objects there before the start are reported, a fixed one
disappears from the gauge and its report, a config reload changes the results, a kind whose
CRD is not served waits, and reports are written by server-side apply, only with
--policy-reports: wg-policy PolicyReports or OpenReports Reports, whichever is served (the
newer when both are), or the one named; those left in the other API are deleted."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import kubernetes.client
import pytest
import yaml

from tests.fake_apiserver import FakeApiServer
from tests.server_harness import free_port, running_server, serve_process
from tests.test_cluster import FAST, eventually
from webhook.audit.auditor import AuditLoop
from webhook.audit.judging import OPENREPORTS, WGPOLICY, ReportFormat
from webhook.audit.reports import PolicyReportApi
from webhook.audit.watches import AuditWatches
from webhook.certificates.authority import generate_bundle, write_bundle
from webhook.config.store import ConfigStore
from webhook.server.app import Runtime
from webhook.tenancy.hosts import route_key
from webhook.tenancy.live import ClusterTenancy
from webhook.tenancy.watches import ClusterView

ISTIO = "networking.istio.io"
REPORTS = "wgpolicyk8s.io"
REPORT_PATH = "/apis/wgpolicyk8s.io/v1alpha2/namespaces/{}/policyreports/tenant-guard"
FORMATS = [pytest.param(WGPOLICY, id="wgpolicy"), pytest.param(OPENREPORTS, id="openreports")]
CONFIG: dict[str, Any] = {
    "unclaimedHosts": "allow",
    "tenants": {"tenant-a": {"hosts": ["*.a.example.com"]}, "tenant-b": {}},
}


def destinationrule(namespace: str, name: str, export_to: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{ISTIO}/v1",
        "kind": "DestinationRule",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"host": name, "exportTo": export_to},
        "status": {"conditions": []},  # not kept by the audit's cache
    }


def service_entry(namespace: str, name: str, export_to: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": f"{ISTIO}/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"hosts": [f"{name}.a.example.com"], "exportTo": export_to},
    }


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        server.no_delay = True
        server.serve_kind(ISTIO, "v1", "destinationrules", "DestinationRule")
        server.serve_kind("", "v1", "services", "Service")
        server.add_namespace("tenant-a", {"tenant": "tenant-a"})
        server.add_namespace("tenant-b", {"tenant": "tenant-b"})
        server.add_namespace("infra", None)
        # Before tenant-guard starts: a mesh-wide DestinationRule and a VirtualService for
        # another tenant's host, as objects admitted before the install would be.
        server.put_object(ISTIO, "destinationrules", destinationrule("tenant-a", "web", ["*"]))
        server.put_object(ISTIO, "destinationrules", destinationrule("infra", "any", ["*"]))
        server.add_virtualservice("tenant-b", "steal", ["www.a.example.com"])
        yield server


def serve_reports(fake: FakeApiServer, report: ReportFormat = WGPOLICY) -> None:
    """Install the report CRD of `report` (wg-policy PolicyReport by default)."""
    fake.serve_kind(report.group, report.version, report.resource, report.kind)


def report_path(report: ReportFormat, namespace: str) -> str:
    return f"/apis/{report.api_version}/namespaces/{namespace}/{report.resource}/tenant-guard"


@dataclass
class Audited:
    http: httpx.Client
    loop: AuditLoop
    store: ConfigStore

    def metrics(self) -> str:
        return self.http.get("/metrics").text

    def violations(self) -> dict[tuple[str, str, str], float]:
        """tenant_guard_audit_violations as (tenant, kind, rule) -> value."""
        found: dict[tuple[str, str, str], float] = {}
        pattern = re.compile(
            r'^tenant_guard_audit_violations\{kind="([^"]*)",rule="([^"]*)",tenant="([^"]*)"\} '
            r"(\S+)$",
            re.MULTILINE,
        )
        for kind, rule, tenant, value in pattern.findall(self.metrics()):
            found[(tenant, kind, rule)] = float(value)
        return found

    def passes(self) -> int:
        return self.loop.passes

    def detail(self) -> list[str]:
        response = self.http.get("/readyz")
        assert response.status_code == 200, response.text  # the audit never makes it unready
        detail: list[str] = response.json()["detail"]
        return detail


@contextmanager
def audited(
    fake: FakeApiServer, tmp_path: Path, *, reports: str | None = None, config: Any = None
) -> Iterator[Audited]:
    """The real server with cluster tenancy and an audit loop paced for tests."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config or CONFIG))
    store = ConfigStore(config_file)
    api = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=fake.url))
    cluster = ClusterView(
        api, host_key=lambda ns, h: route_key(h, ns, store.current.domain), tuning=FAST
    )
    cluster.start()
    watches = AuditWatches(api, tuning=FAST, caches=cluster.caches)  # as the server wires it
    loop = AuditLoop(
        watches,
        current_config=lambda: store.current,
        namespaces=lambda: cluster.namespaces if cluster.wait_synced(0) else None,
        routes=lambda: cluster.routes,
        gateway_pods=lambda: cluster.gateway_pods,
        reports=PolicyReportApi(api, reports) if reports else None,
        debounce=0.2,
        tick=0.05,
        retry=0.2,
        sync_grace=5.0,
    )
    watches.start()
    tenancy = ClusterTenancy(cluster)
    runtime = Runtime(store, tenancy)
    tenancy.export_metrics(runtime.metrics)
    loop.attach(runtime)
    try:
        with running_server(runtime, tmp_path / "certs") as server, server.client() as http:
            yield Audited(http, loop, store)
    finally:
        cluster.stop()


def wait_for_pass(audit: Audited, after: int = 0) -> None:
    eventually(lambda: audit.passes() > after, timeout=10, what="an audit pass")


# --- the gauge -----------------------------------------------------------------------------------


def test_a_gateway_that_a_later_pod_made_match_is_reported_until_the_pod_goes(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    fake.serve_kind(ISTIO, "v1", "gateways", "Gateway")
    port = {"number": 80, "name": "http", "protocol": "HTTP"}
    edge = {
        "apiVersion": f"{ISTIO}/v1",
        "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": "tenant-a"},
        "spec": {
            "selector": {"istio": "edge"},
            "servers": [{"hosts": ["./x.a.example.com"], "port": port}],
        },
    }
    fake.put_object(ISTIO, "gateways", edge)
    key = ("tenant-a", "Gateway", "gateway-selector")
    with audited(fake, tmp_path) as audit:
        wait_for_pass(audit)
        assert key not in audit.violations()
        passes = audit.passes()
        # tenant-b's new ingress pods carry the label tenant-a's Gateway selects.
        ingress = {
            "metadata": {"name": "ingress-1", "namespace": "tenant-b", "labels": {"istio": "edge"}}
        }
        fake.put_object("", "pods", ingress)
        eventually(lambda: audit.violations().get(key) == 1.0, timeout=10, what="the report")
        assert audit.passes() > passes
        fake.remove_object("", "pods", "tenant-b", "ingress-1")
        eventually(lambda: key not in audit.violations(), timeout=10, what="the fix")


def test_objects_there_before_the_start_are_reported_after_the_first_pass(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    with audited(fake, tmp_path) as audit:
        wait_for_pass(audit)
        assert audit.violations() == {
            ("tenant-a", "DestinationRule", "export-to"): 1.0,
            ("tenant-b", "VirtualService", "host-ownership"): 1.0,
        }
        text = audit.metrics()
        stamp = re.search(r"^tenant_guard_audit_last_pass_timestamp_seconds (\S+)$", text, re.M)
        assert stamp is not None and float(stamp.group(1)) > 0
        # Two objects in tenant namespaces (the platform's DestinationRule is not judged).
        assert re.search(r"^tenant_guard_audit_objects 2\.0$", text, re.M), text
        assert re.search(r"^tenant_guard_audit_pass_duration_seconds \S+$", text, re.M)
        # The audit's caches beside the tenancy caches: both DestinationRules are cached.
        cached = 'tenant_guard_cache_objects{resource="audit:destinationrules.networking.istio.io"}'
        assert f"{cached} 2.0" in text


def test_each_kind_is_listed_and_watched_once_for_the_host_index_and_the_audit(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    with audited(fake, tmp_path) as audit:
        wait_for_pass(audit)
        # The VirtualService judged by the audit came from the tenancy view's cache...
        assert ("tenant-b", "VirtualService", "host-ownership") in audit.violations()
        text = audit.metrics()
    for path in (
        "/apis/networking.istio.io/v1/virtualservices",
        "/apis/networking.istio.io/v1/destinationrules",
    ):
        # ... so it is listed and watched once, as a kind only the audit reads is.
        assert fake.count(path, watch=False) == 1, path
        assert fake.count(path, watch=True) == 1, path
    # One series per cache: the shared one under the tenancy view's name only.
    assert 'tenant_guard_cache_objects{resource="virtualservices"}' in text
    assert "audit:virtualservices" not in text


def test_a_fixed_object_disappears_from_the_gauge(fake: FakeApiServer, tmp_path: Path) -> None:
    with audited(fake, tmp_path) as audit:
        wait_for_pass(audit)
        assert ("tenant-a", "DestinationRule", "export-to") in audit.violations()
        fake.put_object(ISTIO, "destinationrules", destinationrule("tenant-a", "web", ["."]))
        eventually(
            lambda: ("tenant-a", "DestinationRule", "export-to") not in audit.violations(),
            timeout=10,
            what="the fixed DestinationRule to leave the gauge",
        )
        assert audit.violations() == {("tenant-b", "VirtualService", "host-ownership"): 1.0}


def test_a_new_violation_and_a_namespace_joining_a_tenant_are_audited(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    fake.put_object(ISTIO, "destinationrules", destinationrule("newcomer", "web", ["*"]))
    with audited(fake, tmp_path) as audit:
        wait_for_pass(audit)
        assert not any(tenant == "tenant-c" for tenant, _, _ in audit.violations())
        fake.add_namespace("newcomer", {"tenant": "tenant-c"})
        eventually(
            lambda: ("tenant-c", "DestinationRule", "export-to") in audit.violations(),
            timeout=10,
            what="the namespace's existing object audited once it joins a tenant",
        )


def test_a_config_reload_changes_the_results(fake: FakeApiServer, tmp_path: Path) -> None:
    fake.add_virtualservice("tenant-b", "shop", ["shop.example.org"])
    with audited(fake, tmp_path) as audit:
        wait_for_pass(audit)
        assert not any(rule == "host-unclaimed" for _, _, rule in audit.violations())
        passes = audit.passes()
        stricter = {**CONFIG, "unclaimedHosts": "deny"}
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(stricter))
        assert audit.store.check_once()
        wait_for_pass(audit, passes)
        assert audit.violations()[("tenant-b", "VirtualService", "host-unclaimed")] == 1.0


def test_a_kind_whose_crd_is_not_served_waits_and_is_audited_once_installed(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    fake.put_object(ISTIO, "serviceentries", service_entry("tenant-a", "api", ["*"]))
    with audited(fake, tmp_path) as audit:
        wait_for_pass(audit)
        waiting = "audit: serviceentries.networking.istio.io: watch waiting"
        assert any(d.startswith(waiting) for d in audit.detail()), audit.detail()
        assert ("tenant-a", "ServiceEntry", "export-to") not in audit.violations()
        fake.serve_kind(ISTIO, "v1", "serviceentries", "ServiceEntry")
        eventually(
            lambda: ("tenant-a", "ServiceEntry", "export-to") in audit.violations(),
            timeout=10,
            what="the ServiceEntry audited once its CRD is served",
        )
        assert not any(d.startswith(waiting) for d in audit.detail())


def test_the_cache_keeps_no_status_or_managed_fields(fake: FakeApiServer, tmp_path: Path) -> None:
    with audited(fake, tmp_path) as audit:
        wait_for_pass(audit)
        by_kind = {kind.resource: items for kind, items in audit.loop.watches.objects()}
        stored = by_kind["destinationrules"]["tenant-a/web"]
        assert set(stored) == {"apiVersion", "kind", "metadata", "spec"}
        assert "resourceVersion" not in stored["metadata"]


def test_no_list_call_per_object(fake: FakeApiServer, tmp_path: Path) -> None:
    for number in range(20):
        fake.put_object(ISTIO, "destinationrules", destinationrule("tenant-a", f"d{number}", ["*"]))
    with audited(fake, tmp_path) as audit:
        wait_for_pass(audit)
        assert audit.violations()[("tenant-a", "DestinationRule", "export-to")] == 21.0
        path = f"/apis/{ISTIO}/v1/destinationrules"
        assert fake.count(path, watch=False) == 1
        single = [r for r in fake.requests if r.path.startswith(f"{path}/")]
        assert single == []


# --- reports: PolicyReport and OpenReports Report ----------------------------------------------


def report(
    fake: FakeApiServer, namespace: str, report: ReportFormat = WGPOLICY
) -> dict[str, Any] | None:
    return fake.stored_object(report.group, report.resource, namespace, "tenant-guard")


def reports_in(fake: FakeApiServer, report: ReportFormat) -> set[str]:
    """The namespaces holding a report of tenant-guard's in that API."""
    return {ns for ns, name in fake.stored_objects(report.group, report.resource)}


@pytest.mark.parametrize("served", FORMATS)
def test_reports_are_applied_with_the_right_shape(
    fake: FakeApiServer, tmp_path: Path, served: ReportFormat
) -> None:
    serve_reports(fake, served)
    with audited(fake, tmp_path, reports="auto") as audit:
        eventually(lambda: report(fake, "tenant-b", served) is not None, timeout=10, what="reports")
        applies = {a.path: a for a in fake.applies if f"/{served.resource}/" in a.path}
        assert set(applies) == {
            report_path(served, "tenant-a"),
            report_path(served, "tenant-b"),
        }
        applied = applies[report_path(served, "tenant-b")]
        assert applied.content_type == "application/apply-patch+yaml"
        assert applied.query["fieldManager"] == "tenant-guard"
        assert applied.query["force"] == "true"
        body = applied.body
        assert (body["apiVersion"], body["kind"]) == (served.api_version, served.kind)
        # OpenReports names the engine once for the report; the wg-policy API has no such field.
        assert body.get("source") == ("tenant-guard" if served is OPENREPORTS else None)
        assert body["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "tenant-guard"
        assert body["summary"] == {"pass": 0, "fail": 1, "warn": 0, "error": 0, "skip": 0}
        (result,) = body["results"]
        assert {k: result[k] for k in ("policy", "rule", "result", "source")} == {
            "policy": "tenant-guard",
            "rule": "host-ownership",
            "result": "fail",
            "source": "tenant-guard",
        }
        assert result["message"].startswith(
            'VirtualService tenant-b/steal: spec.hosts[0] "www.a.example.com" belongs to tenant '
            '"tenant-a"'
        )
        assert result["resources"] == [
            {
                "apiVersion": f"{ISTIO}/v1",
                "kind": "VirtualService",
                "namespace": "tenant-b",
                "name": "steal",
                "uid": "uid-tenant-b-steal",
            }
        ]
        assert report(fake, "infra", served) is None
        # A pass that finds the same again writes nothing.
        writes = len(fake.applies)
        passes = audit.passes()
        fake.update_virtualservice("tenant-b", "steal", ["www.a.example.com"])
        fake.add_namespace("unrelated", None)
        wait_for_pass(audit, passes)
        assert len(fake.applies) == writes


def test_a_fixed_violation_leaves_an_empty_report_and_a_namespace_leaving_loses_it(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    serve_reports(fake)
    with audited(fake, tmp_path, reports="auto"):
        eventually(lambda: report(fake, "tenant-a") is not None, timeout=10, what="a report")
        assert len((report(fake, "tenant-a") or {})["results"]) == 1
        fake.put_object(ISTIO, "destinationrules", destinationrule("tenant-a", "web", ["."]))
        eventually(
            lambda: (report(fake, "tenant-a") or {}).get("results") == [],
            timeout=10,
            what="the report of tenant-a emptied",
        )
        assert (report(fake, "tenant-a") or {})["summary"]["fail"] == 0
        fake.update_namespace("tenant-b", None)
        eventually(
            lambda: report(fake, "tenant-b") is None, timeout=10, what="tenant-b's report removed"
        )


def test_a_report_written_before_a_restart_is_not_written_again(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    serve_reports(fake)
    with audited(fake, tmp_path / "one", reports="auto"):
        eventually(lambda: report(fake, "tenant-b") is not None, timeout=10, what="reports")
    writes = len(fake.applies)
    with audited(fake, tmp_path / "two", reports="auto") as audit:
        wait_for_pass(audit)
        assert len(fake.applies) == writes


@pytest.mark.parametrize(
    ("wanted", "not_served"),
    [
        pytest.param(
            "auto",
            "audit: reports not written: neither openreports.io/v1alpha1 reports nor "
            "wgpolicyk8s.io/v1alpha2 policyreports is served (is the OpenReports or the "
            "PolicyReport CRD installed?); checking every 0.2s",
            id="auto",
        ),
        pytest.param(
            "wgpolicy",
            "audit: reports not written: wgpolicyk8s.io/v1alpha2 policyreports is not served "
            "(is the PolicyReport CRD installed?); checking every 0.2s",
            id="wgpolicy-named",
        ),
    ],
)
def test_without_the_crd_reports_wait_and_say_so(
    fake: FakeApiServer, tmp_path: Path, wanted: str, not_served: str
) -> None:
    with audited(fake, tmp_path, reports=wanted) as audit:
        wait_for_pass(audit)
        eventually(
            lambda: not_served in audit.detail(),
            timeout=10,
            what="the missing report CRD in /readyz's detail",
        )
        assert ("tenant-a", "DestinationRule", "export-to") in audit.violations()
        # Checking for the CRD again (every 0.2 s here) does not judge everything again.
        passes = audit.passes()
        discoveries = fake.count("/apis/wgpolicyk8s.io/v1alpha2")
        time.sleep(1.0)
        assert audit.passes() == passes
        assert fake.count("/apis/wgpolicyk8s.io/v1alpha2") > discoveries
        serve_reports(fake)
        eventually(lambda: report(fake, "tenant-a") is not None, timeout=10, what="a report")
        eventually(
            lambda: not any("reports not written" in d for d in audit.detail()),
            timeout=10,
            what="the note gone",
        )


def test_report_write_errors_are_reported_and_retried(fake: FakeApiServer, tmp_path: Path) -> None:
    serve_reports(fake)
    fake.fail_next("PATCH", REPORT_PATH.format("tenant-a"), 403, times=1)
    with audited(fake, tmp_path, reports="auto") as audit:
        eventually(lambda: report(fake, "tenant-a") is not None, timeout=10, what="retried write")
        text = audit.metrics()
        assert re.search(r"^tenant_guard_audit_policy_report_errors_total 1\.0$", text, re.M), text


def test_both_served_the_newer_api_is_written_unless_one_is_named(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    serve_reports(fake, WGPOLICY)
    serve_reports(fake, OPENREPORTS)
    with audited(fake, tmp_path / "auto", reports="auto"):
        eventually(
            lambda: reports_in(fake, OPENREPORTS) == {"tenant-a", "tenant-b"},
            timeout=10,
            what="OpenReports Reports",
        )
        assert reports_in(fake, WGPOLICY) == set()
    with audited(fake, tmp_path / "named", reports="wgpolicy"):
        eventually(
            lambda: reports_in(fake, WGPOLICY) == {"tenant-a", "tenant-b"},
            timeout=10,
            what="PolicyReports, as named",
        )
        # The Reports of the run before are tenant-guard's too: gone, so no UI shows them twice.
        eventually(
            lambda: reports_in(fake, OPENREPORTS) == set(),
            timeout=10,
            what="the Reports left by the run before deleted",
        )


def test_the_openreports_crd_installed_later_takes_the_reports_over(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    serve_reports(fake, WGPOLICY)
    # Someone else's report in the same API is not touched (no tenant-guard label).
    fake.put_object(
        REPORTS,
        "policyreports",
        {
            "apiVersion": "wgpolicyk8s.io/v1alpha2",
            "kind": "PolicyReport",
            "metadata": {"name": "kyverno-report", "namespace": "tenant-a"},
            "results": [],
        },
    )
    with audited(fake, tmp_path, reports="auto") as audit:
        eventually(
            lambda: report(fake, "tenant-a", WGPOLICY) is not None, timeout=10, what="PolicyReport"
        )
        policy_report = report(fake, "tenant-a", WGPOLICY)
        assert policy_report is not None
        serve_reports(fake, OPENREPORTS)
        fake.add_namespace("tenant-b-dev", {"tenant": "tenant-b"})  # a change: a pass is due
        eventually(
            lambda: reports_in(fake, OPENREPORTS) == {"tenant-a", "tenant-b", "tenant-b-dev"},
            timeout=10,
            what="OpenReports Reports once their CRD is served",
        )
        eventually(
            lambda: (
                report(fake, "tenant-a", WGPOLICY) is None
                and report(fake, "tenant-b", WGPOLICY) is None
            ),
            timeout=10,
            what="tenant-guard's PolicyReports deleted",
        )
        assert fake.stored_object(REPORTS, "policyreports", "tenant-a", "kyverno-report")
        moved = report(fake, "tenant-a", OPENREPORTS)
        assert moved is not None
        assert moved["results"] == policy_report["results"]
        assert moved["summary"] == policy_report["summary"]
        text = audit.metrics()
        # Two PolicyReports applied, then three Reports, and the two PolicyReports removed.
        assert 'tenant_guard_audit_policy_report_writes_total{action="applied"} 5.0' in text
        assert 'tenant_guard_audit_policy_report_writes_total{action="removed"} 2.0' in text


def test_the_other_api_not_readable_does_not_stop_the_reports(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    # An RBAC of before, granting only PolicyReports, with the OpenReports CRD installed too.
    serve_reports(fake, WGPOLICY)
    serve_reports(fake, OPENREPORTS)
    fake.forbidden_paths.add("/apis/openreports.io/v1alpha1/reports")
    with audited(fake, tmp_path, reports="wgpolicy") as audit:
        eventually(
            lambda: reports_in(fake, WGPOLICY) == {"tenant-a", "tenant-b"},
            timeout=10,
            what="PolicyReports written all the same",
        )
        text = audit.metrics()
        errors = re.search(r"^tenant_guard_audit_policy_report_errors_total (\S+)$", text, re.M)
        assert errors is not None and float(errors.group(1)) >= 1


def test_a_named_api_that_is_not_served_leaves_the_other_alone(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    serve_reports(fake, WGPOLICY)
    with audited(fake, tmp_path / "before", reports="wgpolicy"):
        eventually(lambda: reports_in(fake, WGPOLICY) == {"tenant-a", "tenant-b"}, timeout=10)
    with audited(fake, tmp_path / "after", reports="openreports") as audit:
        note = "audit: reports not written: openreports.io/v1alpha1 reports is not served"
        eventually(lambda: any(d.startswith(note) for d in audit.detail()), timeout=10)
        # Nothing written instead: the PolicyReports stay rather than leave the UIs empty.
        assert reports_in(fake, WGPOLICY) == {"tenant-a", "tenant-b"}
        assert [r for r in fake.requests if r.method == "DELETE"] == []


# --- the serve command ---------------------------------------------------------------------------


@contextmanager
def served(fake: FakeApiServer, tmp_path: Path, *extra: str) -> Iterator[httpx.Client]:
    write_bundle(generate_bundle("tenant-guard", "tenant-guard"), tmp_path / "tls")
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(CONFIG))
    port = free_port()
    args = ["--config", str(config_file), "--cert-dir", str(tmp_path / "tls")]
    args += ["--port", str(port), "--kubeconfig", str(fake.write_kubeconfig(tmp_path / "kc"))]
    args += ["--namespace", "tenant-guard", *extra]
    context = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.crt"))
    with (
        serve_process(args),
        httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context) as http,
    ):
        yield http


def audit_metric(http: httpx.Client) -> str:
    try:
        return http.get("/metrics").text
    except httpx.HTTPError:
        return ""  # not listening yet


VIOLATION_LINE = (
    'tenant_guard_audit_violations{kind="DestinationRule",rule="export-to",tenant="tenant-a"} 1.0'
)


@pytest.mark.parametrize(
    ("flags", "written"),
    [
        pytest.param((), None, id="without-policy-reports-nothing-written"),
        pytest.param(("--policy-reports",), OPENREPORTS, id="policy-reports-the-newer-api"),
        pytest.param(("--policy-reports=wgpolicy",), WGPOLICY, id="policy-reports-wgpolicy"),
        pytest.param(
            ("--policy-reports", "openreports"), OPENREPORTS, id="policy-reports-openreports"
        ),
    ],
)
def test_serve_audits_and_writes_reports_only_when_asked(
    fake: FakeApiServer, tmp_path: Path, flags: tuple[str, ...], written: ReportFormat | None
) -> None:
    serve_reports(fake, WGPOLICY)
    serve_reports(fake, OPENREPORTS)
    with served(fake, tmp_path, *flags) as http:
        eventually(
            lambda: VIOLATION_LINE in audit_metric(http),
            timeout=20,
            what="the audit's gauge from the server process",
        )
        if written is not None:
            eventually(
                lambda: report(fake, "tenant-a", written) is not None, timeout=10, what="report"
            )
    for api in (WGPOLICY, OPENREPORTS):
        requests = [r for r in fake.requests if f"/{api.resource}" in r.path]
        assert bool(requests) is (written is not None), api
        assert bool(fake.stored_objects(api.group, api.resource)) is (api is written), api


def test_serve_refuses_an_unknown_report_api(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "webhook", "serve", "--policy-reports=kyverno"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "--policy-reports: invalid choice: 'kyverno'" in done.stderr


# --- one engine ----------------------------------------------------------------------------------


def test_the_server_reports_what_the_one_shot_audit_says(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    serve_reports(fake)
    fake.put_object(ISTIO, "destinationrules", destinationrule("tenant-b", "two", ["*", "x"]))
    with audited(fake, tmp_path, reports="auto"):
        eventually(lambda: report(fake, "tenant-b") is not None, timeout=10, what="reports")
        results = [
            result
            for namespace in ("tenant-a", "tenant-b")
            for result in (report(fake, namespace) or {})["results"]
        ]
    in_server = {
        (r["resources"][0]["namespace"], r["resources"][0]["name"], r["rule"], r["message"])
        for r in results
    }
    kubeconfig = fake.write_kubeconfig(tmp_path / "kc")
    config = tmp_path / "config.yaml"
    command = [sys.executable, "-m", "webhook", "audit", "-o", "json"]
    command += ["--kubeconfig", str(kubeconfig), "--config", str(config)]
    one_shot = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert one_shot.returncode == 1, one_shot.stderr
    printed = {
        (obj["namespace"], obj["name"], violation["rule"], violation["message"])
        for obj in json.loads(one_shot.stdout)["objects"]
        for violation in obj["violations"]
    }
    assert in_server == printed
    assert len(printed) == 4  # tenant-a's DestinationRule, tenant-b's two, its VirtualService
