"""SARIF 2.1.0, the format code-scanning UIs read: one result per violation, at its document."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from webhook.analyze.judge import Result, Status

SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
VERSION = "2.1.0"
UNREADABLE_RULE = "unreadable-manifest"
STDIN_URI = "stdin"

_LEVELS = {Status.DENIED: "error", Status.WARNED: "warning", Status.UNREADABLE: "error"}


def as_sarif(results: Sequence[Result], tool_version: str) -> str:
    """Denials are errors, warn-mode violations warnings, unreadable documents errors; objects
    that were allowed or not judged produce no result."""
    rules: dict[str, int] = {}
    entries: list[dict[str, Any]] = []
    for result in results:
        level = _LEVELS.get(result.status)
        if level is None:
            continue
        if result.status is Status.UNREADABLE:
            found = [(UNREADABLE_RULE, f"{result.document.where}: {result.message}")]
        else:
            found = [(f.rule, f.message) for f in result.findings]
        for rule, message in found:
            index = rules.setdefault(rule, len(rules))
            entries.append(
                {
                    "ruleId": rule,
                    "ruleIndex": index,
                    "level": level,
                    "message": {"text": message},
                    "locations": [_location(result)],
                }
            )
    log = {
        "$schema": SCHEMA,
        "version": VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "tenant-guard",
                        "version": tool_version,
                        "rules": [_rule(rule) for rule in rules],
                    }
                },
                "results": entries,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def _rule(rule: str) -> dict[str, Any]:
    text = (
        "a document tenant-guard could not read"
        if rule == UNREADABLE_RULE
        else f"tenant-guard admission rule {rule}"
    )
    return {"id": rule, "name": rule, "shortDescription": {"text": text}}


def _location(result: Result) -> dict[str, Any]:
    doc = result.document
    location: dict[str, Any] = {}
    if doc.line:  # an object from a file; audit's objects come from the cluster instead
        location["physicalLocation"] = {
            "artifactLocation": {"uri": _uri(doc.source)},
            "region": {"startLine": doc.line},
        }
    if result.kind and result.name:
        location["logicalLocations"] = [{"name": result.ref, "kind": "object"}]
    return location


def _uri(source: str) -> str:
    """Relative paths stay relative (code scanning resolves them against the checkout)."""
    if source == "-":
        return STDIN_URI
    path = PurePath(source)
    return path.as_uri() if path.is_absolute() else quote(path.as_posix())
