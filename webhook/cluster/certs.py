"""API calls of `serve --manage-certs`: the Secret and the webhook configurations' caBundle."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any, TypeVar

import kubernetes.client
import kubernetes.config
import urllib3
from kubernetes.client.exceptions import ApiException

from webhook.cluster.client import describe_error, reason_of

log = logging.getLogger(__name__)

T = TypeVar("T")

# --- Certificate management (serve --manage-certs) --------------------------------------------
# The API calls of webhook.certificates.manager, which decides what to write; it never imports
# kubernetes.

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


class ClusterApiError(Exception):
    """An API call failed: `status` is the HTTP status, None when no answer came back."""

    def __init__(self, what: str, status: int | None, reason: str | None, text: str) -> None:
        super().__init__(f"{what}: {text}")
        self.status = status
        self.reason = reason

    @property
    def conflict(self) -> bool:
        """409: a stale resourceVersion (Conflict) or a create that lost (AlreadyExists)."""
        return self.status == 409


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


class CertificateApi:
    """Read/create/replace one Secret and the caBundles of webhook configurations.

    Writes carry the resourceVersion they were based on, so a concurrent change by another
    replica fails with 409 (ClusterApiError.conflict) instead of being overwritten.
    Blocking: call from a worker thread.
    """

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        *,
        connect_timeout: float = 10.0,
        request_timeout: float = 30.0,
    ) -> None:
        self._client = api_client
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._admission = kubernetes.client.AdmissionregistrationV1Api(api_client)
        self._timeout = (connect_timeout, request_timeout)

    def close(self) -> None:
        client: Any = self._client  # close() carries no annotations
        client.close()

    def read_secret(self, namespace: str, name: str) -> StoredSecret | None:
        """The Secret, or None if it does not exist."""
        what = f"reading Secret {namespace}/{name}"
        try:
            obj = _api_json(
                what,
                lambda: self._core.read_namespaced_secret(
                    name, namespace, _preload_content=False, _request_timeout=self._timeout
                ),
            )
        except ClusterApiError as exc:
            if exc.status == 404:
                return None
            raise
        return _stored_secret(obj)

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
        body = _secret_body(metadata, secret_type, data)
        obj = _api_json(
            f"creating Secret {namespace}/{name}",
            lambda: self._core.create_namespaced_secret(
                namespace,
                body,
                field_manager=FIELD_MANAGER,
                _content_type="application/json",
                _preload_content=False,
                _request_timeout=self._timeout,
            ),
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
        body = _secret_body(metadata, current.type, {**current.data, **data})
        obj = _api_json(
            f"updating Secret {current.namespace}/{current.name}",
            lambda: self._core.replace_namespaced_secret(
                current.name,
                current.namespace,
                body,
                field_manager=FIELD_MANAGER,
                _content_type="application/json",
                _preload_content=False,
                _request_timeout=self._timeout,
            ),
        )
        return _stored_secret(obj)

    def read_webhook_configuration(
        self, kind: WebhookKind, name: str
    ) -> WebhookConfiguration | None:
        """The configuration, or None if it does not exist (403 and the rest raise)."""
        read = (
            self._admission.read_validating_webhook_configuration
            if kind is WebhookKind.VALIDATING
            else self._admission.read_mutating_webhook_configuration
        )
        try:
            obj = _api_json(
                f"reading {kind.value}/{name}",
                lambda: read(name, _preload_content=False, _request_timeout=self._timeout),
            )
        except ClusterApiError as exc:
            if exc.status == 404:
                return None
            raise
        return _webhook_configuration(kind, obj)

    def patch_ca_bundles(
        self, current: WebhookConfiguration, bundles: Mapping[str, bytes]
    ) -> WebhookConfiguration:
        """Set clientConfig.caBundle of the named webhooks, if still at current's version.

        A strategic merge patch: `webhooks` merge by name, so other fields and webhooks are
        untouched; metadata.resourceVersion in a patch is a precondition (409 if stale).
        """
        patch = (
            self._admission.patch_validating_webhook_configuration
            if current.kind is WebhookKind.VALIDATING
            else self._admission.patch_mutating_webhook_configuration
        )
        body = {
            "metadata": {"resourceVersion": current.resource_version},
            "webhooks": [
                {"name": name, "clientConfig": {"caBundle": base64.b64encode(pem).decode()}}
                for name, pem in bundles.items()
            ],
        }
        obj = _api_json(
            f"patching the caBundle of {current.kind.value}/{current.name}",
            lambda: patch(
                current.name,
                body,
                field_manager=FIELD_MANAGER,
                _content_type="application/strategic-merge-patch+json",
                _preload_content=False,
                _request_timeout=self._timeout,
            ),
        )
        return _webhook_configuration(current.kind, obj)


def _api_call(what: str, call: Callable[[], T]) -> T:
    """call(), with the client's and the connection's errors as a ClusterApiError on `what`."""
    try:
        return call()
    except ApiException as exc:
        raise ClusterApiError(what, exc.status, reason_of(exc), describe_error(exc)) from exc
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        raise ClusterApiError(what, None, None, describe_error(exc)) from exc


def _api_json(what: str, call: Callable[[], Any]) -> Mapping[str, Any]:
    # Raw JSON rather than the client's models: nothing to lose in a round trip, and the
    # caller sees every field the server sent.
    def fetch() -> Any:
        resp = call()
        try:
            return json.loads(resp.data)
        finally:
            resp.release_conn()

    obj = _api_call(what, fetch)
    if not isinstance(obj, Mapping):
        raise ClusterApiError(what, None, None, "the response is not a JSON object")
    return obj


def _secret_body(
    metadata: Mapping[str, Any], secret_type: str, data: Mapping[str, bytes]
) -> kubernetes.client.V1Secret:
    encoded = {key: base64.b64encode(value).decode() for key, value in data.items()}
    wire = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": dict(metadata),
        "type": secret_type,
        "data": encoded,
    }
    body = kubernetes.client.V1Secret.from_dict(wire)
    assert body is not None
    return body


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
