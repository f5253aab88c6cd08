"""Baseline object templates (SPEC.md §11): the kinds they may be, and `${...}` substitution.

Substitution is on strings only (never on keys), so a template stays a YAML object that a
reader can check, and a substituted value can never add structure to it:

- `${tenant}`, `${namespace}`, `${tenantLabel}` are replaced wherever they occur in a string;
- `${tenantNamespaces}`, `${otherNamespaces}` and `${sharedNamespaces}` are lists: a list item
  containing one becomes one item per value (`"${otherNamespaces}/*"` -> `["b/*", "c/*"]`,
  nothing when the list is empty), and they are refused anywhere else;
- `$$` is a literal `$`. Any other `${...}` is an error at load.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SCALAR_VARIABLES = ("tenant", "namespace", "tenantLabel")
LIST_VARIABLES = ("tenantNamespaces", "otherNamespaces", "sharedNamespaces")

_PLACEHOLDER = re.compile(r"\$\$|\$\{([^}]*)\}")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")


@dataclass(frozen=True)
class ManagedKind:
    """A kind the reconciler knows how to write: its API group, plural resource and scope."""

    group: str
    kind: str
    resource: str


# Namespaced kinds only: a baseline object lives in the tenant namespace it is rendered for.
MANAGED_KINDS: tuple[ManagedKind, ...] = (
    ManagedKind("security.istio.io", "AuthorizationPolicy", "authorizationpolicies"),
    ManagedKind("security.istio.io", "PeerAuthentication", "peerauthentications"),
    ManagedKind("networking.istio.io", "Sidecar", "sidecars"),
    ManagedKind("networking.k8s.io", "NetworkPolicy", "networkpolicies"),
    ManagedKind("", "ResourceQuota", "resourcequotas"),
    ManagedKind("", "LimitRange", "limitranges"),
)
_BY_GROUP_KIND = {(k.group, k.kind): k for k in MANAGED_KINDS}
MANAGED_RESOURCES = frozenset((k.group, k.resource) for k in MANAGED_KINDS)


class TemplateError(ValueError):
    """A template that cannot be rendered; the message names the field."""


@dataclass(frozen=True)
class Values:
    """What a template is rendered with, for one tenant namespace."""

    tenant: str
    namespace: str
    tenant_label: str
    tenant_namespaces: Sequence[str]
    shared_namespaces: Sequence[str]

    def scalar(self, name: str) -> str:
        return {
            "tenant": self.tenant,
            "namespace": self.namespace,
            "tenantLabel": self.tenant_label,
        }[name]

    def listed(self, name: str) -> Sequence[str]:
        if name == "tenantNamespaces":
            return self.tenant_namespaces
        if name == "otherNamespaces":
            return [n for n in self.tenant_namespaces if n != self.namespace]
        return self.shared_namespaces


# Used to check templates at load: every placeholder resolves and the result is well formed.
SAMPLE = Values("sample-tenant", "sample-ns", "tenant", ["sample-ns", "sample-ns-2"], ["shared"])


def managed_kind(api_version: object, kind: object) -> ManagedKind | None:
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    group = api_version.rpartition("/")[0]
    return _BY_GROUP_KIND.get((group, kind))


def render(template: Mapping[str, Any], values: Values) -> dict[str, Any]:
    """The template with every placeholder substituted (a new object; the template is kept)."""
    rendered = _render(template, values, "")
    assert isinstance(rendered, dict)
    return rendered


def _render(node: Any, values: Values, where: str) -> Any:
    if isinstance(node, Mapping):
        return {key: _render(value, values, f"{where}.{key}") for key, value in node.items()}
    if isinstance(node, list):
        out: list[Any] = []
        for index, item in enumerate(node):
            field = f"{where}[{index}]"
            if isinstance(item, str) and _list_variable(item, field) is not None:
                out.extend(_expand(item, values, field))
            else:
                out.append(_render(item, values, field))
        return out
    if isinstance(node, str):
        if _list_variable(node, where) is not None:
            raise TemplateError(
                f"{where.lstrip('.')}: {node!r} uses a list variable outside a list item; "
                f"{', '.join(LIST_VARIABLES)} may only be list items"
            )
        return _substitute(node, values, where)
    return node


def _list_variable(text: str, where: str) -> str | None:
    found = [m.group(1) for m in _PLACEHOLDER.finditer(text) if m.group(1) in LIST_VARIABLES]
    if len(found) > 1:
        raise TemplateError(f"{where.lstrip('.')}: {text!r} uses more than one list variable")
    return found[0] if found else None


def _expand(text: str, values: Values, where: str) -> list[str]:
    name = _list_variable(text, where)
    assert name is not None
    marker = "${" + name + "}"
    before, _, after = text.partition(marker)
    return [
        _substitute(before, values, where) + item + _substitute(after, values, where)
        for item in values.listed(name)
    ]


def _substitute(text: str, values: Values, where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        if name in SCALAR_VARIABLES:
            return values.scalar(name)
        known = ", ".join(f"${{{v}}}" for v in (*SCALAR_VARIABLES, *LIST_VARIABLES))
        raise TemplateError(f"{where.lstrip('.')}: unknown variable ${{{name}}} (known: {known})")

    return _PLACEHOLDER.sub(replace, text)


def check_template(template: Mapping[str, Any]) -> None:
    """Raise TemplateError unless the template renders into an object the reconciler writes."""
    api_version, kind = template.get("apiVersion"), template.get("kind")
    if not isinstance(api_version, str) or not api_version:
        raise TemplateError("apiVersion: required (e.g. security.istio.io/v1)")
    if not isinstance(kind, str) or not kind:
        raise TemplateError("kind: required (e.g. AuthorizationPolicy)")
    if "/" not in api_version and api_version != "v1":
        raise TemplateError(f"apiVersion: {api_version!r} is not of the form group/version")
    if managed_kind(api_version, kind) is None:
        known = ", ".join(f"{k.kind} ({k.group or 'core'})" for k in MANAGED_KINDS)
        raise TemplateError(
            f"kind: {kind!r} of {api_version!r} is not a kind the baseline writes (known: {known})"
        )
    metadata = template.get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str):
        raise TemplateError("metadata.name: required (a string)")
    namespace = metadata.get("namespace")
    if namespace is not None and namespace != "${namespace}":
        raise TemplateError(
            f"metadata.namespace: {namespace!r}: leave it out (each object goes into the tenant "
            "namespace it is rendered for)"
        )
    for key in ("labels", "annotations"):
        if metadata.get(key) is not None and not isinstance(metadata.get(key), Mapping):
            raise TemplateError(f"metadata.{key}: must be a mapping")
    rendered = render(template, SAMPLE)
    name = rendered["metadata"]["name"]
    if not _DNS_SUBDOMAIN.match(name):
        raise TemplateError(f"metadata.name: {name!r} (rendered) is not a valid object name")
