"""API calls of `serve --manage-certs`: the Secret and the webhook configurations' caBundle.

webhook.certificates.manager decides what to write; these calls carry it out through the
cluster door (webhook.cluster.rest).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any

from webhook.cluster.rest import (
    MERGE_PATCH,
    RestClient,
    api_path,
)

ADMISSION_GROUP = "admissionregistration.k8s.io"
FIELD_MANAGER = "tenant-guard"

# What these calls need, as Role/ClusterRole rules (no list or watch: everything is by name).
CERT_MANAGEMENT_RBAC: tuple[Mapping[str, Sequence[str]], ...] = (
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "update"]},
    {
        "apiGroups": [ADMISSION_GROUP],
        "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
        "verbs": ["get", "patch"],
    },
)


class WebhookKind(Enum):
    VALIDATING = "validatingwebhookconfigurations"
    MUTATING = "mutatingwebhookconfigurations"


@dataclass(frozen=True)
class StoredSecret:
    namespace: str
    name: str
    resource_version: str
    type: str
    data: Mapping[str, bytes]  # decoded values
    metadata: Mapping[str, Any]


@dataclass(frozen=True)
class WebhookConfiguration:
    kind: WebhookKind
    name: str
    resource_version: str
    ca_bundles: Mapping[str, bytes]  # webhook name -> decoded caBundle (b"" when unset)


class CertificateApi(RestClient):
    """Read/create/replace one Secret and the caBundles of webhook configurations.

    Writes carry the resourceVersion they were based on, so a concurrent change by another
    replica fails with 409 (ClusterApiError.conflict) instead of being overwritten.
    Blocking: call from a worker thread.
    """

    def read_secret(self, namespace: str, name: str) -> StoredSecret | None:
        """The Secret, or None if it does not exist."""
        obj = self.get(
            f"reading Secret {namespace}/{name}", api_path("", "v1", "secrets", namespace, name)
        )
        return None if obj is None else _stored_secret(obj)

    def create_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, bytes],
        *,
        secret_type: str = "kubernetes.io/tls",
        labels: Mapping[str, str] | None = None,
    ) -> StoredSecret:
        """Create the Secret; 409 AlreadyExists (ClusterApiError.conflict) if another won."""
        metadata: dict[str, Any] = {"name": name, "namespace": namespace}
        if labels:
            metadata["labels"] = dict(labels)
        obj = self.request(
            f"creating Secret {namespace}/{name}",
            "POST",
            api_path("", "v1", "secrets", namespace),
            query=[("fieldManager", FIELD_MANAGER)],
            body=_secret_body(metadata, secret_type, data),
        )
        return _stored_secret(obj)

    def replace_secret(self, current: StoredSecret, data: Mapping[str, bytes]) -> StoredSecret:
        """Set `data` keys (others kept) if the Secret is still at current.resource_version."""
        keep = ("labels", "annotations", "ownerReferences", "finalizers")
        metadata: dict[str, Any] = {k: current.metadata[k] for k in keep if k in current.metadata}
        metadata.update(
            name=current.name,
            namespace=current.namespace,
            resourceVersion=current.resource_version,
        )
        obj = self.request(
            f"updating Secret {current.namespace}/{current.name}",
            "PUT",
            api_path("", "v1", "secrets", current.namespace, current.name),
            query=[("fieldManager", FIELD_MANAGER)],
            body=_secret_body(metadata, current.type, {**current.data, **data}),
        )
        return _stored_secret(obj)

    def read_webhook_configuration(
        self, kind: WebhookKind, name: str
    ) -> WebhookConfiguration | None:
        """The configuration, or None if it does not exist (403 and the rest raise)."""
        obj = self.get(
            f"reading {kind.value}/{name}", api_path(ADMISSION_GROUP, "v1", kind.value, None, name)
        )
        return None if obj is None else _webhook_configuration(kind, obj)

    def patch_ca_bundles(
        self, current: WebhookConfiguration, bundles: Mapping[str, bytes]
    ) -> WebhookConfiguration:
        """Set clientConfig.caBundle of the named webhooks, if still at current's version.

        A strategic merge patch: `webhooks` merge by name, so other fields and webhooks are
        untouched; metadata.resourceVersion in a patch is a precondition (409 if stale).
        """
        body = {
            "metadata": {"resourceVersion": current.resource_version},
            "webhooks": [
                {"name": name, "clientConfig": {"caBundle": base64.b64encode(pem).decode()}}
                for name, pem in bundles.items()
            ],
        }
        obj = self.request(
            f"patching the caBundle of {current.kind.value}/{current.name}",
            "PATCH",
            api_path(ADMISSION_GROUP, "v1", current.kind.value, None, current.name),
            query=[("fieldManager", FIELD_MANAGER)],
            body=body,
            content_type=MERGE_PATCH,
        )
        return _webhook_configuration(current.kind, obj)


def _secret_body(
    metadata: Mapping[str, Any], secret_type: str, data: Mapping[str, bytes]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": dict(metadata),
        "type": secret_type,
        "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
    }


def _decode(value: object) -> bytes:
    if not isinstance(value, str):
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        return b""


def _stored_secret(obj: Mapping[str, Any]) -> StoredSecret:
    metadata = obj.get("metadata") or {}
    data = obj.get("data") or {}
    return StoredSecret(
        namespace=str(metadata.get("namespace") or ""),
        name=str(metadata.get("name") or ""),
        resource_version=str(metadata.get("resourceVersion") or ""),
        type=str(obj.get("type") or "Opaque"),
        data=MappingProxyType({str(k): _decode(v) for k, v in data.items()}),
        metadata=MappingProxyType(dict(metadata)),
    )


def _webhook_configuration(kind: WebhookKind, obj: Mapping[str, Any]) -> WebhookConfiguration:
    metadata = obj.get("metadata") or {}
    bundles: dict[str, bytes] = {}
    for webhook in obj.get("webhooks") or ():
        if isinstance(webhook, Mapping) and isinstance(webhook.get("name"), str):
            client_config = webhook.get("clientConfig") or {}
            bundles[webhook["name"]] = _decode(client_config.get("caBundle"))
    return WebhookConfiguration(
        kind=kind,
        name=str(metadata.get("name") or ""),
        resource_version=str(metadata.get("resourceVersion") or ""),
        ca_bundles=MappingProxyType(bundles),
    )
