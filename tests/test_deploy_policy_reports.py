"""deploy/components/policy-reports: an overlay that includes it grants exactly what the
report writes need, in both report APIs (OpenReports and wg-policy), and runs tenant-guard with
--policy-reports; the shipped overlays do not include it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_deploy import (
    BASE_ARGS,
    DEPLOY,
    OVERLAYS,
    objects,
    rbac_rules,
    render,
    render_with_component,
)
from webhook.audit.reports import POLICY_REPORT_RBAC

COMPONENT = DEPLOY / "components" / "policy-reports"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_component_grants_the_report_writes_and_adds_the_flag(
    overlay: str, tmp_path: Path
) -> None:
    docs = render_with_component(overlay, "policy-reports", tmp_path)
    rules = [r for _, name, r in rbac_rules(docs) if name == "tenant-guard-policy-reports"]
    as_tuples = {
        (group, resource, tuple(rule["verbs"]))
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    required = {
        (group, resource, tuple(rule["verbs"]))
        for rule in POLICY_REPORT_RBAC
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert as_tuples == required
    assert {(group, resource) for group, resource, _ in as_tuples} == {
        ("openreports.io", "reports"),
        ("wgpolicyk8s.io", "policyreports"),
    }
    binding = next(
        d
        for d in objects(docs, "ClusterRoleBinding")
        if d["metadata"]["name"] == "tenant-guard-policy-reports"
    )
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "tenant-guard", "namespace": "tenant-guard"}
    ]
    (deployment,) = objects(docs, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-1] == "--policy-reports"
    assert args.count("--policy-reports") == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_shipped_overlays_write_no_reports(overlay: str) -> None:
    docs = render(overlay)
    (deployment,) = objects(docs, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--policy-reports" not in args
    assert args[: len(BASE_ARGS)] == BASE_ARGS
    granted = {g for _, _, rule in rbac_rules(docs) for g in rule["apiGroups"]}
    assert "wgpolicyk8s.io" not in granted
    assert "openreports.io" not in granted
    assert COMPONENT.is_dir()
