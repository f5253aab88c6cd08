"""The real server over real TLS: endpoints, captured reviews, patches, and bad input."""

from __future__ import annotations

import base64
import copy
import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import pytest

from tests.builders import FIXTURES, retarget
from tests.conftest import EXAMPLE_CONFIG, load_fixture
from tests.server_harness import RunningServer, running_server
from webhook.certificates.authority import generate_bundle, write_bundle
from webhook.config.model import Config
from webhook.config.store import ConfigStore
from webhook.server.app import Runtime
from webhook.tenancy.view import TenancyView


def post(server: RunningServer, path: str, body: Any) -> httpx.Response:
    with server.client() as client:
        if isinstance(body, bytes | str):
            return client.post(path, content=body, headers={"content-type": "application/json"})
        return client.post(path, json=body)


def answer(server: RunningServer, path: str, review: dict[str, Any]) -> dict[str, Any]:
    response = post(server, path, review)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["apiVersion"] == "admission.k8s.io/v1"
    assert body["kind"] == "AdmissionReview"
    assert body["response"]["uid"] == review["request"]["uid"]
    return body["response"]


def patched(obj: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    if "patch" not in response:
        return obj
    assert response["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(response["patch"]))
    result: dict[str, Any] = jsonpatch.apply_patch(obj, patch)
    return result


# --- TLS and plain endpoints -----------------------------------------------------------------


def test_healthz_and_readyz_over_verified_tls(server: RunningServer) -> None:
    with server.client() as client:
        assert client.get("/healthz").text == "ok\n"
        ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "detail": []}


def test_client_that_does_not_trust_the_ca_is_refused(server: RunningServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    write_bundle(generate_bundle("other", "other"), tmp_path)
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(server.url + "/healthz", verify=context)


def test_plain_http_is_not_served(server: RunningServer) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url.replace("https://", "http://") + "/healthz", timeout=5)


def test_metrics_count_decisions(server: RunningServer) -> None:
    answer(
        server, "/validate", load_fixture("virtualservice-create-v1alpha3-cross-tenant-host.json")
    )
    with server.client() as client:
        text = client.get("/metrics").text
    assert "tenant_guard_admission_requests_total{" in text
    assert 'decision="denied"' in text and 'rule="host-ownership"' in text
    assert "tenant_guard_admission_duration_seconds_bucket" in text


# --- Pod mutation through the server ---------------------------------------------------------


@pytest.mark.parametrize(
    "fixture",
    [
        pytest.param("pod-create-plain.json", id="plain"),
        pytest.param("pod-create-labels-annotations.json", id="labels-annotations"),
        pytest.param("pod-create-generatename-no-labels.json", id="generatename"),
        pytest.param("pod-create-dryrun-plain.json", id="dry-run-plain"),
        pytest.param("pod-create-dryrun-labels-annotations.json", id="dry-run-labels-annotations"),
        pytest.param("pod-create-kubectl-run.json", id="kubectl-run"),
    ],
)
def test_captured_pod_gets_label_and_bounds_and_second_round_is_a_no_op(
    server: RunningServer, fixture: str
) -> None:
    review = load_fixture(fixture, mutating=True)
    pod = review["request"]["object"]
    namespace = review["request"]["namespace"]
    response = answer(server, "/mutate", review)
    assert response["allowed"] is True
    result = patched(pod, response)

    tenant = {"tenant-a": "tenant-a", "tenant-b": "tenant-b"}[namespace]
    limit_cpu = "1" if tenant == "tenant-a" else "500m"  # tenant-a overrides cpuLimit
    assert result["metadata"]["labels"]["tenant"] == tenant
    annotations = result["metadata"]["annotations"]
    assert annotations["sidecar.istio.io/proxyCPU"] == "100m"
    assert annotations["sidecar.istio.io/proxyCPULimit"] == limit_cpu
    assert annotations["sidecar.istio.io/proxyMemory"] == "128Mi"
    assert annotations["sidecar.istio.io/proxyMemoryLimit"] == "256Mi"
    # Nothing else changed: other labels, annotations and the spec are as sent.
    for key, value in (pod["metadata"].get("labels") or {}).items():
        assert result["metadata"]["labels"][key] == value
    for key, value in (pod["metadata"].get("annotations") or {}).items():
        if not key.startswith("sidecar.istio.io/proxy"):
            assert annotations[key] == value
    assert result["spec"] == pod["spec"]

    again = copy.deepcopy(review)
    again["request"]["object"] = result
    again["request"]["uid"] = "second-round"
    second = answer(server, "/mutate", again)
    assert second["allowed"] is True
    assert "patch" not in second and "patchType" not in second


def test_clamped_annotations_are_reported_as_warnings(server: RunningServer) -> None:
    review = load_fixture("pod-create-labels-annotations.json", mutating=True)
    response = answer(server, "/mutate", review)
    result = patched(review["request"]["object"], response)
    annotations = result["metadata"]["annotations"]
    assert annotations["sidecar.istio.io/proxyCPULimit"] == "1"  # was "2", tenant-a bound "1"
    assert annotations["sidecar.istio.io/proxyMemoryLimit"] == "256Mi"  # was "1Gi"
    warnings = " ".join(response["warnings"])
    assert 'proxyCPULimit "2" is above the bound; clamped to 1' in warnings
    assert 'proxyMemoryLimit "1Gi" is above the bound; clamped to 256Mi' in warnings


def test_garbage_quantity_in_annotation_is_replaced_with_a_warning(server: RunningServer) -> None:
    review = load_fixture("pod-create-labels-annotations.json", mutating=True)
    review["request"]["object"]["metadata"]["annotations"]["sidecar.istio.io/proxyMemory"] = "lots"
    response = answer(server, "/mutate", review)
    result = patched(review["request"]["object"], response)
    assert result["metadata"]["annotations"]["sidecar.istio.io/proxyMemory"] == "128Mi"
    assert any('"lots" is not a quantity' in w for w in response["warnings"])


def test_dry_run_pod_gets_the_same_answer_as_the_real_one(server: RunningServer) -> None:
    real = load_fixture("pod-create-plain.json", mutating=True)
    dry = copy.deepcopy(real)
    dry["request"]["dryRun"] = True
    dry["request"]["options"]["dryRun"] = ["All"]
    assert answer(server, "/mutate", real) == answer(server, "/mutate", dry)


# One real Pod DELETE calls each webhook two or three times (graceful deletion, then the
# storage delete; how many depends on timing): every call captured is answered alike.
POD_DELETES = sorted(path.name for path in FIXTURES.glob("pod-delete*.json"))


def test_a_pod_delete_calls_the_webhooks_more_than_once() -> None:
    assert {"pod-delete.json", "pod-delete-2.json", "pod-delete-dryrun.json"} <= set(POD_DELETES)


@pytest.mark.parametrize("fixture", POD_DELETES)
def test_pod_delete_is_allowed_every_time(server: RunningServer, fixture: str) -> None:
    for mutating in (False, True):
        review = load_fixture(fixture, mutating=mutating)
        response = answer(server, "/mutate" if mutating else "/validate", review)
        assert response == {"uid": review["request"]["uid"], "allowed": True}


def test_pod_in_platform_namespace_is_untouched(server: RunningServer) -> None:
    review = load_fixture("pod-create-plain.json", mutating=True)
    review["request"]["namespace"] = "istio-system"
    review["request"]["object"]["metadata"]["namespace"] = "istio-system"
    assert answer(server, "/mutate", review) == {"uid": review["request"]["uid"], "allowed": True}


# --- validation through the server -----------------------------------------------------------


def test_cross_tenant_virtualservice_is_denied_with_a_readable_message(
    server: RunningServer,
) -> None:
    review = load_fixture("virtualservice-create-v1alpha3-cross-tenant-host.json")
    response = answer(server, "/validate", review)
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert response["status"]["reason"] == "Forbidden"
    message = response["status"]["message"]
    assert 'VirtualService tenant-b/reviews-hijack: spec.hosts[0] "reviews.tenant-a.svc' in message
    assert 'belongs to tenant "tenant-a"' in message
    assert "Fix:" in message


# --- bad input -------------------------------------------------------------------------------


def test_not_json_is_a_400_with_the_reason(server: RunningServer) -> None:
    response = post(server, "/validate", b"{this is not json")
    assert response.status_code == 400
    assert "not JSON" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param([], "got JSON list", id="json-list"),
        pytest.param({"kind": "Pod"}, "expected kind AdmissionReview", id="some-other-object"),
        pytest.param(
            {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}},
            "admissionReviewVersions: [v1]",
            id="v1beta1-review",
        ),
        pytest.param(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"},
            "has no request",
            id="no-request",
        ),
    ],
)
def test_json_that_is_not_an_admission_review_is_a_400(
    server: RunningServer, body: Any, expected: str
) -> None:
    response = post(server, "/validate", body)
    assert response.status_code == 400
    assert expected in response.json()["error"]


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        pytest.param(lambda r: r["request"].pop("uid"), "request.uid", id="missing-uid"),
        pytest.param(lambda r: r["request"].update(uid=""), "request.uid", id="empty-uid"),
        pytest.param(lambda r: r["request"].update(operation="PATCH"), "operation", id="bad-op"),
        pytest.param(lambda r: r["request"].update(object="pod"), "object", id="object-not-map"),
        pytest.param(lambda r: r["request"].pop("kind"), "request.kind", id="missing-kind"),
    ],
)
def test_malformed_request_is_a_400_naming_the_field(
    server: RunningServer, mutation: Any, expected: str
) -> None:
    review = load_fixture("pod-create-plain.json", mutating=True)
    mutation(review)
    response = post(server, "/mutate", review)
    assert response.status_code == 400
    assert expected in response.json()["error"]


