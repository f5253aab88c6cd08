"""Objects tenant-guard manages (SPEC.md §11): tenants may not change, delete or forge them.
Pure decisions on reviews derived from a captured Sidecar CREATE (DELETE in the captured
shape: `object: null`, the stored object in `oldObject`), then the same through the real server."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tests.builders import (
    ABSENT,
    ADMIN,
    KEEP,
    NAMESPACES,
    TENANT_USER,
    config_data,
    derive,
    make_view,
    message_of,
    request_of,
    validate,
)
from tests.server_harness import RunningServer, running_server
from webhook.config.model import Config, parse_config
from webhook.config.store import ConfigStore
from webhook.server.app import Runtime

SIDECAR = "sidecar-create-egress-hosts.json"  # tenant-a/default, by kubernetes-admin
MANAGED = {"app.kubernetes.io/managed-by": "tenant-guard", "tenant-guard.io/tenant": "tenant-a"}
OTHER = {"app.kubernetes.io/managed-by": "helm"}
GUARD = {
    "username": "system:serviceaccount:tenant-guard:tenant-guard",
    "groups": ["system:serviceaccounts", "system:serviceaccounts:tenant-guard"],
}
NAMESPACE_CONTROLLER = {
    "username": "system:serviceaccount:kube-system:namespace-controller",
    "groups": ["system:serviceaccounts"],
}
BREAK_GLASS = {"username": "oncall@example.com", "groups": ["sre"]}
BASELINE = {
    "objects": [
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Sidecar",
            "metadata": {"name": "default"},
            "spec": {"egress": [{"hosts": ["./*"]}]},
        }
    ]
}


def config(**changes: Any) -> Config:
    data = config_data(baseline=BASELINE, exempt={"users": ["oncall@example.com"]})
    data.update(changes)
    return parse_config(data)


def review(
    operation: str,
    user: Mapping[str, Any],
    labels: Any = MANAGED,
    old_labels: Any = KEEP,
    namespace: str = "tenant-a",
) -> dict[str, Any]:
    """The captured Sidecar CREATE turned into `operation` by `user`; UPDATE and DELETE carry
    the stored object (labels `old_labels`, the same as `labels` unless given)."""
    if operation == "CREATE":
        return derive(SIDECAR, labels=labels, user=dict(user), namespace=namespace)
    stored = labels if old_labels is KEEP else old_labels
    return derive(
        SIDECAR,
        operation=operation,
        labels=labels,
        old_labels=stored,
        user=dict(user),
        namespace=namespace,
    )


CASES = [
    # (operation, user, labels, old labels, allowed)
    pytest.param("DELETE", TENANT_USER, MANAGED, KEEP, False, id="tenant-deletes-managed"),
    pytest.param("UPDATE", TENANT_USER, MANAGED, KEEP, False, id="tenant-updates-managed"),
    pytest.param("UPDATE", TENANT_USER, ABSENT, MANAGED, False, id="tenant-removes-the-label"),
    pytest.param("UPDATE", TENANT_USER, OTHER, MANAGED, False, id="tenant-changes-the-label"),
    pytest.param("CREATE", TENANT_USER, MANAGED, KEEP, False, id="tenant-creates-with-label"),
    pytest.param("UPDATE", TENANT_USER, MANAGED, ABSENT, False, id="tenant-adds-the-label"),
    pytest.param("DELETE", GUARD, MANAGED, KEEP, True, id="own-identity-deletes"),
    pytest.param("UPDATE", GUARD, MANAGED, KEEP, True, id="own-identity-applies"),
    pytest.param("CREATE", GUARD, MANAGED, KEEP, True, id="own-identity-creates"),
    pytest.param("DELETE", NAMESPACE_CONTROLLER, MANAGED, KEEP, True, id="namespace-deletion"),
    pytest.param("DELETE", ADMIN, MANAGED, KEEP, True, id="label-admin-deletes"),
    pytest.param("UPDATE", ADMIN, MANAGED, KEEP, True, id="label-admin-updates"),
    pytest.param("DELETE", BREAK_GLASS, MANAGED, KEEP, True, id="exempt-deletes"),
]


@pytest.mark.parametrize(("operation", "user", "labels", "old_labels", "allowed"), CASES)
def test_managed_objects(
    operation: str, user: dict[str, Any], labels: Any, old_labels: Any, allowed: bool
) -> None:
    decision = validate(request_of(review(operation, user, labels, old_labels)), config=config())
    assert decision.allowed is allowed, message_of(decision)
    if not allowed:
        status = decision.response["response"]["status"]
        assert (status["code"], status["reason"]) == (403, "Forbidden")
        assert decision.violations[0].rule == "managed-object"


@pytest.mark.parametrize(
    ("operation", "labels", "old_labels", "message"),
    [
        pytest.param(
            "DELETE",
            MANAGED,
            KEEP,
            'Sidecar tenant-a/default: metadata.labels["app.kubernetes.io/managed-by"] '
            '"tenant-guard" marks it: the platform manages this object (tenant-guard keeps the '
            "tenant baseline); alice@example.com may not delete it. Fix: leave it in place "
            "(tenant-guard restores it anyway), or ask the platform team to change the baseline "
            "in the tenant-guard config",
            id="delete",
        ),
        pytest.param(
            "UPDATE",
            MANAGED,
            KEEP,
            "alice@example.com may not change it. Fix: leave it as tenant-guard applied it",
            id="update",
        ),
        pytest.param(
            "CREATE",
            MANAGED,
            KEEP,
            '"tenant-guard" is reserved for objects the platform manages (tenant-guard); '
            "alice@example.com may not set it. Fix: remove the label",
            id="create",
        ),
    ],
)
def test_denials_name_the_object_and_who_manages_it(
    operation: str, labels: Any, old_labels: Any, message: str
) -> None:
    decision = validate(
        request_of(review(operation, TENANT_USER, labels, old_labels)), config=config()
    )
    assert message in message_of(decision)


def test_delete_review_has_the_captured_shape() -> None:
    request = review("DELETE", TENANT_USER)["request"]
    assert request["object"] is None
    assert request["oldObject"]["metadata"]["labels"] == MANAGED


def test_dry_run_gets_the_same_answer() -> None:
    plain = review("DELETE", TENANT_USER)
    dry = review("DELETE", TENANT_USER)
    dry["request"]["dryRun"] = True
    first = validate(request_of(plain), config=config()).response
    second = validate(request_of(dry), config=config()).response
    assert first == second


def test_without_a_baseline_only_label_admins_and_exempt_may_write() -> None:
    no_baseline = parse_config(config_data())
    guard = validate(request_of(review("DELETE", GUARD)), config=no_baseline)
    assert guard.allowed is False
    admin = validate(request_of(review("DELETE", ADMIN)), config=no_baseline)
    assert admin.allowed is True


def test_in_a_platform_namespace_managed_objects_are_not_protected() -> None:
    decision = validate(
        request_of(review("DELETE", TENANT_USER, namespace="istio-system")), config=config()
    )
    assert decision.allowed is True


def test_global_warn_mode_warns_instead() -> None:
    decision = validate(
        request_of(review("DELETE", TENANT_USER)), config=config(enforcement="warn")
    )
    assert decision.allowed is True
    assert "may not delete it" in decision.response["response"]["warnings"][0]


def test_a_namespace_in_warn_mode_still_protects_the_baseline() -> None:
    view = make_view(labels={"tenant-a": {"tenant-guard.io/enforcement": "warn"}})
    decision = validate(request_of(review("DELETE", TENANT_USER)), view, config())
    assert decision.allowed is False


def test_an_unlabelled_sidecar_is_left_to_the_kinds_own_handling() -> None:
    # Not a managed object: the managed-objects webhook never sends it (objectSelector), and the
    # Sidecar's own egress rule judges it (SPEC §11): "./*" and "istio-system/*" are fine, ...
    sidecar = review("CREATE", TENANT_USER, labels=ABSENT)
    assert validate(request_of(sidecar), config=config()).allowed is True
    # ... and an egress host in another tenant's namespace is that rule's violation, not this one's.
    sidecar["request"]["object"]["spec"]["egress"][0]["hosts"].append("tenant-b/*")
    decision = validate(request_of(sidecar), config=config())
    assert [v.rule for v in decision.violations] == ["sidecar-egress"]


def test_a_label_that_is_not_a_map_is_refused_not_allowed() -> None:
    bad = review("DELETE", TENANT_USER)
    bad["request"]["oldObject"]["metadata"]["labels"] = ["x"]
    decision = validate(request_of(bad), config=config())
    assert decision.allowed is False
    assert "oldObject.metadata.labels must be an object" in message_of(decision)


# --- through the real server ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def guard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = config_data(baseline=BASELINE, namespaces=NAMESPACES)
    runtime = Runtime(ConfigStore.fixed(parse_config(data)))
    with running_server(runtime, tmp_path_factory.mktemp("certs")) as running:
        yield running


@pytest.mark.parametrize(
    ("operation", "user", "allowed"),
    [
        pytest.param("DELETE", TENANT_USER, False, id="tenant-delete"),
        pytest.param("UPDATE", TENANT_USER, False, id="tenant-update"),
        pytest.param("CREATE", TENANT_USER, False, id="tenant-create"),
        pytest.param("DELETE", GUARD, True, id="own-identity-delete"),
        pytest.param("UPDATE", GUARD, True, id="own-identity-apply"),
        pytest.param("DELETE", ADMIN, True, id="label-admin-delete"),
    ],
)
def test_through_the_server(
    guard_server: RunningServer, operation: str, user: dict[str, Any], allowed: bool
) -> None:
    body = review(operation, user)
    with guard_server.client() as client:
        response = client.post("/validate", json=body)
    assert response.status_code == 200
    answer = response.json()["response"]
    assert answer["uid"] == body["request"]["uid"]
    assert answer["allowed"] is allowed
    if not allowed:
        assert answer["status"]["code"] == 403
        assert "Sidecar tenant-a/default" in answer["status"]["message"]
        assert "the platform manages this object" in answer["status"]["message"] or (
            "reserved for objects the platform manages" in answer["status"]["message"]
        )
