"""Structured logs: one JSON object per line, decision fields merged, time in UTC."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import UTC, datetime

import pytest

from webhook.server.logs import DECISIONS, MAX_PENDING, DecisionLines, JsonFormatter


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


class CountingStream(io.StringIO):
    """A log stream that counts its writes (one write is one syscall on a real stream)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


FIELDS: dict[str, object] = {
    "uid": "u-1",
    "endpoint": "validate",
    "decision": "denied",
    "violations": [{"rule": "host-ownership", "owner": "tenant-a"}],
    "ms": 0.123,
}


def test_decision_lines_are_the_lines_the_formatter_writes_for_a_decision_record() -> None:
    formatter = JsonFormatter()
    stream = CountingStream()
    DecisionLines(stream, formatter).write(dict(FIELDS))  # no event loop: written at once
    written = stream.getvalue()
    assert written.endswith("\n") and written.count("\n") == 1
    record = logging.getLogger(DECISIONS).makeRecord(
        DECISIONS, logging.INFO, "f", 1, "decision", (), None, extra={"fields": dict(FIELDS)}
    )
    record.created = datetime.fromisoformat(json.loads(written)["time"]).timestamp()
    # Byte for byte, key order included, but for the time, which is the line's own moment.
    expected = json.loads(formatter.format(record))
    assert list(json.loads(written)) == list(expected)
    assert json.loads(written) == expected | {"time": json.loads(written)["time"]}
    line_time = json.dumps(json.loads(written)["time"])
    expected_line = formatter.format(record).replace(json.dumps(expected["time"]), line_time, 1)
    assert written == expected_line + "\n"


def test_decision_lines_of_one_interval_go_out_in_one_write() -> None:
    stream = CountingStream()
    lines = DecisionLines(stream, JsonFormatter(), interval=0.05)

    async def reviews() -> tuple[str, str, str]:
        lines.write({"uid": "u-1"})
        await asyncio.sleep(0)  # other turns of the loop: still waiting for the interval
        for uid in ("u-2", "u-3"):
            lines.write({"uid": uid})
        during = stream.getvalue()
        await asyncio.sleep(0.1)  # the interval ends: one write
        after = stream.getvalue()
        lines.write({"uid": "u-4"})  # the next interval starts with the next line
        await asyncio.sleep(0.1)
        return during, after, stream.getvalue()

    during, after, last = asyncio.run(reviews())
    assert during == ""
    assert [json.loads(line)["uid"] for line in after.splitlines()] == ["u-1", "u-2", "u-3"]
    assert [json.loads(line)["uid"] for line in last.splitlines()][-1] == "u-4"
    assert stream.writes == 2


def test_a_full_batch_of_decision_lines_is_written_without_waiting() -> None:
    stream = CountingStream()
    lines = DecisionLines(stream, JsonFormatter(), interval=60)

    async def burst() -> int:
        for n in range(MAX_PENDING):
            lines.write({"uid": f"u-{n}"})
        return stream.writes

    assert asyncio.run(burst()) == 1
    assert len(stream.getvalue().splitlines()) == MAX_PENDING


def test_decision_lines_left_at_shutdown_are_written_by_close() -> None:
    stream = CountingStream()
    lines = DecisionLines(stream, JsonFormatter())

    async def last_turn() -> None:
        lines.write({"uid": "u-last"})
        lines.close()  # the server's closer, before its loop would have run the flush

    asyncio.run(last_turn())
    assert json.loads(stream.getvalue())["uid"] == "u-last"
    lines.flush()  # the scheduled flush finds nothing left: no second copy
    assert stream.getvalue().count("u-last") == 1


def test_a_closed_log_stream_does_not_fail_the_review() -> None:
    stream = io.StringIO()
    stream.close()
    DecisionLines(stream, JsonFormatter()).write({"uid": "u-1"})  # no exception


def test_decision_lines_go_to_a_text_streams_buffer_after_the_text_before_them() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", write_through=False)
    stream.write('{"msg":"an earlier line"}\n')  # still in the text layer's own buffer
    lines = DecisionLines(stream, JsonFormatter())
    lines.write({"uid": "u-1", "value": "caf\u00e9"})  # non-ASCII: escaped, as json writes it
    written = raw.getvalue().decode("ascii").splitlines()
    assert [json.loads(line).get("uid") for line in written] == [None, "u-1"]
    assert "caf\\u00e9" in written[1]


def test_a_decision_line_without_fields_is_still_json() -> None:
    stream = io.StringIO()
    DecisionLines(stream, JsonFormatter()).write({})
    assert list(json.loads(stream.getvalue())) == ["time", "level", "logger", "msg"]