def test_oversized_body_is_a_413(server: RunningServer) -> None:
    review = load_fixture("pod-create-plain.json", mutating=True)
    review["request"]["object"]["metadata"]["annotations"] = {"big": "x" * (4 * 1024 * 1024)}
    response = post(server, "/mutate", review)
    assert response.status_code == 413


def test_object_that_is_not_a_pod_under_pods_is_denied(server: RunningServer) -> None:
    review = load_fixture("pod-create-plain.json", mutating=True)
    review["request"]["object"] = load_fixture("virtualservice-create-short-host.json")["request"][
        "object"
    ]
    response = answer(server, "/mutate", review)
    assert response["allowed"] is False
    assert "is 'VirtualService'" in response["status"]["message"]
    assert "patch" not in response


def test_pod_with_wrong_shaped_labels_is_denied_not_patched(server: RunningServer) -> None:
    review = load_fixture("pod-create-plain.json", mutating=True)
    review["request"]["object"]["metadata"]["labels"] = ["not", "a", "map"]
    response = answer(server, "/mutate", review)
    assert response["allowed"] is False
    assert "metadata.labels must be an object" in response["status"]["message"]


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param("reviews", id="string"),
        pytest.param(7, id="number"),
        pytest.param(["reviews"], id="list"),
        pytest.param(True, id="boolean"),
    ],
)
@pytest.mark.parametrize(
    ("path", "fixture", "mutating"),
    [
        pytest.param("/validate", "virtualservice-create-short-host.json", False, id="validate"),
        pytest.param("/mutate", "pod-create-generatename-no-labels.json", True, id="mutate"),
    ],
)
def test_metadata_that_is_not_an_object_is_denied_not_a_500(
    server: RunningServer, path: str, fixture: str, mutating: bool, metadata: Any
) -> None:
    review = load_fixture(fixture, mutating=mutating)
    review["request"]["object"]["metadata"] = metadata
    response = answer(server, path, review)  # HTTP 200, the uid echoed
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    assert "metadata must be an object" in response["status"]["message"]
    assert "patch" not in response


