"""The tenant label itself (SPEC.md §5b): who may set or change it on Namespaces and Pods."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    ABSENT,
    ADMIN,
    ENFORCEMENT_LABEL,
    KEEP,
    NAMESPACES,
    NS_CREATE,
    NS_CREATE_UNLABELLED,
    NS_UPDATE,
    POD_UPDATE,
    TENANT_USER,
    derive,
    make_config,
    make_request,
    make_view,
    message_of,
    request_of,
    validate,
    vs_request,
)

BOT = {"username": "system:serviceaccount:platform:namespace-bot", "groups": ["platform"]}
BREAK_GLASS = {"username": "break-glass@example.com", "groups": ["system:authenticated"]}
LOOK_ALIKE = {"username": "mallory", "groups": ["system:masters-ish", "system:authenticated"]}

CONFIG = make_config(
    labelAdmins={"groups": ["system:masters"], "users": [BOT["username"]]},
    exempt={"users": [BREAK_GLASS["username"]], "groups": []},
)

SYSTEM_LABEL = {"kubernetes.io/metadata.name": "tenant-b"}

# --- Namespace CREATE ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "labels", "user", "allowed"),
    [
        # The captured creates were made by kubernetes-admin, in system:masters.
        pytest.param(NS_CREATE, KEEP, ADMIN, True, id="captured-by-system-masters"),
        pytest.param("namespace-create-tenant-a.json", KEEP, ADMIN, True, id="captured-tenant-a"),
        pytest.param(
            "namespace-create-dryrun-tenant-c.json",
            KEEP,
            ADMIN,
            True,
            id="captured-dryrun-tenant-c",
        ),
        pytest.param(NS_CREATE_UNLABELLED, KEEP, TENANT_USER, True, id="no-tenant-label-by-user"),
        pytest.param(NS_CREATE, KEEP, TENANT_USER, False, id="tenant-label-by-user"),
        pytest.param(NS_CREATE, KEEP, LOOK_ALIKE, False, id="look-alike-group"),
        pytest.param(NS_CREATE, KEEP, BOT, True, id="label-admin-by-user-name"),
        pytest.param(NS_CREATE, KEEP, BREAK_GLASS, True, id="exempt-user"),
        pytest.param(
            NS_CREATE,
            {**SYSTEM_LABEL, ENFORCEMENT_LABEL: "warn"},
            TENANT_USER,
            False,
            id="enforcement-label-by-user",
        ),
        pytest.param(
            NS_CREATE,
            {**SYSTEM_LABEL, "tenant": ""},
            TENANT_USER,
            False,
            id="empty-tenant-label-by-user",
        ),
        pytest.param(
            NS_CREATE,
            {**SYSTEM_LABEL, "team": "x"},
            TENANT_USER,
            True,
            id="unrelated-labels-by-user",
        ),
    ],
)
def test_namespace_create(fixture: str, labels: Any, user: dict[str, Any], allowed: bool) -> None:
    request = make_request(fixture, user=user, labels=labels)
    assert request.operation == "CREATE" and request.kind.kind == "Namespace"
    decision = validate(request, make_view(), CONFIG)
    assert decision.allowed is allowed, message_of(decision)


def test_namespace_create_denial_message() -> None:
    request = make_request(NS_CREATE, user=TENANT_USER)
    decision = validate(request, make_view(), CONFIG)
    response = decision.response["response"]
    assert response["status"]["code"] == 403
    assert response["status"]["reason"] == "Forbidden"
    assert response["uid"] == request.uid
    message = message_of(decision)
    assert message.startswith('Namespace tenant-b: metadata.labels["tenant"] "tenant-b" ')
    assert "labelAdmins" in message
    assert TENANT_USER["username"] in message
    assert "Fix: " in message


def test_namespace_create_reports_both_guarded_labels() -> None:
    labels = {**SYSTEM_LABEL, "tenant": "tenant-a", ENFORCEMENT_LABEL: "warn"}
    request = make_request(NS_CREATE, user=TENANT_USER, labels=labels)
    decision = validate(request, make_view(), CONFIG)
    assert [v.field for v in decision.violations] == [
        'metadata.labels["tenant"]',
        f'metadata.labels["{ENFORCEMENT_LABEL}"]',
    ]


# --- Namespace UPDATE ------------------------------------------------------------------------

OLD = {**SYSTEM_LABEL, "tenant": "tenant-b"}


@pytest.mark.parametrize(
    ("old_labels", "new_labels", "user", "allowed"),
    [
        pytest.param(KEEP, KEEP, ADMIN, True, id="captured-add-env-label"),
        pytest.param(KEEP, KEEP, TENANT_USER, True, id="unrelated-label-added-by-user"),
        pytest.param(
            {**OLD, "env": "dev"},
            {**OLD, "env": "prod"},
            TENANT_USER,
            True,
            id="unrelated-label-changed-by-user",
        ),
        pytest.param(OLD, {**OLD, "tenant": "tenant-a"}, TENANT_USER, False, id="change-by-user"),
        pytest.param(
            OLD, {**OLD, "tenant": "Tenant-B"}, TENANT_USER, False, id="change-case-by-user"
        ),
        pytest.param(OLD, SYSTEM_LABEL, TENANT_USER, False, id="remove-by-user"),
        pytest.param(OLD, ABSENT, TENANT_USER, False, id="remove-all-labels-by-user"),
        pytest.param(SYSTEM_LABEL, OLD, TENANT_USER, False, id="add-by-user"),
        pytest.param(ABSENT, OLD, TENANT_USER, False, id="add-to-no-labels-by-user"),
        pytest.param(
            OLD,
            {**OLD, ENFORCEMENT_LABEL: "warn"},
            TENANT_USER,
            False,
            id="add-enforcement-warn-by-user",
        ),
        pytest.param(
            {**OLD, ENFORCEMENT_LABEL: "enforce"},
            {**OLD, ENFORCEMENT_LABEL: "warn"},
            TENANT_USER,
            False,
            id="enforce-to-warn-by-user",
        ),
        pytest.param(
            {**OLD, ENFORCEMENT_LABEL: "enforce"},
            OLD,
            TENANT_USER,
            False,
            id="remove-enforcement-by-user",
        ),
        pytest.param(
            OLD, {**OLD, "tenant": "tenant-a"}, ADMIN, True, id="change-by-system-masters"
        ),
        pytest.param(OLD, SYSTEM_LABEL, ADMIN, True, id="remove-by-system-masters"),
        pytest.param(
            OLD, {**OLD, "tenant": "tenant-a"}, BOT, True, id="change-by-label-admin-user"
        ),
        pytest.param(OLD, {**OLD, "tenant": "tenant-a"}, BREAK_GLASS, True, id="change-by-exempt"),
        pytest.param(
            OLD, {**OLD, "tenant": "tenant-a"}, LOOK_ALIKE, False, id="change-by-look-alike-group"
        ),
        pytest.param(
            {**OLD, ENFORCEMENT_LABEL: "warn"},
            {**OLD, ENFORCEMENT_LABEL: "enforce"},
            ADMIN,
            True,
            id="enforcement-by-system-masters",
        ),
    ],
)
def test_namespace_update(old_labels: Any, new_labels: Any, user: Any, allowed: bool) -> None:
    request = make_request(NS_UPDATE, user=user, old_labels=old_labels, labels=new_labels)
    assert request.operation == "UPDATE" and request.old_object is not None
    decision = validate(request, make_view(), CONFIG)
    assert decision.allowed is allowed, message_of(decision)


@pytest.mark.parametrize(
    ("old_labels", "new_labels", "problem"),
    [
        pytest.param(
            OLD,
            {**OLD, "tenant": "tenant-a"},
            'changes a guarded label (was "tenant-b")',
            id="change",
        ),
        pytest.param(OLD, SYSTEM_LABEL, 'removes a guarded label (was "tenant-b")', id="remove"),
        pytest.param(SYSTEM_LABEL, OLD, "adds a guarded label", id="add"),
    ],
)
def test_namespace_update_message(old_labels: Any, new_labels: Any, problem: str) -> None:
    request = make_request(NS_UPDATE, user=TENANT_USER, old_labels=old_labels, labels=new_labels)
    message = message_of(validate(request, make_view(), CONFIG))
    assert message.startswith('Namespace tenant-b: metadata.labels["tenant"] ')
    assert problem in message
    assert "Fix: " in message


def test_namespace_warn_label_does_not_weaken_the_label_guard() -> None:
    # A namespace in warn migration must still not be movable to another tenant by its users.
    view = make_view(labels={"tenant-b": {ENFORCEMENT_LABEL: "warn"}})
    request = make_request(
        NS_UPDATE,
        user=TENANT_USER,
        old_labels={**OLD, ENFORCEMENT_LABEL: "warn"},
        labels={**OLD, ENFORCEMENT_LABEL: "warn", "tenant": "tenant-a"},
    )
    assert not validate(request, view, CONFIG).allowed


def test_namespace_guard_in_global_warn_mode_warns() -> None:
    config = make_config(enforcement="warn")
    request = make_request(NS_UPDATE, user=TENANT_USER, labels={**OLD, "tenant": "tenant-a"})
    response = validate(request, make_view(), config).response["response"]
    assert response["allowed"] is True
    assert len(response["warnings"]) == 1
    assert 'metadata.labels["tenant"]' in response["warnings"][0]


@pytest.mark.parametrize(
    "fixture", ["namespace-delete.json", "namespace-delete-dryrun.json"], ids=["delete", "dryrun"]
)
def test_namespace_delete_is_allowed(fixture: str) -> None:
    request = make_request(fixture, user=TENANT_USER)
    assert validate(request, make_view(), CONFIG).allowed


def test_namespace_update_without_old_object_is_not_admitted() -> None:
    review = derive(NS_UPDATE, user=TENANT_USER)
    review["request"]["oldObject"] = None
    decision = validate(request_of(review), make_view(), CONFIG)
    assert not decision.allowed
    assert decision.response["response"]["status"]["code"] == 400


# --- a tenant label key with a prefix --------------------------------------------------------

PREFIXED = "example.com/tenant"
PREFIXED_NAMESPACES = {
    name: ({PREFIXED: labels["tenant"]} if "tenant" in labels else dict(labels))
    for name, labels in NAMESPACES.items()
}
PREFIXED_CONFIG = make_config(tenantLabel=PREFIXED, namespaces=PREFIXED_NAMESPACES)
PREFIXED_VIEW = make_view(PREFIXED_NAMESPACES)
PREFIXED_FIELD = f'metadata.labels["{PREFIXED}"]'


def test_prefixed_label_guards_namespace_create() -> None:
    request = make_request(NS_CREATE, user=TENANT_USER, labels={**SYSTEM_LABEL, PREFIXED: "b"})
    decision = validate(request, PREFIXED_VIEW, PREFIXED_CONFIG)
    assert [v.field for v in decision.violations] == [PREFIXED_FIELD]
    assert message_of(decision).startswith(f'Namespace tenant-b: {PREFIXED_FIELD} "b" ')


def test_prefixed_label_leaves_the_plain_key_unguarded() -> None:
    request = make_request(NS_CREATE, user=TENANT_USER)  # carries tenant=tenant-b only
    assert validate(request, PREFIXED_VIEW, PREFIXED_CONFIG).allowed


def test_prefixed_label_guards_namespace_update() -> None:
    request = make_request(
        NS_UPDATE,
        user=TENANT_USER,
        old_labels={**SYSTEM_LABEL, PREFIXED: "tenant-b"},
        labels={**SYSTEM_LABEL, PREFIXED: "tenant-a"},
    )
    decision = validate(request, PREFIXED_VIEW, PREFIXED_CONFIG)
    assert [v.field for v in decision.violations] == [PREFIXED_FIELD]


def test_prefixed_label_decides_tenancy() -> None:
    request = vs_request(["reviews.tenant-b"])
    decision = validate(request, PREFIXED_VIEW, PREFIXED_CONFIG)
    assert not decision.allowed
    assert 'tenant "tenant-b"' in message_of(decision)
    assert validate(vs_request(["reviews"]), PREFIXED_VIEW, PREFIXED_CONFIG).allowed


def test_prefixed_label_guards_pod_update() -> None:
    request = make_request(
        POD_UPDATE, old_labels={PREFIXED: "tenant-a"}, labels={PREFIXED: "tenant-b"}
    )
    decision = validate(request, PREFIXED_VIEW, PREFIXED_CONFIG)
    assert [v.field for v in decision.violations] == [PREFIXED_FIELD]


# --- Pod UPDATE ------------------------------------------------------------------------------

# The captured pod update (tenant-a/plain gets team=alpha) was made by kubernetes-admin: a
# Pod's tenant label guard has no admin exception, only `exempt`.


@pytest.mark.parametrize(
    ("old_labels", "new_labels", "allowed"),
    [
        pytest.param(KEEP, KEEP, True, id="captured-unrelated-label"),
        pytest.param({"tenant": "tenant-a"}, {"tenant": "tenant-b"}, False, id="change-to-other"),
        pytest.param({"tenant": "tenant-a"}, {"tenant": "TENANT-A"}, False, id="change-case"),
        pytest.param({"tenant": "tenant-a", "app": "x"}, {"app": "x"}, False, id="remove"),
        pytest.param({"tenant": "tenant-a"}, ABSENT, False, id="remove-all-labels"),
        pytest.param(
            {"tenant": "tenant-a", "v": "1"},
            {"tenant": "tenant-a", "v": "2"},
            True,
            id="unchanged-tenant-label",
        ),
        pytest.param(ABSENT, {"tenant": "tenant-a"}, True, id="add-correct-value"),
        pytest.param(ABSENT, {"tenant": "tenant-b"}, False, id="add-other-value"),
        pytest.param(
            {"tenant": "tenant-b"}, {"tenant": "tenant-a"}, True, id="correct-a-wrong-value"
        ),
    ],
)
def test_pod_update(old_labels: Any, new_labels: Any, allowed: bool) -> None:
    request = make_request(POD_UPDATE, old_labels=old_labels, labels=new_labels)
    assert request.operation == "UPDATE" and request.namespace == "tenant-a"
    decision = validate(request)
    assert decision.allowed is allowed, message_of(decision)
    if not allowed:
        message = message_of(decision)
        assert message.startswith('Pod tenant-a/plain: metadata.labels["tenant"] ')
        assert 'tenant "tenant-a"' in message
        assert "Fix: " in message


def test_pod_update_removal_message_says_absent() -> None:
    request = make_request(POD_UPDATE, old_labels={"tenant": "tenant-a"}, labels={"app": "x"})
    message = message_of(validate(request))
    assert 'metadata.labels["tenant"] absent removes the tenant label (was "tenant-a")' in message


@pytest.mark.parametrize(
    ("user", "namespace", "view_labels", "allowed"),
    [
        pytest.param(BREAK_GLASS, "tenant-a", None, True, id="exempt-user"),
        pytest.param(BOT, "tenant-a", None, False, id="label-admin-is-not-exempt-for-pods"),
        pytest.param(ADMIN, "istio-system", None, True, id="platform-namespace"),
        pytest.param(
            ADMIN,
            "tenant-a",
            {"tenant-a": {ENFORCEMENT_LABEL: "warn"}},
            True,
            id="namespace-in-warn-mode",
        ),
    ],
)
def test_pod_update_exemptions(
    user: dict[str, Any], namespace: str, view_labels: Any, allowed: bool
) -> None:
    request = make_request(
        POD_UPDATE,
        user=user,
        namespace=namespace,
        old_labels={"tenant": "tenant-a"},
        labels={"tenant": "tenant-b"},
    )
    decision = validate(request, make_view(labels=view_labels), CONFIG)
    assert decision.allowed is allowed


def test_pod_delete_is_allowed() -> None:
    request = make_request(POD_UPDATE, operation="DELETE", labels={"tenant": "tenant-b"})
    assert request.obj is None and request.old_object is not None
    assert validate(request).allowed


def test_pod_update_without_old_object_is_not_admitted() -> None:
    review = derive(POD_UPDATE)
    review["request"]["oldObject"] = None
    decision = validate(request_of(review))
    assert not decision.allowed
    assert decision.response["response"]["status"]["code"] == 400
