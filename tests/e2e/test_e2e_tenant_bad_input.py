"""Tenants stored before tenant-guard ran, under an older, looser CRD schema (SPEC.md §12), on
a control plane of its own: a Tenant with 5,000 hosts and one claiming another tenant's host
get an `Invalid` or `Conflict` condition, one of the wrong shape (whose status the API server itself
refuses to store now) is named in /readyz; each is set aside with a log line, tenant-guard
becomes ready, and every other claim works."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.e2e.harness import (
    Cluster,
    namespace,
    running_cluster,
    tenant_crd,
    wait_for,
    webhook_configurations,
)
from tests.e2e.test_e2e_tenants import dry_run_vs, ready_of, wait_for_status


def tenant(name: str, spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tenant-guard.io/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": spec,
    }


def loose_crd() -> dict[str, Any]:
    """The Tenant CRD as an early, open schema would have had it."""
    crd = copy.deepcopy(tenant_crd())
    version = crd["spec"]["versions"][0]
    version["schema"] = {
        "openAPIV3Schema": {
            "type": "object",
            "properties": {
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        }
    }
    return crd


STORED = [
    tenant("big", {"hosts": [f"h{i}.big.example.net" for i in range(5000)]}),
    tenant("odd", {"hosts": "odd.example.net", "proxy": ["cpu"]}),
    tenant("thief", {"hosts": ["a.example.com", "thief.example.net"]}),  # tenant-a's, in config
    tenant("good", {"hosts": ["good.example.net"]}),
]


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("e2e-tenant-bad")) as running:
        assert running.guard is not None
        guard = running.guard
        # Before tenant-guard: no webhook, an open schema.
        guard.stop()
        running.kubectl(
            "delete", "validatingwebhookconfiguration,mutatingwebhookconfiguration", "--all"
        )
        running.apply(yaml.safe_dump(loose_crd()), "--server-side", "--force-conflicts")
        for obj in STORED:
            running.apply(yaml.safe_dump(obj), "--server-side")
        running.apply(namespace("good", "good"))
        # The schema tightens (stored objects stay as they are), then tenant-guard starts.
        running.apply(yaml.safe_dump(tenant_crd()), "--server-side", "--force-conflicts")
        guard.start()
        running.apply(webhook_configurations(guard.port, guard.ca_file))
        yield running


def test_tenant_guard_becomes_ready_and_the_valid_claims_work(plane: Cluster) -> None:
    assert plane.guard is not None
    wait_for(lambda: plane.guard is not None and plane.guard.readyz().status_code == 200, "ready")
    _, message = dry_run_vs(plane, "tenant-b", "grab", "good.example.net")
    assert 'belongs to tenant "good" (claimed by Tenant "good")' in message
    # The config's claim is not lost to the stored Tenant that also claims it.
    _, message = dry_run_vs(plane, "tenant-b", "grab", "a.example.com")
    assert 'belongs to tenant "tenant-a" (claimed in the tenant-guard config)' in message
    # thief's other claim is in force: only the contested one went to its holder.
    _, message = dry_run_vs(plane, "tenant-b", "grab", "thief.example.net")
    assert 'belongs to tenant "thief"' in message
    # big's 5,000 hosts are not indexed: nobody's (the e2e config allows unclaimed hosts).
    allowed, message = dry_run_vs(plane, "tenant-b", "grab", "h17.big.example.net")
    assert allowed, message


def test_each_stored_problem_has_a_clear_condition(plane: Cluster) -> None:
    big = ready_of(wait_for_status(plane, "big", lambda s: ready_of(s).get("reason")))
    assert big["reason"] == "Invalid" and big["status"] == "False"
    assert "spec.hosts: 5000 entries, more than the 1000 a Tenant may claim" in big["message"]
    # A spec of the wrong type: the API server itself refuses any write of the object now,
    # the status subresource's included. tenant-guard says so in /readyz and its log.
    assert plane.guard is not None
    guard = plane.guard
    wait_for(
        lambda: any(
            "Tenant odd: its status cannot be written" in note
            for note in guard.readyz().json()["detail"]
        ),
        "the unwritable status in /readyz",
    )
    assert guard.readyz().status_code == 200
    assert "Tenant odd is set aside (status reason Invalid): spec.hosts" in (
        guard.log_file.read_text()
    )
    thief = wait_for_status(plane, "thief", lambda s: ready_of(s).get("reason"))
    assert ready_of(thief)["reason"] == "Conflict" and thief["hostsInForce"] == 1
    assert (
        '"a.example.com" is held by "tenant-a" (in the tenant-guard config)'
        in (ready_of(thief)["message"])
    )
    good = wait_for_status(plane, "good", lambda s: s.get("namespaceCount") == 1)
    assert ready_of(good)["reason"] == "ClaimsInForce"
    assert plane.guard is not None
    log = plane.guard.log_file.read_text()
    assert "Tenant big is set aside (status reason Invalid)" in log


def test_an_update_of_a_stored_invalid_tenant_is_judged_by_todays_rules(plane: Cluster) -> None:
    # A merge patch replaces the list whole (server-side apply would merge it with the items
    # the open schema stored without per-item ownership).
    plane.kubectl(
        "patch",
        "tenant",
        "big",
        "--type=merge",
        "-p",
        '{"spec": {"hosts": ["h1.big.example.net"]}}',
    )
    status = wait_for_status(plane, "big", lambda s: ready_of(s).get("reason") == "ClaimsInForce")
    assert status["hostsInForce"] == 1
