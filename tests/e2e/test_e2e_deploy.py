"""The shipped overlays, rendered with `kubectl kustomize` and applied to a real API server of
this module's own (its webhook configurations point at a Service with no pods behind it, so
they would lock the shared control plane's tenants out).

Every object goes through `kubectl apply --server-side --validate=strict`: checked against
the API server's schema (server-side field validation, on by default in every supported
version), then by the API server's own validation when stored; and every object is then read
back whole, so a field the API server does not know (one newer than the oldest supported
version, which a server drops silently) fails the test on that version. cert-manager's CRDs
are not among the published fixtures: a minimal CRD stands in for Certificate and Issuer
(served as cert-manager.io/v1, namespaced, spec not validated), so those objects prove only
their apiVersion, kind and metadata; everything else, the webhook configurations included, is
checked in full."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.e2e.harness import ROOT, ControlPlane

OVERLAYS = ("cert-manager", "self-managed")


def stand_in_crd(kind: str) -> dict[str, Any]:
    plural = f"{kind.lower()}s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.cert-manager.io"},
        "spec": {
            "group": "cert-manager.io",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    control = ControlPlane(tmp_path_factory.mktemp("e2e-deploy"))
    try:
        control.start()
        control.wait_ready()
        crds = [stand_in_crd(kind) for kind in ("Certificate", "Issuer")]
        control.apply(yaml.safe_dump_all(crds))
        control.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        yield control
    finally:
        control.stop()


def render(overlay: str) -> list[dict[str, Any]]:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "deploy" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def missing(stored: Any, wanted: Any, path: str = "") -> str | None:
    """The first path where `stored` lacks or changes something of `wanted`, or None when it
    holds all of it (the server may add defaults). A zero value (`readOnly: false`) may be
    absent: the API server omits zero values when it writes an object out."""
    if isinstance(wanted, dict):
        if not isinstance(stored, dict):
            return path or "."
        for key, value in wanted.items():
            if key not in stored:
                if value in (False, 0, "", None, [], {}):
                    continue
                return f"{path}.{key}"
            found = missing(stored[key], value, f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(wanted, list):
        if not isinstance(stored, list) or len(stored) != len(wanted):
            return path
        for index, (s, w) in enumerate(zip(stored, wanted, strict=True)):
            found = missing(s, w, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    return None if stored == wanted else f"{path} ({stored!r} != {wanted!r})"


def test_strict_validation_refuses_an_unknown_field(plane: ControlPlane) -> None:
    """The check below can fail: a Deployment with a misspelt field is refused."""
    deployment = next(d for d in render("self-managed") if d["kind"] == "Deployment")
    deployment["spec"]["replica"] = 2
    result = plane.kubectl(
        "apply",
        "--server-side",
        "--validate=strict",
        "--dry-run=server",
        "-f",
        "-",
        stdin=yaml.safe_dump(deployment),
        check=False,
    )
    assert result.returncode == 1
    assert "replica" in result.stderr, result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_is_accepted_by_the_api_server(plane: ControlPlane, overlay: str) -> None:
    docs = render(overlay)
    manifest = yaml.safe_dump_all(docs)
    plane.kubectl("apply", "--server-side", "--validate=strict", "-f", "-", stdin=manifest)
    for doc in docs:
        meta = doc["metadata"]
        where = ["-n", meta["namespace"]] if "namespace" in meta else []
        group = doc["apiVersion"].rpartition("/")[0]
        kind = f"{doc['kind']}.{group}" if group else doc["kind"]
        stored = json.loads(plane.kubectl(*where, "get", kind, meta["name"], "-o", "json").stdout)
        assert stored["kind"] == doc["kind"], stored
        # Stored as shipped: nothing dropped, nothing changed (defaults may be added). A field
        # this API server predates would be missing here.
        assert missing(stored, doc) is None, f"{kind} {meta['name']}: {missing(stored, doc)}"
