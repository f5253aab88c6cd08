"""Services: the `networking.istio.io/exportTo` annotation (SPEC.md §4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webhook.config.model import Config
from webhook.policies.common import Violation, label_path, mapping_at, string_map_at
from webhook.policies.exportto import check_export_to

EXPORT_TO_ANNOTATION = "networking.istio.io/exportTo"


def check(obj: Mapping[str, Any], namespace: str, config: Config) -> list[Violation]:
    """A present annotation must keep the Service local; an absent one is left to the mesh's
    `defaultServiceExportTo`, since shared ingress gateways must see tenant Services."""
    annotations = string_map_at(
        mapping_at(obj, "metadata", "metadata"), "annotations", "metadata.annotations"
    )
    value = annotations.get(EXPORT_TO_ANNOTATION)
    if value is None:
        return []
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    shared_namespaces = {ref.split("/", 1)[0] for ref in config.shared_gateways}
    return check_export_to(
        entries,
        namespace,
        field=label_path("annotations", EXPORT_TO_ANNOTATION),
        gateway_namespaces=shared_namespaces,
        tilde=True,
        as_annotation=True,
    )
