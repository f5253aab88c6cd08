"""Pod mutation (SPEC.md §5) as a pure function: label, bounds, sidecar container, patches."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webhook.admission.patch import set_values
from webhook.config.model import PROXY_ANNOTATIONS, Config, parse_config
from webhook.config.quantity import parse_quantity
from webhook.policies.pod import mutate

CONFIG = parse_config(
    {
        "proxyDefaults": {
            "cpu": "100m",
            "cpuLimit": "500m",
            "memory": "128Mi",
            "memoryLimit": "256Mi",
        },
        "tenants": {"tenant-a": {"proxy": {"cpuLimit": "1"}}, "tenant-b": {}},
    }
)
CPU, CPU_LIMIT, MEMORY, MEMORY_LIMIT = (
    PROXY_ANNOTATIONS[k] for k in ("cpu", "cpuLimit", "memory", "memoryLimit")
)


def pod(
    labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "p", "namespace": "tenant-a"}
    if labels is not None:
        metadata["labels"] = labels
    if annotations is not None:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": [{"name": "app", "image": "nginx"}], **spec},
    }


def run(
    obj: dict[str, Any], tenant: str = "tenant-a", config: Config = CONFIG
) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    """Mutate, build the JSONPatch, and apply it: (patched pod, warnings, patch)."""
    original = copy.deepcopy(obj)
    mutation = mutate(obj, "Pod tenant-a/p", tenant, config)
    assert obj == original, "the input pod must not be changed"
    patch = set_values(obj, mutation.updates)
    result: dict[str, Any] = jsonpatch.apply_patch(obj, patch)
    return result, mutation.warnings, patch


def test_pod_without_labels_or_annotations_maps_gets_both() -> None:
    result, warnings, patch = run(pod())
    assert result["metadata"]["labels"] == {"tenant": "tenant-a"}
    assert result["metadata"]["annotations"] == {
        CPU: "100m",
        CPU_LIMIT: "1",
        MEMORY: "128Mi",
        MEMORY_LIMIT: "256Mi",
    }
    assert warnings == []
    assert {op["path"] for op in patch} == {"/metadata/labels", "/metadata/annotations"}


def test_tenant_override_merges_over_defaults() -> None:
    result, _, _ = run(pod(), tenant="tenant-b")
    assert result["metadata"]["annotations"][CPU_LIMIT] == "500m"


@pytest.mark.parametrize(
    ("given_value", "expected", "warned"),
    [
        pytest.param("250m", "250m", False, id="below-bound-kept"),
        pytest.param("1", "1", False, id="equal-kept"),
        pytest.param("1000m", "1000m", False, id="equal-other-unit-kept"),
        pytest.param("1001m", "1", True, id="just-above-clamped"),
        pytest.param("2", "1", True, id="above-clamped"),
        pytest.param("1e3", "1", True, id="exponent-above-clamped"),
        pytest.param("lots", "1", True, id="garbage-replaced"),
        pytest.param("", "1", True, id="empty-replaced"),
        pytest.param(" 1", "1", True, id="whitespace-replaced"),
        pytest.param("-1", "1", True, id="negative-replaced"),
        pytest.param("Infinity", "1", True, id="infinity-replaced"),
    ],
)
def test_cpu_limit_annotation(given_value: str, expected: str, warned: bool) -> None:
    result, warnings, _ = run(pod(annotations={CPU_LIMIT: given_value}))
    assert result["metadata"]["annotations"][CPU_LIMIT] == expected
    assert bool(warnings) is warned


def test_request_above_a_pods_own_lower_limit_is_lowered_to_it() -> None:
    # The pod asks for a 50m limit; the 100m default request would exceed it and the API
    # server would reject the injected pod.
    result, warnings, _ = run(pod(annotations={CPU_LIMIT: "50m"}))
    assert result["metadata"]["annotations"][CPU_LIMIT] == "50m"
    assert result["metadata"]["annotations"][CPU] == "50m"
    assert any("above the limit 50m" in w for w in warnings)
    _, _, patch = run(result)
    assert patch == []


def test_wrong_tenant_label_is_overwritten_with_a_warning() -> None:
    result, warnings, _ = run(pod(labels={"tenant": "tenant-b", "app": "x"}))
    assert result["metadata"]["labels"] == {"tenant": "tenant-a", "app": "x"}
    assert warnings == [
        'Pod tenant-a/p: label tenant="tenant-b" replaced by "tenant-a" (the namespace\'s tenant)'
    ]


def test_label_key_with_slash_is_escaped_in_the_patch() -> None:
    config = parse_config({"tenantLabel": "example.com/tenant", "proxyDefaults": {"cpu": "100m"}})
    result, _, patch = run(pod(labels={"app": "x"}, annotations={"a~b/c": "keep"}), config=config)
    assert result["metadata"]["labels"]["example.com/tenant"] == "tenant-a"
    paths = {op["path"] for op in patch}
    assert "/metadata/labels/example.com~1tenant" in paths
    assert "/metadata/annotations/sidecar.istio.io~1proxyCPU" in paths
    assert result["metadata"]["annotations"]["a~b/c"] == "keep"


def test_no_bounds_configured_sets_only_the_label() -> None:
    result, _, patch = run(pod(), config=parse_config({}))
    assert "annotations" not in result["metadata"]
    assert patch == [{"op": "add", "path": "/metadata/labels", "value": {"tenant": "tenant-a"}}]


def sidecar(resources: dict[str, Any] | None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "istio-proxy", "image": "proxyv2"}
    if resources is not None:
        container["resources"] = resources
    return container


@pytest.mark.parametrize("list_name", ["containers", "initContainers"])
def test_already_injected_sidecar_is_bounded(list_name: str) -> None:
    containers = [{"name": "app", "image": "nginx"}]
    injected = sidecar({"requests": {"cpu": "10m", "memory": "1Gi"}, "limits": {"cpu": "4"}})
    spec = (
        {list_name: [*containers, injected]}
        if list_name == "containers"
        else {"containers": containers, "initContainers": [injected]}
    )
    obj = pod()
    obj["spec"].update(spec)
    result, warnings, _ = run(obj)
    resources = result["spec"][list_name][-1]["resources"]
    assert resources == {
        "requests": {"cpu": "10m", "memory": "128Mi"},
        "limits": {"cpu": "1", "memory": "256Mi"},
    }
    assert any("requests.memory" in w for w in warnings)
    assert any("limits.cpu" in w for w in warnings)
    assert result["spec"]["containers"][0] == {"name": "app", "image": "nginx"}
    _, _, patch = run(result)
    assert patch == []


def test_sidecar_without_resources_gets_them() -> None:
    obj = pod()
    obj["spec"]["containers"].append(sidecar(None))
    result, _, _ = run(obj)
    assert result["spec"]["containers"][1]["resources"]["limits"] == {"cpu": "1", "memory": "256Mi"}


# --- properties ------------------------------------------------------------------------------

quantities = st.one_of(
    st.sampled_from(
        [
            "0",
            "1",
            "2",
            "100m",
            "500m",
            "999m",
            "1001m",
            "64Mi",
            "128Mi",
            "1Gi",
            "256Mi",
            "300M",
            "1e9",
            "0.5",
            "abc",
            "",
            "-5",
            "1.5Gi",
            "12Ki",
        ]
    ),
    st.text(alphabet="0123456789.mMGiKe-", max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(
    annotations=st.dictionaries(st.sampled_from(list(PROXY_ANNOTATIONS.values())), quantities),
    tenant=st.sampled_from(["tenant-a", "tenant-b"]),
    label=st.one_of(st.none(), st.sampled_from(["tenant-a", "tenant-b", "x"])),
)
def test_mutation_bounds_everything_and_is_idempotent(
    annotations: dict[str, str], tenant: str, label: str | None
) -> None:
    result, _, _ = run(
        pod(labels={"tenant": label} if label else None, annotations=annotations), tenant=tenant
    )
    bounds = CONFIG.proxy_bounds(tenant)
    final = result["metadata"]["annotations"]
    assert result["metadata"]["labels"]["tenant"] == tenant
    for key, bound in bounds.items():
        assert parse_quantity(final[PROXY_ANNOTATIONS[key]]) <= bound.value
    assert parse_quantity(final[CPU]) <= parse_quantity(final[CPU_LIMIT])
    assert parse_quantity(final[MEMORY]) <= parse_quantity(final[MEMORY_LIMIT])
    again, warnings, patch = run(result, tenant=tenant)
    assert patch == [] and warnings == [] and again == result
