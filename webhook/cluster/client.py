"""The Kubernetes API client: how it is built, and how its errors read in logs and messages."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
from kubernetes.client.exceptions import ApiException

# The webhook.cluster package is the only code that imports `kubernetes`.
_MAX_ERROR_TEXT = 400

# Where a pod finds its own namespace (the projected service-account volume).
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def load_api_client(*, kubeconfig: str | None, in_cluster: bool) -> kubernetes.client.ApiClient:
    """An ApiClient from the pod's service account or from a kubeconfig file.

    With neither, the usual kubeconfig lookup applies ($KUBECONFIG, ~/.kube/config).
    """
    if in_cluster and kubeconfig:
        raise ValueError("pass either in_cluster=True or a kubeconfig path, not both")
    configuration = kubernetes.client.Configuration()
    loaders: Any = kubernetes.config  # the config loaders carry no annotations
    if in_cluster:
        # try_refresh_token re-reads the projected token, which the kubelet rotates.
        loaders.load_incluster_config(client_configuration=configuration, try_refresh_token=True)
    else:
        # A webhook must not write refreshed credentials back into someone's kubeconfig.
        loaders.load_kube_config(
            config_file=kubeconfig, client_configuration=configuration, persist_config=False
        )
    return kubernetes.client.ApiClient(configuration)


def describe_error(exc: BaseException) -> str:
    """One line for logs and readiness: HTTP status and the server's message when there is one."""
    if isinstance(exc, ApiException):
        text = f"HTTP {exc.status} {exc.reason or ''}".rstrip()
        message = status_message(exc.body)
        if message:
            text = f"{text}: {message}"
    else:
        cause = getattr(exc, "reason", None)  # urllib3 MaxRetryError wraps the useful part
        shown = cause if isinstance(cause, BaseException) else exc
        text = f"{type(shown).__name__}: {shown}"
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 3] + "..."


def status_message(body: object) -> str | None:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if not isinstance(body, str) or not body:
        return None
    try:
        status = json.loads(body)
    except ValueError:
        return body.strip()[:200] or None
    if isinstance(status, Mapping) and isinstance(status.get("message"), str):
        return str(status["message"])
    return None


def reason_of(exc: ApiException) -> str | None:
    # The HTTP reason phrase is not the Status reason; the body carries the latter.
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str) and body:
        try:
            status = json.loads(body)
        except ValueError:
            return None
        if isinstance(status, Mapping) and isinstance(status.get("reason"), str):
            return str(status["reason"])
    return None


def resolve_namespace(
    flag: str | None, environ: Mapping[str, str], service_account_file: Path
) -> str:
    """--namespace, else $POD_NAMESPACE, else the pod's service-account namespace file."""
    if flag:
        return flag
    if environ.get("POD_NAMESPACE"):
        return environ["POD_NAMESPACE"]
    with contextlib.suppress(OSError):
        text = service_account_file.read_text().strip()
        if text:
            return text
    raise ValueError(
        "no namespace for the certificate Secret: pass --namespace, set POD_NAMESPACE, "
        f"or run in a pod ({service_account_file} not found)"
    )
