"""The in-server audit against the real API server: an object admitted in a `warn` namespace
(with a warning, as admission does there) is reported by a tenant-guard started with
--policy-reports, in its metrics and in the namespace's report, a wg-policy PolicyReport or an
OpenReports Report as the flag names; fixed, it leaves both; the namespace leaving tenancy loses
its report. With both report CRDs served, plain --policy-reports writes the OpenReports one.
Objects created while no webhook existed at all (on a control plane of their own) are reported
once tenant-guard starts. And tenant-guard's service account with only the shipped RBAC
(deploy/base and the policy-reports component) can do all of it. Which API is written as the
CRDs come and go: test_e2e_reports.py."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.harness import (
    CONFIG,
    ROOT,
    Cluster,
    ControlPlane,
    TenantGuard,
    namespace,
    virtualservice,
    wait_for,
)

NAMESPACE = "audit-trial"  # a tenant on its way in: its namespace in warn mode
TENANT = "tenant-audit"
WGPOLICY = "/apis/wgpolicyk8s.io/v1alpha2/namespaces/{}/policyreports/tenant-guard"
OPENREPORTS = "/apis/openreports.io/v1alpha1/namespaces/{}/reports/tenant-guard"
REPORT_PATH = OPENREPORTS.format(NAMESPACE)  # both CRDs are served: the newer API
GAUGE = (
    'tenant_guard_audit_violations{kind="DestinationRule",rule="export-to",'
    f'tenant="{TENANT}"}} 1.0'
)


def destinationrule(export_to: list[str], in_namespace: str = NAMESPACE) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": "web", "namespace": in_namespace},
            "spec": {"host": "web", "exportTo": export_to},
        }
    )


@pytest.fixture
def trial_namespace(cluster: Cluster) -> Iterator[None]:
    manifest = yaml.safe_load(namespace(NAMESPACE, TENANT))
    manifest["metadata"]["labels"]["tenant-guard.io/enforcement"] = "warn"
    cluster.apply(yaml.safe_dump(manifest))
    yield
    # No namespace controller here to finish a deletion: leave tenancy instead, and clean up.
    cluster.kubectl("-n", NAMESPACE, "delete", "destinationrule", "web", "--ignore-not-found")
    cluster.kubectl(
        "label", "namespace", NAMESPACE, "tenant-", "tenant-guard.io/enforcement-", check=False
    )


def report(cluster: ControlPlane, path: str = REPORT_PATH) -> dict[str, Any] | None:
    with cluster.api() as api:
        response = api.get(path)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def metrics(guard: TenantGuard) -> str:
    return guard.get("/metrics").text


@pytest.mark.parametrize(
    ("flag", "path", "kind"),
    [
        pytest.param("--policy-reports=wgpolicy", WGPOLICY, "PolicyReport", id="wgpolicy"),
        pytest.param("--policy-reports=openreports", OPENREPORTS, "Report", id="openreports"),
    ],
)
def test_a_violation_admitted_in_warn_mode_is_reported_until_fixed(
    cluster: Cluster, trial_namespace: None, tmp_path: Path, flag: str, path: str, kind: str
) -> None:
    applied = cluster.apply(destinationrule(["*"]))
    # Admitted, as warn mode does, with the violation as a warning.
    assert "exports the object to every namespace of the mesh" in applied.stderr, applied

    guard = TenantGuard(tmp_path / "guard", cluster.kubeconfig, extra_args=[flag])
    guard.start(CONFIG)
    path = path.format(NAMESPACE)
    try:
        wait_for(lambda: GAUGE in metrics(guard), "the audit's gauge to report the object")
        wait_for(lambda: report(cluster, path) is not None, f"the namespace's {kind}")
        stored = report(cluster, path)
        assert stored is not None
        assert stored["kind"] == kind
        labels = stored["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "tenant-guard"
        assert labels["tenant-guard.io/tenant"] == TENANT
        managers = {m["manager"] for m in stored["metadata"].get("managedFields") or []}
        assert managers == {"tenant-guard"}
        (result,) = stored["results"]
        assert result["policy"] == "tenant-guard"
        assert result["rule"] == "export-to"
        assert result["result"] == "warn"  # the namespace is in warn mode
        assert result["message"].startswith(
            f'DestinationRule {NAMESPACE}/web: spec.exportTo[0] "*" exports the object to every '
            "namespace of the mesh"
        )
        (resource,) = result["resources"]
        uid = json.loads(
            cluster.kubectl("-n", NAMESPACE, "get", "destinationrule", "web", "-o", "json").stdout
        )["metadata"]["uid"]
        assert resource == {
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "namespace": NAMESPACE,
            "name": "web",
            "uid": uid,
        }
        assert stored["summary"]["warn"] == 1

        cluster.apply(destinationrule(["."]))
        wait_for(lambda: GAUGE not in metrics(guard), "the fixed object to leave the gauge")
        wait_for(
            lambda: (report(cluster, path) or {}).get("results") in ([], None),
            "the fixed object to leave the report",
        )
        stored = report(cluster, path)
        assert stored is not None and stored["summary"]["warn"] == 0
        last_pass = re.search(
            r"^tenant_guard_audit_last_pass_timestamp_seconds (\S+)$", metrics(guard), re.M
        )
        assert last_pass is not None and float(last_pass.group(1)) > 0

        cluster.kubectl("label", "namespace", NAMESPACE, "tenant-")
        wait_for(
            lambda: report(cluster, path) is None, "the report of a namespace that left tenancy"
        )
        assert guard.readyz().status_code == 200
    finally:
        guard.stop()


def service_account_kubeconfig(cluster: ControlPlane, directory: Path) -> Path:
    """tenant-guard's service account with deploy/base's RBAC and the policy-reports and
    tenants components', nothing else."""
    cluster.kubectl("apply", "-f", str(ROOT / "deploy" / "base" / "namespace.yaml"))
    cluster.kubectl("apply", "-f", str(ROOT / "deploy" / "base" / "rbac.yaml"))
    component = ROOT / "deploy" / "components" / "policy-reports" / "rbac.yaml"
    cluster.kubectl("apply", "-f", str(component))
    # Both shipped overlays include the tenants component: with the Tenant CRD served,
    # tenant-guard is not ready until it has listed the Tenants, which needs its RBAC.
    tenants = ROOT / "deploy" / "components" / "tenants" / "rbac.yaml"
    cluster.kubectl("apply", "-n", "tenant-guard", "-f", str(tenants))
    token = cluster.kubectl("-n", "tenant-guard", "create", "token", "tenant-guard").stdout.strip()
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": "admin", "user": {"token": token}}]
    path = directory / "service-account-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def test_the_shipped_rbac_is_enough_for_the_audit_and_its_reports(
    cluster: Cluster, trial_namespace: None, tmp_path: Path
) -> None:
    cluster.apply(destinationrule(["*"]))
    kubeconfig = service_account_kubeconfig(cluster, tmp_path)
    # In its own namespace, as deployed ($POD_NAMESPACE there): the Tenant status Lease's RBAC
    # is granted in that namespace only.
    guard = TenantGuard(
        tmp_path / "guard",
        kubeconfig,
        extra_args=["--policy-reports", "--namespace", "tenant-guard"],
    )
    guard.start(CONFIG)
    try:
        wait_for(lambda: GAUGE in metrics(guard), "the audit's gauge, as the service account")
        wait_for(lambda: report(cluster) is not None, "the Report, as the service account")
        # Both CRDs served: the OpenReports one only.
        assert report(cluster, WGPOLICY.format(NAMESPACE)) is None
        detail = guard.readyz().json()["detail"]
        # Kinds whose CRDs this cluster lacks may wait; nothing may be refused.
        refused = [d for d in detail if "403" in d or "orbidden" in d or "not complete" in d]
        assert refused == [], detail
        errors = re.search(
            r"^tenant_guard_audit_policy_report_errors_total (\S+)$", metrics(guard), re.M
        )
        assert errors is not None and float(errors.group(1)) == 0.0
    finally:
        guard.stop()


