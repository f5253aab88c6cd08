"""Host names: normalisation, the forms Istio gives them, and who owns each one."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from enum import Enum
from typing import NamedTuple

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_MAX_NAME = 253


class HostError(ValueError):
    """A host that is not a valid DNS name (or `*`-prefixed wildcard)."""


@functools.lru_cache(maxsize=8192)  # hosts repeat across requests; the cache is bounded
def normalise(host: str) -> str:
    """Lower-case, drop one trailing dot, and check the DNS syntax; raise HostError if invalid.

    Non-ASCII is refused rather than IDNA-encoded: guessing an encoding could map a look-alike
    name onto another tenant's host.
    """
    if not isinstance(host, str):
        raise HostError(f"expected a string, got {type(host).__name__}")
    if not host.isascii():
        raise HostError("non-ASCII host name; write its punycode (xn--) form")
    name = host.lower()
    if name.endswith("."):
        name = name[:-1]
    if name == "*":
        return name
    if not name:
        raise HostError("empty host name")
    if len(name) > _MAX_NAME:
        raise HostError(f"longer than {_MAX_NAME} characters")
    labels = name.split(".")
    for index, label in enumerate(labels):
        if label == "*" and index == 0 and len(labels) > 1:
            continue
        if "*" in label:
            raise HostError("'*' is allowed only as the whole leftmost label (*.example.com)")
        if not _LABEL.match(label):
            raise HostError(f"label {label!r} is not a valid DNS label")
    return name


def is_wildcard(host: str) -> bool:
    return host.startswith("*")


def wildcard_base(host: str) -> str:
    """`*.example.com` -> `example.com` (a normalised wildcard)."""
    return host[2:]


def proper_suffixes(name: str) -> Iterable[str]:
    """`a.b.c` -> `b.c`, `c`: the domains strictly above a name, nearest first."""
    rest = name
    while "." in rest:
        rest = rest.split(".", 1)[1]
        yield rest


# --- the forms a VirtualService host takes ---------------------------------------------------


class Form(Enum):
    SHORT = "short name"  # `svc`: Istio expands it within the VirtualService's namespace
    SERVICE = "service of a namespace"  # `svc.ns`, `svc.ns.svc`, `svc.ns.svc.<domain>`, below
    NAMESPACE_WILDCARD = "wildcard over a namespace"  # `*.ns.svc.<domain>`
    MESH_WILDCARD = "wildcard over several namespaces"  # `*`, `*.svc.<domain>`, `*.<domain>`
    CLUSTER_NAME = "cluster-internal name"  # other names under the cluster domain
    EXTERNAL = "external name"  # everything else: owned through tenants' claims


class HostForm(NamedTuple):
    """A host's form. A named tuple, not a frozen dataclass: one is made for every host of
    every request, and a frozen dataclass costs several times as much to construct."""

    form: Form
    namespace: str | None = None  # for SHORT, SERVICE, NAMESPACE_WILDCARD
    # EXTERNAL `x.y` or `*.y` where `y` is not a known namespace: still possibly `svc.ns` of a
    # namespace yet to come, so an unclaimed one belongs to the platform, not `unclaimedHosts`.
    two_label_namespace: str | None = None


# The forms that carry no namespace, made once.
_MESH_WILDCARD = HostForm(Form.MESH_WILDCARD)
_CLUSTER_NAME = HostForm(Form.CLUSTER_NAME)
_EXTERNAL = HostForm(Form.EXTERNAL)


def classify(
    host: str,
    namespace: str,
    cluster_domain: str,
    is_namespace: Callable[[str], bool],
) -> HostForm:
    """Say which form a normalised host has, for a VirtualService in `namespace`.

    `is_namespace` tells whether a two-label name `svc.ns` names a namespace: clients that call
    `svc.ns` send that Host header, so such a name belongs to the namespace's tenant.
    """
    if "." not in host and host != "*":
        return HostForm(Form.SHORT, namespace)
    form = _dotted_form(host, cluster_domain)
    if form is not None:
        return form
    # `x.y` outside the cluster domain: service x of namespace y, if there is a namespace y.
    first, _, second = host.partition(".")
    if is_namespace(second):
        return HostForm(Form.NAMESPACE_WILDCARD if first == "*" else Form.SERVICE, second)
    return HostForm(Form.EXTERNAL, two_label_namespace=second)


@functools.lru_cache(maxsize=8192)  # as normalise: hosts repeat across requests; bounded
def _dotted_form(host: str, cluster_domain: str) -> HostForm | None:
    """The form of `*` or of a dotted name, which depends on the name and the cluster domain
    alone; None for a two-label name outside the cluster domain, which depends on the
    namespaces there are (see classify)."""
    if host == "*":
        return _MESH_WILDCARD
    domain_suffix = "." + cluster_domain
    if host.endswith(domain_suffix) or host == cluster_domain:
        inner = host[: -len(domain_suffix)] if host != cluster_domain else ""
        return _classify_cluster_name(inner.split(".") if inner else [])
    labels = host.split(".")
    if labels[-1] == "svc" and len(labels) >= 3:
        return _classify_cluster_name(labels)
    if labels[-1] == "svc":
        # `*.svc` or `x.svc`: above every namespace
        return _MESH_WILDCARD if labels[0] == "*" else _CLUSTER_NAME
    if len(labels) == 2:
        return None
    return _EXTERNAL


def _classify_cluster_name(labels: list[str]) -> HostForm:
    """Classify the labels of a name under the cluster domain (domain already removed)."""
    # Names under `<ns>.svc` belong to that namespace: `svc.ns.svc`, `*.ns.svc`, and deeper
    # names such as `pod.svc.ns.svc` that cluster DNS also serves.
    if len(labels) >= 3 and labels[-1] == "svc" and labels[-2] != "*":
        ns = labels[-2]
        if labels[0] == "*" and len(labels) == 3:
            return HostForm(Form.NAMESPACE_WILDCARD, ns)
        return HostForm(Form.SERVICE, ns)
    if not labels or labels[0] == "*":
        return _MESH_WILDCARD
    return _CLUSTER_NAME


def route_key(host: str, namespace: str, cluster_domain: str) -> str | None:
    """The key under which a routed host is indexed for collisions, or None if invalid.

    Short names are expanded the way Istio expands them, so `reviews` in tenant-a and
    `reviews.tenant-a.svc.cluster.local` anywhere collide.
    """
    try:
        name = normalise(host)
    except HostError:
        return None
    if "." not in name and name != "*":
        return f"{name}.{namespace}.svc.{cluster_domain}"
    labels = name.split(".")
    if len(labels) == 3 and labels[2] == "svc":
        return f"{name}.{cluster_domain}"
    return name
