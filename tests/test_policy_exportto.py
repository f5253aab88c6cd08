"""exportTo (SPEC.md §4): VirtualService, DestinationRule, ServiceEntry, Service annotation."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from tests.builders import (
    ABSENT,
    DR_CREATE,
    DR_UPDATE,
    SE_CREATE,
    VS_CREATE,
    VS_UPDATE,
    load_review,
    make_request,
    message_of,
    mutate,
    patch_of,
    request_of,
    service_review,
    validate,
    vs_request,
)
from webhook.policies.exportto import check_export_to

# --- the rule on one list --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("export_to", "gateway_namespaces", "tilde", "fields"),
    [
        pytest.param(["."], (), False, [], id="dot"),
        pytest.param(["tenant-a"], (), False, [], id="own-namespace"),
        pytest.param([".", "tenant-a"], (), False, [], id="dot-and-own"),
        # Istio reads an absent or empty exportTo as the mesh default, which is "*".
        pytest.param(None, (), False, ["spec.exportTo"], id="absent"),
        pytest.param([], (), False, ["spec.exportTo"], id="empty"),
        pytest.param(["*"], (), False, ["spec.exportTo[0]"], id="star"),
        pytest.param([".", "*"], (), False, ["spec.exportTo[1]"], id="dot-and-star"),
        pytest.param(["other-ns"], (), False, ["spec.exportTo[0]"], id="other-namespace"),
        pytest.param(
            ["tenant-b", "*", "."],
            (),
            False,
            ["spec.exportTo[0]", "spec.exportTo[1]"],
            id="two-bad-one-good",
        ),
        pytest.param(["~"], (), False, ["spec.exportTo[0]"], id="tilde-not-serviceentry"),
        pytest.param(["~"], (), True, [], id="tilde-serviceentry"),
        pytest.param(["istio-system"], {"istio-system"}, False, [], id="bound-gateway-namespace"),
        pytest.param(["istio-system"], (), False, ["spec.exportTo[0]"], id="unbound-namespace"),
    ],
)
def test_check_export_to(
    export_to: list[str] | None, gateway_namespaces: Any, tilde: bool, fields: list[str]
) -> None:
    violations = check_export_to(
        export_to, "tenant-a", gateway_namespaces=gateway_namespaces, tilde=tilde
    )
    assert [v.field for v in violations] == fields
    assert all(v.rule == "export-to" and v.fix for v in violations)


def test_absent_and_empty_are_told_apart() -> None:
    assert check_export_to(None, "tenant-a")[0].value == "absent"
    assert check_export_to([], "tenant-a")[0].value == "[]"


# --- through decide, for each kind -----------------------------------------------------------

KINDS = {
    "VirtualService": VS_CREATE,
    "DestinationRule": DR_CREATE,
    "ServiceEntry": SE_CREATE,
}


def _spec_with_export(fixture: str, export_to: Any, mutating: bool = False) -> dict[str, Any]:
    """The captured object's spec with exportTo set (ABSENT removes it)."""
    review = load_review(fixture, mutating=mutating)
    spec: dict[str, Any] = copy.deepcopy(review["request"]["object"]["spec"])
    spec.pop("exportTo", None)
    if export_to is not ABSENT:
        spec["exportTo"] = export_to
    if review["request"]["kind"]["kind"] == "VirtualService":
        spec["hosts"] = ["reviews"]
    return spec


def _request(kind: str, export_to: Any, mutating: bool = False, **changes: Any) -> Any:
    fixture = KINDS[kind]
    spec = _spec_with_export(fixture, export_to, mutating)
    return make_request(fixture, mutating=mutating, spec=spec, **changes)


SE, DR, VS = "ServiceEntry", "DestinationRule", "VirtualService"
ALL = (VS, DR, SE)