def test_objects_created_before_tenant_guard_existed_are_reported_until_fixed(
    tmp_path: Path,
) -> None:
    # No webhook configuration and no tenant-guard: whatever a tenant writes is stored as is.
    (tmp_path / "plane").mkdir()
    plane = ControlPlane(tmp_path / "plane")
    guard = TenantGuard(tmp_path / "guard", plane.kubeconfig, extra_args=["--policy-reports"])
    try:
        plane.start()
        plane.wait_ready()
        plane.install_crds()
        for name in ("tenant-a", "tenant-b"):
            plane.apply(namespace(name, name))
        plane.apply(destinationrule(["*"], "tenant-b"))
        plane.apply(virtualservice("tenant-b", "hijack", ["reviews.tenant-a.svc.cluster.local"]))

        guard.start(CONFIG)
        path = OPENREPORTS.format("tenant-b")

        def failures() -> dict[tuple[str, str], str]:
            stored = report(plane, path) or {}
            return {
                (r["resources"][0]["kind"], r["rule"]): r["message"]
                for r in stored.get("results") or ()
                if r["result"] == "fail"
            }

        wait_for(lambda: len(failures()) >= 2, "tenant-b's report of what it stored", timeout=60)
        found = failures()
        # The VirtualService's absent exportTo is no violation: the mutating webhook fills it.
        assert set(found) == {
            ("DestinationRule", "export-to"),
            ("VirtualService", "host-ownership"),
        }
        assert found[("VirtualService", "host-ownership")].startswith(
            'VirtualService tenant-b/hijack: spec.hosts[0] "reviews.tenant-a.svc.cluster.local" '
            'belongs to tenant "tenant-a"'
        )
        assert 'kind="VirtualService",rule="host-ownership",tenant="tenant-b"} 1.0' in (
            metrics(guard)
        )

        plane.kubectl("-n", "tenant-b", "delete", "virtualservice", "hijack")
        plane.apply(destinationrule(["."], "tenant-b"))
        wait_for(lambda: failures() == {}, "the fixed objects to leave the report", timeout=60)
        assert 'rule="host-ownership",tenant="tenant-b"} 1.0' not in metrics(guard)
    finally:
        guard.stop()
        plane.stop()
