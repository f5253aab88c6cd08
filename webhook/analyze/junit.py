"""JUnit XML for CI test reports: one test suite per file, one test case per object."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from itertools import groupby

from webhook.analyze.judge import Result, Status


def as_junit(results: Sequence[Result]) -> str:
    """A denial is a failure, an unreadable document an error, a kind tenant-guard does not
    judge a skipped case; allowed and warned objects pass (warnings go to system-out)."""
    root = ET.Element("testsuites", name="tenant-guard analyze")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for source, group in groupby(results, key=lambda r: r.document.source):
        name = "<stdin>" if source == "-" else source
        suite = ET.SubElement(root, "testsuite", name=name)
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for result in group:
            _case(suite, name, result, counts)
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _case(suite: ET.Element, source: str, result: Result, counts: dict[str, int]) -> None:
    doc = result.document
    where = f"document {doc.index}" if doc.index else "file"
    if doc.item is not None:
        where += f" item {doc.item}"
    if result.status is Status.UNREADABLE:
        label = where
    else:  # audit's objects come from the cluster: no document to point at
        label = f"{where}: {result.ref}" if doc.line else result.ref
    case = ET.SubElement(suite, "testcase", classname=source, name=label)
    if doc.line:
        case.set("file", source)
        case.set("line", str(doc.line))
    counts["tests"] += 1
    if result.status is Status.DENIED:
        counts["failures"] += 1
        first = result.message.splitlines()[0] if result.message else "denied"
        rules = ",".join(sorted({f.rule for f in result.findings}))
        failure = ET.SubElement(case, "failure", message=first, type=rules or "denied")
        failure.text = result.message
    elif result.status is Status.UNREADABLE:
        counts["errors"] += 1
        error = ET.SubElement(case, "error", message=result.message, type="unreadable-manifest")
        error.text = f"{doc.where}: {result.message}"
    elif result.status is Status.NOT_JUDGED:
        counts["skipped"] += 1
        ET.SubElement(case, "skipped", message=result.reason)
    lines = [f.message for f in result.findings if result.status is Status.WARNED]
    lines += [f"note: {note}" for note in result.notes]
    if lines:
        ET.SubElement(case, "system-out").text = "\n".join(lines)
