"""The door to the Kubernetes API that every feature shares; the only package that imports
`kubernetes`.

`client` builds the API client and describes its errors, `rest` is the door for calls by path
(JSON in and out, every failure a ClusterApiError), `discovery` finds the version a resource
is served in (or that it is not served yet), `watch` is the list+watch machinery (one
WatchCache per collection), `objects` makes the paged one-shot reads of `analyze
--kubeconfig` and `audit`. Still here until they move to their features: the tenancy caches
(`watch.ClusterView`), the host index they feed (`routes`) and the audit's caches
(`auditwatch`).
"""

from webhook.cluster.auditwatch import AuditWatches
from webhook.cluster.client import describe_error, load_api_client
from webhook.cluster.discovery import ResourceNotServed, version_candidates
from webhook.cluster.objects import ClusterReader, ClusterReadError
from webhook.cluster.rest import ApiClient, ClusterApiError, RestClient, api_path
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
    "GATEWAY_ROUTES",
    "REQUIRED_RBAC",
    "ApiClient",
    "AuditWatches",
    "CacheStatus",
    "ClusterApiError",
    "ClusterReadError",
    "ClusterReader",
    "ClusterView",
    "NamespaceLookupError",
    "ResourceNotServed",
    "RestClient",
    "RoutingResource",
    "WatchCache",
    "WatchTuning",
    "api_path",
    "choose_version",
    "describe_error",
    "load_api_client",
    "version_candidates",
]
