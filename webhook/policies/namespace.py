"""Namespaces (SPEC.md §5b, §12): only the platform moves a namespace into or out of a tenant,
except that a Tenant's owners may create namespaces for it, up to its namespaceQuota."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.admission.patch import Path
from webhook.config.model import ENFORCEMENT_LABEL, Config
from webhook.policies.common import Violation, label_path, mapping_at, show, string_map_at
from webhook.tenancy.view import TenancyView


def guarded_labels(config: Config) -> tuple[str, ...]:
    # The enforcement label is guarded too: a tenant that could set it to "warn" on its own
    # namespace would switch every rule off for itself.
    return (config.tenant_label, ENFORCEMENT_LABEL)


def check(
    obj: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    username: str | None,
    groups: list[str],
    config: Config,
    view: TenancyView | None = None,
) -> list[Violation]:
    """Violations for a Namespace CREATE (old is None) or UPDATE by a non-admin. With a view,
    a Tenant's owner may create a namespace labelled for that tenant (SPEC.md §12)."""
    if config.label_admins.includes(username, groups):
        return []
    metadata = mapping_at(obj, "metadata", "metadata")
    labels = string_map_at(metadata, "labels", "metadata.labels")
    if old is None and view is not None:
        owned = _owner_create(labels, metadata, username, groups, config, view)
        if owned is not None:
            return owned
    old_labels: Mapping[str, str] = {}
    if old is not None:
        old_labels = string_map_at(
            mapping_at(old, "metadata", "oldObject.metadata"), "labels", "oldObject.metadata.labels"
        )
    violations = []
    for key in guarded_labels(config):
        new_value, old_value = labels.get(key), old_labels.get(key)
        if new_value == old_value:
            continue
        if old is None:
            problem = "sets a guarded label on a new namespace"
        elif new_value is None:
            problem = f"removes a guarded label (was {show(old_value)})"
        elif old_value is None:
            problem = "adds a guarded label"
        else:
            problem = f"changes a guarded label (was {show(old_value)})"
        who = username or "this user"
        violations.append(
            Violation(
                "tenant-label",
                label_path("labels", key),
                "absent" if new_value is None else show(new_value),
                f"{problem}; only labelAdmins may do that and {who} is not one",
                _fix_for_creator(key, username, groups, config, view)
                if old is None
                else f"leave {key} as it was",
            )
        )
    return violations


def _owner_create(
    labels: Mapping[str, str],
    metadata: Mapping[str, Any],
    username: str | None,
    groups: list[str],
    config: Config,
    view: TenancyView,
) -> list[Violation] | None:
    """A new namespace labelled for a tenant its creator owns: [] when admitted, the quota
    violation when full, None when the owner rule does not apply (the label guard decides)."""
    tenant = labels.get(config.tenant_label)
    if not tenant or ENFORCEMENT_LABEL in labels:
        return None  # nothing to own, or the enforcement label, which owners may not set
    entry = view.directory(config).entry(tenant)
    if entry is None or not entry.owned_by(username, groups):
        return None
    quota = entry.namespace_quota
    if quota is None:
        return []
    name = metadata.get("name")
    existing = sorted(view.namespaces_of(tenant, config) - {name})
    if len(existing) < quota:
        return []
    listed = ", ".join(existing[:10]) + (
        f" and {len(existing) - 10} more" if len(existing) > 10 else ""
    )
    return [
        Violation(
            "namespace-quota",
            label_path("labels", config.tenant_label),
            show(tenant),
            f"would be namespace {len(existing) + 1} of tenant {show(tenant)}, whose "
            f"namespaceQuota is {quota} (it has {listed or 'none'})",
            f"delete a namespace of tenant {show(tenant)} first, or ask the platform team to "
            f"raise spec.namespaceQuota of Tenant {show(tenant)}",
            tenant,
        )
    ]


def _fix_for_creator(
    key: str, username: str | None, groups: list[str], config: Config, view: TenancyView | None
) -> str:
    owned = view.directory(config).owned_by(username, groups) if view is not None else []
    if key == config.tenant_label and owned:
        return (
            f"create namespaces only for a tenant you own ({', '.join(owned[:10])}), or ask "
            "the platform team to label the namespace"
        )
    return "ask the platform team to label the namespace"


def owner_label(
    obj: Mapping[str, Any],
    ref: str,
    username: str | None,
    groups: list[str],
    config: Config,
    view: TenancyView,
) -> tuple[list[tuple[Path, str]], list[str]]:
    """The tenant label for a namespace created without one by the owner of exactly one
    Tenant (SPEC.md §12), as (updates, warnings); an owner of several is told to choose."""
    if config.label_admins.includes(username, groups):
        return [], []  # the platform labels what it creates itself, explicitly
    labels = string_map_at(mapping_at(obj, "metadata", "metadata"), "labels", "metadata.labels")
    if labels.get(config.tenant_label):
        return [], []
    owned = view.directory(config).owned_by(username, groups)
    if len(owned) == 1:
        return [(("metadata", "labels", config.tenant_label), owned[0])], [
            f"{ref}: labelled {config.tenant_label}={owned[0]} (you own tenant {show(owned[0])})"
        ]
    if owned:
        return [], [
            f"{ref}: created without a tenant label: you own tenants {', '.join(owned[:10])}; "
            f"to create one for a tenant, set the label {config.tenant_label}=<tenant>"
        ]
    return [], []
