"""Objects tenant-guard manages (SPEC.md §11): tenants may not change, delete or forge them.

An object is managed when it carries `app.kubernetes.io/managed-by: tenant-guard`. Only
labelAdmins, exempt and `baseline.managers` (tenant-guard's own service account, the namespace
controller) may create, change or delete such objects, or put the label on an object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.baseline.desired import MANAGED_BY_LABEL, MANAGER
from webhook.baseline.templates import MANAGED_RESOURCES
from webhook.config.model import Config
from webhook.policies.common import Violation, label_path, mapping_at, show, string_map_at

RULE = "managed-object"


def covers(group: str, resource: str) -> bool:
    """Is this a resource the baseline may manage (and so the rule may apply to)?"""
    return (group, resource) in MANAGED_RESOURCES


def may_write(username: str | None, groups: list[str], config: Config) -> bool:
    if config.label_admins.includes(username, groups) or config.exempt.includes(username, groups):
        return True
    return config.baseline is not None and config.baseline.managers.includes(username, groups)


def is_managed(obj: Mapping[str, Any] | None, where: str) -> bool:
    """Does the object carry the managed-by label? `where` prefixes field names in errors."""
    if obj is None:
        return False
    metadata = mapping_at(obj, "metadata", f"{where}metadata")
    labels = string_map_at(metadata, "labels", f"{where}metadata.labels")
    return labels.get(MANAGED_BY_LABEL) == MANAGER


def check(
    operation: str,
    obj: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    username: str | None,
    groups: list[str],
    config: Config,
) -> list[Violation]:
    """Violations for a write by someone who is not allowed to touch managed objects.

    `obj` is None on DELETE (the API server sends the stored object as `old`).
    """
    if may_write(username, groups, config):
        return []
    was_managed = is_managed(old, "oldObject.")
    now_managed = is_managed(obj, "")
    who = username or "this user"
    field = label_path("labels", MANAGED_BY_LABEL)
    value = show(MANAGER)
    platform = "the platform manages this object (tenant-guard keeps the tenant baseline)"
    ask = "ask the platform team to change the baseline in the tenant-guard config"
    if operation == "DELETE" and was_managed:
        problem = f"marks it: {platform}; {who} may not delete it"
        fix = f"leave it in place (tenant-guard restores it anyway), or {ask}"
    elif operation == "UPDATE" and was_managed:
        problem = f"marks it: {platform}; {who} may not change it"
        fix = f"leave it as tenant-guard applied it (drift is reverted), or {ask}"
    elif operation in ("CREATE", "UPDATE") and now_managed:
        problem = (
            f"is reserved for objects the platform manages (tenant-guard); {who} may not set it"
        )
        fix = f"remove the label, or set another value than {value}"
    else:
        return []
    return [Violation(RULE, field, value, problem, fix, owner="tenant-guard")]
