"""TLSRoute, which only the experimental Gateway API channel serves, against a real control
plane of its own: once its CRD is installed, the shipped `tenant-rules` webhook (apiVersions
"*") sends it, its SNI hostnames are judged, its watch starts feeding the collision index, and
the one-shot audit reads it.

The CRD is a stand-in (an open schema): the experimental channel's CRD file is not among the
published CRDs this project is tested with, and the schema is not what is tested here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests import crds
from tests.e2e.harness import Cluster, running_cluster, virtualservice, wait_for

# An open schema, like the suite's other stand-ins; with published CRDs installed, it carries
# their approval annotation, as a CRD of a *.k8s.io group must.
TLSROUTE = crds.StandIn(crds.GATEWAY_API, "TLSRoute", "tlsroutes", ("v1alpha2",), status=False)


def tlsroute(namespace: str, name: str, hostnames: list[str]) -> str:
    spec: dict[str, Any] = {
        "parentRefs": [{"name": "edge"}],  # a Gateway in the route's own namespace
        "hostnames": hostnames,
        "rules": [{"backendRefs": [{"name": "vault", "port": 8443}]}],
    }
    return yaml.safe_dump(
        {
            "apiVersion": "gateway.networking.k8s.io/v1alpha2",
            "kind": "TLSRoute",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("e2e-tlsroute")) as running:
        crd = TLSROUTE.document()
        crd["metadata"]["annotations"] = crds.approval_annotation(crds.GATEWAY_API)
        running.apply(yaml.safe_dump(crd))
        running.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/tlsroutes.gateway.networking.k8s.io",
        )
        yield running


def test_the_tlsroute_watch_starts_once_its_crd_is_installed(plane: Cluster) -> None:
    assert plane.guard is not None
    guard = plane.guard

    def watching() -> bool:
        body = guard.readyz().json()
        return body["ready"] is True and not any("tlsroutes" in d for d in body["detail"])

    wait_for(watching, "the TLSRoute watch to leave its wait for the CRD", timeout=90)


def test_a_tlsroute_for_another_tenants_sni_hostname_is_denied(plane: Cluster) -> None:
    for extra in ((), ("--dry-run=server",)):
        result = plane.apply(
            tlsroute("tenant-b", "vault", ["vault.a.example.com"]), *extra, check=False
        )
        assert result.returncode == 1, result.stdout
        assert 'admission webhook "tenant-rules.tenant-guard.io" denied the request' in (
            result.stderr
        )
        assert (
            'TLSRoute tenant-b/vault: spec.hostnames[0] "vault.a.example.com" belongs to tenant '
            '"tenant-a"' in result.stderr
        )


def test_a_tlsroute_of_ones_own_is_created_and_its_hostname_collides(plane: Cluster) -> None:
    host = "vault.partner-a.example"  # unclaimed (unclaimedHosts: allow): only collisions deny
    plane.apply(tlsroute("tenant-a", "vault", [host]))
    manifest = virtualservice("tenant-b", "vault", [host])

    def denied() -> bool:
        result = plane.apply(manifest, "--dry-run=server", check=False)
        return result.returncode == 1 and "is already routed by TLSRoute tenant-a/vault" in (
            result.stderr
        )

    wait_for(denied, "the TLSRoute watch to see tenant-a/vault", timeout=30)


def test_the_one_shot_audit_reads_tlsroutes_in_the_version_served(plane: Cluster) -> None:
    # The group prefers v1, which has no TLSRoute: the audit must find the alpha version.
    assert plane.guard is not None
    plane.apply(tlsroute("tenant-a", "ledger", ["ledger.partner-a.example"]))
    assert plane.audit_statuses("TLSRoute")[("tenant-a", "ledger")] == "allowed"
