"""The desired baseline (SPEC.md §11): every object of every tenant namespace. Pure."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from webhook.baseline.templates import ManagedKind, Values, managed_kind, render
from webhook.config.model import Config

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "tenant-guard"  # the label's value, and the server-side apply field manager
# Which tenant an object was rendered for; with MANAGED_BY_LABEL it selects what may be pruned.
TENANT_OF_OBJECT_LABEL = "tenant-guard.io/tenant"


@dataclass(frozen=True, order=True)
class ObjectKey:
    """One managed object: (kind, namespace, name), enough to address it in the API."""

    group: str
    resource: str
    namespace: str
    name: str

    def ref(self, kind: str) -> str:
        return f"{kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Desired:
    key: ObjectKey
    kind: ManagedKind
    api_version: str
    tenant: str
    body: Mapping[str, Any]
    digest: str  # of the body: tells a changed template from drift in the cluster

    @property
    def ref(self) -> str:
        return self.key.ref(self.kind.kind)


def tenants_of(
    namespaces: Mapping[str, Mapping[str, str]], tenant_label: str
) -> dict[str, list[str]]:
    """tenant -> its namespaces, sorted (so rendered lists are stable)."""
    out: dict[str, list[str]] = {}
    for name in sorted(namespaces):
        tenant = namespaces[name].get(tenant_label)
        if tenant:
            out.setdefault(tenant, []).append(name)
    return out


def desired_objects(
    config: Config, namespaces: Mapping[str, Mapping[str, str]]
) -> dict[ObjectKey, Desired]:
    """Every baseline object, for every tenant namespace, with the labels that mark it."""
    if config.baseline is None:
        return {}
    out: dict[ObjectKey, Desired] = {}
    for tenant, members in tenants_of(namespaces, config.tenant_label).items():
        for namespace in members:
            values = Values(
                tenant, namespace, config.tenant_label, members, config.shared_namespaces
            )
            for template in config.baseline.objects:
                desired = _desired(template, values)
                out[desired.key] = desired
    return out


def _desired(template: Mapping[str, Any], values: Values) -> Desired:
    body = render(template, values)
    kind = managed_kind(body["apiVersion"], body["kind"])
    assert kind is not None  # checked when the config was loaded
    metadata = body["metadata"]
    metadata["namespace"] = values.namespace
    metadata["labels"] = {
        **(metadata.get("labels") or {}),
        MANAGED_BY_LABEL: MANAGER,
        TENANT_OF_OBJECT_LABEL: values.tenant,
    }
    key = ObjectKey(kind.group, kind.resource, values.namespace, metadata["name"])
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return Desired(key, kind, body["apiVersion"], values.tenant, body, digest)