@pytest.mark.parametrize(
    ("fixture", "group", "resource", "kind"),
    [
        pytest.param(
            "httproute-create-parentref.json",
            "gateway.networking.k8s.io",
            "referencegrants",
            "ReferenceGrant",
            id="gateway-api-referencegrant",
        ),
        pytest.param(
            "sidecar-create-egress-hosts.json",
            "security.istio.io",
            "authorizationpolicies",
            "AuthorizationPolicy",
            id="istio-authorizationpolicy",
        ),
    ],
)
def test_unknown_kind_is_not_admitted(
    server: RunningServer, fixture: str, group: str, resource: str, kind: str
) -> None:
    for path, mutating in (("/validate", False), ("/mutate", True)):
        review = retarget(load_fixture(fixture, mutating=mutating), group, resource, kind)
        response = answer(server, path, review)
        assert response["allowed"] is False
        assert "has no policy for" in response["status"]["message"]


def test_unknown_route_and_wrong_method(server: RunningServer) -> None:
    with server.client() as client:
        assert client.post("/admit", json={}).status_code == 404
        assert client.get("/validate").status_code == 405


def test_deeply_nested_object_is_refused_cleanly(server: RunningServer) -> None:
    review = load_fixture("pod-create-plain.json", mutating=True)
    text = json.dumps(review).replace('"status": {}', '"status": ' + "[" * 50_000 + "]" * 50_000)
    response = post(server, "/mutate", text)
    assert response.status_code == 400
    assert response.json()["error"]
    with server.client() as client:
        assert client.get("/healthz").status_code == 200  # still serving


def test_an_object_nested_deeper_than_pydantics_reader_goes_is_judged(
    server: RunningServer,
) -> None:
    review = load_fixture("virtualservice-create-short-host.json")
    review["request"]["object"]["spec"]["hosts"] = "nested"
    text = json.dumps(review).replace('"nested"', "[" * 1_000 + "]" * 1_000)
    answer = post(server, "/validate", text).json()["response"]
    assert answer["allowed"] is False and answer["status"]["reason"] == "BadRequest"
    assert (
        "spec.hosts[0] must be a string, got (a value nested too deep to show)"
        in answer["status"]["message"]
    )


class _BrokenView(TenancyView):
    def tenant_of(self, namespace: str | None, config: Config) -> str | None:
        raise RuntimeError("a bug in a policy")


class _BrokenTenancy:
    async def view_for(self, namespace: str | None) -> TenancyView:
        return _BrokenView({})

    def readiness(self) -> tuple[bool, list[str]]:
        return True, []


def test_a_policy_that_crashes_denies_and_logs_the_uid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = Runtime(ConfigStore(EXAMPLE_CONFIG), _BrokenTenancy())
    review = load_fixture("pod-create-plain.json", mutating=True)
    with running_server(runtime, tmp_path) as broken:
        for path in ("/mutate", "/validate"):
            response = answer(broken, path, review)
            assert response["allowed"] is False
            assert response["status"]["code"] == 500
            assert "not admitted" in response["status"]["message"]
            assert "patch" not in response
    assert any(
        review["request"]["uid"] in record.getMessage() and record.exc_info
        for record in caplog.records
    )
