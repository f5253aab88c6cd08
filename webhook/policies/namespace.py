"""Namespaces (SPEC.md §5b): only the platform moves a namespace into or out of a tenant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.config.model import ENFORCEMENT_LABEL, Config
from webhook.policies.common import Violation, label_path, mapping_at, show, string_map_at


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
) -> list[Violation]:
    """Violations for a Namespace CREATE (old is None) or UPDATE by a non-admin."""
    if config.label_admins.includes(username, groups):
        return []
    labels = string_map_at(mapping_at(obj, "metadata", "metadata"), "labels", "metadata.labels")
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
                "ask the platform team to label the namespace"
                if old is None
                else f"leave {key} as it was",
            )
        )
    return violations
