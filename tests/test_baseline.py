"""The tenant baseline, pure parts (SPEC.md §11): `${...}` substitution, config validation, the
shipped templates, and the desired objects rendered from (config, namespace labels)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from tests.builders import EXAMPLE_CONFIG, config_data
from webhook.baseline.desired import desired_objects, tenants_of
from webhook.baseline.templates import TemplateError, Values, check_template, render
from webhook.config.model import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[1]
SHIPPED = [
    pytest.param(EXAMPLE_CONFIG, id="examples"),
    pytest.param(REPO / "deploy" / "base" / "config.yaml", id="deploy-base"),
]

VALUES = Values("shop", "shop-dev", "tenant", ["shop", "shop-dev", "shop-prod"], ["istio-system"])


# --- substitution --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("${tenant}", "shop", id="tenant"),
        pytest.param("ns-${namespace}-x", "ns-shop-dev-x", id="inside-a-string"),
        pytest.param("${tenantLabel}", "tenant", id="tenant-label"),
        pytest.param("cost $$5 ${tenant}", "cost $5 shop", id="dollar-escape"),
        pytest.param("$tenant", "$tenant", id="no-braces-is-literal"),
        pytest.param(["${tenantNamespaces}"], ["shop", "shop-dev", "shop-prod"], id="list"),
        pytest.param(["${otherNamespaces}/*"], ["shop/*", "shop-prod/*"], id="others-affixed"),
        pytest.param(
            ["./*", "${sharedNamespaces}/*", "x"], ["./*", "istio-system/*", "x"], id="mixed-list"
        ),
        pytest.param({"a": [{"b": "${namespace}"}]}, {"a": [{"b": "shop-dev"}]}, id="nested"),
        pytest.param({"${tenant}": 1}, {"${tenant}": 1}, id="keys-are-never-substituted"),
        pytest.param([3, True, None], [3, True, None], id="non-strings-kept"),
    ],
)
def test_substitution(template: Any, expected: Any) -> None:
    assert render({"x": template}, VALUES) == {"x": expected}


def test_an_empty_list_variable_leaves_no_item() -> None:
    alone = Values("shop", "shop", "tenant", ["shop"], [])
    assert render({"h": ["./*", "${otherNamespaces}/*", "${sharedNamespaces}/*"]}, alone) == {
        "h": ["./*"]
    }


@pytest.mark.parametrize(
    ("template", "message"),
    [
        pytest.param({"x": "${tenants}"}, "x: unknown variable ${tenants}", id="unknown"),
        pytest.param(
            {"x": "${tenantNamespaces}"}, "x: '${tenantNamespaces}' uses a list variable", id="list"
        ),
        pytest.param(
            {"x": ["${tenantNamespaces}-${sharedNamespaces}"]},
            "x[0]: '${tenantNamespaces}-${sharedNamespaces}' uses more than one list variable",
            id="two-lists",
        ),
    ],
)
def test_substitution_errors_name_the_field(template: Any, message: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)):
        render(template, VALUES)


# --- config validation ---------------------------------------------------------------------------

PEER = {
    "apiVersion": "security.istio.io/v1",
    "kind": "PeerAuthentication",
    "metadata": {"name": "default"},
    "spec": {"mtls": {"mode": "STRICT"}},
}


def with_template(**changes: Any) -> dict[str, Any]:
    template = copy.deepcopy(PEER)
    for key, value in changes.items():
        if value is None:
            template.pop(key, None)
        else:
            template[key] = value
    return template


@pytest.mark.parametrize(
    ("template", "message"),
    [
        pytest.param(with_template(apiVersion=None), "apiVersion: required", id="no-api-version"),
        pytest.param(with_template(kind=None), "kind: required", id="no-kind"),
        pytest.param(
            with_template(metadata={"labels": {}}), "metadata.name: required", id="no-name"
        ),
        pytest.param(
            with_template(kind="Deployment", apiVersion="apps/v1"),
            "kind: 'Deployment' of 'apps/v1' is not a kind the baseline writes",
            id="unknown-kind",
        ),
        pytest.param(
            with_template(apiVersion="networking.istio.io/v1"),
            "kind: 'PeerAuthentication' of 'networking.istio.io/v1' is not a kind",
            id="kind-in-the-wrong-group",
        ),
        pytest.param(
            with_template(metadata={"name": "x", "namespace": "kube-system"}),
            "metadata.namespace: 'kube-system': leave it out",
            id="fixed-namespace",
        ),
        pytest.param(
            with_template(metadata={"name": "Bad_${tenant}"}),
            "metadata.name: 'Bad_sample-tenant' (rendered) is not a valid object name",
            id="bad-name",
        ),
        pytest.param(
            with_template(spec={"x": "${nope}"}),
            "spec.x: unknown variable ${nope}",
            id="unknown-variable",
        ),
    ],
)
def test_bad_templates_are_refused_at_load_naming_the_entry(
    template: dict[str, Any], message: str
) -> None:
    data = config_data(baseline={"objects": [PEER, template]})
    with pytest.raises(ConfigError) as error:
        parse_config(data)
    text = str(error.value)
    assert "baseline.objects[1]" in text
    assert message in text


def test_the_same_kind_and_name_twice_is_refused() -> None:
    data = config_data(baseline={"objects": [PEER, PEER]})
    with pytest.raises(ConfigError, match=r"baseline.objects\[1\]: PeerAuthentication 'default'"):
        parse_config(data)


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        pytest.param({"resyncSeconds": 0}, "baseline.resyncSeconds", id="resync-zero"),
        pytest.param({"objects": [], "extra": 1}, "baseline.extra: unknown key", id="unknown-key"),
    ],
)
def test_bad_baseline_settings_are_refused(baseline: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(config_data(baseline=baseline))


def test_shared_namespaces_must_be_namespace_names() -> None:
    with pytest.raises(ConfigError, match=re.escape("sharedNamespaces[0]")):
        parse_config(config_data(sharedNamespaces=["Istio_System"]))


def test_without_baseline_nothing_is_desired() -> None:
    config = parse_config(config_data())
    assert config.baseline is None
    assert desired_objects(config, {"tenant-a": {"tenant": "tenant-a"}}) == {}


# --- the shipped templates -----------------------------------------------------------------------


@pytest.mark.parametrize("path", SHIPPED)
def test_shipped_baseline(path: Path) -> None:
    config = load_config(path)
    assert config.baseline is not None
    assert "istio-system" in config.shared_namespaces  # the control plane, for every Sidecar
    kinds = sorted((t["kind"], t["metadata"]["name"]) for t in config.baseline.objects)
    assert kinds == [
        ("AuthorizationPolicy", "allow-same-tenant"),
        ("AuthorizationPolicy", "default-deny"),
        ("PeerAuthentication", "default"),
        ("Sidecar", "default"),
    ]
    assert "system:serviceaccount:tenant-guard:tenant-guard" in config.baseline.managers.users


def uncomment_optional(text: str) -> str:
    """The config with the optional templates switched on, as the comment tells a reader."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.strip() == "# optional-baseline-begin":
            inside = True
        elif line.strip() == "# optional-baseline-end":
            inside = False
        elif inside:
            lines.append(re.sub(r"^(\s*)# ", r"\1", line))
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("path", SHIPPED)
def test_optional_templates_load_when_switched_on(path: Path, tmp_path: Path) -> None:
    switched = tmp_path / "config.yaml"
    switched.write_text(uncomment_optional(path.read_text()))
    config = load_config(switched)
    assert config.baseline is not None
    kinds = {t["kind"] for t in config.baseline.objects}
    assert {"NetworkPolicy", "ResourceQuota", "LimitRange"} <= kinds
    desired = desired_objects(config, {"shop": {"tenant": "shop"}, "istio-system": {}})
    policy = next(d for d in desired.values() if d.kind.kind == "NetworkPolicy").body
    sources = policy["spec"]["ingress"][0]["from"]
    assert sources[0]["namespaceSelector"]["matchExpressions"] == [
        {"key": "tenant", "operator": "In", "values": ["shop"]}
    ]
    shared = sources[1]["namespaceSelector"]["matchExpressions"][0]["values"]
    assert shared == config.shared_namespaces


