"""The loop every polling job of the server runs: a blocking step in a worker thread, again
and again, never letting an exception end it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable


async def every(
    interval: float, step: Callable[[], object], log: logging.Logger, what: str
) -> None:
    """Run `step` in a worker thread every `interval` seconds until cancelled. An exception is
    logged (as "`what` failed") and the loop goes on: a background job must outlive any
    surprise, or the server would keep serving with the job silently gone."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(step)
        except Exception:
            log.exception("%s failed", what)