# (exportTo, {kind: fields in violation}); kinds not named have none.
KIND_ROWS = [
    pytest.param(ABSENT, dict.fromkeys(ALL, ("spec.exportTo",)), id="absent"),
    pytest.param([], dict.fromkeys(ALL, ("spec.exportTo",)), id="empty"),
    pytest.param(None, dict.fromkeys(ALL, ("spec.exportTo",)), id="null"),
    pytest.param(["."], {}, id="dot"),
    pytest.param(["tenant-a"], {}, id="own-namespace"),
    pytest.param(["*"], dict.fromkeys(ALL, ("spec.exportTo[0]",)), id="star"),
    pytest.param([".", "*"], dict.fromkeys(ALL, ("spec.exportTo[1]",)), id="dot-and-star"),
    pytest.param(["tenant-b"], dict.fromkeys(ALL, ("spec.exportTo[0]",)), id="other-tenant-ns"),
    pytest.param(
        ["tenant-a-dev"], dict.fromkeys(ALL, ("spec.exportTo[0]",)), id="same-tenant-other-ns"
    ),
    pytest.param(["~"], {VS: ("spec.exportTo[0]",), DR: ("spec.exportTo[0]",)}, id="tilde"),
    pytest.param(
        [".", "~"], {VS: ("spec.exportTo[1]",), DR: ("spec.exportTo[1]",)}, id="dot-and-tilde"
    ),
    pytest.param(
        ["istio-system"],
        dict.fromkeys(ALL, ("spec.exportTo[0]",)),
        id="gateway-namespace-without-binding",
    ),
]


@pytest.mark.parametrize("kind", ALL)
@pytest.mark.parametrize(("export_to", "fields"), KIND_ROWS)
def test_export_to_by_kind(kind: str, export_to: Any, fields: dict[str, tuple[str, ...]]) -> None:
    request = _request(kind, export_to)
    assert request.kind.kind == kind
    decision = validate(request)
    expected = list(fields.get(kind, ()))
    assert [v.field for v in decision.violations] == expected
    assert decision.allowed is not expected
    if expected:
        assert message_of(decision).startswith(f"{kind} tenant-a/{request.name}: spec.exportTo")


@pytest.mark.parametrize("kind", ALL)
def test_export_to_is_checked_on_update(kind: str) -> None:
    fixture = {VS: VS_UPDATE, DR: DR_UPDATE, SE: SE_CREATE}[kind]
    spec = _spec_with_export(fixture, ["*"])
    request = make_request(fixture, operation="UPDATE", spec=spec)
    assert request.operation == "UPDATE" and request.old_object is not None
    assert [v.field for v in validate(request).violations] == ["spec.exportTo[0]"]


@pytest.mark.parametrize(
    ("gateways", "export_to", "fields"),
    [
        pytest.param(
            ["istio-system/public-gateway"],
            [".", "istio-system"],
            [],
            id="shared-gateway-namespace",
        ),
        pytest.param(
            ["istio-system/public-gateway"],
            ["istio-system"],
            [],
            id="only-shared-gateway-namespace",
        ),
        pytest.param(
            ["public-gateway.istio-system.svc.cluster.local"],
            [".", "istio-system"],
            [],
            id="shared-gateway-legacy-form",
        ),
        pytest.param(
            ["tenant-a-dev/gw"], [".", "tenant-a-dev"], [], id="same-tenant-gateway-namespace"
        ),
        pytest.param(
            ["mesh"], [".", "istio-system"], ["spec.exportTo[1]"], id="mesh-only-no-binding"
        ),
        pytest.param(
            ["tenant-a/gw"],
            [".", "istio-system"],
            ["spec.exportTo[1]"],
            id="own-gateway-no-binding",
        ),
        pytest.param(
            ["istio-system/internal"],
            [".", "istio-system"],
            ["spec.gateways[0]", "spec.exportTo[1]"],
            id="binding-not-allowed",
        ),
        pytest.param(
            ["tenant-b/gw"],
            [".", "tenant-b"],
            ["spec.gateways[0]", "spec.exportTo[1]"],
            id="other-tenant-gateway",
        ),
        pytest.param(
            ["istio-system/public-gateway"],
            [".", "istio-system", "*"],
            ["spec.exportTo[2]"],
            id="shared-gateway-and-star",
        ),
    ],
)
def test_virtualservice_may_export_to_its_bound_gateways(
    gateways: list[str], export_to: list[str], fields: list[str]
) -> None:
    decision = validate(vs_request(["reviews"], gateways=gateways, export_to=export_to))
    assert [v.field for v in decision.violations] == fields


