"""Sidecar (SPEC.md §11): egress hosts may import only the tenant's and shared namespaces."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import (
    ISTIO_SIDECAR,
    SIDECAR_CREATE,
    default_config,
    derive,
    make_config,
    make_view,
    message_of,
    request_of,
    retarget,
    validate,
)
from webhook.policies import sidecar

# (entry of spec.egress[0].hosts, expected owner of the violation, or OK) for a Sidecar in
# tenant-a. sharedNamespaces in tests/builders.py: [istio-system].
OK = "ok"
ENTRY_ROWS = [
    pytest.param("./*", OK, id="own-namespace-dot"),
    pytest.param("~/*", OK, id="nothing"),
    pytest.param("tenant-a/*", OK, id="own-namespace-by-name"),
    pytest.param("tenant-a-dev/reviews.tenant-a-dev.svc.cluster.local", OK, id="same-tenant-ns"),
    pytest.param("istio-system/*", OK, id="shared-namespace"),
    pytest.param("*/*", "nobody", id="star"),
    pytest.param("*/api.example.com", "nobody", id="star-namespace-one-host"),
    pytest.param("tenant-b/*", "tenant-b", id="other-tenant"),
    pytest.param("tenant-b/reviews.tenant-b.svc.cluster.local", "tenant-b", id="other-tenant-host"),
    pytest.param("kube-system/*", "platform", id="platform-not-shared"),
    pytest.param("no-such-ns/*", "platform", id="unknown-namespace"),
    pytest.param("Tenant-A/*", "platform", id="namespace-case-is-not-folded"),
    pytest.param("reviews.tenant-a.svc.cluster.local", None, id="no-namespace-part"),
]


@pytest.mark.parametrize(("entry", "owner"), ENTRY_ROWS)
def test_egress_host(entry: str, owner: str | None) -> None:
    field = "spec.egress[0].hosts[0]"
    violation = sidecar.entry_problem(
        entry, field, "tenant-a", "tenant-a", make_view(), default_config()
    )
    if owner == OK:
        assert violation is None
    else:
        assert violation is not None
        assert (violation.rule, violation.field, violation.owner) == (
            "sidecar-egress",
            field,
            owner,
        )

    decision = validate(request_of(derive(SIDECAR_CREATE, spec={"egress": [{"hosts": [entry]}]})))
    assert decision.allowed is (owner == OK)


def test_captured_sidecar_is_allowed_only_with_its_shared_namespace() -> None:
    # As captured: egress hosts ./* and istio-system/*.
    assert validate(request_of(derive(SIDECAR_CREATE))).allowed
    decision = validate(request_of(derive(SIDECAR_CREATE)), config=make_config(sharedNamespaces=[]))
    assert [(v.field, v.owner) for v in decision.violations] == [
        ("spec.egress[0].hosts[1]", "platform")
    ]
    assert 'imports namespace "istio-system" of the platform, not shared' in message_of(decision)


@pytest.mark.parametrize(
    ("spec", "allowed"),
    [
        pytest.param({}, False, id="namespace-wide-without-egress"),
        pytest.param({"egress": []}, False, id="namespace-wide-empty-egress"),
        pytest.param(
            {"workloadSelector": {"labels": {"app": "reviews"}}},
            True,
            id="workload-without-egress-inherits-the-namespace",
        ),
        pytest.param(
            {"workloadSelector": {"labels": {"app": "reviews"}}, "egress": [{"hosts": ["*/*"]}]},
            False,
            id="workload-with-wide-egress",
        ),
    ],
)
def test_egress_absent(spec: dict[str, Any], allowed: bool) -> None:
    decision = validate(request_of(derive(SIDECAR_CREATE, spec=spec)))
    assert decision.allowed is allowed


def test_every_entry_of_every_listener_is_reported() -> None:
    spec = {
        "egress": [{"hosts": ["./*", "*/*"]}, {"port": {"number": 9080}, "hosts": ["tenant-b/*"]}]
    }
    decision = validate(request_of(derive(SIDECAR_CREATE, spec=spec)))
    assert [v.field for v in decision.violations] == [
        "spec.egress[0].hosts[1]",
        "spec.egress[1].hosts[0]",
    ]


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_every_served_version_is_judged_alike(version: str) -> None:
    review = derive(SIDECAR_CREATE, spec={"egress": [{"hosts": ["*/*"]}]})
    decision = validate(request_of(retarget(review, *ISTIO_SIDECAR, version)))
    assert [v.owner for v in decision.violations] == ["nobody"]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param({"egress": {"hosts": ["./*"]}}, "spec.egress", id="egress-map"),
        pytest.param({"egress": ["./*"]}, "spec.egress[0]", id="egress-strings"),
        pytest.param({"egress": [{"hosts": "./*"}]}, "spec.egress[0].hosts", id="hosts-string"),
        pytest.param({"egress": [{"hosts": [None]}]}, "spec.egress[0].hosts[0]", id="host-null"),
    ],
)
def test_wrong_shapes_are_refused_not_admitted(spec: Any, field: str) -> None:
    decision = validate(request_of(derive(SIDECAR_CREATE, spec=spec)))
    assert not decision.allowed
    assert decision.response["response"]["status"]["code"] == 400
    assert f"{field} must be" in message_of(decision)
