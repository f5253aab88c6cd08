"""What the monitoring rules read, from the real programs: tenant-guard's namespace -> tenant
series follow the namespaces of a real API server (labelled, relabelled, unlabelled), and the
API server's own metric for a webhook it cannot call has the name and labels that
TenantGuardWebhookCallsFailing selects."""

from __future__ import annotations

import base64
import re

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import Cluster, free_port, namespace, wait_for
from tests.monitoring import RULES

PROBE_NAMESPACE = "webhook-probe"
PROBE_WEBHOOK = "probe.tenant-guard.io"


def namespace_tenants(cluster: Cluster) -> dict[str, str]:
    assert cluster.guard is not None
    text = cluster.guard.get("/metrics").text
    return {
        sample.labels["namespace"]: sample.labels["tenant"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "tenant_guard_namespace_tenant"
    }


def test_the_namespace_tenant_series_follow_the_cluster(cluster: Cluster) -> None:
    mapping = namespace_tenants(cluster)
    assert mapping["tenant-a"] == "tenant-a" and mapping["tenant-b"] == "tenant-b"
    assert "kube-system" not in mapping and "default" not in mapping  # platform namespaces
    cluster.apply(namespace("metrics-trial", "tenant-a"))
    try:
        wait_for(lambda: namespace_tenants(cluster).get("metrics-trial") == "tenant-a", "a series")
        cluster.kubectl("label", "namespace", "metrics-trial", "tenant=tenant-b", "--overwrite")
        wait_for(
            lambda: namespace_tenants(cluster).get("metrics-trial") == "tenant-b",
            "the series replaced by the new tenant's",
        )
    finally:
        cluster.kubectl("label", "namespace", "metrics-trial", "tenant-")
    wait_for(lambda: "metrics-trial" not in namespace_tenants(cluster), "the series gone")


def rule_selector() -> tuple[str, str]:
    """The webhook-name regex and the error type TenantGuardWebhookCallsFailing selects."""
    rules = yaml.safe_load(RULES.read_text())
    (alert,) = [
        r
        for g in rules["groups"]
        for r in g["rules"]
        if r.get("alert") == "TenantGuardWebhookCallsFailing"
    ]
    match = re.search(
        r'apiserver_admission_webhook_rejection_count\{name=~"([^"]+)", error_type="([^"]+)"\}',
        alert["expr"],
    )
    assert match is not None, alert["expr"]
    return match.group(1).replace("\\\\", "\\"), match.group(2)


def test_the_api_server_counts_failed_calls_as_the_alert_selects_them(cluster: Cluster) -> None:
    assert cluster.guard is not None
    name_pattern, error_type = rule_selector()
    cluster.apply(namespace(PROBE_NAMESPACE, None))
    dead = f"https://127.0.0.1:{free_port()}/validate"  # nothing listens there
    probe = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "e2e-probe"},
        "webhooks": [
            {
                "name": PROBE_WEBHOOK,
                "clientConfig": {
                    "url": dead,
                    "caBundle": base64.b64encode(cluster.guard.ca_file.read_bytes()).decode(),
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["configmaps"],
                    }
                ],
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": PROBE_NAMESPACE}
                },
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 2,
            }
        ],
    }
    cluster.apply(yaml.safe_dump(probe))
    try:
        refused = cluster.kubectl(
            "-n", PROBE_NAMESPACE, "create", "configmap", "probe", check=False
        )
        assert refused.returncode != 0
        assert f'failed calling webhook "{PROBE_WEBHOOK}"' in refused.stderr
        with cluster.api() as api:
            text = api.get("/metrics").text
    finally:
        cluster.kubectl("delete", "validatingwebhookconfiguration", "e2e-probe")
    # Read as Prometheus reads it (prometheus_client's parser would rename the counter).
    counted: dict[tuple[str, str], float] = {}
    for labels, value in re.findall(
        r"^apiserver_admission_webhook_rejection_count\{([^}]*)\} (\S+)$", text, re.M
    ):
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        key = (pairs["name"], pairs["error_type"])
        counted[key] = counted.get(key, 0.0) + float(value)
    assert counted[(PROBE_WEBHOOK, error_type)] >= 1, counted
    assert re.fullmatch(name_pattern, PROBE_WEBHOOK)
    # The shipped webhooks' own denials are counted without an error: not the alert's.
    assert all(
        e != error_type
        for (n, e) in counted
        if n.endswith(".tenant-guard.io") and n != PROBE_WEBHOOK
    ), counted
