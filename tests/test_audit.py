"""The in-server audit's judging (webhook.audit.judging): which stored objects are judged, what a
violation carries, the gauge's counts, the reports in both report APIs and which API they go
to, without a cluster."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from webhook.admission.decide import KINDS
from webhook.analyze.judge import Analyzer, tenancy_view
from webhook.analyze.manifests import Document
from webhook.audit.judging import (
    DIGEST_ANNOTATION,
    OPENREPORTS,
    WGPOLICY,
    AuditedKind,
    ReportFormat,
    audited_kinds,
    judge_all,
    policy_report,
    report_candidates,
    report_format,
    reports_by_namespace,
    violation_counts,
)
from webhook.config.model import parse_config
from webhook.tenancy.gatewaypods import index_gateway_pods, updated
from webhook.tenancy.routing import index_routes
from webhook.tenancy.snapshot import slim

CONFIG = parse_config(
    {"tenants": {"tenant-a": {"hosts": ["*.a.example.com"]}, "tenant-b": {"hosts": []}}}
)
NAMESPACES = {
    "tenant-a": {"tenant": "tenant-a"},
    "tenant-b": {"tenant": "tenant-b"},
    "tenant-b-trial": {"tenant": "tenant-b", "tenant-guard.io/enforcement": "warn"},
    "infra": {},
}
KIND = {kind.name: kind for kind in audited_kinds()}
VS, DR = "virtualservices.networking.istio.io", "destinationrules.networking.istio.io"
HTTPROUTE = "httproutes.gateway.networking.k8s.io"


def vs(namespace: str, name: str, hosts: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": {"hosts": hosts, "http": [{"route": [{"destination": {"host": "web"}}]}], **spec},
    }


def dr(namespace: str, name: str, export_to: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"host": "web", "exportTo": export_to},
    }


def service(namespace: str, name: str, annotations: Mapping[str, str]) -> dict[str, Any]:
    # As a list of Services returns them: no apiVersion or kind on the items.
    return {"metadata": {"name": name, "namespace": namespace, "annotations": dict(annotations)}}


def route(namespace: str, name: str, hostnames: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"parentRefs": [{"name": "gw"}], "hostnames": hostnames},
    }


def test_audited_kinds_are_the_tenant_scoped_kinds_of_the_dispatch_table_but_pods() -> None:
    expected = {
        (group, resource)
        for (group, resource), handling in KINDS.items()
        if handling.tenant_scoped and resource != "pods"
    }
    assert {(k.group, k.resource) for k in audited_kinds()} == expected
    assert ("", "pods") not in expected and ("", "namespaces") not in expected
    # Both Gateways, told apart as the admission metrics tell them apart.
    assert KIND["gateways.gateway.networking.k8s.io"].kind == "Gateway.gateway.networking.k8s.io"
    assert KIND["gateways.gateway.networking.k8s.io"].object_kind == "Gateway"
    assert KIND["gateways.networking.istio.io"].kind == "Gateway"


def test_slim_keeps_what_judging_needs_and_nothing_else() -> None:
    stored = {
        "metadata": {
            "name": "web",
            "namespace": "tenant-a",
            "uid": "u",
            "labels": {"app": "web"},
            "annotations": {"a": "b"},
            "resourceVersion": "7",
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"ports": [{"port": 80}]},
        "status": {"loadBalancer": {}},
    }
    assert slim(stored, "v1", "Service") == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": "tenant-a",
            "uid": "u",
            "labels": {"app": "web"},
            "annotations": {"a": "b"},
        },
        "spec": {"ports": [{"port": 80}]},
    }


CASES = [
    pytest.param(
        VS,
        vs("tenant-b", "steal", ["reviews.tenant-a.svc.cluster.local"]),
        [("tenant-b", "VirtualService", "host-ownership", False)],
        id="virtualservice-routing-another-tenants-service",
    ),
    pytest.param(
        VS,
        vs("tenant-a", "web", ["web", "shop.a.example.com"]),
        [],
        id="virtualservice-without-exportTo-is-filled-by-mutation-so-clean",
    ),
    pytest.param(
        VS,
        vs("tenant-b", "wide", ["web"], exportTo=["*"]),
        [("tenant-b", "VirtualService", "export-to", False)],
        id="virtualservice-exported-mesh-wide",
    ),
    pytest.param(
        VS,
        vs("tenant-b-trial", "steal", ["www.a.example.com"]),
        [("tenant-b", "VirtualService", "host-ownership", True)],
        id="warn-mode-namespace-violation-is-reported-as-warn",
    ),
    pytest.param(
        VS,
        vs("infra", "anything", ["*"], exportTo=["*"]),
        [],
        id="platform-namespace-not-audited",
    ),
    pytest.param(
        DR,
        dr("tenant-a", "wide", ["*"]),
        [("tenant-a", "DestinationRule", "export-to", False)],
        id="destinationrule-exported-mesh-wide",
    ),
    pytest.param(
        "services",
        service("tenant-a", "web", {"networking.istio.io/exportTo": "*"}),
        [("tenant-a", "Service", "export-to", False)],
        id="service-annotation-exported-mesh-wide",
    ),
    pytest.param(
        "services",
        service("tenant-a", "web", {}),
        [],
        id="service-without-annotation-clean",
    ),
    pytest.param(
        HTTPROUTE,
        route("tenant-a", "web", ["www.a.example.com"]),
        [("tenant-a", "HTTPRoute", "host-collision", False)],
        id="httproute-host-another-tenant-routes-collides",
    ),
]


@pytest.mark.parametrize(("resource", "obj", "expected"), CASES)
def test_violations_of_stored_objects(
    resource: str, obj: dict[str, Any], expected: list[tuple[str, str, str, bool]]
) -> None:
    kind = KIND[resource]
    api_version = "v1" if not kind.group else f"{kind.group}/v1"
    routes = index_routes([vs("tenant-b", "taken", ["www.a.example.com"])], "cluster.local")
    stored = slim(obj, api_version, kind.object_kind)
    found = judge_all([(kind, stored)], CONFIG, NAMESPACES, routes)
    assert [(v.tenant, v.kind, v.rule, v.warn) for v in found] == expected


def test_a_violation_carries_the_webhooks_message_and_the_object() -> None:
    obj = vs("tenant-b", "steal", ["reviews.tenant-a.svc.cluster.local"])
    (found,) = judge_all([(KIND[VS], obj)], CONFIG, NAMESPACES, {})
    # What `tenant-guard analyze`/`audit` says about the same object, finding for finding.
    view = tenancy_view(NAMESPACES, (), {})
    (finding,) = Analyzer(CONFIG, view).judge(Document("x", 0, 0, obj)).findings
    assert found.message == finding.message
    assert found.message.startswith(
        'VirtualService tenant-b/steal: spec.hosts[0] "reviews.tenant-a.svc.cluster.local" '
        'belongs to tenant "tenant-a"'
    )
    assert (found.ref.api_version, found.ref.kind) == ("networking.istio.io/v1", "VirtualService")
    assert (found.ref.namespace, found.ref.name) == ("tenant-b", "steal")
    assert found.ref.uid == "uid-steal"
    assert (found.field, found.value) == ("spec.hosts[0]", '"reviews.tenant-a.svc.cluster.local"')


def test_two_tenants_routing_one_host_are_both_reported() -> None:
    objects = [vs("tenant-a", "one", ["www.a.example.com"]), vs("tenant-b", "two", ["web"])]
    objects[1]["spec"]["hosts"] = ["www.a.example.com"]
    routes = index_routes(objects, "cluster.local")
    found = judge_all([(KIND[VS], o) for o in objects], CONFIG, NAMESPACES, routes)
    # The owner's route collides with the intruder's, which is also not its host to route.
    assert sorted((v.tenant, v.rule) for v in found) == [
        ("tenant-a", "host-collision"),
        ("tenant-b", "host-ownership"),
    ]


def test_counts_by_tenant_kind_and_rule() -> None:
    objects = [
        (KIND[DR], dr("tenant-a", "one", ["*"])),
        (KIND[DR], dr("tenant-a", "two", ["*", "tenant-b"])),
        (KIND[VS], vs("tenant-b", "wide", ["web"], exportTo=["*"])),
    ]
    counts = violation_counts(judge_all(objects, CONFIG, NAMESPACES, {}))
    assert counts == {
        ("tenant-a", "DestinationRule", "export-to"): 3,
        ("tenant-b", "VirtualService", "export-to"): 1,
    }


def test_every_tenant_namespace_gets_a_report_clean_ones_empty() -> None:
    found = judge_all([(KIND[DR], dr("tenant-a", "wide", ["*"]))], CONFIG, NAMESPACES, {})
    reports = reports_by_namespace(found, NAMESPACES, CONFIG)
    assert sorted(reports) == ["tenant-a", "tenant-b", "tenant-b-trial"]  # not infra
    clean = reports["tenant-b"]
    assert clean["results"] == []
    assert clean["summary"] == {"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0}
    assert clean["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "tenant-guard",
        "tenant-guard.io/tenant": "tenant-b",
    }
    (result,) = reports["tenant-a"]["results"]
    assert result == {
        "policy": "tenant-guard",
        "rule": "export-to",
        "result": "fail",
        "message": found[0].message,
        "source": "tenant-guard",
        "scored": True,
        "resources": [
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "namespace": "tenant-a",
                "name": "wide",
            }
        ],
        "properties": {"field": "spec.exportTo[0]", "value": '"*"'},
    }
    assert reports["tenant-a"]["summary"]["fail"] == 1


def test_a_report_is_the_same_in_either_api_but_for_its_type_and_source() -> None:
    found = judge_all([(KIND[DR], dr("tenant-a", "wide", ["*"]))], CONFIG, NAMESPACES, {})
    wgpolicy = reports_by_namespace(found, NAMESPACES, CONFIG, WGPOLICY)["tenant-a"]
    openreports = reports_by_namespace(found, NAMESPACES, CONFIG, OPENREPORTS)["tenant-a"]
    assert (wgpolicy["apiVersion"], wgpolicy["kind"]) == ("wgpolicyk8s.io/v1alpha2", "PolicyReport")
    assert (openreports["apiVersion"], openreports["kind"]) == ("openreports.io/v1alpha1", "Report")
    # OpenReports has a report-level source (one engine wrote every result); wg-policy has not.
    assert openreports.pop("source") == "tenant-guard"
    assert "source" not in wgpolicy
    for key in ("metadata", "summary", "results"):
        assert openreports[key] == wgpolicy[key], key


@pytest.mark.parametrize(
    ("wanted", "served", "chosen"),
    [
        pytest.param("auto", [WGPOLICY, OPENREPORTS], OPENREPORTS, id="auto-both-the-newer"),
        pytest.param("auto", [OPENREPORTS, WGPOLICY], OPENREPORTS, id="auto-order-irrelevant"),
        pytest.param("auto", [WGPOLICY], WGPOLICY, id="auto-wgpolicy-only"),
        pytest.param("auto", [OPENREPORTS], OPENREPORTS, id="auto-openreports-only"),
        pytest.param("auto", [], None, id="auto-neither"),
        pytest.param("wgpolicy", [WGPOLICY, OPENREPORTS], WGPOLICY, id="named-wgpolicy-both"),
        pytest.param("openreports", [WGPOLICY], None, id="named-openreports-not-served"),
        pytest.param("openreports", [OPENREPORTS], OPENREPORTS, id="named-openreports"),
        pytest.param("wgpolicy", [], None, id="named-neither"),
    ],
)
def test_the_report_api_is_the_named_one_or_the_newer_served(
    wanted: str, served: list[ReportFormat], chosen: ReportFormat | None
) -> None:
    assert report_format(wanted, served) is chosen


def test_the_candidates_of_each_choice() -> None:
    assert report_candidates("auto") == (OPENREPORTS, WGPOLICY)
    assert report_candidates("wgpolicy") == (WGPOLICY,)
    assert report_candidates("openreports") == (OPENREPORTS,)
    assert report_candidates("kyverno") == ()


def test_the_digest_changes_with_the_results_only() -> None:
    one = judge_all([(KIND[DR], dr("tenant-a", "wide", ["*"]))], CONFIG, NAMESPACES, {})
    two = judge_all([(KIND[DR], dr("tenant-a", "wider", ["*"]))], CONFIG, NAMESPACES, {})

    def digest(report: dict[str, Any]) -> str:
        return str(report["metadata"]["annotations"][DIGEST_ANNOTATION])

    assert digest(policy_report("tenant-a", "tenant-a", one)) == digest(
        policy_report("tenant-a", "tenant-a", list(reversed(one)))
    )
    assert digest(policy_report("tenant-a", "tenant-a", one)) != digest(
        policy_report("tenant-a", "tenant-a", two)
    )
    assert digest(policy_report("tenant-a", "tenant-a", [])) != digest(
        policy_report("tenant-a", "tenant-a", one)
    )


def test_kinds_are_named_for_their_api_group() -> None:
    kind = AuditedKind("", "services", "Service", "Service")
    assert kind.name == "services"
    assert KIND[VS].name == VS


def gateway(namespace: str, name: str, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": selector,
            "servers": [
                {
                    "hosts": ["./www.a.example.com"],
                    "port": {"number": 80, "name": "h", "protocol": "HTTP"},
                }
            ],
        },
    }


def test_a_gateway_whose_selector_a_later_pod_made_match_is_reported() -> None:
    kind = KIND["gateways.networking.istio.io"]
    stored = gateway("tenant-a", "edge", {"istio": "edge"})
    before = index_gateway_pods({"tenant-a/edge-1": {"istio": "edge"}})
    assert judge_all([(kind, stored)], CONFIG, NAMESPACES, {}, before) == []
    after = updated(before, [("tenant-b/edge-9", {"istio": "edge", "app": "b"})])
    (found,) = judge_all([(kind, stored)], CONFIG, NAMESPACES, {}, after)
    assert (found.tenant, found.kind, found.rule) == ("tenant-a", "Gateway", "gateway-selector")
    assert found.message.startswith(
        'Gateway tenant-a/edge: spec.selector {"istio": "edge"} matches gateway pods in '
        'namespace "tenant-b" of tenant "tenant-b" (pod edge-9)'
    )
    # Without the pods (not listed yet), only the shared workloads could say anything.
    assert judge_all([(kind, stored)], CONFIG, NAMESPACES, {}, None) == []
