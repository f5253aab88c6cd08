"""Tenants as objects (SPEC.md §12) on a real API server: a Tenant's claims in force at
admission within seconds of `kubectl apply`, claims of other tenants refused naming the owner,
DELETE refused while namespaces carry the label."""

from __future__ import annotations

import copy
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yaml

from tests.e2e.harness import CONFIG, Cluster, namespace, virtualservice

DENIED_BY_TENANTS = 'admission webhook "tenants.tenant-guard.io" denied the request'


def tenant(name: str, **spec: Any) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "tenant-guard.io/v1alpha1",
            "kind": "Tenant",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


def dry_run_vs(cluster: Cluster, ns: str, name: str, host: str) -> tuple[bool, str]:
    result = cluster.apply(virtualservice(ns, name, [host]), "--dry-run=server", check=False)
    return result.returncode == 0, result.stderr


def wait_until(check: Any, timeout: float = 10.0) -> float:
    """Seconds until check() is true (polled every 50 ms); AssertionError after timeout."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true after {timeout}s")
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_tenants_claims_take_effect_at_admission_and_follow_its_changes(
    cluster: Cluster,
) -> None:
    # unclaimedHosts is allow in the e2e config: an unclaimed host is anybody's, until claimed.
    assert dry_run_vs(cluster, "tenant-b", "grab", "www.e2e-shop.example")[0]
    cluster.apply(tenant("e2e-shop", hosts=["www.e2e-shop.example"]))
    cluster.apply(namespace("e2e-shop", "e2e-shop"))
    try:
        wait_until(lambda: not dry_run_vs(cluster, "tenant-b", "grab", "www.e2e-shop.example")[0])
        _, message = dry_run_vs(cluster, "tenant-b", "grab", "www.e2e-shop.example")
        assert (
            'spec.hosts[0] "www.e2e-shop.example" belongs to tenant "e2e-shop" (claimed by '
            'Tenant "e2e-shop")' in message
        )
        assert dry_run_vs(cluster, "e2e-shop", "web", "www.e2e-shop.example")[0]

        # A claim added to the Tenant is in force within 2 s, measured through the API server.
        assert dry_run_vs(cluster, "tenant-b", "grab2", "api.e2e-shop.example")[0]
        cluster.kubectl(
            "patch",
            "tenant",
            "e2e-shop",
            "--type=merge",
            "-p",
            '{"spec": {"hosts": ["www.e2e-shop.example", "api.e2e-shop.example"]}}',
        )
        took = wait_until(
            lambda: not dry_run_vs(cluster, "tenant-b", "grab2", "api.e2e-shop.example")[0]
        )
        assert took < 2.0, f"the new claim took {took:.2f}s to take effect"
        # And a claim removed is released as quickly.
        cluster.kubectl(
            "patch", "tenant", "e2e-shop", "--type=merge", "-p", '{"spec": {"hosts": []}}'
        )
        took = wait_until(
            lambda: dry_run_vs(cluster, "tenant-b", "grab", "www.e2e-shop.example")[0]
        )
        assert took < 2.0
    finally:
        cluster.kubectl("label", "namespace", "e2e-shop", "tenant-", check=False)
        cluster.kubectl("delete", "tenant", "e2e-shop", check=False)


def test_a_claim_of_another_tenant_is_refused_naming_the_owner(cluster: Cluster) -> None:
    cluster.apply(tenant("e2e-first", hosts=["first.e2e.example"]))
    try:
        for extra in ((), ("--dry-run=server",)):
            result = cluster.apply(
                tenant(
                    "e2e-second", hosts=["ok.e2e.example", "first.e2e.example", "a.example.com"]
                ),
                *extra,
                check=False,
            )
            assert result.returncode == 1
            assert "Error from server (Forbidden)" in result.stderr
            assert DENIED_BY_TENANTS in result.stderr
            assert (
                '(1) Tenant e2e-second: spec.hosts[1] "first.e2e.example" is already claimed by '
                'tenant "e2e-first" (by Tenant "e2e-first")' in result.stderr
            )
            assert (
                '(2) Tenant e2e-second: spec.hosts[2] "a.example.com" is already claimed by '
                'tenant "tenant-a" (in the tenant-guard config)' in result.stderr
            )
        result = cluster.kubectl("get", "tenant", "e2e-second", check=False)
        assert result.returncode == 1, "a refused Tenant is not stored"
    finally:
        cluster.kubectl("delete", "tenant", "e2e-first", check=False)


def test_delete_is_refused_while_a_namespace_carries_the_label(cluster: Cluster) -> None:
    cluster.apply(tenant("e2e-live", hosts=["live.e2e.example"]))
    cluster.apply(namespace("e2e-live", "e2e-live"))
    try:
        wait_until(
            lambda: (
                "e2e-live"
                in cluster.kubectl("get", "ns", "-l", "tenant=e2e-live", "-o", "name").stdout
            )
        )
        time.sleep(0.5)  # the namespace watch delivers the label
        result = cluster.kubectl("delete", "tenant", "e2e-live", check=False)
        assert result.returncode == 1
        assert DENIED_BY_TENANTS in result.stderr
        assert (
            'Tenant e2e-live: metadata.name "e2e-live" is the tenant label of 1 namespace(s) '
            "(e2e-live)" in result.stderr
        )
        assert cluster.kubectl("get", "tenant", "e2e-live", check=False).returncode == 0
        cluster.kubectl("label", "namespace", "e2e-live", "tenant-")
        wait_until(
            lambda: cluster.kubectl("delete", "tenant", "e2e-live", check=False).returncode == 0
        )
    finally:
        cluster.kubectl("label", "namespace", "e2e-live", "tenant-", check=False)
        cluster.kubectl("delete", "tenant", "e2e-live", check=False)


def status_of(cluster: Cluster, name: str) -> dict[str, Any]:
    stored = yaml.safe_load(cluster.kubectl("get", "tenant", name, "-o", "yaml").stdout)
    status: dict[str, Any] = stored.get("status") or {}
    status["_generation"] = stored["metadata"]["generation"]
    return status


def ready_of(status: dict[str, Any]) -> dict[str, Any]:
    for condition in status.get("conditions") or ():
        if condition["type"] == "Ready":
            return dict(condition)
    return {}


def wait_for_status(
    cluster: Cluster, name: str, check: Any, timeout: float = 20.0
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def matches() -> bool:
        nonlocal seen
        seen = status_of(cluster, name)
        return bool(check(seen))

    try:
        wait_until(matches, timeout)
    except AssertionError:
        raise AssertionError(f"Tenant {name} status never matched; last: {seen}") from None
    return seen


def test_status_shows_namespaces_claims_in_force_and_why_not(cluster: Cluster) -> None:
    assert cluster.guard is not None
    guard = cluster.guard
    cluster.apply(tenant("e2e-status", hosts=["s1.e2e.example", "s2.e2e.example"]))
    cluster.apply(namespace("e2e-status", "e2e-status"))
    try:
        status = wait_for_status(
            cluster,
            "e2e-status",
            lambda s: ready_of(s).get("reason") == "ClaimsInForce" and s.get("namespaceCount"),
        )
        assert ready_of(status)["status"] == "True"
        assert status["namespaces"] == ["e2e-status"] and status["hostsInForce"] == 2
        assert status["observedGeneration"] == status["_generation"]
        assert ready_of(status)["observedGeneration"] == status["_generation"]
        status = wait_for_status(cluster, "e2e-status", lambda s: "violations" in s)
        assert status["violations"] == 0
        row = cluster.kubectl("get", "tenant", "e2e-status", "--no-headers").stdout.split()
        assert row[:6] == ["e2e-status", "1", "2", "0", "True", "ClaimsInForce"]

        # The config takes one of its hosts: the config outranks every Tenant object.
        changed = copy.deepcopy(CONFIG)
        changed["tenants"]["tenant-b"]["hosts"].append("s2.e2e.example")
        guard.config_file.write_text(yaml.safe_dump(changed))
        status = wait_for_status(
            cluster, "e2e-status", lambda s: ready_of(s).get("reason") == "Conflict"
        )
        assert ready_of(status)["status"] == "False"
        assert (
            'spec.hosts[1] "s2.e2e.example" is held by "tenant-b" (in the tenant-guard config). '
            "1 of 2 claims in force" in ready_of(status)["message"]
        )
        assert status["hostsInForce"] == 1
        allowed, message = dry_run_vs(cluster, "e2e-status", "s1", "s1.e2e.example")
        assert allowed, f"the claim still in force keeps working: {message}"
        guard.config_file.write_text(yaml.safe_dump(CONFIG))
        wait_for_status(
            cluster, "e2e-status", lambda s: ready_of(s).get("reason") == "ClaimsInForce"
        )
        # A Tenant the config also defines is shadowed; its status says so.
        cluster.apply(tenant("tenant-b", hosts=["shop.example.org"]))
        status = wait_for_status(
            cluster, "tenant-b", lambda s: ready_of(s).get("reason") == "ShadowedByConfig"
        )
        assert "tenants.tenant-b in the tenant-guard config" in ready_of(status)["message"]
    finally:
        guard.config_file.write_text(yaml.safe_dump(CONFIG))
        cluster.kubectl("label", "namespace", "e2e-status", "tenant-", check=False)
        cluster.kubectl("delete", "tenant", "e2e-status", "tenant-b", check=False)


def test_two_tenants_racing_for_one_host_leave_one_holder_and_say_why(cluster: Cluster) -> None:
    """Created at the same moment, both may be admitted (neither is in the cache yet when the
    other is judged): then the older holds the host and the other's status says Conflict."""
    names = []
    try:
        for round_ in range(3):
            pair = [f"e2e-race-{round_}-a", f"e2e-race-{round_}-b"]
            names += pair
            host = f"race{round_}.e2e.example"
            manifests = [tenant(name, hosts=[host]) for name in pair]
            with ThreadPoolExecutor(2) as pool:
                results = list(pool.map(lambda text: cluster.apply(text, check=False), manifests))
            stored = [n for n, r in zip(pair, results, strict=True) if r.returncode == 0]
            assert stored, "at least one of two racing Tenants is admitted"
            for result in results:
                if result.returncode != 0:
                    assert "is already claimed by tenant" in result.stderr
            statuses = {
                n: wait_for_status(cluster, n, lambda s: ready_of(s).get("reason")) for n in stored
            }
            holders = [n for n, s in statuses.items() if ready_of(s)["reason"] == "ClaimsInForce"]
            assert len(holders) == 1, statuses
            for name, status in statuses.items():
                if name not in holders:
                    condition = ready_of(status)
                    assert condition["reason"] == "Conflict"
                    assert (
                        f'is held by "{holders[0]}" (its Tenant is older)' in condition["message"]
                    )
    finally:
        cluster.kubectl("delete", "tenant", *names, "--ignore-not-found", check=False)
