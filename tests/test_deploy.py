"""Deployment manifests (kustomize base + overlays) and the Dockerfile hold the product contract."""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import crds
from webhook.admission.decide import KINDS
from webhook.audit.judging import audited_kinds
from webhook.baseline.api import BASELINE_RBAC
from webhook.baseline.lease import LEASE_RBAC
from webhook.baseline.reconciler import LEASE_NAME
from webhook.baseline.templates import MANAGED_KINDS

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
KUSTOMIZATIONS = {
    "base": DEPLOY / "base",
    "cert-manager": DEPLOY / "overlays" / "cert-manager",
    "self-managed": DEPLOY / "overlays" / "self-managed",
}
OVERLAYS = ["cert-manager", "self-managed"]

NAMESPACE = "tenant-guard"
SERVICE = "tenant-guard"
VALIDATING = "tenant-guard"
MUTATING = "00-tenant-guard"
TENANTS_WEBHOOKS = {"tenants.tenant-guard.io", "namespace-owner.tenant-guard.io"}
TENANT_RULES = "tenant-rules.tenant-guard.io"
NAMESPACE_LABEL = "namespace-label.tenant-guard.io"
TENANT_MUTATE = "tenant-mutate.tenant-guard.io"
ISTIO_GROUP = "networking.istio.io"
ISTIO_RESOURCES = {"virtualservices", "destinationrules", "serviceentries"}
# README: The rules: the edge: judged by tenant-rules only (nothing to mutate on them).
ISTIO_EDGE_RESOURCES = {"gateways", "sidecars"}
GATEWAY_API_GROUP = "gateway.networking.k8s.io"
GATEWAY_API_RESOURCES = {
    "httproutes",
    "grpcroutes",
    "tcproutes",
    "udproutes",
    "gateways",
    "listenersets",
}
# The experimental channel's own group (before Gateway API v1.5), judged like its counterparts.
GATEWAY_API_EXPERIMENTAL_GROUP = "gateway.networking.x-k8s.io"
GATEWAY_API_EXPERIMENTAL_RESOURCES = {"xlistenersets"}
TLS_DIR = "/etc/tenant-guard/tls"
CONFIG_FILE = "/etc/tenant-guard/config/config.yaml"
# The args every deployment runs with (fixed by the program's CLI).
BASE_ARGS = [
    "serve",
    "--config",
    CONFIG_FILE,
    "--cert-dir",
    TLS_DIR,
    "--host",
    "0.0.0.0",
    "--port",
    "8443",
    "--in-cluster",
]
# Top-level keys of the config file (README: Config).
SPEC_CONFIG_KEYS = {
    "tenantLabel",
    "clusterDomain",
    "enforcement",
    "unclaimedHosts",
    "sharedGateways",
    "labelAdmins",
    "exempt",
    "proxyDefaults",
    "tenants",
    "namespaces",
    # README: The rules: the edge
    "sharedGatewayWorkloads",
    "sharedParentRefs",
    "sharedNamespaces",
    # README: Tenant baseline
    "baseline",
}

Doc = dict[str, Any]


# --- helpers ---------------------------------------------------------------------------------


@functools.cache
def _render(name: str) -> tuple[Doc, ...] | str:
    """Rendered documents, or the reason they could not be rendered (cached per session)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return "kubectl is not installed: cannot render the kustomizations (kubectl kustomize)"
    proc = subprocess.run(
        [kubectl, "kustomize", str(KUSTOMIZATIONS[name])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"kubectl kustomize {name} failed:\n{proc.stderr}")
    return tuple(d for d in yaml.safe_load_all(proc.stdout) if d)


def render(name: str) -> tuple[Doc, ...]:
    docs = _render(name)
    if isinstance(docs, str):
        pytest.skip(docs)
    return docs


def render_with_component(overlay: str, component: str, directory: Path) -> tuple[Doc, ...]:
    """A shipped overlay with one of deploy/components added, as a user's kustomization in
    `directory` would add it."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render the kustomizations")
    # kustomize takes only relative paths to other kustomizations.
    relative = Path(os.path.relpath(DEPLOY, directory))
    (directory / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [str(relative / "overlays" / overlay)],
                "components": [str(relative / "components" / component)],
            }
        )
    )
    proc = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return tuple(d for d in yaml.safe_load_all(proc.stdout) if d)


