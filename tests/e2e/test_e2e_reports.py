"""Which report API the audit writes, on a real API server as the CRDs come and go (a control
plane of its own, tenant-guard as its service account with only the shipped RBAC): no report
CRD, nothing written and /readyz says so; the wg-policy CRD installed, PolicyReports; the
OpenReports CRD installed too, Reports, and tenant-guard's PolicyReports deleted; restarted with
--policy-reports=wgpolicy, PolicyReports again and its Reports deleted. The CRDs are the
published ones with TENANT_GUARD_CRDS, else the stand-ins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests import crds
from tests.e2e.harness import CONFIG, ControlPlane, TenantGuard, namespace, wait_for
from tests.e2e.test_e2e_audit import destinationrule, report, service_account_kubeconfig

WGPOLICY = "/apis/wgpolicyk8s.io/v1alpha2/namespaces/{}/policyreports/tenant-guard"
OPENREPORTS = "/apis/openreports.io/v1alpha1/namespaces/{}/reports/tenant-guard"
REPORT_GROUPS = (crds.POLICY_REPORTS, crds.OPEN_REPORTS)


def crds_of(groups: tuple[str, ...], exclude: bool = False) -> str:
    return yaml.safe_dump_all(
        [d for d in crds.crd_documents() if (d["spec"]["group"] in groups) is not exclude]
    )


def install(plane: ControlPlane, manifest: str) -> None:
    plane.kubectl("apply", "--server-side", "-f", "-", stdin=manifest, timeout=120)
    plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")


def failures(plane: ControlPlane, path: str) -> list[dict[str, Any]]:
    stored = report(plane, path) or {}
    return [r for r in stored.get("results") or () if r["result"] == "fail"]


def test_reports_go_to_the_api_served_the_newer_when_both_are_or_the_one_named(
    tmp_path: Path,
) -> None:
    (tmp_path / "plane").mkdir()
    plane = ControlPlane(tmp_path / "plane")
    guard: TenantGuard | None = None
    try:
        plane.start()
        plane.wait_ready()
        install(plane, crds_of(REPORT_GROUPS, exclude=True))  # every CRD but the reports'
        for name in ("tenant-a", "tenant-b"):
            plane.apply(namespace(name, name))
        plane.apply(destinationrule(["*"], "tenant-b"))  # no webhook here: stored as is
        kubeconfig = service_account_kubeconfig(plane, tmp_path)

        guard = TenantGuard(tmp_path / "guard", kubeconfig, extra_args=["--policy-reports"])
        guard.start(CONFIG)
        not_served = (
            "audit: reports not written: neither openreports.io/v1alpha1 reports nor "
            "wgpolicyk8s.io/v1alpha2 policyreports is served"
        )
        started = guard
        wait_for(
            lambda: any(d.startswith(not_served) for d in started.readyz().json()["detail"]),
            "/readyz to say no report CRD is served",
        )
        assert started.readyz().status_code == 200  # reports never make it unready

        install(plane, crds_of((crds.POLICY_REPORTS,)))
        wait_for(
            lambda: len(failures(plane, WGPOLICY.format("tenant-b"))) == 1,
            "tenant-b's PolicyReport once its CRD is installed",
        )
        assert report(plane, WGPOLICY.format("tenant-a")) is not None  # clean, but audited
        (result,) = failures(plane, WGPOLICY.format("tenant-b"))
        assert result["rule"] == "export-to"

        install(plane, crds_of((crds.OPEN_REPORTS,)))
        # A change makes a pass due (or the 10-minute resync would): the new API is seen.
        plane.kubectl("label", "namespace", "tenant-a", "audit-nudge=1")
        wait_for(
            lambda: failures(plane, OPENREPORTS.format("tenant-b")) == [result],
            "tenant-b's OpenReports Report, the newer API",
        )
        stored = report(plane, OPENREPORTS.format("tenant-b"))
        assert stored is not None
        assert (stored["apiVersion"], stored["kind"]) == ("openreports.io/v1alpha1", "Report")
        assert stored["source"] == "tenant-guard"
        assert {m["manager"] for m in stored["metadata"]["managedFields"]} == {"tenant-guard"}
        wait_for(
            lambda: (
                report(plane, WGPOLICY.format("tenant-b")) is None
                and report(plane, WGPOLICY.format("tenant-a")) is None
            ),
            "tenant-guard's PolicyReports deleted",
        )
        errors = [d for d in started.readyz().json()["detail"] if "report" in d]
        assert errors == []
        guard.stop()

        guard = TenantGuard(
            tmp_path / "guard", kubeconfig, extra_args=["--policy-reports=wgpolicy"]
        )
        guard.start(CONFIG)
        wait_for(
            lambda: failures(plane, WGPOLICY.format("tenant-b")) == [result],
            "the PolicyReport again, as named",
        )
        wait_for(
            lambda: (
                report(plane, OPENREPORTS.format("tenant-b")) is None
                and report(plane, OPENREPORTS.format("tenant-a")) is None
            ),
            "tenant-guard's Reports deleted",
        )
    finally:
        if guard is not None:
            guard.stop()
        plane.stop()
