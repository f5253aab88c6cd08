"""Gateway pods (SPEC.md §8): which pods are gateways, the label index a selector is matched
against, and istiod's PILOT_SCOPE_GATEWAY_TO_NAMESPACE as its pods say it. Pure."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhook.tenancy import gatewaypods
from webhook.tenancy.gatewaypods import (
    GatewayPods,
    Scope,
    gateway_pods_of,
    index_gateway_pods,
    istiod_setting,
    scope_report,
    updated,
)

INJECT = gatewaypods.INJECT_TEMPLATES_ANNOTATION

MARK_ROWS = [
    # Istio's gateway Helm chart and "gateway injection": the injector makes it a router.
    pytest.param({}, {INJECT: "gateway"}, f"annotation {INJECT}=gateway", id="gateway-template"),
    pytest.param(
        {}, {INJECT: "spire, gateway"}, f"annotation {INJECT}=spire, gateway", id="among-templates"
    ),
    pytest.param({}, {INJECT: "sidecar"}, None, id="sidecar-template-is-no-gateway"),
    pytest.param({}, {INJECT: "gateways"}, None, id="template-name-must-be-whole"),
    pytest.param({}, {INJECT: "Gateway"}, None, id="template-names-are-case-sensitive"),
    # The pods Istio deploys for a Gateway API Gateway (and its waypoints).
    pytest.param(
        {"gateway.networking.k8s.io/gateway-name": "web"},
        {},
        "label gateway.networking.k8s.io/gateway-name",
        id="gateway-api",
    ),
    pytest.param(
        {"istio.io/gateway-name": "web"}, {}, "label istio.io/gateway-name", id="gateway-api-older"
    ),
    pytest.param(
        {"gateway.istio.io/managed": "istio.io-gateway-controller"},
        {},
        "label gateway.istio.io/managed",
        id="istio-managed",
    ),
    # istioctl's and the operator's gateways, and the chart's selector label.
    pytest.param({"istio": "ingressgateway"}, {}, "label istio", id="istio-label"),
    pytest.param({"istio": ""}, {}, "label istio", id="istio-label-empty-value"),
    # Not gateways.
    pytest.param({"app": "istiod", "istio": "pilot"}, {}, None, id="istiod-is-no-gateway"),
    pytest.param({"app": "reviews", "version": "v1"}, {}, None, id="application-pod"),
    pytest.param(
        {"security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name": "reviews"},
        {"sidecar.istio.io/status": "{}"},
        None,
        id="injected-sidecar-pod",
    ),
    pytest.param({"Istio": "x"}, {}, None, id="label-keys-are-case-sensitive"),
]


@pytest.mark.parametrize(("labels", "annotations", "mark"), MARK_ROWS)
def test_what_makes_a_pod_a_gateway(
    labels: dict[str, str], annotations: dict[str, str], mark: str | None
) -> None:
    metadata = {"name": "p", "namespace": "n", "labels": labels, "annotations": annotations}
    assert gatewaypods.gateway_mark(metadata) == mark
    assert gatewaypods.is_gateway_pod(metadata) is (mark is not None)


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param({}, id="no-metadata-fields"),
        pytest.param({"labels": None, "annotations": None}, id="null-maps"),
        pytest.param({"labels": ["istio"], "annotations": "gateway"}, id="wrong-shapes"),
        pytest.param({"annotations": {INJECT: 7}}, id="annotation-not-a-string"),
    ],
)
def test_odd_metadata_is_no_gateway_and_never_raises(metadata: dict[str, Any]) -> None:
    assert gatewaypods.gateway_mark(metadata) is None
    assert dict(gatewaypods.pod_labels(metadata)) == {}


# --- the index --------------------------------------------------------------------------------

PODS = {
    "b/in-1": {"istio": "b-in", "app": "in"},
    "b/in-2": {"istio": "b-in", "app": "in", "pod-template-hash": "x"},
    "c/gw": {"istio": "c-gw"},
}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param({}, ["b/in-1", "b/in-2", "c/gw"], id="empty-matches-all"),
        pytest.param({"istio": "b-in"}, ["b/in-1", "b/in-2"], id="one-label"),
        pytest.param({"istio": "b-in", "pod-template-hash": "x"}, ["b/in-2"], id="two-labels"),
        pytest.param({"istio": "b-in", "app": "other"}, [], id="one-value-differs"),
        pytest.param({"istio": "c-gw", "app": "in"}, [], id="labels-of-two-pods"),
        pytest.param({"nothing": "here"}, [], id="no-such-label"),
    ],
)
def test_matching(selector: dict[str, str], expected: list[str]) -> None:
    assert index_gateway_pods(PODS).matching(selector) == expected


def test_updates_move_pods_between_labels() -> None:
    index = index_gateway_pods(PODS)
    before = index
    index = updated(index, [("b/in-1", {"istio": "c-gw"}), ("c/gw", None), ("d/new", {"x": "y"})])
    assert index.matching({"istio": "c-gw"}) == ["b/in-1"]
    assert index.matching({"istio": "b-in"}) == ["b/in-2"]
    assert index.matching({"x": "y"}) == ["d/new"]
    assert ("app", "in") in index.by_label and index.by_label[("app", "in")] == {"b/in-2"}
    assert before.matching({"istio": "b-in"}) == ["b/in-1", "b/in-2"]  # the old one unchanged


def test_an_update_that_moves_nothing_keeps_the_label_map() -> None:
    index = index_gateway_pods(PODS)
    again = updated(index, [("b/in-1", {"istio": "b-in", "app": "in"}), ("gone/pod", None)])
    assert again.by_label is index.by_label


LABEL = st.sampled_from(["istio", "app", "gateway.networking.k8s.io/gateway-name"])
VALUE = st.sampled_from(["a", "b", "c"])
LABELS = st.dictionaries(LABEL, VALUE, max_size=3)
KEY = st.sampled_from([f"ns-{n}/pod-{m}" for n in range(3) for m in range(3)])
CHANGES = st.lists(st.lists(st.tuples(KEY, st.none() | LABELS), max_size=5), max_size=8)


@given(CHANGES, LABELS)
def test_incremental_updates_equal_an_index_built_whole(
    batches: list[list[tuple[str, dict[str, str] | None]]], selector: dict[str, str]
) -> None:
    index = index_gateway_pods({})
    pods: dict[str, dict[str, str]] = {}
    for batch in batches:
        index = updated(index, batch)
        for key, labels in batch:
            if labels is None:
                pods.pop(key, None)
            else:
                pods[key] = labels
    whole = index_gateway_pods(pods)
    assert {k: dict(v) for k, v in index.pods.items()} == pods
    assert dict(index.by_label) == dict(whole.by_label)
    expected = sorted(k for k, labels in pods.items() if selector.items() <= labels.items())
    assert index.matching(selector) == expected


def test_the_index_of_listed_pods_keeps_the_gateways_only() -> None:
    listed: list[dict[str, Any]] = [
        {"metadata": {"namespace": "b", "name": "gw", "labels": {"istio": "b"}}},
        {"metadata": {"namespace": "b", "name": "web", "labels": {"app": "web"}}},
        {
            "metadata": {
                "namespace": "istio-system",
                "name": "istiod-1",
                "labels": {"app": "istiod"},
            }
        },
        {"metadata": "not a map"},
    ]
    index = gateway_pods_of(listed)
    assert list(index.pods) == ["b/gw"] and index.synced


def test_not_listed_is_known_not_to_be_known() -> None:
    assert not gatewaypods.NOT_LISTED.synced
    assert GatewayPods().synced and GatewayPods().matching({}) == []


# --- istiod's PILOT_SCOPE_GATEWAY_TO_NAMESPACE ------------------------------------------------


def istiod(
    env: list[dict[str, Any]] | None = None,
    *,
    name: str = "istiod-6d4b9-x",
    revision: str | None = None,
    container: str = "discovery",
    env_from: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    labels = {"app": "istiod", "istio": "pilot"}
    if revision:
        labels["istio.io/rev"] = revision
    spec: dict[str, Any] = {"name": container, "image": "istio/pilot"}
    if env is not None:
        spec["env"] = env
    if env_from is not None:
        spec["envFrom"] = env_from
    return {
        "metadata": {"namespace": "istio-system", "name": name, "labels": labels},
        "spec": {"containers": [spec]},
    }


SCOPE = gatewaypods.SCOPE_ENV

SETTING_ROWS = [
    pytest.param([{"name": SCOPE, "value": "true"}], Scope.NAMESPACE, '="true"', id="true"),
    pytest.param([{"name": SCOPE, "value": "1"}], Scope.NAMESPACE, '="1"', id="one"),
    pytest.param([{"name": SCOPE, "value": "True"}], Scope.NAMESPACE, '="True"', id="title-case"),
    pytest.param([{"name": SCOPE, "value": "false"}], Scope.MESH, '="false"', id="false"),
    pytest.param(
        [{"name": "PILOT_TRACE_SAMPLING", "value": "1"}],
        Scope.MESH,
        "not set (istiod's default: false)",
        id="absent",
    ),
    pytest.param(None, Scope.MESH, "not set (istiod's default: false)", id="no-env-at-all"),
    pytest.param(
        [{"name": SCOPE, "value": "yes"}],
        Scope.MESH,
        '="yes", not a boolean (istiod uses false)',
        id="not-a-go-boolean",
    ),
    pytest.param(
        [{"name": SCOPE, "value": ""}],
        Scope.MESH,
        '="", not a boolean (istiod uses false)',
        id="empty",
    ),
    pytest.param(
        [{"name": SCOPE, "value": "false"}, {"name": SCOPE, "value": "true"}],
        Scope.NAMESPACE,
        '="true"',
        id="last-entry-wins",
    ),
    pytest.param(
        [{"name": SCOPE, "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}],
        Scope.UNKNOWN,
        "set from valueFrom, not readable",
        id="value-from",
    ),
    pytest.param(
        [{"name": "scope", "value": "true"}],
        Scope.MESH,
        "not set (istiod's default: false)",
        id="names-are-case-sensitive",
    ),
]


@pytest.mark.parametrize(("env", "scope", "how"), SETTING_ROWS)
def test_istiod_setting(env: list[dict[str, Any]] | None, scope: Scope, how: str) -> None:
    setting = istiod_setting(istiod(env))
    assert (setting.scope, setting.how) == (scope, how)
    assert (setting.pod, setting.revision) == ("istio-system/istiod-6d4b9-x", "default")


def test_env_from_may_set_it_unless_an_env_entry_does() -> None:
    source = [{"configMapRef": {"name": "istiod-env"}}]
    assert istiod_setting(istiod(env_from=source)).scope is Scope.UNKNOWN
    explicit = istiod_setting(istiod([{"name": SCOPE, "value": "true"}], env_from=source))
    assert explicit.scope is Scope.NAMESPACE


@pytest.mark.parametrize(
    "pod",
    [
        pytest.param(
            istiod([{"name": SCOPE, "value": "true"}], container="pilot"), id="no-discovery"
        ),
        pytest.param({"metadata": {"name": "x"}, "spec": {"containers": "no"}}, id="wrong-shape"),
        pytest.param({}, id="empty"),
    ],
)
def test_a_pod_without_istiod_container_is_unknown(pod: dict[str, Any]) -> None:
    assert istiod_setting(pod).scope is Scope.UNKNOWN


def test_scoped_only_when_every_istiod_is() -> None:
    scoped = istiod_setting(istiod([{"name": SCOPE, "value": "true"}]))
    canary = istiod_setting(istiod(name="istiod-canary-1", revision="canary"))
    report = scope_report([scoped])
    assert report.scope is Scope.NAMESPACE
    assert report.text == (
        "istiod runs with PILOT_SCOPE_GATEWAY_TO_NAMESPACE=true (istio-system/istiod-6d4b9-x "
        '(revision default): ="true"): Istio matches a Gateway\'s selector only against gateway '
        "pods in the Gateway's own namespace, which closes cross-namespace selector attacks by "
        "itself; tenant-guard's selector rules stay on"
    )
    mixed = scope_report([scoped, canary])
    assert mixed.scope is Scope.MESH
    assert mixed.text.startswith(
        "istiod runs without PILOT_SCOPE_GATEWAY_TO_NAMESPACE=true (istio-system/istiod-canary-1 "
        "(revision canary): not set (istiod's default: false); istio-system/istiod-6d4b9-x "
        '(revision default): ="true"): a Gateway\'s selector matches gateway pods in every '
        "namespace"
    )
    unknown = istiod_setting(istiod(env_from=[{"secretRef": {"name": "s"}}]))
    assert scope_report([scoped, unknown]).scope is Scope.UNKNOWN


def test_no_istiod_pod_is_unknown_and_says_so() -> None:
    report = scope_report([])
    assert report.scope is Scope.UNKNOWN
    assert report.text.startswith("istiod: no pod labelled app=istiod found")