def objects(docs: tuple[Doc, ...], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    found = [d for d in objects(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected exactly one {kind} {name}, found {len(found)}"
    return found[0]


def webhook(docs: tuple[Doc, ...], webhook_name: str) -> Doc:
    kind, config = WEBHOOK_HOME[webhook_name]
    hooks = [w for w in one(docs, kind, config)["webhooks"] if w["name"] == webhook_name]
    assert len(hooks) == 1, f"{kind} {config} must hold webhook {webhook_name} exactly once"
    return hooks[0]


WEBHOOK_HOME = {
    TENANT_RULES: ("ValidatingWebhookConfiguration", VALIDATING),
    NAMESPACE_LABEL: ("ValidatingWebhookConfiguration", VALIDATING),
    TENANT_MUTATE: ("MutatingWebhookConfiguration", MUTATING),
}
WEBHOOK_PATH = {TENANT_RULES: "/validate", NAMESPACE_LABEL: "/validate", TENANT_MUTATE: "/mutate"}


def deployment(docs: tuple[Doc, ...]) -> Doc:
    return one(docs, "Deployment", "tenant-guard")


def container(docs: tuple[Doc, ...]) -> Doc:
    containers = deployment(docs)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "one container: tenant-guard"
    return containers[0]


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes LabelSelector semantics (an absent or empty selector matches everything)."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def ns_labels(name: str, **labels: str) -> dict[str, str]:
    """Labels of a namespace as the API server stores them (the name label is always set)."""
    return {"kubernetes.io/metadata.name": name, **labels}


def served_istio_versions() -> dict[str, frozenset[str]]:
    """plural -> versions served by the Istio networking CRDs the e2e suite installs."""
    return crds.served_versions(ISTIO_GROUP)


def istio_rules(hook: Doc) -> list[Doc]:
    return group_rules(hook, ISTIO_GROUP)


def group_rules(hook: Doc, group: str) -> list[Doc]:
    return [r for r in hook["rules"] if group in r["apiGroups"]]


def core_rule_ops(hook: Doc, resource: str) -> set[str]:
    ops: set[str] = set()
    for rule in hook["rules"]:
        if "" in rule["apiGroups"] and resource in rule["resources"]:
            ops |= set(rule["operations"])
    return ops


def all_webhook_params() -> Iterator[Any]:
    for name in KUSTOMIZATIONS:
        for hook in WEBHOOK_HOME:
            yield pytest.param(name, hook, id=f"{name}/{hook.split('.')[0]}")


def rbac_rules(docs: tuple[Doc, ...]) -> list[tuple[str, str, Doc]]:
    """(kind, name, rule) for every rule of every Role and ClusterRole."""
    return [
        (d["kind"], d["metadata"]["name"], rule)
        for d in docs
        if d["kind"] in ("Role", "ClusterRole")
        for rule in d.get("rules") or []
    ]


# --- every kustomization ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_kustomization_renders(name: str) -> None:
    docs = render(name)
    kinds = {d["kind"] for d in docs}
    assert {
        "Namespace",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    } <= kinds
    for doc in docs:
        if doc["kind"] not in {
            "Namespace",
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "ValidatingWebhookConfiguration",
            "MutatingWebhookConfiguration",
        }:
            assert doc["metadata"].get("namespace") == NAMESPACE, (
                f"{doc['kind']} {doc['metadata']['name']} is not in {NAMESPACE}"
            )


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_kustomization_uses_no_deprecated_fields(name: str) -> None:
    kustomization = yaml.safe_load((KUSTOMIZATIONS[name] / "kustomization.yaml").read_text())
    deprecated = {"commonLabels", "patchesStrategicMerge", "patchesJson6902", "bases", "vars"}
    assert not deprecated & set(kustomization), "use labels:/patches:/resources: (kustomize v5)"


# --- webhook configurations ------------------------------------------------------------------


@pytest.mark.parametrize(("name", "hook_name"), list(all_webhook_params()))
def test_webhook_common_settings(name: str, hook_name: str) -> None:
    hook = webhook(render(name), hook_name)
    assert hook["admissionReviewVersions"] == ["v1"]
    # dry-run (kubectl --dry-run=server, ArgoCD) is refused unless sideEffects is None.
    assert hook["sideEffects"] == "None"
    assert hook["failurePolicy"] == "Fail"
    assert 1 <= hook["timeoutSeconds"] <= 5
    assert hook["matchPolicy"] == "Equivalent"
    service = hook["clientConfig"]["service"]
    assert service == {
        "name": SERVICE,
        "namespace": NAMESPACE,
        "path": WEBHOOK_PATH[hook_name],
        "port": 443,
    }
    assert "url" not in hook["clientConfig"]
    for rule in hook["rules"]:
        assert "DELETE" not in rule["operations"], "DELETE is always allowed: never send it"
        assert "*" not in rule["operations"]
        assert "*" not in rule["resources"]
        assert not any("/" in r for r in rule["resources"]), "no subresources"


@pytest.mark.parametrize("hook_name", list(WEBHOOK_HOME))
def test_base_leaves_ca_bundle_to_the_overlays(hook_name: str) -> None:
    assert "caBundle" not in webhook(render("base"), hook_name)["clientConfig"]


@pytest.mark.parametrize("hook_name", [TENANT_RULES, TENANT_MUTATE])
def test_istio_rules_cover_every_served_version(hook_name: str) -> None:
    served = served_istio_versions()
    rules = istio_rules(webhook(render("base"), hook_name))
    covered = {res for rule in rules for res in rule["resources"]}
    edge = ISTIO_EDGE_RESOURCES if hook_name == TENANT_RULES else set()
    assert covered == ISTIO_RESOURCES | edge
    for rule in rules:
        assert rule["apiGroups"] == [ISTIO_GROUP]
        assert set(rule["operations"]) == {"CREATE", "UPDATE"}
        for resource in rule["resources"]:
            assert resource in served, f"{resource} is not served by the Istio CRDs"
            assert set(rule["apiVersions"]) == served[resource], (
                f"{hook_name}: {resource} versions {rule['apiVersions']} "
                f"!= served {sorted(served[resource])}"
            )


def test_gateway_api_rules_cover_every_version_either_channel_serves() -> None:
    """Every Gateway API resource tenant-guard judges is sent in whatever version is installed
    ("*"): the experimental channel serves alpha versions beside (or instead of) the standard
    ones, and matchPolicy Equivalent converts only to a version the CRD also serves."""
    served = crds.served_versions(GATEWAY_API_GROUP)
    hook = webhook(render("base"), TENANT_RULES)
    rules = group_rules(hook, GATEWAY_API_GROUP)
    covered = [res for rule in rules for res in rule["resources"]]
    assert sorted(covered) == sorted([*GATEWAY_API_RESOURCES, "tlsroutes"]), "one rule each"
    for rule in rules:
        assert rule["apiGroups"] == [GATEWAY_API_GROUP]
        assert rule["apiVersions"] == ["*"]
        assert set(rule["operations"]) == {"CREATE", "UPDATE"}
        assert rule["scope"] == "Namespaced"
    # The standard channel the fixtures hold serves all of them but TLSRoute (experimental).
    assert set(served) >= GATEWAY_API_RESOURCES
    # Only tenant namespaces, like every other tenant rule; nothing of it is mutated.
    assert hook["namespaceSelector"] == {
        "matchExpressions": [{"key": "tenant", "operator": "Exists"}]
    }
    assert group_rules(webhook(render("base"), TENANT_MUTATE), GATEWAY_API_GROUP) == []


def test_experimental_group_rules_send_xlistenersets() -> None:
    hook = webhook(render("base"), TENANT_RULES)
    (rule,) = group_rules(hook, GATEWAY_API_EXPERIMENTAL_GROUP)
    assert rule == {
        "apiGroups": [GATEWAY_API_EXPERIMENTAL_GROUP],
        "apiVersions": ["*"],
        "resources": sorted(GATEWAY_API_EXPERIMENTAL_RESOURCES),
        "operations": ["CREATE", "UPDATE"],
        "scope": "Namespaced",
    }
    # Judged, and in the same group and resource the stand-in CRD the e2e suite installs has.
    assert {(GATEWAY_API_EXPERIMENTAL_GROUP, r) for r in GATEWAY_API_EXPERIMENTAL_RESOURCES} <= set(
        KINDS
    )
    assert {(s.group, s.plural) for s in crds.EXPERIMENTAL_STAND_INS} == {
        (GATEWAY_API_EXPERIMENTAL_GROUP, r) for r in GATEWAY_API_EXPERIMENTAL_RESOURCES
    }
    assert group_rules(webhook(render("base"), TENANT_MUTATE), GATEWAY_API_EXPERIMENTAL_GROUP) == []


def test_tenant_rules_send_only_judged_resources_and_every_edge_one() -> None:
    """Every resource tenant-rules sends has a policy, and every edge resource is sent
    (TLSRoute and XListenerSet in whatever version the experimental channel serves)."""
    hook = webhook(render("base"), TENANT_RULES)
    sent = {
        (group, resource)
        for rule in hook["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert sent <= set(KINDS)
    edge = {(ISTIO_GROUP, r) for r in ISTIO_EDGE_RESOURCES}
    edge |= {(GATEWAY_API_GROUP, r) for r in GATEWAY_API_RESOURCES}
    edge |= {(GATEWAY_API_EXPERIMENTAL_GROUP, r) for r in GATEWAY_API_EXPERIMENTAL_RESOURCES}
    assert edge | {(GATEWAY_API_GROUP, "tlsroutes")} <= sent


def test_tenant_rules_cover_services_and_pod_updates() -> None:
    hook = webhook(render("base"), TENANT_RULES)
    assert core_rule_ops(hook, "services") == {"CREATE", "UPDATE"}
    assert core_rule_ops(hook, "pods") == {"UPDATE"}
    assert core_rule_ops(hook, "namespaces") == set()


def test_mutating_webhook_rules() -> None:
    hook = webhook(render("base"), TENANT_MUTATE)
    assert core_rule_ops(hook, "pods") == {"CREATE"}
    # The patch is idempotent; being called again after Istio's injector is what we want.
    assert hook["reinvocationPolicy"] == "IfNeeded"


@pytest.mark.parametrize(
    "injector",
    [
        pytest.param("istio-sidecar-injector", id="default-injector"),
        pytest.param("istio-revision-tag-default", id="revision-tag"),
        pytest.param("istio-sidecar-injector-1-24", id="revisioned-injector"),
    ],
)
def test_mutating_configuration_runs_before_istio_injection(injector: str) -> None:
    # The API server orders mutating configurations by name, and Istio reads the
    # sidecar.istio.io/proxy* annotations while it injects.
    names = [d["metadata"]["name"] for d in objects(render("base"), "MutatingWebhookConfiguration")]
    assert names == [MUTATING]
    assert sorted([MUTATING, injector])[0] == MUTATING


@pytest.mark.parametrize(
    ("labels", "sent"),
    [
        pytest.param(ns_labels("shop", tenant="storefront"), True, id="tenant-namespace"),
        pytest.param(ns_labels("istio-system"), False, id="platform-namespace"),
        pytest.param(ns_labels("kube-system"), False, id="kube-system"),
        pytest.param(ns_labels(NAMESPACE), False, id="tenant-guard-namespace"),
        pytest.param(ns_labels("x", team="tenant"), False, id="tenant-as-label-value"),
    ],
)
@pytest.mark.parametrize("hook_name", [TENANT_RULES, TENANT_MUTATE])
def test_tenant_webhooks_see_only_tenant_namespaces(
    hook_name: str, labels: dict[str, str], sent: bool
) -> None:
    hook = webhook(render("base"), hook_name)
    assert hook["namespaceSelector"] == {
        "matchExpressions": [{"key": "tenant", "operator": "Exists"}]
    }
    assert selector_matches(hook["namespaceSelector"], labels) is sent
    assert "objectSelector" not in hook


@pytest.mark.parametrize(
    ("labels", "sent"),
    [
        pytest.param(ns_labels("shop", tenant="storefront"), True, id="tenant-namespace"),
        pytest.param(ns_labels("kube-system", tenant="x"), False, id="kube-system-excluded"),
        pytest.param(ns_labels(NAMESPACE, tenant="x"), False, id="own-namespace-excluded"),
        pytest.param(ns_labels("scratch"), False, id="never-labelled-not-sent"),
    ],
)
def test_namespace_label_webhook_selection(labels: dict[str, str], sent: bool) -> None:
    hook = webhook(render("base"), NAMESPACE_LABEL)
    excluded = {
        tuple(e["values"])
        for e in hook["namespaceSelector"]["matchExpressions"]
        if e["key"] == "kubernetes.io/metadata.name" and e["operator"] == "NotIn"
    }
    assert excluded, "kube-system and tenant-guard are excluded by kubernetes.io/metadata.name"
    assert {"kube-system", NAMESPACE} <= set(next(iter(excluded)))
    # For a Namespace both selectors see the Namespace's own labels.
    matched = selector_matches(hook["namespaceSelector"], labels) and selector_matches(
        hook.get("objectSelector"), labels
    )
    assert matched is sent


def test_namespace_label_webhook_rules() -> None:
    hook = webhook(render("base"), NAMESPACE_LABEL)
    assert core_rule_ops(hook, "namespaces") == {"CREATE", "UPDATE"}
    assert all(r["resources"] == ["namespaces"] for r in hook["rules"])


def test_validating_configuration_holds_exactly_its_webhooks() -> None:
    configs = objects(render("base"), "ValidatingWebhookConfiguration")
    assert [c["metadata"]["name"] for c in configs] == [VALIDATING]
    assert sorted(w["name"] for w in configs[0]["webhooks"]) == sorted(
        [NAMESPACE_LABEL, TENANT_RULES, MANAGED_OBJECTS]
    )


# --- namespace, workload, service ------------------------------------------------------------


def test_namespace_is_a_platform_namespace() -> None:
    ns = one(render("base"), "Namespace", NAMESPACE)
    labels = ns["metadata"].get("labels") or {}
    assert "tenant" not in labels
    assert not selector_matches(webhook(render("base"), TENANT_RULES)["namespaceSelector"], labels)


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_deployment_security_context(name: str) -> None:
    docs = render(name)
    pod = deployment(docs)["spec"]["template"]["spec"]
    c = container(docs)
    pod_sc, sc = pod.get("securityContext") or {}, c.get("securityContext") or {}

    def effective(key: str) -> Any:
        return sc.get(key, pod_sc.get(key))

    assert effective("runAsNonRoot") is True
    assert effective("runAsUser") == 10001
    assert effective("seccompProfile") == {"type": "RuntimeDefault"}
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert not sc.get("privileged")
    assert not pod.get("hostNetwork")
    tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert len(tmp) == 1
    volume = next(v for v in pod["volumes"] if v["name"] == tmp[0]["name"])
    assert "emptyDir" in volume


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_deployment_args_and_config_mount(name: str) -> None:
    docs = render(name)
    c = container(docs)
    assert c["args"][: len(BASE_ARGS)] == BASE_ARGS
    pod = deployment(docs)["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    config_mount = mounts[str(Path(CONFIG_FILE).parent)]
    # subPath mounts never receive ConfigMap updates; the program reloads on change.
    assert "subPath" not in config_mount
    config_volume = next(v for v in pod["volumes"] if v["name"] == config_mount["name"])
    assert config_volume["configMap"]["name"] == "tenant-guard-config"
    assert TLS_DIR in mounts
    assert all("subPath" not in m for m in c["volumeMounts"])


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_deployment_probes_over_https(name: str) -> None:
    c = container(render(name))
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert 8443 in ports.values()
    for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
        get = c[probe]["httpGet"]
        assert get["scheme"] == "HTTPS"
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == 8443


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_deployment_availability(name: str) -> None:
    docs = render(name)
    dep = deployment(docs)
    pod = dep["spec"]["template"]["spec"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["replicas"] >= 2
    assert selector_matches(dep["spec"]["selector"], pod_labels)
    spread = pod.get("topologySpreadConstraints") or []
    anti = (pod.get("affinity") or {}).get("podAntiAffinity")
    assert spread or anti, "replicas must be spread across nodes"
    for constraint in spread:
        assert selector_matches(constraint["labelSelector"], pod_labels)
    resources = container(docs)["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]
    pdbs = objects(docs, "PodDisruptionBudget")
    assert len(pdbs) == 1
    assert pdbs[0]["spec"]["minAvailable"] == 1
    assert selector_matches(pdbs[0]["spec"]["selector"], pod_labels)


def test_service_forwards_443_to_8443() -> None:
    docs = render("base")
    svc = one(docs, "Service", SERVICE)
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(443, 8443)]
    pod_labels = deployment(docs)["spec"]["template"]["metadata"]["labels"]
    assert selector_matches({"matchLabels": svc["spec"]["selector"]}, pod_labels)


def test_selectors_carry_no_shared_labels() -> None:
    # Deployment selectors are immutable: a label added to them breaks every later upgrade.
    dep = deployment(render("base"))
    assert dep["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "tenant-guard"}}


def test_config_is_a_cluster_config() -> None:
    cm = one(render("base"), "ConfigMap", "tenant-guard-config")
    assert set(cm["data"]) == {"config.yaml"}
    config = yaml.safe_load(cm["data"]["config.yaml"])
    assert set(config) <= SPEC_CONFIG_KEYS, f"unknown keys: {set(config) - SPEC_CONFIG_KEYS}"
    assert "namespaces" not in config, "the namespaces map is for offline use only"
    assert config["enforcement"] in {"enforce", "warn"}
    assert config["tenants"], "a realistic example names some tenants"
    # The webhooks' selectors are written for this label key.
    assert config.get("tenantLabel", "tenant") == "tenant"


# --- RBAC ------------------------------------------------------------------------------------


def test_base_rbac_is_read_only_namespaces_and_virtualservices() -> None:
    docs = render("base")
    rules = rbac_rules(docs)
    assert objects(docs, "Role") == []
    granted = {
        (group, resource): sorted(rule["verbs"])
        for _, _, rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert granted == {
        ("", "namespaces"): ["get", "list", "watch"],
        (ISTIO_GROUP, "virtualservices"): ["get", "list", "watch"],
        ("gateway.networking.k8s.io", "httproutes"): ["get", "list", "watch"],
        ("gateway.networking.k8s.io", "grpcroutes"): ["get", "list", "watch"],
        ("gateway.networking.k8s.io", "tlsroutes"): ["get", "list", "watch"],
        ("", "pods"): ["list", "watch"],  # the gateway pods and istiod's
        # The audit's watches (README "Audit"): read-only, like the rest.
        **{(k.group, k.resource): ["get", "list", "watch"] for k in audited_kinds()},
    }
    assert all("nonResourceURLs" not in rule for _, _, rule in rules)
    (binding,) = objects(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "tenant-guard", "namespace": NAMESPACE}
    ]


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_rbac_has_no_wildcards(name: str) -> None:
    for kind, role, rule in rbac_rules(render(name)):
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in (rule.get(field) or []), f"{kind} {role}: wildcard in {field}"


def is_baseline_rbac(name: str) -> bool:
    """Roles and bindings of deploy/components/baseline, which both overlays include."""
    return name.startswith("tenant-guard-baseline")


def is_component_rbac(name: str) -> bool:
    """Roles and bindings of the components both overlays include (baseline, tenants)."""
    return is_baseline_rbac(name) or name.startswith("tenant-guard-tenant")


def test_cert_manager_overlay_adds_no_rbac_but_the_baseline_component() -> None:
    base = {(k, n) for k, n, _ in rbac_rules(render("base"))}
    overlay = {(k, n) for k, n, _ in rbac_rules(render("cert-manager")) if not is_component_rbac(n)}
    assert overlay == base


def test_self_managed_extra_rbac_is_limited_by_resource_names() -> None:
    base_roles = {(k, n) for k, n, _ in rbac_rules(render("base"))}
    extra = [
        (k, n, rule)
        for k, n, rule in rbac_rules(render("self-managed"))
        if (k, n) not in base_roles and not is_component_rbac(n)
    ]
    assert extra, "the self-managed overlay needs its own RBAC"
    granted: dict[tuple[str, str], set[str]] = {}
    for kind, name, rule in extra:
        resources = set(rule["resources"])
        verbs = set(rule["verbs"])
        if kind == "ClusterRole":
            assert resources <= {
                "validatingwebhookconfigurations",
                "mutatingwebhookconfigurations",
            }, f"ClusterRole {name} may only touch webhook configurations"
            assert verbs <= {"get", "patch"}
            assert set(rule["resourceNames"]) <= {VALIDATING, MUTATING}
        else:
            assert kind == "Role"
            assert resources == {"secrets"}
            assert verbs <= {"get", "create", "update", "patch"}
            if verbs != {"create"}:  # create cannot be limited by name
                assert rule["resourceNames"] == ["tenant-guard-tls"]
        for resource in resources:
            granted.setdefault((kind, resource), set()).update(verbs)
    assert granted == {
        ("Role", "secrets"): {"get", "create", "update", "patch"},
        ("ClusterRole", "validatingwebhookconfigurations"): {"get", "patch"},
        ("ClusterRole", "mutatingwebhookconfigurations"): {"get", "patch"},
    }
    docs = render("self-managed")
    for role in objects(docs, "Role"):
        assert role["metadata"]["namespace"] == NAMESPACE


# --- overlays --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        pytest.param("ValidatingWebhookConfiguration", VALIDATING, id="validating"),
        pytest.param("MutatingWebhookConfiguration", MUTATING, id="mutating"),
    ],
)
def test_cert_manager_injects_the_ca(kind: str, name: str) -> None:
    config = one(render("cert-manager"), kind, name)
    annotations = config["metadata"].get("annotations") or {}
    assert annotations.get("cert-manager.io/inject-ca-from") == f"{NAMESPACE}/tenant-guard-serving"


def test_cert_manager_certificate_chain() -> None:
    docs = render("cert-manager")
    serving = one(docs, "Certificate", "tenant-guard-serving")["spec"]
    assert f"{SERVICE}.{NAMESPACE}.svc" in serving["dnsNames"]
    assert f"{SERVICE}.{NAMESPACE}.svc.cluster.local" in serving["dnsNames"]
    # The Deployment mounts the Secret this Certificate fills.
    pod = deployment(docs)["spec"]["template"]["spec"]
    tls_mount = next(m for m in container(docs)["volumeMounts"] if m["mountPath"] == TLS_DIR)
    tls_volume = next(v for v in pod["volumes"] if v["name"] == tls_mount["name"])
    assert tls_volume["secret"]["secretName"] == serving["secretName"]
    # serving <- CA Issuer <- CA Certificate <- self-signed Issuer
    ca_issuer = one(docs, "Issuer", serving["issuerRef"]["name"])["spec"]
    ca_cert = next(
        c["spec"]
        for c in objects(docs, "Certificate")
        if c["spec"]["secretName"] == ca_issuer["ca"]["secretName"]
    )
    assert ca_cert["isCA"] is True
    root = one(docs, "Issuer", ca_cert["issuerRef"]["name"])["spec"]
    assert "selfSigned" in root


def test_self_managed_args_env_and_cert_dir() -> None:
    docs = render("self-managed")
    c = container(docs)
    args = c["args"]
    extra = args[len(BASE_ARGS) :]
    assert extra[0] == "--manage-certs"

    def values(flag: str) -> list[str]:
        return [args[i + 1] for i, a in enumerate(args) if a == flag]

    assert values("--cert-secret") == ["tenant-guard-tls"]
    assert values("--service") == [SERVICE]
    rendered_configs = {
        d["metadata"]["name"]
        for d in docs
        if d["kind"] in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
    }
    assert set(values("--webhook-configuration")) == rendered_configs == {VALIDATING, MUTATING}
    env = {e["name"]: e for e in c.get("env") or []}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    pod = deployment(docs)["spec"]["template"]["spec"]
    tls_mount = next(m for m in c["volumeMounts"] if m["mountPath"] == TLS_DIR)
    assert not tls_mount.get("readOnly"), "the program writes the certificates here"
    tls_volume = next(v for v in pod["volumes"] if v["name"] == tls_mount["name"])
    assert set(tls_volume) == {"name", "emptyDir"}


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlays_change_only_the_tls_plumbing(name: str) -> None:
    base = render("base")
    overlay = render(name)
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for cfg in objects(base, kind):
            webhooks = one(overlay, kind, cfg["metadata"]["name"])["webhooks"]
            # The tenants component appends its webhooks after the base's, unchanged otherwise.
            assert webhooks[: len(cfg["webhooks"])] == cfg["webhooks"]
            assert {w["name"] for w in webhooks[len(cfg["webhooks"]) :]} <= TENANTS_WEBHOOKS


# --- container image -------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions (NAME, arguments) per build stage, with ARG defaults substituted in FROM."""
    text = (REPO / "Dockerfile").read_text()
    logical = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    global_args: dict[str, str] = {}
    stages: list[list[tuple[str, str]]] = []
    for line in logical.splitlines():
        if not line.strip():
            continue
        instr, _, rest = line.strip().partition(" ")
        instr, rest = instr.upper(), rest.strip()
        if instr == "ARG" and not stages:
            key, _, default = rest.partition("=")
            global_args[key] = default
            continue
        if instr == "FROM":
            rest = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), rest)
            stages.append([])
        assert stages, f"{instr} before the first FROM"
        stages[-1].append((instr, rest))
    return stages


PINNED_PYTHON = re.compile(r"^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")


def test_dockerfile_is_multistage_on_a_pinned_base() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: build in one stage, run in another"
    aliases: set[str] = set()
    for stage in stages:
        image, _, alias = stage[0][1].partition(" AS ")
        image = image.split()[-1]
        if image not in aliases:
            assert PINNED_PYTHON.match(image), f"base image {image!r} is not pinned"
        if alias:
            aliases.add(alias.strip())
    final = stages[-1]
    copies = [rest for instr, rest in final if instr == "COPY"]
    assert copies and all(c.startswith("--from=") for c in copies), (
        "the final stage copies only build output, never the source tree"
    )


def test_dockerfile_final_stage_runs_unprivileged() -> None:
    final = dockerfile_stages()[-1]
    users = [rest for instr, rest in final if instr == "USER"]
    assert users, "the final stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in {"0", "root"}
    # Numeric, so the kubelet can check runAsNonRoot; the same UID as the Deployment.
    assert user == "10001"
    instructions = dict(final)
    assert instructions["ENTRYPOINT"] == '["tenant-guard"]'
    assert instructions["CMD"].startswith('["serve"')
    assert "8443" in instructions["EXPOSE"].split()
    assert "HEALTHCHECK" not in instructions, "Kubernetes probes do the health checking"
    run_lines = " ".join(rest for instr, rest in final if instr == "RUN")
    assert not re.search(r"\b(apt-get|apk|gcc|build-essential)\b", run_lines)


@pytest.mark.parametrize(
    ("path", "sent"),
    [
        pytest.param(".venv", False, id="venv"),
        pytest.param("tests", False, id="tests"),
        pytest.param("certs", False, id="certs"),
        pytest.param(".git", False, id="git"),
        pytest.param("webhook/__pycache__", False, id="pycache"),
        pytest.param("pyproject.toml", True, id="pyproject"),
        pytest.param("webhook", True, id="package"),
    ],
)
def test_dockerignore(path: str, sent: bool) -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    excluded = False  # Docker semantics: the last matching pattern wins.
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        candidates = {pattern, pattern.removeprefix("**/")}
        if any(fnmatch.fnmatchcase(path, p) for p in candidates) or any(
            fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], p)
            for p in candidates
            if pattern.startswith("**/")
        ):
            excluded = not negate
    assert excluded is not sent


# --- the tenant baseline (README: Tenant baseline)
# ------------------------------------------------------------

MANAGED_OBJECTS = "managed-objects.tenant-guard.io"
BASELINE_COMPONENT = DEPLOY / "components" / "baseline"


def managed_objects_webhook(name: str = "base") -> Doc:
    hooks = [
        w
        for w in one(render(name), "ValidatingWebhookConfiguration", VALIDATING)["webhooks"]
        if w["name"] == MANAGED_OBJECTS
    ]
    assert len(hooks) == 1
    return hooks[0]


@pytest.mark.parametrize("name", list(KUSTOMIZATIONS))
def test_managed_objects_webhook_settings(name: str) -> None:
    hook = managed_objects_webhook(name)
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["sideEffects"] == "None"
    assert hook["failurePolicy"] == "Fail"
    assert 1 <= hook["timeoutSeconds"] <= 5
    assert hook["matchPolicy"] == "Equivalent"
    assert hook["clientConfig"]["service"] == {
        "name": SERVICE,
        "namespace": NAMESPACE,
        "path": "/validate",
        "port": 443,
    }


def test_managed_objects_webhook_sends_the_baseline_kinds_with_delete() -> None:
    hook = managed_objects_webhook()
    sent = {(g, r) for rule in hook["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert sent == {(k.group, k.resource) for k in MANAGED_KINDS}
    served = crds.all_served_versions()
    for rule in hook["rules"]:
        # DELETE is the point of this webhook; CONNECT and wildcards never.
        assert set(rule["operations"]) == {"CREATE", "UPDATE", "DELETE"}
        assert rule["scope"] == "Namespaced"
        assert not any("/" in r or r == "*" for r in rule["resources"]), "no subresources"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                if (group, resource) in served:
                    assert set(rule["apiVersions"]) == served[group, resource], resource
                else:
                    assert rule["apiVersions"] == ["v1"], resource


@pytest.mark.parametrize(
    ("namespace", "object_labels", "sent"),
    [
        pytest.param(
            ns_labels("shop", tenant="shop"),
            {"app.kubernetes.io/managed-by": "tenant-guard"},
            True,
            id="managed-object-in-tenant-namespace",
        ),
        pytest.param(
            ns_labels("shop", tenant="shop"), {"app": "web"}, False, id="tenant-own-object"
        ),
        pytest.param(
            ns_labels("shop", tenant="shop"),
            {"app.kubernetes.io/managed-by": "helm"},
            False,
            id="another-manager",
        ),
        pytest.param(
            ns_labels("istio-system"),
            {"app.kubernetes.io/managed-by": "tenant-guard"},
            False,
            id="platform-namespace",
        ),
    ],
)
def test_managed_objects_webhook_selection(
    namespace: dict[str, str], object_labels: dict[str, str], sent: bool
) -> None:
    hook = managed_objects_webhook()
    matched = selector_matches(hook["namespaceSelector"], namespace) and selector_matches(
        hook["objectSelector"], object_labels
    )
    assert matched is sent


def test_managed_objects_webhook_leaves_the_other_webhooks_alone() -> None:
    # Only this webhook is sent DELETE; the others keep their rules (test_webhook_common_settings).
    for hook_name in WEBHOOK_HOME:
        for rule in webhook(render("base"), hook_name)["rules"]:
            assert "DELETE" not in rule["operations"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_baseline_component_grants_exactly_the_baseline_kinds_and_the_lease(overlay: str) -> None:
    rendered = render(overlay)  # both shipped overlays include the component
    kustomization = yaml.safe_load(
        KUSTOMIZATIONS[overlay].joinpath("kustomization.yaml").read_text()
    )
    assert kustomization["components"] == ["../../components/baseline", "../../components/tenants"]
    added = [(k, n, r) for k, n, r in rbac_rules(rendered) if is_baseline_rbac(n)]
    cluster_wide = [r for k, _, r in added if k == "ClusterRole"]
    assert cluster_wide == [dict(r) for r in BASELINE_RBAC]
    lease_rules = [r for k, _, r in added if k == "Role"]
    assert {v for r in lease_rules for v in r["verbs"]} == set(LEASE_RBAC[0]["verbs"])
    for rule in lease_rules:
        assert rule["apiGroups"] == ["coordination.k8s.io"] and rule["resources"] == ["leases"]
        if rule["verbs"] != ["create"]:  # create cannot be limited by name
            assert rule["resourceNames"] == ["tenant-guard-baseline"]
    (role,) = [
        d for d in rendered if d["kind"] == "Role" and is_baseline_rbac(d["metadata"]["name"])
    ]
    assert role["metadata"]["namespace"] == NAMESPACE
    bindings = [
        d
        for d in rendered
        if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
        and is_baseline_rbac(d["metadata"]["name"])
    ]
    assert len(bindings) == 2
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "tenant-guard", "namespace": NAMESPACE}
        ]
    # The component adds RBAC and nothing else.
    rbac = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    assert {d["kind"] for d in rendered if "baseline" in d["metadata"]["name"]} <= rbac


def test_the_lease_name_in_rbac_is_the_one_the_program_takes() -> None:
    text = (BASELINE_COMPONENT / "rbac.yaml").read_text()
    assert f'resourceNames: ["{LEASE_NAME}"]' in text
