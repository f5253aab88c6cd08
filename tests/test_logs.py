"""Structured logs: one JSON object per line, decision fields merged, time in UTC."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from webhook.server.logs import JsonFormatter


@pytest.mark.parametrize("created", [1764423000.0456, 1764423000.9999, 1764423001.0, 0.5])
def test_time_matches_iso_format_to_the_millisecond(created: float) -> None:
    record = logging.getLogger("t").makeRecord("t", logging.INFO, "f", 1, "hello", (), None)
    record.created = created
    line = json.loads(JsonFormatter().format(record))
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert line["time"] == expected


def test_fields_are_merged_and_errors_included() -> None:
    logger = logging.getLogger("tenant_guard.decisions")
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logger.makeRecord(
            logger.name,
            logging.ERROR,
            "f",
            1,
            "decision",
            (),
            sys.exc_info(),
            extra={"fields": {"uid": "u-1", "violations": [{"rule": "export-to"}]}},
        )
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "error" and line["logger"] == "tenant_guard.decisions"
    assert line["uid"] == "u-1" and line["violations"] == [{"rule": "export-to"}]
    assert "ValueError: boom" in line["error"]
