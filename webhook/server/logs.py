"""Structured logs: one JSON object per line on stderr."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import TextIO

from webhook.admission.review import compact_json

# Built once: json.dumps(..., default=str) builds a new encoder on every call. Compact, as
# the decision lines are (see DecisionLines.write).
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; a record's `fields` (a dict) are merged in.

    It formats a line for every admission decision, so the time prefix is rebuilt once per
    second rather than through datetime for every record.
    """

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._prefix = ""

    def timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        return f"{self._prefix}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": self.timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


DECISIONS = "tenant_guard.decisions"


# What a decision line starts with, around its time: JsonFormatter's first keys.
_LINE_START = b'{"time":"'
_DECISION_KEYS = b'","level":"info","logger":"' + DECISIONS.encode() + b'","msg":"decision"'

# How long a decision line may wait to be written with others, and how many may wait.
FLUSH_SECONDS = 0.01
MAX_PENDING = 512


class DecisionLines:
    """The decision log's lines, written to the log stream without a LogRecord each, and
    gathered for up to `interval` seconds into one write.

    A line per review is on every admission's path: through `logging` (a record, the caller's
    frame looked up, a lock, a write and flush of its own) it cost a server about a quarter of
    its CPU under load, and a write per turn of the event loop still a tenth. The lines are
    the ones `JsonFormatter` writes for a `decision` record with these fields, in the same
    order. They go out `interval` after the first of them, or once `MAX_PENDING` wait
    (`close()` writes what is left at shutdown), so a line may follow another logger's line
    of the same moment; the time in each is its own, to the millisecond (the lines of one
    millisecond share their first bytes, built once).
    """

    def __init__(
        self, stream: TextIO, formatter: JsonFormatter, interval: float = FLUSH_SECONDS
    ) -> None:
        self._stream = stream
        self._formatter = formatter
        self._interval = interval
        self._pending: list[bytes] = []
        self._millisecond = -1
        self._start = b""
        self._timer: asyncio.TimerHandle | None = None

    def write(self, fields: dict[str, object]) -> None:
        """One decision's line. `fields` are JSON's own types (compact_json writes what
        _ENCODER would) and never name the four keys the line starts with."""
        now = time.time()
        millisecond = int(now * 1000)
        if millisecond != self._millisecond:  # the lines of one millisecond share their start
            stamp = self._formatter.timestamp(now).encode()
            self._start = _LINE_START + stamp + _DECISION_KEYS
            self._millisecond = millisecond
        body = compact_json(fields)  # b"{...}": its keys follow the line's first four
        self._pending.append(self._start + (b"," + body[1:] if len(body) > 2 else b"}"))
        if self._timer is not None:
            if len(self._pending) >= MAX_PENDING:
                self.flush()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop: nothing to gather with
            self.flush()
            return
        self._timer = loop.call_later(self._interval, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()  # when the timer itself runs this, a no-op
            self._timer = None
        if not self._pending:
            return
        data = b"\n".join(self._pending) + b"\n"
        self._pending.clear()
        try:
            buffer = getattr(self._stream, "buffer", None)
            if buffer is not None:  # stderr: the bytes as they are, after any text before them
                self._stream.flush()
                buffer.write(data)
                buffer.flush()
            else:
                self._stream.write(data.decode())
                self._stream.flush()
        except (OSError, ValueError):
            pass  # as logging.Handler does by default: a lost log line must not fail a review

    close = flush


_decision_lines: DecisionLines | None = None


def decision_lines() -> DecisionLines | None:
    """The decision lines' writer once `configure` has set up the log stream, else None (the
    decision log then goes through `logging`, wherever its handlers send it)."""
    return _decision_lines


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    """JSON lines at `level` and above to `stream` (stderr)."""
    global _decision_lines
    stream = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Straight to the same stream, unless the decisions logger has handlers of its own.
    decisions = logging.getLogger(DECISIONS)
    # A formatter of its own: the handler's formats under the handler's lock, on any thread.
    _decision_lines = DecisionLines(stream, JsonFormatter()) if not decisions.handlers else None
