"""exportTo (SPEC.md §4): tenant config stays visible to its own namespace only."""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence

from webhook.policies.common import Violation, show

RULE = "export-to"


def allowed_values(namespace: str, gateway_namespaces: Collection[str], tilde: bool) -> list[str]:
    values = [".", namespace, *sorted(set(gateway_namespaces) - {namespace})]
    return [*values, "~"] if tilde else values


def default_export_to(namespace: str, gateway_namespaces: Collection[str]) -> list[str]:
    """What the mutating side writes when exportTo is absent: this namespace, plus the
    namespaces of the gateways the object is bound to (a gateway only sees what is exported
    to its namespace)."""
    return [".", *sorted(set(gateway_namespaces) - {namespace})]


@functools.lru_cache(maxsize=1024)  # built only for a violation, and the same each time; bounded
def _suggestion(namespace: str, gateway_namespaces: frozenset[str], as_annotation: bool) -> str:
    default = default_export_to(namespace, gateway_namespaces)
    return show(",".join(default) if as_annotation else default)


def check_export_to(
    export_to: Sequence[str] | None,
    namespace: str,
    *,
    field: str = "spec.exportTo",
    gateway_namespaces: Collection[str] = (),
    tilde: bool = False,
    as_annotation: bool = False,
) -> list[Violation]:
    """Violations of one exportTo list; `tilde` is True only for ServiceEntries, and
    `as_annotation` writes the suggested fix as a comma-separated annotation value."""
    if not export_to:
        # Istio's mesh default for an absent or empty exportTo is "*": every namespace's
        # proxies would receive this config.
        return [
            Violation(
                RULE,
                field,
                "absent" if export_to is None else "[]",
                'makes the object visible to the whole mesh (Istio\'s default is "*")',
                f"set {field} to "
                + _suggestion(namespace, frozenset(gateway_namespaces), as_annotation),
            )
        ]
    allowed: set[str] | None = None
    violations = []
    for index, value in enumerate(export_to):
        if value == "." or value == namespace:
            continue  # allowed whatever else is: the usual case needs no set of the rest
        if allowed is None:
            allowed = set(allowed_values(namespace, gateway_namespaces, tilde))
        if value in allowed:
            continue
        if value == "*":
            problem = "exports the object to every namespace of the mesh"
        elif value == "~":
            problem = "is valid only on a ServiceEntry (istiod rejects it here)"
        else:
            problem = f"exports the object to namespace {show(value)}, outside {show(namespace)}"
        violations.append(
            Violation(
                RULE,
                f"{field}[{index}]",
                show(value),
                problem,
                "export only to this namespace: "
                + _suggestion(namespace, frozenset(gateway_namespaces), as_annotation),
            )
        )
    return violations
