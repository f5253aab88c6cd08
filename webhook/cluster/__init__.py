"""The door to the Kubernetes API that every feature shares; the only package that imports
`kubernetes`.

`client` builds the API client and describes its errors, `rest` is the door for calls by path
(JSON in and out, every failure a ClusterApiError), `discovery` finds the version a resource
is served in (or that it is not served yet), `watch` is the list+watch machinery (a
WatchCache per collection, and KindCaches: one cache per kind, whoever reads it), and
`objects` makes the paged one-shot reads of `analyze --kubeconfig` and `audit`.
"""

from webhook.cluster.client import describe_error, load_api_client
from webhook.cluster.discovery import ResourceNotServed, version_candidates
from webhook.cluster.objects import ClusterReader, ClusterReadError
from webhook.cluster.rest import ApiClient, ClusterApiError, RestClient, api_path
from webhook.cluster.watch import CacheStatus, KindCaches, WatchCache, WatchTuning, list_call

__all__ = [
    "ApiClient",
    "CacheStatus",
    "ClusterApiError",
    "ClusterReadError",
    "ClusterReader",
    "KindCaches",
    "ResourceNotServed",
    "RestClient",
    "WatchCache",
    "WatchTuning",
    "api_path",
    "describe_error",
    "list_call",
    "load_api_client",
    "version_candidates",
]