# --- desired objects -----------------------------------------------------------------------------


def test_tenants_of_ignores_platform_namespaces_and_sorts() -> None:
    labels = {"b": {"tenant": "t"}, "a": {"tenant": "t"}, "p": {}, "q": {"team": "x"}}
    assert tenants_of(labels, "tenant") == {"t": ["a", "b"]}


def test_desired_objects_for_every_tenant_namespace() -> None:
    config = load_config(REPO / "deploy" / "base" / "config.yaml")
    namespaces = {
        "shop": {"tenant": "shop"},
        "shop-dev": {"tenant": "shop"},
        "bank": {"tenant": "bank"},
        "istio-system": {},
    }
    desired = desired_objects(config, namespaces)
    assert len(desired) == 12  # 4 templates x 3 tenant namespaces
    assert {d.key.namespace for d in desired.values()} == {"shop", "shop-dev", "bank"}
    by_ref = {d.ref: d for d in desired.values()}
    sidecar = by_ref["Sidecar shop-dev/default"].body
    assert sidecar["metadata"] == {
        "name": "default",
        "namespace": "shop-dev",
        "labels": {
            "app.kubernetes.io/managed-by": "tenant-guard",
            "tenant-guard.io/tenant": "shop",
        },
    }
    assert sidecar["spec"]["egress"][0]["hosts"] == [
        "./*",
        "shop/*",
        "istio-system/*",
        "istio-ingress/*",
    ]
    allow = by_ref["AuthorizationPolicy bank/allow-same-tenant"].body
    assert allow["spec"]["rules"][0]["from"][0]["source"]["namespaces"] == ["bank"]
    # The digest changes with the body, so a template change is told apart from drift.
    assert by_ref["Sidecar shop/default"].digest != by_ref["Sidecar shop-dev/default"].digest


def test_rendering_leaves_the_template_untouched() -> None:
    config = load_config(REPO / "deploy" / "base" / "config.yaml")
    assert config.baseline is not None
    before = copy.deepcopy(config.baseline.objects)
    desired_objects(config, {"shop": {"tenant": "shop"}})
    assert config.baseline.objects == before


def test_check_template_accepts_core_kinds() -> None:
    check_template({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "x"}})
