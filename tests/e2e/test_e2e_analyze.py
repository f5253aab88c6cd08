"""`tenant-guard audit` and `analyze --kubeconfig` against the real API server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.harness import CONFIG, Cluster, virtualservice

HOST = "api.audit-e2e.example.net"  # claimed by nobody: admitted while unclaimedHosts is allow


def run(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webhook", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def objects_of(stdout: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["namespace"], o["name"]): o for o in json.loads(stdout)["objects"]}


@pytest.fixture
def legacy(cluster: Cluster) -> Iterator[None]:
    """A VirtualService admitted under the running config, with an unclaimed external host."""
    cluster.apply(virtualservice("tenant-b", "audit-legacy", [HOST]))
    yield
    cluster.kubectl("-n", "tenant-b", "delete", "virtualservice", "audit-legacy")


def test_audit_reports_what_a_config_change_made_a_violation(
    cluster: Cluster, legacy: None, tmp_path: Path
) -> None:
    current, stricter = tmp_path / "current.yaml", tmp_path / "stricter.yaml"
    current.write_text(yaml.safe_dump(CONFIG))
    stricter.write_text(yaml.safe_dump({**CONFIG, "unclaimedHosts": "deny"}))

    now = run("audit", "--kubeconfig", cluster.kubeconfig, "--config", current, "-o", "json")
    assert now.returncode in (0, 1), now.stderr
    assert objects_of(now.stdout)[("tenant-b", "audit-legacy")]["status"] == "allowed"

    after = run("audit", "--kubeconfig", cluster.kubeconfig, "--config", stricter, "-o", "json")
    assert after.returncode == 1, after.stderr
    found = objects_of(after.stdout)[("tenant-b", "audit-legacy")]
    assert found["status"] == "denied"
    assert found["violations"][0]["rule"] == "host-unclaimed"
    assert f'spec.hosts[0] "{HOST}" is not claimed by any tenant' in found["message"]


def test_analyze_with_the_cluster_judges_updates_and_collisions(
    cluster: Cluster, legacy: None, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    manifests = virtualservice("tenant-b", "audit-legacy", [HOST], exportTo=["."])
    manifests += "---\n" + virtualservice("tenant-a", "copycat", [HOST])
    result = run(
        "analyze",
        "--kubeconfig",
        cluster.kubeconfig,
        "--config",
        config,
        "-o",
        "json",
        "-",
        stdin=manifests,
    )
    assert result.returncode == 1, result.stderr
    found = objects_of(result.stdout)
    legacy_update = found[("tenant-b", "audit-legacy")]
    assert (legacy_update["operation"], legacy_update["status"]) == ("UPDATE", "allowed")
    copycat = found[("tenant-a", "copycat")]
    assert (copycat["operation"], copycat["status"]) == ("CREATE", "denied")
    assert copycat["violations"][0]["rule"] == "host-collision"
    assert "already routed by VirtualService tenant-b/audit-legacy" in copycat["message"]
