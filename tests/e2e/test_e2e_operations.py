"""What users meet day to day, on the shared control plane: server-side apply and its dry-run
(ArgoCD's server-side diff), and a config change picked up while serving."""

from __future__ import annotations

import copy

import yaml

from tests.e2e.harness import CONFIG, Cluster, virtualservice, wait_for

DENIED_BY = 'admission webhook "tenant-rules.tenant-guard.io" denied the request: '


def webhook_message(stderr: str) -> str:
    """The webhook's own text, without kubectl's prefix (which differs between apply modes)."""
    assert DENIED_BY in stderr, stderr
    return stderr.split(DENIED_BY, 1)[1].strip()


def test_server_side_apply_and_its_dry_run_deny_with_the_same_message(cluster: Cluster) -> None:
    manifest = virtualservice("tenant-b", "ssa-hijack", ["reviews.tenant-a.svc.cluster.local"])
    messages = []
    for mode in ((), ("--server-side",), ("--server-side", "--dry-run=server")):
        result = cluster.apply(manifest, *mode, check=False)
        assert result.returncode == 1, (mode, result.stdout)
        assert "Error from server (Forbidden)" in result.stderr
        messages.append(webhook_message(result.stderr))
    assert messages[0] == messages[1] == messages[2]
    assert (
        'spec.hosts[0] "reviews.tenant-a.svc.cluster.local" belongs to tenant "tenant-a"'
        in (messages[0])
    )
    absent = cluster.kubectl("-n", "tenant-b", "get", "virtualservice", "ssa-hijack", check=False)
    assert absent.returncode == 1 and "NotFound" in absent.stderr


def test_server_side_apply_creates_and_dry_run_diffs_an_allowed_object(cluster: Cluster) -> None:
    manifest = virtualservice("tenant-a", "ssa-web", ["ssa.a.example.com"])
    dry = cluster.apply(manifest, "--server-side", "--dry-run=server")
    assert "serverside-applied (server dry run)" in dry.stdout
    absent = cluster.kubectl("-n", "tenant-a", "get", "virtualservice", "ssa-web", check=False)
    assert absent.returncode == 1  # the dry run stored nothing

    cluster.apply(manifest, "--server-side")
    stored = cluster.kubectl(
        "-n", "tenant-a", "get", "virtualservice", "ssa-web", "-o", "jsonpath={.spec.exportTo}"
    ).stdout
    assert stored == '["."]'  # the mutating webhook ran in the apply patch as well

    # ArgoCD's server-side diff of a changed manifest: an UPDATE, dry-run, judged as such.
    hijack = virtualservice("tenant-a", "ssa-web", ["ssa.a.example.com", "shop.example.org"])
    result = cluster.apply(hijack, "--server-side", "--dry-run=server", check=False)
    assert result.returncode == 1
    assert 'spec.hosts[1] "shop.example.org" belongs to tenant "tenant-b"' in (
        webhook_message(result.stderr)
    )
    unchanged = cluster.apply(manifest, "--server-side", "--dry-run=server")
    assert "serverside-applied (server dry run)" in unchanged.stdout


def test_config_change_is_picked_up_live(cluster: Cluster) -> None:
    assert cluster.guard is not None
    guard = cluster.guard
    manifest = virtualservice("tenant-b", "promo", ["promo.a.example.com"])

    def answer() -> tuple[int, str]:
        result = cluster.apply(manifest, "--dry-run=server", check=False)
        return result.returncode, result.stderr

    code, stderr = answer()
    assert code == 1 and 'belongs to tenant "tenant-a"' in stderr  # under tenant-a's *.a claim

    # An exact claim is more specific than tenant-a's wildcard: tenant-b now owns the name.
    changed = copy.deepcopy(CONFIG)
    changed["tenants"]["tenant-b"]["hosts"].append("promo.a.example.com")
    try:
        guard.config_file.write_text(yaml.safe_dump(changed))
        wait_for(lambda: answer()[0] == 0, "the new claim to be in force", timeout=20)
    finally:
        guard.config_file.write_text(yaml.safe_dump(CONFIG))
    wait_for(lambda: answer()[0] == 1, "the original config to be in force again", timeout=20)
    reloads = [
        float(line.rsplit(" ", 1)[1])
        for line in guard.get("/metrics").text.splitlines()
        if line.startswith('tenant_guard_config_reloads_total{result="success"}')
    ]
    assert reloads and reloads[0] >= 2  # both writes were reloads, not restarts
