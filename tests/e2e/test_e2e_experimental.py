"""The experimental Gateway API channel's own group against a real control plane of its own:
once the XListenerSet CRD (gateway.networking.x-k8s.io/v1alpha1, ListenerSet before Gateway
API v1.5) is installed, the shipped `tenant-rules` webhook sends it, it is judged like a
ListenerSet, the audit's watch of it starts, and the one-shot audit reads it.

The CRD is a stand-in (an open schema, tests.crds.EXPERIMENTAL_STAND_INS): the experimental
channel's CRD files are not among the published CRDs this project is tested with, and the
schema is not what is tested here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests import crds
from tests.e2e.harness import Cluster, running_cluster, wait_for

DENIED_BY = 'admission webhook "tenant-rules.tenant-guard.io" denied the request'
SHARED_PARENT = {"name": "shared-gateway", "namespace": "infra"}


def xlistenerset(namespace: str, name: str, parent: dict[str, str], hostname: str | None) -> str:
    listener: dict[str, Any] = {"name": "https", "port": 443, "protocol": "HTTPS"}
    if hostname is not None:
        listener["hostname"] = hostname
    return yaml.safe_dump(
        {
            "apiVersion": "gateway.networking.x-k8s.io/v1alpha1",
            "kind": "XListenerSet",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"parentRef": parent, "listeners": [listener]},
        }
    )


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("e2e-experimental")) as running:
        for stand_in in crds.EXPERIMENTAL_STAND_INS:
            running.apply(yaml.safe_dump(stand_in.document()))
            running.kubectl(
                "wait", "--for=condition=Established", "--timeout=60s", f"crd/{stand_in.name}"
            )
        yield running


def test_the_xlistenerset_watch_starts_once_its_crd_is_installed(plane: Cluster) -> None:
    assert plane.guard is not None
    guard = plane.guard

    def watching() -> bool:
        body = guard.readyz().json()
        return body["ready"] is True and not any("xlistenersets" in d for d in body["detail"])

    wait_for(watching, "the XListenerSet watch to leave its wait for the CRD", timeout=90)


@pytest.mark.parametrize(
    ("hostname", "message"),
    [
        pytest.param(
            "vault.a.example.com",
            'XListenerSet tenant-b/hijack: spec.listeners[0].hostname "vault.a.example.com" '
            'belongs to tenant "tenant-a"',
            id="other-tenants-hostname",
        ),
        pytest.param(
            None,
            "XListenerSet tenant-b/hijack: spec.listeners[0].hostname absent leaves a listener on "
            'the shared parent "infra/shared-gateway" open to every hostname on its port',
            id="no-hostname",
        ),
    ],
)
def test_an_xlistenerset_on_the_shared_gateway_is_judged_like_a_listenerset(
    plane: Cluster, hostname: str | None, message: str
) -> None:
    text = xlistenerset("tenant-b", "hijack", SHARED_PARENT, hostname)
    for extra in ((), ("--dry-run=server",)):
        result = plane.apply(text, *extra, check=False)
        assert result.returncode == 1, result.stdout
        assert DENIED_BY in result.stderr
        assert message in result.stderr


def test_an_xlistenerset_with_its_own_hostname_is_created_and_audited(plane: Cluster) -> None:
    assert plane.guard is not None
    text = xlistenerset("tenant-b", "shop", SHARED_PARENT, "shop.example.org")
    assert "xlistenerset.gateway.networking.x-k8s.io/shop created" in plane.apply(text).stdout
    assert plane.audit_statuses("XListenerSet")[("tenant-b", "shop")] == "allowed"
