"""Slow OTLP clients (loopback only, bounded in count and time) cannot lock a real sender out.

200 connections trickle a byte a second, against the real ``capture-bridge
serve``: a valid keyed request is still answered at once, and every trickler
is cut off at the total header deadline although it never pauses a full read timeout.
"""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from bridge.receiver import http as otel_http
from tests.support.host import spawn_bridge

SLOW = 200
HEADER_DEADLINE = otel_http.Limits().header_timeout
BODY = json.dumps({"resourceLogs": []}).encode()


def post_once(port: int, key: str) -> tuple[int, float]:
    """One valid keyed OTLP/JSON request on a fresh connection: (status, seconds to the answer)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"content-type": "application/json", "x-capture-bridge-key": key}
        conn.request("POST", "/v1/logs", body=BODY, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        conn.close()


async def trickle(stream: anyio.abc.SocketStream, head: bytes, closed: dict[int, float], index: int) -> None:
    """Send ``head`` one byte a second until the server closes the connection; note when it did."""
    async def reader() -> None:
        try:
            while await stream.receive():
                pass
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        closed[index] = time.monotonic()
        tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        for byte in head:
            try:
                await stream.send(bytes([byte]))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                break
            await anyio.sleep(1.0)
        await anyio.sleep_forever()


async def test_trickling_clients_do_not_block_a_keyed_request(tmp_path: Path) -> None:
    config: dict[str, Any] = {"autoIngestEnabled": True, "otlpReceiver": {"port": 0}}
    async with spawn_bridge(tmp_path, config=config) as host:
        await host.call("bridge_info")
        await host.wait_for("otel-receiver-status", lambda p: p["state"] == "listening", timeout=30)
        status = await host.call("get_otlp_receiver_status")
        port = int(status["endpoint"].rsplit(":", 1)[1])
        key = (host.data_dir / "otlp.key").read_text().strip()
        # A head far longer than the deadline in seconds: at a byte a second it never completes.
        head = b"POST /v1/logs HTTP/1.1\r\nhost: 127.0.0.1\r\nx-padding: " + b"a" * 200
        closed: dict[int, float] = {}
        async with anyio.create_task_group() as tg:
            opened = time.monotonic()
            streams = []
            for index in range(SLOW):
                stream = await anyio.connect_tcp("127.0.0.1", port)
                streams.append(stream)
                tg.start_soon(trickle, stream, head, closed, index)
            await anyio.sleep(2.0)  # every trickler is mid-head now
            assert not closed
            answers = [await anyio.to_thread.run_sync(post_once, port, key) for _ in range(3)]
            assert [status for status, _ in answers] == [200, 200, 200], answers
            assert max(seconds for _, seconds in answers) < 3.0, answers  # 1 s, with 3x slack
            # Every trickler is cut off at the total header deadline, though it sends every second.
            with anyio.fail_after(HEADER_DEADLINE * 3):
                while len(closed) < SLOW:
                    await anyio.sleep(0.2)
            held = [closed[i] - opened for i in range(SLOW)]
            assert min(held) >= HEADER_DEADLINE * 0.9, min(held)
            tg.cancel_scope.cancel()
        for stream in streams:
            await stream.aclose()
        status = await host.call("get_otlp_receiver_status")
        assert status["state"] == "listening"


@pytest.mark.parametrize("phase", ["head", "body"])
async def test_the_deadline_holds_for_a_trickled_body_too(tmp_path: Path, phase: str) -> None:
    """A small server with tight deadlines: headers or body trickled past the total are cut off."""
    limits = otel_http.Limits(header_timeout=1.0, body_timeout=1.0, read_timeout=5.0)

    async def handler(request: otel_http.Request, body: otel_http.Body) -> otel_http.Response:
        await body.read(1 << 20)
        return otel_http.Response(200, b"ok")

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    head = b"POST /v1/logs HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n"
    async with anyio.create_task_group() as tg:
        tg.start_soon(otel_http.Server(handler, limits).serve, listener)
        stream = await anyio.connect_tcp("127.0.0.1", port)
        started = time.monotonic()
        if phase == "body":
            await stream.send(head)
        sent = 0
        with anyio.fail_after(3 * 3.0):
            try:
                for _ in range(100):  # a byte every 0.2 s: never a 5 s gap between reads
                    await stream.send(b"x")
                    sent += 1
                    await anyio.sleep(0.2)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass
            reply = b""
            try:
                while chunk := await stream.receive():
                    reply += chunk
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass
        held = time.monotonic() - started
        assert sent < 100 and held >= 0.9, (sent, held)
        assert not reply.startswith(b"HTTP/1.1 200"), reply  # a 408 at most (best effort: it may race a reset)
        await stream.aclose()
        tg.cancel_scope.cancel()


async def test_at_the_cap_the_oldest_waiting_connection_makes_room() -> None:
    """More slow connections than the cap: the oldest waiting one is evicted, a sender still gets in."""
    limits = otel_http.Limits(max_connections=8)

    async def handler(request: otel_http.Request, body: otel_http.Body) -> otel_http.Response:
        return otel_http.Response(200, await body.read(1024))

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    server = otel_http.Server(handler, limits)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, listener)
        slow = []
        for _ in range(20):
            stream = await anyio.connect_tcp("127.0.0.1", port)
            await stream.send(b"POST /v1/logs HT")
            slow.append(stream)
        with anyio.fail_after(3.0):
            while server.evicted_connections < 12:
                await anyio.sleep(0.05)
        stream = await anyio.connect_tcp("127.0.0.1", port)
        with anyio.fail_after(3.0):  # 1 s with 3x slack
            await stream.send(b"POST /v1/logs HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi")
            reply = await stream.receive()
        assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"hi"), reply
        assert server.refused_connections == 0 and server.open_connections <= 8
        for s in [*slow, stream]:
            await s.aclose()
        tg.cancel_scope.cancel()
