"""A review's answer leaves in one write: the transport gathers the writes of a loop turn."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.builders import load_review
from tests.server_harness import RunningServer
from webhook.server.protocol import GatheringTransport


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closing = True

    def write_eof(self) -> None:
        self.calls.append(("write_eof", None))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8443) if name == "sockname" else default


def test_writes_of_one_turn_reach_the_transport_as_one() -> None:
    inner = RecordingTransport()

    async def turn() -> list[tuple[str, Any]]:
        gathering = GatheringTransport(inner, asyncio.get_running_loop())
        gathering.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        gathering.write(b"{}")
        during = list(inner.calls)
        await asyncio.sleep(0)
        gathering.write(b"next")  # a later turn: a write of its own
        await asyncio.sleep(0)
        return during

    during = asyncio.run(turn())
    assert during == []
    assert inner.calls == [
        ("write", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"),
        ("write", b"next"),
    ]


def test_what_is_gathered_is_written_before_a_close_or_a_half_close() -> None:
    for end in ("close", "write_eof"):
        inner = RecordingTransport()

        async def turn(inner: RecordingTransport = inner, end: str = end) -> None:
            gathering = GatheringTransport(inner, asyncio.get_running_loop())
            gathering.write(b"last")
            getattr(gathering, end)()
            await asyncio.sleep(0)  # the scheduled flush finds nothing left

        asyncio.run(turn())
        assert inner.calls == [("write", b"last"), (end, None)]


def test_a_transport_closed_meanwhile_is_not_written_to_and_the_rest_is_its_own() -> None:
    inner = RecordingTransport()

    async def turn() -> None:
        gathering = GatheringTransport(inner, asyncio.get_running_loop())
        gathering.write(b"lost with the connection")
        inner.closing = True  # the peer went away within the turn
        await asyncio.sleep(0)
        assert gathering.get_extra_info("sockname") == ("127.0.0.1", 8443)
        assert gathering.is_closing()

    asyncio.run(turn())
    assert inner.calls == []


def test_answers_through_the_server_arrive_whole_one_after_another(
    server: RunningServer,
) -> None:
    """Keep-alive, one connection: every answer complete and in order (a gathered write lost
    or reordered would break the next response's framing)."""
    reviews = [
        ("/validate", load_review("virtualservice-create-short-host.json")),
        ("/mutate", load_review("pod-create-plain.json", mutating=True)),
        ("/validate", load_review("virtualservice-create-v1alpha3-cross-tenant-host.json")),
    ]
    with server.client() as client:
        for round_number in range(20):
            for path, review in reviews:
                review["request"]["uid"] = f"u-{round_number}-{path}"
                answer = client.post(path, json=review)
                assert answer.status_code == 200
                assert answer.json()["response"]["uid"] == f"u-{round_number}-{path}"
        assert client.get("/healthz").text == "ok\n"
