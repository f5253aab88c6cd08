"""`tenant-guard analyze` and `tenant-guard audit`: inputs, config and cluster reads, then the
report. The judging itself is webhook.analyze.judge; the formats are report, sarif, junit."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import yaml

from webhook.admission.decide import KINDS
from webhook.analyze import junit, report, sarif
from webhook.analyze.judge import (
    Analyzer,
    Identity,
    ObjectKey,
    Result,
    analyze,
    exit_code,
    judged_kinds,
    tenancy_view,
    tenant_index,
)
from webhook.analyze.manifests import (
    Document,
    InputError,
    documents,
    files_of,
    read_text,
)
from webhook.config.model import Config, ConfigError, load_config, parse_config
from webhook.tenancy import tenants as tenant_objects
from webhook.tenancy.gatewaypods import GatewayPods, gateway_pods_of
from webhook.tenancy.routing import ROUTING_RESOURCES, index_routes
from webhook.tenancy.snapshot import RouteRef

if TYPE_CHECKING:  # the cluster client is imported only when a kubeconfig is given
    from webhook.cluster import ClusterReader

OUTPUTS = ("text", "json", "sarif", "junit")
DEFAULT_CONFIG_MAP = "tenant-guard/tenant-guard-config"  # what deploy/base installs
CONFIG_MAP_KEY = "config.yaml"
UNREADABLE = 2
T = TypeVar("T")


class CommandError(Exception):
    """Input, config or cluster that cannot be used: reported on stderr, exit 2."""


def add_arguments(parser: argparse.ArgumentParser, *, audit: bool) -> None:
    """The options analyze and audit share, and each one's own."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="config file (YAML). Default: with --kubeconfig, the cluster's ConfigMap "
        "(--config-map); without, the built-in defaults",
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="PATH",
        required=audit,
        help="read namespace labels, live objects and routes from this cluster (read-only)",
    )
    parser.add_argument(
        "--config-map",
        default=DEFAULT_CONFIG_MAP,
        metavar="NS/NAME",
        help=f"the ConfigMap holding the config, read with --kubeconfig when --config is not "
        f"given (key {CONFIG_MAP_KEY}; default {DEFAULT_CONFIG_MAP})",
    )
    parser.add_argument("--output", "-o", choices=OUTPUTS, default="text", help="report format")
    parser.add_argument(
        "--show-mutations",
        action="store_true",
        help="also print the labels, annotations, exportTo and sidecar resources admission sets",
    )
    if audit:
        return
    parser.add_argument(
        "--namespace",
        "-n",
        default="default",
        metavar="NS",
        help="namespace of objects that name none (default: default)",
    )
    parser.add_argument(
        "--as",
        dest="as_user",
        metavar="USER",
        help="judge the requests as this user (default: an unnamed authenticated user)",
    )
    parser.add_argument(
        "--as-group",
        action="append",
        default=[],
        metavar="GROUP",
        help="a group of that user (repeatable), e.g. system:masters for a labelAdmins member",
    )
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help="files or directories of manifests, '-' for stdin"
    )


def run_analyze(args: argparse.Namespace, stdin: TextIO | None = None) -> int:
    try:
        docs = read_documents(args.paths, stdin or sys.stdin)
        reader = _reader(args.kubeconfig)
        config = _config(args, reader)
        namespaces: Mapping[str, Mapping[str, str]] = config.namespaces or {}
        live_routes: Mapping[str, frozenset[RouteRef]] = {}
        live: dict[ObjectKey, Mapping[str, Any]] = {}
        gateway_pods: GatewayPods | None = None  # without a cluster: unknown, and said so
        live_tenants: list[dict[str, Any]] = []
        if reader is not None:
            live_tenants = _list_all(reader, tenant_objects.GROUP, tenant_objects.PLURAL)
            namespaces = _cluster_call(reader.namespaces)
            live_routes = index_routes(
                (o for r in ROUTING_RESOURCES for o in _list_all(reader, r.group, r.plural)),
                config.domain,
            )
            live = _live_objects(reader, docs, args.namespace)
            pods = _cluster_call(lambda: reader.list("", "v1", "pods", metadata_only=True))
            gateway_pods = gateway_pods_of(pods or ())
    except CommandError as exc:
        print(f"tenant-guard analyze: {exc}", file=sys.stderr)
        return UNREADABLE
    identity = Identity(args.as_user, ("system:authenticated", *args.as_group))
    results = analyze(
        docs,
        config,
        namespaces,
        live_routes=live_routes,
        live=live,
        gateway_pods=gateway_pods,
        default_namespace=args.namespace,
        identity=identity,
        live_tenants=live_tenants,
    )
    sys.stdout.write(render(results, args.output, args.show_mutations))
    return exit_code(results)


