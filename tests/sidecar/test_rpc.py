"""The codex JSON-RPC client over in-memory streams (no process): ids, limits, dispatch, faults."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import msgspec
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bridge import errors
from bridge.errors import BridgeError
from bridge.sidecar.framing import JsonlTransport
from bridge.sidecar.protocol import Envelope, GetAccountResponse
from bridge.sidecar.rpc import RpcClient
from bridge.sidecar.rpc_types import ProtocolFault


class Pipe:
    """One direction of an in-memory byte stream."""

    def __init__(self) -> None:
        self.tx: MemoryObjectSendStream[bytes]
        self.rx: MemoryObjectReceiveStream[bytes]
        self.tx, self.rx = anyio.create_memory_object_stream[bytes](10_000)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        try:
            return await self.rx.receive()
        except anyio.EndOfStream:
            raise
        except anyio.ClosedResourceError:
            raise anyio.EndOfStream from None

    async def send(self, data: bytes) -> None:
        await self.tx.send(data)

    async def aclose(self) -> None:
        await self.tx.aclose()


class Peer:
    """The codex side: reads what the client sent, writes what the test wants."""

    def __init__(self, inbound: Pipe, outbound: Pipe) -> None:
        self.inbound = inbound
        self.outbound = outbound
        self._buffer = b""

    async def read(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            self._buffer += await self.inbound.receive()
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    async def write(self, *messages: Any) -> None:
        data = b"".join((m if isinstance(m, bytes) else json.dumps(m).encode()) + b"\n" for m in messages)
        await self.outbound.send(data)

    async def close(self) -> None:
        await self.outbound.aclose()


@asynccontextmanager
async def connected(timeout: float = 5.0, max_frame: int = 1 << 20) -> AsyncIterator[tuple[RpcClient, Peer]]:
    to_client, to_peer = Pipe(), Pipe()
    transport = JsonlTransport(to_client, to_peer, max_frame_bytes=max_frame)  # type: ignore[arg-type]
    client = RpcClient(transport, request_timeout=timeout)
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.run)
        yield client, Peer(to_peer, to_client)
        tg.cancel_scope.cancel()


async def test_request_gets_its_result_and_ids_increase() -> None:
    async with connected() as (client, peer), anyio.create_task_group() as tg:
        results: list[GetAccountResponse] = []

        async def ask() -> None:
            results.append(await client.request("account/read", {"refreshToken": False}, GetAccountResponse))

        tg.start_soon(ask)
        first = await peer.read()
        assert first == {"method": "account/read", "id": 0, "params": {"refreshToken": False}}
        assert "jsonrpc" not in first
        await peer.write({"id": 0, "result": {"account": {"type": "apiKey"}, "requiresOpenaiAuth": True}})
        tg.start_soon(ask)
        second = await peer.read()
        assert second["id"] == 1
        await peer.write({"id": 1, "result": {"account": None, "requiresOpenaiAuth": True}})
    assert results[0].account is not None and results[0].account.type == "apiKey"
    assert results[1].account is None


async def test_codex_error_is_sidecar_error_redacted() -> None:
    async with connected() as (client, peer), anyio.create_task_group() as tg:

        async def answer() -> None:
            request = await peer.read()
            await peer.write(
                {
                    "id": request["id"],
                    "error": {
                        "code": -32600,
                        "message": "bad key sk-abcdefghijklmnop",
                        "data": {"apiKey": "sk-abcdefghijklmnop", "hint": "x"},
                    },
                }
            )

        tg.start_soon(answer)
        with pytest.raises(BridgeError) as caught:
            await client.request_raw("account/login/start", {"type": "apiKey"})
    err = caught.value
    assert err.code == errors.SIDECAR_ERROR
    assert "sk-abcdefghijklmnop" not in json.dumps(err.to_wire())
    assert err.data["codexError"]["code"] == -32600
    assert err.data["codexError"]["data"] == {"apiKey": "[REDACTED]", "hint": "x"}


async def test_timeout_is_32014_and_frees_the_slot() -> None:
    async with connected(timeout=0.2) as (client, peer):
        with pytest.raises(BridgeError) as caught:
            await client.request_raw("initialize", {})
        assert caught.value.code == errors.TIMEOUT
        assert caught.value.data["kind"] == "timeout"
        assert client.pending_count == 0
        assert client.counters.timeouts == 1
        # The late answer is counted and dropped, never mistaken for another request's.
        request = await peer.read()
        await peer.write({"id": request["id"], "result": {}})
        with anyio.fail_after(5):
            while client.counters.late_responses < 1:
                await anyio.sleep(0.01)


async def test_at_most_256_pending() -> None:
    async with connected(timeout=30) as (client, _peer):
        async with anyio.create_task_group() as tg:
            for _ in range(256):
                tg.start_soon(client.request_raw, "account/read", {})
            with anyio.fail_after(5):
                while client.pending_count < 256:
                    await anyio.sleep(0.01)
            with pytest.raises(BridgeError) as caught:
                await client.request_raw("account/read", {})
            assert caught.value.code == errors.OVERLOADED
            assert client.pending_count == 256
            tg.cancel_scope.cancel()
        assert client.pending_count == 0


async def test_unhandled_server_request_is_answered_method_not_found() -> None:
    async with connected() as (client, peer):
        await peer.write({"method": "item/tool/call", "id": 7, "params": {}})
        with anyio.fail_after(5):
            reply = await peer.read()
    assert reply["id"] == 7
    assert reply["error"]["code"] == -32601
    assert client.counters.server_requests_unhandled == 1


async def test_handled_server_request_is_left_to_its_handler() -> None:
    seen: list[Envelope] = []
    async with connected() as (client, peer):
        client.set_request_handler("item/commandExecution/requestApproval", seen.append)
        await peer.write({"method": "item/commandExecution/requestApproval", "id": "a-1", "params": {"x": 1}})
        with anyio.fail_after(5):
            while not seen:
                await anyio.sleep(0.01)
        assert seen[0].id == "a-1" and msgspec.json.decode(seen[0].params) == {"x": 1}
        await client.respond(seen[0].id, {"decision": "accept"})
        reply = await peer.read()
    assert reply == {"id": "a-1", "result": {"decision": "accept"}}
    assert client.counters.server_requests_unhandled == 0


async def test_notifications_arrive_in_batches_and_unknown_ones_are_counted() -> None:
    batches: list[list[Envelope]] = []
    async with connected() as (client, peer):
        client.add_notification_listener(batches.append)
        frames = [{"method": "turn/started", "params": {"n": i}, "emittedAtMs": i} for i in range(3)]
        frames += [{"method": "brand/new/thing", "params": {}, "emittedAtMs": 9}] * 2
        await peer.write(*frames)
        with anyio.fail_after(5):
            while sum(len(b) for b in batches) < 5:
                await anyio.sleep(0.01)
    flat = [env for batch in batches for env in batch]
    assert [e.method for e in flat] == ["turn/started"] * 3 + ["brand/new/thing"] * 2
    assert flat[1].emittedAtMs == 1 and flat[1].line == json.dumps(frames[1]).encode()
    assert len(batches) == 1  # written together, delivered together
    assert client.counters.unknown_notifications == {"brand/new/thing": 2}
    assert client.last_frame_valid


async def test_garbage_is_reported_and_never_fatal() -> None:
    faults: list[ProtocolFault] = []
    validity: list[bool] = []
    async with connected() as (client, peer):
        client.add_fault_listener(faults.append)
        client.validity_listener = validity.append
        async with anyio.create_task_group() as tg:

            async def answer() -> None:
                request = await peer.read()
                await peer.write(b"not json at all Bearer abc.def", b'{"method": 5}', b'{"result": 1}')
                with anyio.fail_after(5):
                    while len(faults) < 3:
                        await anyio.sleep(0.01)
                assert not client.last_frame_valid
                await peer.write({"id": request["id"], "result": {"ok": True}})

            tg.start_soon(answer)
            raw = await client.request_raw("x/y", {})
    assert msgspec.json.decode(raw) == {"ok": True}
    assert [f.kind for f in faults] == ["parse_error", "parse_error", "protocol_violation"]
    assert "abc.def" not in faults[0].preview and "[REDACTED]" in faults[0].preview
    assert validity == [False, True]
    assert client.counters.protocol_errors == 3


async def test_oversized_frame_is_counted_and_the_connection_keeps_serving() -> None:
    faults: list[ProtocolFault] = []
    async with connected(max_frame=1024) as (client, peer):
        client.add_fault_listener(faults.append)
        async with anyio.create_task_group() as tg:

            async def answer() -> None:
                request = await peer.read()
                await peer.write({"method": "big", "params": {"pad": "x" * 5000}})
                await peer.write({"id": request["id"], "result": 1})

            tg.start_soon(answer)
            assert msgspec.json.decode(await client.request_raw("x", {})) == 1
    assert client.counters.oversized_frames == 1
    assert faults[0].kind == "oversized" and faults[0].size > 5000


async def test_pending_requests_fail_when_the_connection_closes() -> None:
    async with connected() as (client, peer):
        async with anyio.create_task_group() as tg:

            async def close_soon() -> None:
                await peer.read()
                await peer.close()

            tg.start_soon(close_soon)
            with pytest.raises(BridgeError) as caught:
                await client.request_raw("initialize", {})
        assert caught.value.code == errors.SIDECAR_NOT_RUNNING
        with pytest.raises(BridgeError):
            await client.request_raw("account/read", {})


async def test_notify_has_no_id() -> None:
    async with connected() as (client, peer):
        await client.notify("initialized")
        assert await peer.read() == {"method": "initialized"}
