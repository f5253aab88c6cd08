"""uvicorn's HTTP protocol with each response written to the socket in one piece.

uvicorn writes a response's status line and headers when the app sends `http.response.start`
and the body on `http.response.body`: two TLS records and two write(2) calls per review, the
first of which wakes the API server's reader before the body exists. The writes of one turn
of the event loop are gathered here and handed to the TLS transport together when the turn
ends, so a review's answer leaves as one record and one syscall.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GatheringTransport:
    """A transport whose writes in one turn of the loop reach the wrapped one as one write.

    Everything else is the wrapped transport's; what is gathered is written before the
    transport is closed or half-closed, so nothing written is lost or reordered.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GatheringHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol writing through a GatheringTransport (flow control, addresses and
    upgrades still read the connection's own transport)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = GatheringTransport(transport, self.loop)  # type: ignore[assignment]