def test_destinationrule_gets_no_gateway_allowance() -> None:
    # Only a VirtualService binds to gateways; its exportTo allowance does not carry over.
    spec = _spec_with_export(DR_CREATE, [".", "istio-system"])
    decision = validate(make_request(DR_CREATE, spec=spec))
    assert [v.field for v in decision.violations] == ["spec.exportTo[1]"]


# --- the core Service annotation -------------------------------------------------------------

ANNOTATION = "networking.istio.io/exportTo"
ANNOTATION_FIELD = 'metadata.annotations["networking.istio.io/exportTo"]'


@pytest.mark.parametrize(
    ("value", "fields"),
    [
        # No annotation leaves the Service to the mesh's defaultServiceExportTo (the
        # implementation's documented reading: shared ingress gateways must see Services).
        pytest.param(None, [], id="absent"),
        pytest.param(".", [], id="dot"),
        pytest.param("tenant-a", [], id="own-namespace"),
        pytest.param(". , tenant-a", [], id="comma-list-with-spaces"),
        pytest.param(" . ", [], id="padded-dot"),
        pytest.param("*", [f"{ANNOTATION_FIELD}[0]"], id="star"),
        pytest.param(".,*", [f"{ANNOTATION_FIELD}[1]"], id="dot-comma-star"),
        pytest.param(". , *", [f"{ANNOTATION_FIELD}[1]"], id="dot-comma-star-spaces"),
        pytest.param("tenant-b", [f"{ANNOTATION_FIELD}[0]"], id="other-tenant"),
        pytest.param(" tenant-a ,tenant-b", [f"{ANNOTATION_FIELD}[1]"], id="own-and-other"),
        pytest.param("", [ANNOTATION_FIELD], id="empty"),
        pytest.param(" , ", [ANNOTATION_FIELD], id="only-commas-and-spaces"),
        # A Service may be seen by the shared gateways' namespace (implementation's choice).
        pytest.param(".,istio-system", [], id="shared-gateway-namespace"),
    ],
)
def test_service_export_annotation(value: str | None, fields: list[str]) -> None:
    annotations = None if value is None else {ANNOTATION: value, "app.kubernetes.io/name": "x"}
    request = request_of(service_review(annotations))
    decision = validate(request)
    assert [v.field for v in decision.violations] == fields
    assert decision.allowed is not fields
    if fields:
        assert message_of(decision).startswith(f"Service tenant-a/reviews: {ANNOTATION_FIELD}")
    # Services are not mutated.
    assert patch_of(mutate(request)) is None


def test_service_export_annotation_on_update_and_delete() -> None:
    update = request_of(service_review({ANNOTATION: "*"}, operation="UPDATE"))
    assert not validate(update).allowed
    delete = request_of(service_review({ANNOTATION: "*"}, operation="DELETE"))
    assert validate(delete).allowed


def test_service_in_platform_namespace_is_not_judged() -> None:
    request = request_of(service_review({ANNOTATION: "*"}, namespace="istio-system"))
    assert validate(request).allowed


# --- the mutating side -----------------------------------------------------------------------


def _apply(request: Any) -> tuple[dict[str, Any] | None, list[str]]:
    decision = mutate(request)
    assert decision.allowed
    patch = patch_of(decision)
    if patch is None:
        return None, decision.response["response"].get("warnings", [])
    patched: dict[str, Any] = jsonpatch.apply_patch(request.obj, patch)
    return patched, decision.response["response"].get("warnings", [])


