"""The stand-in CRDs of the e2e suite (tests.crds): well formed, and, when a directory of
published CRDs is named by TENANT_GUARD_CRDS, serving what the published ones serve."""

from __future__ import annotations

from typing import Any

import pytest

from tests import crds


def shape(doc: dict[str, Any]) -> tuple[str, str, str, frozenset[str]]:
    spec = doc["spec"]
    served = frozenset(v["name"] for v in spec["versions"] if v.get("served"))
    return spec["names"]["kind"], spec["scope"], spec["names"].get("listKind", ""), served


def test_every_stand_in_has_one_storage_version_and_an_open_schema() -> None:
    for stand_in in (*crds.STAND_INS, *crds.EXPERIMENTAL_STAND_INS):
        doc = stand_in.document()
        versions = doc["spec"]["versions"]
        assert [v["storage"] for v in versions].count(True) == 1, stand_in.name
        assert doc["metadata"]["name"] == f"{stand_in.plural}.{stand_in.group}"
        for version in versions:
            schema = version["schema"]["openAPIV3Schema"]
            assert schema == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def test_stand_ins_of_k8s_io_groups_say_they_are_unapproved() -> None:
    # The API server wants the annotation on *.k8s.io groups; a value starting with
    # "unapproved" is the honest one for a stand-in.
    for stand_in in (*crds.STAND_INS, *crds.EXPERIMENTAL_STAND_INS):
        annotations = stand_in.document()["metadata"].get("annotations", {})
        if stand_in.group.endswith(".k8s.io"):
            assert annotations[crds.APPROVAL].startswith("unapproved")
        else:
            assert crds.APPROVAL not in annotations


def test_stand_ins_serve_what_the_published_crds_serve() -> None:
    directory = crds.published_directory()
    if directory is None:
        pytest.skip(f"{crds.CRDS_ENV} is not set: no published CRDs to compare the stand-ins with")
    published = {doc["metadata"]["name"]: doc for doc in crds.load_published(directory)}
    for stand_in in crds.STAND_INS:
        assert stand_in.name in published, f"{stand_in.name} is not among the published CRDs"
        kind, scope, _, served = shape(published[stand_in.name])
        ours = shape(stand_in.document())
        assert (kind, scope, served) == (ours[0], ours[1], ours[3]), stand_in.name
    missing = set(published) - {s.name for s in crds.STAND_INS}
    assert not missing, f"published CRDs without a stand-in: {sorted(missing)}"
