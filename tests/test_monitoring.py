"""deploy/components/monitoring: the rules as a plain file and as the PrometheusRule (the same
groups), checked and unit-tested by promtool (tests/fixtures/monitoring: series that cross
tenants, go to shared namespaces, stay inside a tenant); every alert says what to look at; the
dashboard's panels, queries and variables are well formed and read metrics and recording rules
that exist; the component renders with kustomize. A real Prometheus evaluating the rules and
every dashboard query is tests/test_monitoring_prometheus.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring import (
    COMPONENT,
    DASHBOARD,
    PROMETHEUS_RULE,
    REPO,
    RULE_TESTS,
    RULES,
    dashboard,
    prometheus_rule_text,
)
from tests.test_deploy import OVERLAYS, objects, one, render, render_with_component

Doc = dict[str, Any]


def rules() -> Doc:
    loaded: Doc = yaml.safe_load(RULES.read_text())
    return loaded


def all_rules() -> Iterator[Doc]:
    for group in rules()["groups"]:
        yield from group["rules"]


def alerts() -> list[Doc]:
    return [rule for rule in all_rules() if "alert" in rule]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian package prometheus): rules not checked")
    return found


def run(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )


# --- one set of rules, two forms ---------------------------------------------------------------


def test_the_prometheusrule_holds_the_groups_of_the_rule_file() -> None:
    assert PROMETHEUS_RULE.read_text() == prometheus_rule_text(), (
        "prometheusrule.yaml is out of date: run `make prometheusrule`"
    )
    document = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert (document["apiVersion"], document["kind"]) == (
        "monitoring.coreos.com/v1",
        "PrometheusRule",
    )
    assert document["spec"]["groups"] == rules()["groups"]
    assert [g["name"] for g in rules()["groups"]] == [
        "tenant-guard.mesh.rules",
        "tenant-guard.mesh.alerts",
        "tenant-guard.alerts",
    ]


def test_promtool_checks_the_rule_file_and_the_prometheusrule(tmp_path: Path) -> None:
    tool = promtool()
    checked = run([tool, "check", "rules", str(RULES)])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    count = len(list(all_rules()))
    assert f"SUCCESS: {count} rules found" in checked.stdout
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]))
    checked = run([tool, "check", "rules", str(spec)])
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_unit_tests_pass() -> None:
    tested = run([promtool(), "test", "rules", str(RULE_TESTS)], cwd=REPO)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests see the sharedNamespaces exclusion: without it they fail."""
    tool = promtool()
    broken = tmp_path / "deploy" / "components" / "monitoring"
    broken.mkdir(parents=True)
    text = RULES.read_text()
    exclusion = "unless on (destination_service_namespace)\n"
    assert text.count(exclusion) == 1
    (broken / RULES.name).write_text(
        text.replace(exclusion, "or on (destination_service_namespace)\n")
    )
    fixtures = tmp_path / "tests" / "fixtures" / "monitoring"
    fixtures.mkdir(parents=True)
    shutil.copy(RULE_TESTS, fixtures)
    tested = run([tool, "test", "rules", str(fixtures / RULE_TESTS.name)], cwd=tmp_path)
    assert tested.returncode == 1
    assert "tenant_guard:cross_tenant_traffic:rate5m" in tested.stdout + tested.stderr


def test_every_alert_has_a_severity_a_wait_and_says_what_to_look_at() -> None:
    found = alerts()
    assert len(found) >= 14
    names = [a["alert"] for a in found]
    assert len(set(names)) == len(names)
    for alert in found:
        name = alert["alert"]
        assert name.startswith("TenantGuard"), name
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert re.fullmatch(r"\d+[mh]", alert["for"]), name
        annotations = alert["annotations"]
        assert set(annotations) == {"summary", "description"}, name
        assert "look at" in annotations["description"].lower(), name


def test_the_alerts_cover_what_the_contract_names() -> None:
    names = {a["alert"] for a in alerts()}
    assert {
        "TenantGuardCrossTenantTraffic",  # tenant to tenant, not to sharedNamespaces
        "TenantGuardTenantForbiddenRising",  # 403s per tenant
        "TenantGuardDenialsSpike",
        "TenantGuardAdmissionSlow",
        "TenantGuardAdmissionErrors",
        "TenantGuardWebhookCallsFailing",
        "TenantGuardCertificateExpiresSoon",
        "TenantGuardAuditStale",
        "TenantGuardConfigReloadFailing",
    } <= names


def metric_names(text: str) -> set[str]:
    return set(re.findall(r"\btenant_guard_[a-z_]+", text))


def exported_metric_names() -> set[str]:
    """Every metric name the program's source registers (as a quoted string)."""
    source = "\n".join(p.read_text() for p in (REPO / "webhook").rglob("*.py"))
    return set(re.findall(r'"(tenant_guard_[a-z_]+)"', source))


def base_name(name: str) -> str:
    return re.sub(r"_(total|bucket|sum|count)$", "", name)