def run_audit(args: argparse.Namespace) -> int:
    """Every object of the judged kinds in tenant namespaces, as the webhook would judge it
    now: one paged list per kind, collisions against the listed routing objects."""
    try:
        reader = _reader(args.kubeconfig)
        assert reader is not None
        config = _config(args, reader)
        namespaces = _cluster_call(reader.namespaces)
        tenants = {name for name, labels in namespaces.items() if labels.get(config.tenant_label)}
        # The claims of the cluster's Tenant objects are in force beside the config's.
        claims = tenant_index(
            config, _list_all(reader, tenant_objects.GROUP, tenant_objects.PLURAL)
        )
        docs: list[Document] = []
        listed: list[dict[str, Any]] = []
        pods: list[dict[str, Any]] = []
        for (group, resource), handling in KINDS.items():
            if not handling.tenant_scoped:
                continue  # the label guards judge who changes a label; a stored object cannot say
            objects = _list_all(reader, group, resource)
            listed += objects
            if (group, resource) == ("", "pods"):
                pods = objects  # every pod, listed anyway: the gateway pods are among them
            source = f"{resource}.{group}" if group else resource
            docs += [
                Document(source, 0, 0, obj)
                for obj in objects
                if (obj.get("metadata") or {}).get("namespace") in tenants
            ]
    except CommandError as exc:
        print(f"tenant-guard audit: {exc}", file=sys.stderr)
        return UNREADABLE
    view = tenancy_view(
        namespaces, (), index_routes(listed, config.domain), gateway_pods_of(pods), claims
    )
    results = Analyzer(config, view).judge_all(docs)
    sys.stdout.write(render(results, args.output, args.show_mutations))
    return exit_code(results)


def read_documents(paths: Sequence[str], stdin: TextIO) -> list[Document]:
    try:
        files = files_of(paths)
    except InputError as exc:
        raise CommandError(str(exc)) from None
    docs: list[Document] = []
    for source in files:
        try:
            text = read_text(source, stdin)
        except InputError as exc:
            docs.append(Document(source, 0, 1, error=str(exc)))
            continue
        docs += documents(source, text)
    return docs


def render(results: Sequence[Result], output: str, show_mutations: bool) -> str:
    if output == "json":
        return report.as_json(results)
    if output == "sarif":
        return sarif.as_sarif(results, tool_version())
    if output == "junit":
        return junit.as_junit(results)
    return report.text(results, show_mutations=show_mutations)


def tool_version() -> str:
    try:
        return metadata.version("tenant-guard")
    except metadata.PackageNotFoundError:
        return "0+unknown"


# --- config and cluster ----------------------------------------------------------------------


def _reader(kubeconfig: str | None) -> ClusterReader | None:
    if not kubeconfig:
        return None
    from webhook.cluster import ClusterReader, load_api_client

    try:
        return ClusterReader(load_api_client(kubeconfig=kubeconfig, in_cluster=False))
    except Exception as exc:
        raise CommandError(f"{kubeconfig}: cannot use this kubeconfig: {exc}") from None


def _config(args: argparse.Namespace, reader: ClusterReader | None) -> Config:
    try:
        if args.config:
            return load_config(Path(args.config))
        if reader is None:
            print(
                "tenant-guard: no --config: using the built-in defaults (no tenant claims; "
                "tenancy from the input's Namespace objects)",
                file=sys.stderr,
            )
            return parse_config({})
        namespace, _, name = str(args.config_map).partition("/")
        data = _cluster_call(reader.config_map_data, namespace, name)
        if data is None or CONFIG_MAP_KEY not in data:
            raise CommandError(
                f"no --config, and the ConfigMap {args.config_map} (key {CONFIG_MAP_KEY}) is "
                "not in the cluster: pass --config FILE or --config-map NS/NAME"
            )
        source = f"ConfigMap {args.config_map}"
        try:
            parsed = yaml.safe_load(data[CONFIG_MAP_KEY])
        except yaml.YAMLError as exc:
            raise CommandError(f"{source}: not valid YAML: {exc}") from None
        return parse_config(parsed, source)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def _cluster_call(call: Callable[..., T], *args: Any) -> T:
    from webhook.cluster import ClusterReadError

    try:
        return call(*args)
    except ClusterReadError as exc:
        raise CommandError(str(exc)) from None


def _list_all(reader: ClusterReader, group: str, resource: str) -> list[dict[str, Any]]:
    """Every object of a resource, in the version the server serves it in; none when it is
    not served."""
    version = "v1" if not group else _cluster_call(reader.served_version, group, resource)
    if version is None:
        return []
    objects = _cluster_call(reader.list, group, version, resource)
    return list(objects or ())


def _live_objects(
    reader: ClusterReader, docs: Iterable[Document], default_namespace: str
) -> dict[ObjectKey, Mapping[str, Any]]:
    """The stored versions of the input's objects, so that they are judged as the UPDATE
    they would be: one list per (resource, namespace) in the input, not a GET per object."""
    resources = judged_kinds()
    wanted: set[tuple[str, str, str, str]] = set()  # group, version, resource, namespace
    for doc in docs:
        obj = doc.obj
        if obj is None or not isinstance(obj.get("apiVersion"), str):
            continue
        group, _, version = str(obj["apiVersion"]).rpartition("/")
        resource = resources.get((group, str(obj.get("kind"))))
        if resource is None:
            continue
        metadata = obj.get("metadata")
        metadata = metadata if isinstance(metadata, Mapping) else {}
        scoped = KINDS[(group, resource)].tenant_scoped and obj.get("kind") != "Namespace"
        namespace = str(metadata.get("namespace") or default_namespace) if scoped else ""
        wanted.add((group, version, resource, namespace))
    live: dict[ObjectKey, Mapping[str, Any]] = {}
    for group, version, resource, namespace in sorted(wanted):
        listed = _cluster_call(reader.list, group, version, resource, namespace or None)
        for obj in listed or ():
            metadata = obj.get("metadata") or {}
            name = str(metadata.get("name") or "")
            key_namespace = name if obj.get("kind") == "Namespace" else namespace
            live[(group, resource, key_namespace, name)] = obj
    return live
