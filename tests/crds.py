"""The CustomResourceDefinitions the e2e suite installs, and the versions they serve.

The suite needs the kinds tenant-guard judges or writes (Istio networking and security, the
Gateway API standard channel, PolicyReport and OpenReports) to be served by a real API server.
With `TENANT_GUARD_CRDS` naming a directory of published CRD files (every `*.yaml` in it is
installed), those are used; otherwise the suite writes minimal stand-ins: the same groups, kinds,
scopes and served versions, with an open schema. What the stand-ins cannot show is the published
schemas' defaults and validation, which tenant-guard does not rely on (it fills in the defaults
it needs itself), so the suite passes with either.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CRDS_ENV = "TENANT_GUARD_CRDS"

ISTIO_NETWORKING = "networking.istio.io"
ISTIO_SECURITY = "security.istio.io"
GATEWAY_API = "gateway.networking.k8s.io"
GATEWAY_API_EXPERIMENTAL = "gateway.networking.x-k8s.io"
POLICY_REPORTS = "wgpolicyk8s.io"
OPEN_REPORTS = "openreports.io"

# A CRD of a *.k8s.io group must say whether its API was approved; a stand-in is not.
APPROVAL = "api-approved.kubernetes.io"
STAND_IN_APPROVAL = "unapproved, a stand-in for tenant-guard's e2e suite"
BUNDLE = "gateway.networking.k8s.io/bundle-version"
CHANNEL = "gateway.networking.k8s.io/channel"

Doc = dict[str, Any]


@dataclass(frozen=True)
class StandIn:
    """One kind as a published CRD serves it: versions in the order the CRD lists them, the
    first being the storage version."""

    group: str
    kind: str
    plural: str
    versions: tuple[str, ...]
    cluster_scoped: bool = False
    status: bool = True
    short_names: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.plural}.{self.group}"

    def document(self) -> Doc:
        open_schema = {
            "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        }
        names: Doc = {
            "kind": self.kind,
            "listKind": f"{self.kind}List",
            "plural": self.plural,
            "singular": self.kind.lower(),
        }
        if self.short_names:
            names["shortNames"] = list(self.short_names)
        metadata: Doc = {"name": self.name}
        if self.group.endswith(".k8s.io"):
            metadata["annotations"] = {APPROVAL: STAND_IN_APPROVAL}
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": metadata,
            "spec": {
                "group": self.group,
                "names": names,
                "scope": "Cluster" if self.cluster_scoped else "Namespaced",
                "versions": [
                    {
                        "name": version,
                        "served": True,
                        "storage": index == 0,
                        "schema": open_schema,
                        **({"subresources": {"status": {}}} if self.status else {}),
                    }
                    for index, version in enumerate(self.versions)
                ],
            },
        }


def _istio(group: str, kind: str, plural: str, short: str | None, *versions: str) -> StandIn:
    return StandIn(group, kind, plural, versions, short_names=(short,) if short else ())


_NETWORKING = ("v1", "v1alpha3", "v1beta1")
_SECURITY = ("v1", "v1beta1")

# The served versions of the releases the project is tested with (Istio 1.30, Gateway API 1.6
# standard channel, wg-policy PolicyReport, OpenReports v1alpha1). Versions a published CRD
# lists but does not serve are left out: the API server never sends them.
STAND_INS: tuple[StandIn, ...] = (
    _istio(ISTIO_NETWORKING, "DestinationRule", "destinationrules", "dr", *_NETWORKING),
    _istio(ISTIO_NETWORKING, "Gateway", "gateways", "gw", *_NETWORKING),
    _istio(ISTIO_NETWORKING, "ServiceEntry", "serviceentries", "se", *_NETWORKING),
    _istio(ISTIO_NETWORKING, "Sidecar", "sidecars", None, *_NETWORKING),
    _istio(ISTIO_NETWORKING, "VirtualService", "virtualservices", "vs", *_NETWORKING),
    _istio(ISTIO_SECURITY, "AuthorizationPolicy", "authorizationpolicies", "ap", *_SECURITY),
    _istio(ISTIO_SECURITY, "PeerAuthentication", "peerauthentications", "pa", *_SECURITY),
    _istio(ISTIO_SECURITY, "RequestAuthentication", "requestauthentications", "ra", *_SECURITY),
    StandIn(GATEWAY_API, "BackendTLSPolicy", "backendtlspolicies", ("v1",)),
    StandIn(GATEWAY_API, "GatewayClass", "gatewayclasses", ("v1", "v1beta1"), cluster_scoped=True),
    StandIn(GATEWAY_API, "Gateway", "gateways", ("v1", "v1beta1")),
    StandIn(GATEWAY_API, "GRPCRoute", "grpcroutes", ("v1",)),
    StandIn(GATEWAY_API, "HTTPRoute", "httproutes", ("v1", "v1beta1")),
    StandIn(GATEWAY_API, "ListenerSet", "listenersets", ("v1",)),
    StandIn(GATEWAY_API, "ReferenceGrant", "referencegrants", ("v1beta1", "v1"), status=False),
    StandIn(GATEWAY_API, "TCPRoute", "tcproutes", ("v1",)),
    StandIn(GATEWAY_API, "UDPRoute", "udproutes", ("v1",)),
    StandIn(
        POLICY_REPORTS,
        "PolicyReport",
        "policyreports",
        ("v1beta1", "v1alpha1", "v1alpha2"),
        status=False,
    ),
    StandIn(
        POLICY_REPORTS,
        "ClusterPolicyReport",
        "clusterpolicyreports",
        ("v1beta1", "v1alpha1", "v1alpha2"),
        cluster_scoped=True,
        status=False,
    ),
    StandIn(OPEN_REPORTS, "Report", "reports", ("v1alpha1",), status=False),
    StandIn(
        OPEN_REPORTS,
        "ClusterReport",
        "clusterreports",
        ("v1alpha1",),
        cluster_scoped=True,
        status=False,
    ),
)


# The experimental channel's own group (Gateway API before v1.5): not among the published CRDs
# the project is tested with, so installed only by the e2e tests about it.
EXPERIMENTAL_STAND_INS: tuple[StandIn, ...] = (
    StandIn(GATEWAY_API_EXPERIMENTAL, "XListenerSet", "xlistenersets", ("v1alpha1",)),
)


def published_directory() -> Path | None:
    """The directory of published CRD files named by $TENANT_GUARD_CRDS, if any."""
    named = os.environ.get(CRDS_ENV)
    return Path(named) if named else None


@functools.cache
def crd_documents() -> tuple[Doc, ...]:
    """The CRDs to install: every CRD of the published files when a directory is named,
    else the stand-ins."""
    directory = published_directory()
    if directory is None:
        return tuple(stand_in.document() for stand_in in STAND_INS)
    return load_published(directory)


@functools.cache
def load_published(directory: Path) -> tuple[Doc, ...]:
    """Every CRD of the `*.yaml` files in `directory`."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise FileNotFoundError(f"{CRDS_ENV}={directory} holds no *.yaml CRD files")
    return tuple(
        doc
        for path in files
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == "CustomResourceDefinition"
    )