@pytest.mark.parametrize("kind", ALL)
@pytest.mark.parametrize("export_to", [ABSENT, [], None], ids=["absent", "empty", "null"])
def test_mutation_sets_a_local_export_to(kind: str, export_to: Any) -> None:
    request = _request(kind, export_to, mutating=True)
    patched, warnings = _apply(request)
    assert patched is not None
    assert patched["spec"]["exportTo"] == ["."]
    assert any("spec.exportTo" in w for w in warnings)
    # only exportTo changed
    original = copy.deepcopy(request.obj)
    assert original is not None
    original["spec"]["exportTo"] = ["."]
    assert patched == original

    # second round: the patched object needs no patch, and passes validation
    again = make_request(KINDS[kind], mutating=True, spec=patched["spec"])
    assert patch_of(mutate(again)) is None
    assert validate(again).allowed


@pytest.mark.parametrize(
    ("gateways", "expected"),
    [
        pytest.param(["mesh"], ["."], id="mesh"),
        pytest.param(["tenant-a/gw"], ["."], id="own-namespace-gateway"),
        pytest.param(["istio-system/public-gateway", "mesh"], [".", "istio-system"], id="shared"),
        pytest.param(
            ["public-gateway.istio-system.svc.cluster.local"],
            [".", "istio-system"],
            id="shared-legacy-form",
        ),
        pytest.param(
            ["tenant-a-dev/gw", "istio-system/public-gateway"],
            [".", "istio-system", "tenant-a-dev"],
            id="shared-and-same-tenant",
        ),
        pytest.param(["tenant-b/gw"], ["."], id="other-tenant-gateway-not-exported-to"),
        pytest.param(["istio-system/internal"], ["."], id="platform-gateway-not-exported-to"),
    ],
)
def test_mutation_adds_bound_gateway_namespaces(gateways: list[str], expected: list[str]) -> None:
    request = vs_request(["reviews"], gateways=gateways, export_to=ABSENT, mutating=True)
    patched, _ = _apply(request)
    assert patched is not None
    assert patched["spec"]["exportTo"] == expected
    assert patched["spec"]["gateways"] == gateways
    again = vs_request(["reviews"], gateways=gateways, export_to=expected, mutating=True)
    assert patch_of(mutate(again)) is None


@pytest.mark.parametrize(
    ("kind", "export_to"),
    [
        pytest.param(VS, ["."], id="vs-dot"),
        pytest.param(VS, ["*"], id="vs-star-left-to-the-validator"),
        pytest.param(DR, ["."], id="dr-dot"),
        pytest.param(DR, ["tenant-b"], id="dr-other-namespace-left-to-the-validator"),
        pytest.param(SE, ["~"], id="se-tilde"),
        pytest.param(SE, [".", "*"], id="se-dot-and-star"),
    ],
)
def test_mutation_leaves_a_present_export_to_alone(kind: str, export_to: list[str]) -> None:
    decision = mutate(_request(kind, export_to, mutating=True))
    assert patch_of(decision) is None
    assert "warnings" not in decision.response["response"]


def test_mutation_on_update() -> None:
    spec = _spec_with_export(VS_UPDATE, ABSENT, mutating=True)
    request = make_request(VS_UPDATE, mutating=True, spec=spec)
    assert request.operation == "UPDATE"
    patched, _ = _apply(request)
    assert patched is not None and patched["spec"]["exportTo"] == ["."]


def test_mutation_of_captured_requests() -> None:
    # VS_CREATE was captured without exportTo; DR_CREATE with exportTo ["."].
    patched, _ = _apply(make_request(VS_CREATE, mutating=True))
    assert patched is not None and patched["spec"]["exportTo"] == ["."]
    assert patch_of(mutate(make_request(DR_CREATE, mutating=True))) is None


def test_service_annotation_fix_is_written_as_an_annotation_value() -> None:
    from tests.builders import make_config
    from webhook.policies import service as service_policy

    config = make_config()
    obj = {"metadata": {"annotations": {"networking.istio.io/exportTo": "*"}}}
    [violation] = service_policy.check(obj, "tenant-a", config)
    assert violation.field == 'metadata.annotations["networking.istio.io/exportTo"][0]'
    assert violation.fix == 'export only to this namespace: ".,istio-system"'
