"""Moving tenants from the config file to objects (SPEC.md §12) on a real API server:
`tenant-guard tenants export` applied with `kubectl apply --server-side`, shadowed while the
config still lists them, in force once the config drops them; `analyze --kubeconfig` and
`audit` read the live Tenants."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.e2e.harness import CONFIG, ROOT, Cluster, virtualservice
from tests.e2e.test_e2e_tenants import dry_run_vs, ready_of, wait_for_status


def tenant_guard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webhook", *args], capture_output=True, text=True, cwd=ROOT
    )


def test_exported_tenants_take_over_from_the_config(cluster: Cluster, tmp_path: Path) -> None:
    assert cluster.guard is not None
    guard = cluster.guard
    exported = tenant_guard("tenants", "export", "--config", str(guard.config_file))
    assert exported.returncode == 0, exported.stderr
    names = [o["metadata"]["name"] for o in yaml.safe_load_all(exported.stdout)]
    assert names == ["tenant-a", "tenant-b"]
    applied = cluster.kubectl(
        "apply", "--server-side", "--validate=strict", "-f", "-", stdin=exported.stdout
    )
    assert "tenant.tenant-guard.io/tenant-a serverside-applied" in applied.stdout
    without = copy.deepcopy(CONFIG)
    del without["tenants"]
    bare = tmp_path / "no-tenants.yaml"
    bare.write_text(yaml.safe_dump(without))
    try:
        for name in names:
            wait_for_status(
                cluster, name, lambda s: ready_of(s).get("reason") == "ShadowedByConfig"
            )
        # One commit: the config drops its tenants. The Tenants' claims are in force at once.
        guard.config_file.write_text(yaml.safe_dump(without))
        status = wait_for_status(
            cluster, "tenant-a", lambda s: ready_of(s).get("reason") == "ClaimsInForce"
        )
        assert status["hostsInForce"] == 2 and "tenant-a" in status["namespaces"]
        _, message = dry_run_vs(cluster, "tenant-b", "grab", "www.a.example.com")
        assert 'belongs to tenant "tenant-a" (claimed by Tenant "tenant-a")' in message

        # analyze --kubeconfig with a config of no tenants reads the claims from the cluster.
        manifest = tmp_path / "grab.yaml"
        manifest.write_text(virtualservice("tenant-b", "grab", ["www.a.example.com"]))
        result = tenant_guard(
            "analyze",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--config",
            str(bare),
            "-o",
            "json",
            str(manifest),
        )
        assert result.returncode == 1, result.stderr
        (obj,) = json.loads(result.stdout)["objects"]
        assert 'claimed by Tenant "tenant-a"' in obj["message"]
        # audit likewise: a VirtualService stored under another tenant's claim is reported.
        cluster.kubectl(
            "label", "namespace", "tenant-b", "tenant-guard.io/enforcement=warn", "--overwrite"
        )
        cluster.apply(virtualservice("tenant-b", "grab", ["www.a.example.com"], exportTo=["."]))
        result = tenant_guard(
            "audit", "--kubeconfig", str(cluster.kubeconfig), "--config", str(bare), "-o", "json"
        )
        found = [
            o
            for o in json.loads(result.stdout)["objects"]
            if o["name"] == "grab" and o["namespace"] == "tenant-b"
        ]
        assert found and found[0]["status"] == "warned"  # the namespace's warn mode
        assert any('claimed by Tenant "tenant-a"' in v["message"] for v in found[0]["violations"])
    finally:
        cluster.kubectl("delete", "virtualservice", "-n", "tenant-b", "grab", "--ignore-not-found")
        cluster.kubectl("label", "namespace", "tenant-b", "tenant-guard.io/enforcement-")
        guard.config_file.write_text(yaml.safe_dump(CONFIG))
        for name in names:
            wait_for_status(
                cluster, name, lambda s: ready_of(s).get("reason") == "ShadowedByConfig"
            )
        # The config defines them again, so deleting the objects unclaims nothing.
        cluster.kubectl("delete", "tenant", *names)
