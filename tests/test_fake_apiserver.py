"""The fake API server keeps one store: whatever kind it serves is applied, listed (in pages of
one snapshot) and watched the same way, a watched collection as much as a CRD's kind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fake_apiserver import ISTIO_GROUP, VIRTUALSERVICES, FakeApiServer

REPORTS = "wgpolicyk8s.io"


@pytest.fixture
def http() -> Iterator[tuple[FakeApiServer, httpx.Client]]:
    with FakeApiServer() as fake, httpx.Client(base_url=fake.url, timeout=5) as client:
        fake.serve_kind(REPORTS, "v1alpha2", "policyreports", "PolicyReport")
        yield fake, client


def names(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in body["items"]]


@pytest.mark.parametrize(
    ("group", "version", "plural", "kind"),
    [
        (ISTIO_GROUP, "v1", VIRTUALSERVICES, "VirtualService"),
        (REPORTS, "v1alpha2", "policyreports", "PolicyReport"),
    ],
)
def test_a_served_kind_is_applied_listed_and_watched(
    http: tuple[FakeApiServer, httpx.Client], group: str, version: str, plural: str, kind: str
) -> None:
    fake, client = http
    prefix = f"/apis/{group}/{version}"
    since = fake.resource_version
    applied = client.patch(
        f"{prefix}/namespaces/a/{plural}/one",
        params={"fieldManager": "tenant-guard"},
        headers={"Content-Type": "application/apply-patch+yaml"},
        content=json.dumps({"apiVersion": f"{group}/{version}", "kind": kind, "spec": {"n": 1}}),
    )
    assert applied.status_code == 201, applied.text
    fake.put_object(group, plural, {"metadata": {"name": "two", "namespace": "b"}})

    assert names(client.get(f"{prefix}/{plural}").json()) == [("a", "one"), ("b", "two")]
    assert names(client.get(f"{prefix}/namespaces/b/{plural}").json()) == [("b", "two")]
    watched = client.get(
        f"{prefix}/namespaces/a/{plural}",
        params={"watch": "true", "resourceVersion": since, "timeoutSeconds": "0"},
    )
    events = [json.loads(line) for line in watched.text.splitlines()]
    assert [(e["type"], e["object"]["kind"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", kind, "one")
    ]
    assert (fake.stored_object(group, plural, "a", "one") or {})["spec"] == {"n": 1}


def test_the_pages_of_a_list_are_one_snapshot(http: tuple[FakeApiServer, httpx.Client]) -> None:
    fake, client = http
    for name in ("a", "b", "c"):
        fake.add_namespace(name)
    first = client.get("/api/v1/namespaces", params={"limit": 2}).json()
    fake.add_namespace("aa")  # would fall in the first page
    rest = client.get(
        "/api/v1/namespaces", params={"limit": 2, "continue": first["metadata"]["continue"]}
    ).json()
    assert names(first) + names(rest) == [("", "a"), ("", "b"), ("", "c")]
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert "continue" not in rest["metadata"]


def test_metadata_only_lists_and_watches_send_partial_object_metadata(
    http: tuple[FakeApiServer, httpx.Client],
) -> None:
    """As a real API server answers a client that asks for PartialObjectMetadata first (and
    whole objects when it is not asked so)."""
    fake, client = http
    since = fake.resource_version
    pod = {"metadata": {"name": "p", "namespace": "a", "labels": {"istio": "x"}}, "spec": {"n": 1}}
    fake.put_object("", "pods", pod)
    list_accept = (
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
    )
    listed = client.get("/api/v1/pods", headers={"Accept": list_accept}).json()
    assert (listed["kind"], listed["apiVersion"]) == ("PartialObjectMetadataList", "meta.k8s.io/v1")
    (item,) = listed["items"]
    assert item["kind"] == "PartialObjectMetadata" and "spec" not in item
    assert item["metadata"]["labels"] == {"istio": "x"}
    watch_accept = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
    watched = client.get(
        "/api/v1/pods",
        params={"watch": "true", "resourceVersion": since, "timeoutSeconds": "0"},
        headers={"Accept": watch_accept},
    )
    (event,) = [json.loads(line) for line in watched.text.splitlines()]
    assert event["object"]["kind"] == "PartialObjectMetadata" and "spec" not in event["object"]
    whole = client.get("/api/v1/pods").json()
    assert whole["kind"] == "PodList" and whole["items"][0]["spec"] == {"n": 1}
    assert [r.metadata_only for r in fake.requests_to("/api/v1/pods")] == [True, True, False]
