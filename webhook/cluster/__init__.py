"""Everything that talks to the Kubernetes API; the only package that imports `kubernetes`.

`client` builds the API client and describes its errors, `watch` keeps the namespace and
VirtualService caches that requests read, `certs` makes the calls of `serve --manage-certs`.
`objects` makes the one-shot reads of `analyze --kubeconfig` and `audit`.
"""

from webhook.cluster.certs import (
    CERT_MANAGEMENT_RBAC,
    CertificateApi,
    ClusterApiError,
    StoredSecret,
    WebhookConfiguration,
    WebhookKind,
)
from webhook.cluster.client import describe_error, load_api_client
from webhook.cluster.objects import ClusterReader, ClusterReadError, api_path
from webhook.cluster.watch import (
    REQUIRED_RBAC,
    CacheStatus,
    ClusterView,
    NamespaceLookupError,
    WatchCache,
    WatchTuning,
    choose_version,
)

__all__ = [
    "CERT_MANAGEMENT_RBAC",
    "REQUIRED_RBAC",
    "CacheStatus",
    "CertificateApi",
    "ClusterApiError",
    "ClusterReadError",
    "ClusterReader",
    "ClusterView",
    "NamespaceLookupError",
    "StoredSecret",
    "WatchCache",
    "WatchTuning",
    "WebhookConfiguration",
    "WebhookKind",
    "api_path",
    "choose_version",
    "describe_error",
    "load_api_client",
]
