"""Hostile input: the receiver refuses it with the right status and a reason, and keeps serving."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from pathlib import Path

import anyio

from tests.receiver.payloads import SESSION, claude_logs, spans_json
from tests.receiver.support import Running, post, running_receiver


async def assert_still_serving(rx: Running, sequence: int = 900) -> None:
    reply = await post(rx.endpoint, "/v1/logs", claude_logs(sequence).SerializeToString(), key=rx.key)
    assert reply.status == 200, reply
    assert rx.count("dedup_key = ?", (f"claude:{SESSION}:{sequence}",)) == 1


async def test_missing_and_wrong_key_are_401(tmp_path: Path) -> None:
    async with running_receiver(tmp_path) as rx:
        body = claude_logs(1).SerializeToString()
        missing = await post(rx.endpoint, "/v1/logs", body, key=None)
        wrong = await post(rx.endpoint, "/v1/logs", body, key=rx.key[:-1] + ("A" if rx.key[-1] != "A" else "B"))
        empty = await post(rx.endpoint, "/v1/logs", body, key="")
        for reply in (missing, wrong, empty):
            assert reply.status == 401, reply
            assert "x-capture-bridge-key" in reply.status_message()
            assert rx.key not in reply.body.decode("latin-1")
        assert "missing" in missing.status_message()
        assert rx.count() == 0
        assert rx.service.counters.rejected == 3
        await assert_still_serving(rx)


async def test_oversized_body_is_413_by_declared_length_and_by_chunked_reading(tmp_path: Path) -> None:
    async with running_receiver(tmp_path, max_body_bytes=64 * 1024) as rx:
        big = b"\x0a" + b"\x00" * (64 * 1024 + 10)
        reply = await post(rx.endpoint, "/v1/logs", big, key=rx.key)
        assert reply.status == 413, reply
        assert "maxBodyBytes" in reply.status_message()

        # chunked (no Content-Length): the limit is enforced while reading
        host, port = rx.endpoint.split("//")[1].split(":")
        async with await anyio.connect_tcp(host, int(port)) as stream:
            head = (
                f"POST /v1/logs HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\n"
                f"x-capture-bridge-key: {rx.key}\r\ntransfer-encoding: chunked\r\n\r\n"
            ).encode()
            await stream.send(head)
            chunk = b"\x00" * 16384
            answer = b""
            with anyio.fail_after(30):
                try:
                    for _ in range(8):
                        await stream.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                except (anyio.BrokenResourceError, OSError):
                    pass
                while b"\r\n\r\n" not in answer:
                    answer += await stream.receive()
            assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
        await assert_still_serving(rx)


def gzip_bomb(expanded: int) -> bytes:
    """A gzip body of ``expanded`` zero bytes (about 1000:1), built without holding it expanded."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\x00" * (1 << 20)
    parts = [compressor.compress(block) for _ in range(expanded // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)


async def test_gzip_bomb_is_413_with_memory_bounded(tmp_path: Path) -> None:
    limit = 1 << 20
    bomb = gzip_bomb(512 << 20)  # 512 MiB expanded, ~0.5 MiB on the wire
    assert len(bomb) < limit
    async with running_receiver(tmp_path, max_body_bytes=limit) as rx:
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            reply = await post(rx.endpoint, "/v1/logs", bomb, key=rx.key, headers={"content-encoding": "gzip"})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert reply.status == 413, reply
        assert "inflates" in reply.status_message()
        # the body plus at most ~limit of inflated output, never the 512 MiB it expands to
        assert peak < 16 * limit, f"peak traced memory {peak} bytes"
        # a proper gzip body within the limit is accepted
        good = await post(
            rx.endpoint, "/v1/logs", gzip.compress(claude_logs(3).SerializeToString()), key=rx.key,
            headers={"content-encoding": "gzip"},
        )  # fmt: skip
        assert good.status == 200, good
        await assert_still_serving(rx)


async def test_malformed_protobuf_and_json_are_400_with_a_reason(tmp_path: Path) -> None:
    async with running_receiver(tmp_path) as rx:
        bad_proto = await post(rx.endpoint, "/v1/logs", b"\x0a\xff\xff\xff\xff\x0f\x01", key=rx.key)
        assert bad_proto.status == 400
        assert "not a valid ExportLogsServiceRequest protobuf" in bad_proto.status_message()

        not_json = await post(rx.endpoint, "/v1/logs", b"{not json", key=rx.key, content_type="application/json")
        assert not_json.status == 400
        assert not_json.headers["content-type"] == "application/json"
        assert "not valid JSON" in not_json.status_message()

        wrong_shape = await post(
            rx.endpoint, "/v1/logs", b'{"resourceLogs": "nope"}', key=rx.key, content_type="application/json"
        )
        assert wrong_shape.status == 400
        assert "resourceLogs" in wrong_shape.status_message()

        bad_hex = await post(
            rx.endpoint, "/v1/traces", spans_json("zz" * 16, "ab" * 8), key=rx.key, content_type="application/json"
        )
        assert bad_hex.status == 400
        assert "traceId must be a hex string" in bad_hex.status_message()

        not_gzip = await post(
            rx.endpoint, "/v1/logs", b"plainly not gzip", key=rx.key, headers={"content-encoding": "gzip"}
        )
        assert not_gzip.status == 400
        assert "gzip" in not_gzip.status_message()
        assert rx.count() == 0
        await assert_still_serving(rx)


async def test_wrong_route_method_media_type_and_encoding(tmp_path: Path) -> None:
    async with running_receiver(tmp_path) as rx:
        body = claude_logs(1).SerializeToString()
        assert (await post(rx.endpoint, "/v1/profiles", body, key=rx.key)).status == 404
        get = await post(rx.endpoint, "/v1/logs", b"", key=rx.key, method="GET")
        assert get.status == 405 and get.headers["allow"] == "POST"
        text = await post(rx.endpoint, "/v1/logs", body, key=rx.key, content_type="text/plain")
        assert text.status == 415
        brotli = await post(rx.endpoint, "/v1/logs", body, key=rx.key, headers={"content-encoding": "br"})
        assert brotli.status == 415
        await assert_still_serving(rx)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_flood_beyond_the_rate_limit_is_429_then_recovers(tmp_path: Path) -> None:
    clock = FakeClock()
    async with running_receiver(tmp_path, clock=clock, max_requests_per_second=5) as rx:
        body = claude_logs(1).SerializeToString()
        statuses = [(await post(rx.endpoint, "/v1/logs", body, key=rx.key)) for _ in range(12)]
        assert [r.status for r in statuses] == [200] * 5 + [429] * 7
        assert statuses[-1].headers["retry-after"] == "1"
        assert "Rate limit of 5 requests/s" in statuses[-1].status_message()
        # a wrong key is not served from (nor drains) the key's bucket
        assert (await post(rx.endpoint, "/v1/logs", body, key="x" * 43)).status == 401
        clock.now += 1.0
        await assert_still_serving(rx)
        assert rx.service.counters.rejected == 8


async def test_a_stalled_client_does_not_block_others(tmp_path: Path) -> None:
    async with running_receiver(tmp_path) as rx:
        host, port = rx.endpoint.split("//")[1].split(":")
        async with await anyio.connect_tcp(host, int(port)) as stalled:
            await stalled.send(b"POST /v1/logs HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n")  # never finishes
            await assert_still_serving(rx)
        async with await anyio.connect_tcp(host, int(port)) as garbage:
            await garbage.send(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
            with anyio.fail_after(10):
                answer = await garbage.receive()
            assert answer.startswith(b"HTTP/1.1 400")
        await assert_still_serving(rx, 901)
