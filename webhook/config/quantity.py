"""Kubernetes resource quantities, parsed by the official client and checked strictly."""

from __future__ import annotations

import re
from decimal import Decimal

from kubernetes.utils.quantity import parse_quantity as _client_parse_quantity

# The client's parser is lenient where the API server is not: it strips whitespace and reads
# "Infinity". Only this outline is passed to it; the client does the arithmetic.
_QUANTITY_SHAPE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")


class QuantityError(ValueError):
    """A string that is not a usable Kubernetes quantity."""


def parse_quantity(text: object) -> Decimal:
    """Parse a non-negative Kubernetes quantity ("500m", "1Gi", "2") into a Decimal."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise QuantityError(f"expected a quantity string, got {type(text).__name__}")
    raw = str(text)
    if not _QUANTITY_SHAPE.match(raw):
        raise QuantityError(f"{raw!r} is not a Kubernetes quantity (e.g. 500m, 1, 128Mi, 1Gi)")
    try:
        value: Decimal = _client_parse_quantity(raw)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise QuantityError(f"{raw!r} is not a Kubernetes quantity: {exc}") from exc
    if not value.is_finite() or value < 0:
        raise QuantityError(f"{raw!r} must be a finite, non-negative quantity")
    return value
