"""Everything that talks to the Kubernetes API; the only package that imports `kubernetes`.

`client` builds the API client and describes its errors, `watch` keeps the namespace and
VirtualService caches that requests read and the Gateway API route watches, `routes` the one
index of routed hosts they all feed, `discovery` finds the version a resource is served in (or
that it is not served yet), `certs` makes the calls of `serve --manage-certs`.
`apply` makes the tenant baseline's calls (discovery, server-side apply, list, delete), and
`lease` keeps one reconciling replica at a time, and `objects` makes the one-shot reads of
`analyze --kubeconfig` and `audit`. `auditwatch` keeps the in-server audit's caches of the
judged kinds, and `reports` writes its PolicyReports.
"""

from webhook.cluster.apply import BASELINE_RBAC, BaselineApi, resource_version
from webhook.cluster.auditwatch import AuditWatches
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
from webhook.cluster.lease import LEASE_RBAC, LeaderElector, LeaseApi, LeaseRecord
from webhook.cluster.objects import ClusterReader, ClusterReadError, api_path
from webhook.cluster.reports import POLICY_REPORT_RBAC, PolicyReportApi
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
    "BASELINE_RBAC",
    "CERT_MANAGEMENT_RBAC",
    "GATEWAY_ROUTES",
    "LEASE_RBAC",
    "POLICY_REPORT_RBAC",
    "REQUIRED_RBAC",
    "AuditWatches",
    "BaselineApi",
    "CacheStatus",
    "CertificateApi",
    "ClusterApiError",
    "ClusterReadError",
    "ClusterReader",
    "ClusterView",
    "LeaderElector",
    "LeaseApi",
    "LeaseRecord",
    "NamespaceLookupError",
    "PolicyReportApi",
    "ResourceNotServed",
    "RoutingResource",
    "StoredSecret",
    "WatchCache",
    "WatchTuning",
    "WebhookConfiguration",
    "WebhookKind",
    "api_path",
    "choose_version",
    "describe_error",
    "load_api_client",
    "resource_version",
    "version_candidates",
]