def source() -> str:
    """Which CRDs crd_documents() gives, in words for a test report."""
    directory = published_directory()
    if directory is None:
        count = len(STAND_INS)
        return f"stand-in CRDs ({count} kinds; set {CRDS_ENV} to a directory of published ones)"
    files = ", ".join(path.name for path in sorted(directory.glob("*.yaml")))
    bundles = sorted(
        {
            f"Gateway API {annotations[BUNDLE]} {annotations.get(CHANNEL, '')}".strip()
            for doc in load_published(directory)
            if BUNDLE in (annotations := doc["metadata"].get("annotations") or {})
        }
    )
    return f"published CRDs from {CRDS_ENV} ({files}{''.join('; ' + b for b in bundles)})"


def served_versions(group: str) -> dict[str, frozenset[str]]:
    """plural -> the versions served, for every CRD of `group`."""
    return {
        plural: versions
        for (crd_group, plural), versions in all_served_versions().items()
        if crd_group == group
    }


def all_served_versions() -> dict[tuple[str, str], frozenset[str]]:
    """(group, plural) -> the versions served, for every CRD installed."""
    return {
        (doc["spec"]["group"], doc["spec"]["names"]["plural"]): frozenset(
            v["name"] for v in doc["spec"]["versions"] if v.get("served")
        )
        for doc in crd_documents()
    }


def approval_annotation(group: str) -> dict[str, str]:
    """The API-approval annotation the installed CRDs of `group` carry, for a test that adds
    a CRD of its own to that group."""
    for doc in crd_documents():
        annotations = doc["metadata"].get("annotations") or {}
        if doc["spec"]["group"] == group and APPROVAL in annotations:
            return {APPROVAL: annotations[APPROVAL]}
    raise AssertionError(f"no installed CRD of {group} carries {APPROVAL}")
