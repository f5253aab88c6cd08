"""What a hostile tenant would try, through the real TLS server: reviews derived from the
captured ones (create, update with oldObject, delete, dry-run), each answered as the pure
decision says and as SPEC.md §3-§6 require."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    ADMIN,
    DR_CREATE,
    NS_UPDATE,
    POD_UPDATE,
    SE_CREATE,
    TENANT_USER,
    VS_CREATE,
    VS_DELETE,
    VS_UPDATE,
    VS_V1ALPHA3,
    VS_V1BETA1,
    derive,
    vs_spec,
)
from tests.server_harness import RunningServer, assert_verdict

ATTACKS = [
    # (review, expected allowed, substring of the message)
    pytest.param(
        derive(
            VS_CREATE,
            namespace="tenant-b",
            spec=vs_spec(["REVIEWS.tenant-a.svc.cluster.local."], export_to=["."]),
        ),
        False,
        'spec.hosts[0] "REVIEWS.tenant-a.svc.cluster.local." belongs to tenant "tenant-a"',
        id="upper-case-trailing-dot-service-of-other-tenant",
    ),
    pytest.param(
        derive(
            VS_CREATE, namespace="tenant-b", spec=vs_spec(["reviews.tenant-a"], export_to=["."])
        ),
        False,
        'belongs to tenant "tenant-a"',
        id="svc.ns-form",
    ),
    pytest.param(
        derive(
            VS_CREATE,
            namespace="tenant-b",
            spec=vs_spec(["*.tenant-a.svc.cluster.local"], export_to=["."]),
        ),
        False,
        'belongs to tenant "tenant-a"',
        id="wildcard-over-other-namespace",
    ),
    pytest.param(
        derive(VS_CREATE, namespace="tenant-b", spec=vs_spec(["*"], export_to=["."])),
        False,
        "spans several namespaces",
        id="star",
    ),
    pytest.param(
        derive(VS_CREATE, namespace="tenant-b", spec=vs_spec(["*.example.com"], export_to=["."])),
        False,
        'would capture hosts of tenant(s) "tenant-a" '
        "(a.example.com, *.a.example.com, shop.example.com)",
        id="wildcard-over-claim",
    ),
    pytest.param(
        derive(
            VS_CREATE, namespace="tenant-b", spec=vs_spec(["Shop.Example.COM"], export_to=["."])
        ),
        False,
        'belongs to tenant "tenant-a" (claimed',
        id="claimed-host-in-other-case",
    ),
    pytest.param(
        derive(VS_CREATE, spec=vs_spec(["reviews"], export_to=[".", "*"])),
        False,
        'spec.exportTo[1] "*" exports the object to every namespace',
        id="export-dot-star",
    ),
    pytest.param(
        derive(VS_CREATE, spec=vs_spec(["reviews"], export_to=["tenant-b"])),
        False,
        'exports the object to namespace "tenant-b"',
        id="export-other-namespace",
    ),
    pytest.param(
        derive(
            VS_CREATE,
            namespace="tenant-b",
            spec=vs_spec(
                ["shop.example.org"], gateways=["tenant-a/public-gateway"], export_to=["."]
            ),
        ),
        False,
        'is a gateway in namespace "tenant-a" of tenant "tenant-a"',
        id="other-tenants-gateway",
    ),
    pytest.param(
        derive(
            VS_CREATE,
            spec=vs_spec(
                ["www.a.example.com"],
                gateways=["istio-system/public-gateway"],
                export_to=[".", "istio-system"],
            ),
        ),
        True,
        "",
        id="shared-gateway-exported-to-its-namespace",
    ),
    pytest.param(
        derive(
            VS_UPDATE,
            spec=vs_spec(["reviews", "reviews.tenant-b.svc.cluster.local"], export_to=["."]),
        ),
        False,
        "spec.hosts[1]",
        id="update-adds-other-tenants-host",
    ),
    pytest.param(
        derive(
            VS_UPDATE,
            dry_run=True,
            spec=vs_spec(["reviews", "reviews.tenant-b.svc.cluster.local"], export_to=["."]),
        ),
        False,
        "spec.hosts[1]",
        id="dry-run-update-same-answer",
    ),
    pytest.param(derive(VS_DELETE), True, "", id="delete-always-allowed"),
    pytest.param(derive(VS_V1ALPHA3), False, 'belongs to tenant "tenant-a"', id="v1alpha3"),
    pytest.param(
        derive(VS_V1BETA1, spec=vs_spec(["reviews.tenant-a.svc.cluster.local"], export_to=["."])),
        False,
        'belongs to tenant "tenant-a"',
        id="v1beta1",
    ),
    pytest.param(
        derive(DR_CREATE, spec={"host": "reviews", "exportTo": ["~"]}),
        False,
        "valid only on a ServiceEntry",
        id="tilde-on-destinationrule",
    ),
    pytest.param(
        derive(
            SE_CREATE,
            spec={
                "hosts": ["api.partner.example.com"],
                "exportTo": ["~"],
                "location": "MESH_EXTERNAL",
                "ports": [{"name": "tls", "number": 443, "protocol": "TLS"}],
                "resolution": "DNS",
            },
        ),
        True,
        "",
        id="tilde-on-serviceentry",
    ),
    pytest.param(
        derive(
            NS_UPDATE,
            user=TENANT_USER,
            labels={"tenant": "tenant-a", "kubernetes.io/metadata.name": "tenant-b"},
        ),
        False,
        'changes a guarded label (was "tenant-b")',
        id="tenant-relabels-namespace",
    ),
    pytest.param(
        derive(
            NS_UPDATE,
            user=TENANT_USER,
            labels={
                "tenant": "tenant-b",
                "tenant-guard.io/enforcement": "warn",
                "kubernetes.io/metadata.name": "tenant-b",
            },
        ),
        False,
        "adds a guarded label",
        id="tenant-sets-warn-on-own-namespace",
    ),
    pytest.param(
        derive(
            NS_UPDATE,
            user=ADMIN,
            labels={"tenant": "tenant-a", "kubernetes.io/metadata.name": "tenant-b"},
        ),
        True,
        "",
        id="label-admin-relabels-namespace",
    ),
    pytest.param(
        derive(POD_UPDATE, labels={"tenant": "tenant-b"}, old_labels={"tenant": "tenant-a"}),
        False,
        'changes the tenant label from "tenant-a"',
        id="relabel-pod",
    ),
]


@pytest.mark.parametrize(("review", "allowed", "message"), ATTACKS)
def test_attack_through_the_server(
    server: RunningServer, review: dict[str, Any], allowed: bool, message: str
) -> None:
    assert_verdict(server, review, allowed, message)