def test_rules_and_dashboard_read_only_metrics_that_exist() -> None:
    exported = exported_metric_names()
    used = metric_names(RULES.read_text()) | metric_names(DASHBOARD.read_text())
    missing = sorted(name for name in used if base_name(name) not in exported)
    assert missing == []


def recorded() -> set[str]:
    return {rule["record"] for rule in all_rules() if "record" in rule}


def test_recording_rules_are_defined_before_they_are_read() -> None:
    seen: set[str] = set()
    for rule in all_rules():
        for name in re.findall(r"\btenant_guard:[a-z_]+:[a-z0-9_]+", rule["expr"]):
            assert name in seen, f"{rule.get('record') or rule['alert']} reads {name} first"
        if "record" in rule:
            seen.add(rule["record"])


# --- the dashboard ----------------------------------------------------------------------------


def panels() -> list[Doc]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] == "tenant-guard" and board["title"] == "tenant-guard"
    ids = [p["id"] for p in board["panels"]]
    assert len(set(ids)) == len(ids)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    tenant = variables["tenant"]
    assert tenant["query"]["query"] == "label_values(tenant_guard_namespace_tenant, tenant)"
    assert tenant["includeAll"] and tenant["allValue"] == ".*"
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["title"] and panel["description"], panel["id"]
        targets = panel["targets"]
        assert targets, panel["title"]
        assert len({t["refId"] for t in targets}) == len(targets)
        for target in targets:
            assert target["datasource"] == panel["datasource"]
            assert target["expr"].strip()
            if panel["type"] in ("table", "stat"):
                assert target["instant"] is True, panel["title"]


def test_the_dashboard_shows_what_the_contract_names() -> None:
    exprs = {p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in panels()}
    by = {title: expr for title, expr in exprs.items()}
    assert any("decision" in e and "by (tenant" in e for e in by.values())  # decisions
    assert any('decision="denied"' in e and "rule" in e for e in by.values())  # denials
    assert any("tenant_guard_audit_violations" in e for e in by.values())
    assert any("tenant_guard_admission_duration_seconds_bucket" in e for e in by.values())
    matrix = [
        p
        for p in panels()
        if any(t["id"] == "groupingToMatrix" for t in p.get("transformations", []))
    ]
    assert {p["title"] for p in matrix} == {
        "Cross-tenant HTTP requests/s: source tenant x destination tenant",
        "Cross-tenant TCP connections/s: source tenant x destination tenant",
    }
    for panel in matrix:
        (options,) = [t["options"] for t in panel["transformations"]]
        assert (options["rowField"], options["columnField"]) == (
            "source_tenant",
            "destination_tenant",
        )


def test_the_dashboard_uses_only_variables_it_defines() -> None:
    # A query with a variable Grafana does not know shows "no data", without an error.
    used = set(re.findall(r"\$\{?[A-Za-z_]+\}?", DASHBOARD.read_text()))
    assert used == {"$tenant", "$__rate_interval", "${datasource}"}


def test_the_dashboard_reads_only_recording_rules_that_are_shipped() -> None:
    used = set(re.findall(r"\btenant_guard:[a-z_]+:[a-z0-9_]+", DASHBOARD.read_text()))
    assert used and used <= recorded()


# --- the component --------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_component_scrapes_tenant_guard_and_ships_rules_and_dashboard(
    overlay: str, tmp_path: Path
) -> None:
    docs = render_with_component(overlay, "monitoring", tmp_path)
    monitor = one(docs, "ServiceMonitor", "tenant-guard")
    service = one(docs, "Service", "tenant-guard")
    assert monitor["metadata"]["namespace"] == "tenant-guard"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert (endpoint["scheme"], endpoint["path"]) == ("https", "/metrics")
    assert endpoint["honorLabels"] is True  # the metrics' own `namespace` label
    tls = endpoint["tlsConfig"]
    assert tls["serverName"] == "tenant-guard.tenant-guard.svc"
    # The Secret holding the serving certificate's CA: mounted (cert-manager writes it) or
    # kept by tenant-guard itself (--cert-secret, self-managed); both hold ca.crt.
    (deployment,) = objects(docs, "Deployment")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    secrets = {v["secret"]["secretName"] for v in volumes if "secret" in v}
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    if "--cert-secret" in args:
        secrets.add(args[args.index("--cert-secret") + 1])
    assert tls["ca"]["secret"]["name"] in secrets and tls["ca"]["secret"]["key"] == "ca.crt"
    rule = one(docs, "PrometheusRule", "tenant-guard")
    assert rule["spec"]["groups"] == rules()["groups"]
    config_map = one(docs, "ConfigMap", "tenant-guard-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["data"]["tenant-guard-dashboard.json"] == DASHBOARD.read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_shipped_overlays_need_no_prometheus_operator(overlay: str) -> None:
    docs = render(overlay)
    assert not [d for d in docs if d["apiVersion"].startswith("monitoring.coreos.com/")]
    assert COMPONENT.is_dir()
