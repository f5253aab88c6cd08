"""Pods: tenant label and sidecar bounds on CREATE (SPEC.md §5), label guard on UPDATE (§5b)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from webhook.admission.patch import Path
from webhook.config.model import PROXY_ANNOTATIONS, Bound, Config
from webhook.config.quantity import QuantityError, parse_quantity
from webhook.policies.common import (
    Violation,
    label_path,
    list_at,
    mapping_at,
    show,
    string_map_at,
)

SIDECAR = "istio-proxy"

# Where each configured bound lands in a container's `resources`.
_RESOURCE_FIELDS: Mapping[str, tuple[str, str]] = {
    "cpu": ("requests", "cpu"),
    "cpuLimit": ("limits", "cpu"),
    "memory": ("requests", "memory"),
    "memoryLimit": ("limits", "memory"),
}
# A request may not exceed its limit, or the API server rejects the pod.
_REQUEST_LIMIT_PAIRS = (("cpu", "cpuLimit"), ("memory", "memoryLimit"))


class Mutation(NamedTuple):
    """What a pod's mutation writes (one per pod created: a named tuple, cheap to make)."""

    updates: list[tuple[Path, str]]  # (path in the pod, value to write); see admission.patch
    warnings: list[str]


def mutate(
    pod: Mapping[str, Any],
    ref: str,
    tenant: str,
    config: Config,
    bounds: Mapping[str, Bound] | None = None,
) -> Mutation:
    """The values that give the pod its tenant label and sidecar bounds (`bounds`: the
    tenant's, whichever source defines it; by default the config's), and warnings for what
    they override. The pod itself is not changed."""
    metadata = mapping_at(pod, "metadata", "metadata")
    labels = string_map_at(metadata, "labels", "metadata.labels")
    annotations = string_map_at(metadata, "annotations", "metadata.annotations")
    spec = mapping_at(pod, "spec", "spec")
    updates: list[tuple[Path, str]] = []
    warnings: list[str] = []

    current = labels.get(config.tenant_label)
    if current != tenant:
        if current is not None:
            warnings.append(
                f"{ref}: label {config.tenant_label}={show(current)} replaced by {show(tenant)} "
                "(the namespace's tenant)"
            )
        updates.append((("metadata", "labels", config.tenant_label), tenant))

    if bounds is None:
        bounds = config.proxy_bounds(tenant)
    annotation_values = {key: annotations.get(name) for key, name in PROXY_ANNOTATIONS.items()}
    for key, (value, note) in _apply_bounds(annotation_values, bounds).items():
        name = PROXY_ANNOTATIONS[key]
        updates.append((("metadata", "annotations", name), value))
        if note:
            warnings.append(f"{ref}: annotation {name} {note}")

    for list_name in ("containers", "initContainers"):
        containers = list_at(spec, list_name, f"spec.{list_name}")
        for index, container in enumerate(containers):
            if not isinstance(container, dict) or container.get("name") != SIDECAR:
                continue
            field = f"spec.{list_name}[{index}].resources"
            resources = mapping_at(container, "resources", field)
            values = {
                key: _resource_value(resources, section, resource, field)
                for key, (section, resource) in _RESOURCE_FIELDS.items()
            }
            for key, (value, note) in _apply_bounds(values, bounds).items():
                section, resource = _RESOURCE_FIELDS[key]
                updates.append((("spec", list_name, index, "resources", section, resource), value))
                if note:
                    warnings.append(f"{ref}: container {SIDECAR} {section}.{resource} {note}")
    return Mutation(updates, warnings)


def _resource_value(
    resources: Mapping[str, Any], section: str, resource: str, field: str
) -> str | None:
    values = mapping_at(resources, section, f"{field}.{section}")
    value = values.get(resource)
    return None if value is None else str(value)


def _apply_bounds(
    values: Mapping[str, str | None], bounds: Mapping[str, Bound]
) -> dict[str, tuple[str, str | None]]:
    """The values to write, as {key: (value, warning or None)}, for keys that must change.

    Absent -> the bound; unparseable -> the bound (warned); larger -> the bound (warned);
    otherwise kept. Then a request above its final limit is lowered to that limit.
    """
    final: dict[str, tuple[str, Any]] = {}  # key -> (text, parsed value)
    changes: dict[str, tuple[str, str | None]] = {}
    for key, bound in bounds.items():
        value = values.get(key)
        if value is None:
            final[key] = (bound.text, bound.value)
            changes[key] = (bound.text, None)
            continue
        try:
            parsed = parse_quantity(value)
        except QuantityError:
            final[key] = (bound.text, bound.value)
            changes[key] = (bound.text, f"{show(value)} is not a quantity; set to {bound.text}")
            continue
        if parsed > bound.value:
            final[key] = (bound.text, bound.value)
            changes[key] = (
                bound.text,
                f"{show(value)} is above the bound; clamped to {bound.text}",
            )
        else:
            final[key] = (value, parsed)
    for request, limit in _REQUEST_LIMIT_PAIRS:
        if request in final and limit in final and final[request][1] > final[limit][1]:
            text = final[limit][0]
            changes[request] = (
                text,
                f"{show(final[request][0])} is above the limit {text}; lowered to {text}",
            )
    return changes


def check_update(
    pod: Mapping[str, Any], old: Mapping[str, Any], tenant: str, config: Config
) -> list[Violation]:
    """§5b: a pod's tenant label may not be changed or removed once set."""
    key = config.tenant_label
    new_value = string_map_at(
        mapping_at(pod, "metadata", "metadata"), "labels", "metadata.labels"
    ).get(key)
    old_value = string_map_at(
        mapping_at(old, "metadata", "oldObject.metadata"), "labels", "oldObject.metadata.labels"
    ).get(key)
    if new_value in (old_value, tenant):
        return []
    if new_value is None:
        shown, problem = "absent", f"removes the tenant label (was {show(old_value)})"
    else:
        shown, problem = show(new_value), f"changes the tenant label from {show(old_value)}"
    return [
        Violation(
            "tenant-label",
            label_path("labels", key),
            shown,
            problem + f"; this pod belongs to tenant {show(tenant)}",
            f"keep {key}={tenant}",
            tenant,
        )
    ]
