"""Everything that talks to the Kubernetes API; the only package that imports `kubernetes`.

`client` builds the API client and describes its errors, `watch` keeps the namespace and
VirtualService caches that requests read and the Gateway API route watches, `routes` the one
index of routed hosts they all feed, `discovery` finds the version a resource is served in (or
that it is not served yet), `certs` makes the calls of `serve --manage-certs`.
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
from webhook.cluster.discovery import ResourceNotServed, version_candidates
from webhook.cluster.routes import GATEWAY_ROUTES, RoutingResource
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
    "GATEWAY_ROUTES",
    "REQUIRED_RBAC",
    "CacheStatus",
    "CertificateApi",
    "ClusterApiError",
    "ClusterView",
    "NamespaceLookupError",
    "ResourceNotServed",
    "RoutingResource",
    "StoredSecret",
    "WatchCache",
    "WatchTuning",
    "WebhookConfiguration",
    "WebhookKind",
    "choose_version",
    "describe_error",
    "load_api_client",
    "version_candidates",
]
