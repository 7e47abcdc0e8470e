"""Hostile host frames against the real ``capture-bridge serve``, in both framings.

Every frame that is not a valid request is answered with an error that names
the problem, and the very next request is answered: nothing a host writes can
stop the bridge.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from bridge.framing import Framing, encode
from tests.support.host import Host, spawn_bridge

FRAMINGS: list[Framing] = ["jsonl", "content-length"]
DEADLINE = 3.0  # the next request is answered within 1 s of a bad frame; asserted with 3x slack


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# (frame, code, kind, words in the message, the id the error carries)
KILLERS = [
    pytest.param(b'{"id":902,"method":"bridge_info","x":"\xff"}', -32700, "parse_error", "UTF-8", 902, id="utf8-str"),
    pytest.param(b'{"id":903,"method":"bridge_info","\xc3\x28":1}', -32700, "parse_error", "UTF-8", 903, id="utf8-key"),
    pytest.param(b'{"id":904,"method":"bri\xed\xa0\x80"}', -32700, "parse_error", "UTF-8", 904, id="utf8-surrogate"),
    pytest.param(nested(1000), -32600, "too_deep", "256", None, id="nesting-1000"),
    pytest.param(nested(100_000)[:100_000], -32600, "too_deep", "256", None, id="nesting-unclosed"),
    pytest.param(b'{"id":905,"method":"bridge_info","params":{"x":%s}}' % nested(300), -32600, "too_deep", "256", 905),
    pytest.param(b"[" + b"{}," * 300 + b"{}]", -32600, "invalid_request", "'method'", None, id="wide-batch"),
    pytest.param(b'{"id":1e400,"method":"bridge_info"}', -32700, "parse_error", "out of range", None, id="id-1e400"),
    pytest.param(b'{"id":906,"method":"bridge_info","params":{"a":NaN}}', -32700, "parse_error", "", None, id="nan"),
    pytest.param(b'{"id":907,"method":"x","params":{"a":"\\ud800"}}', -32700, "parse_error", "", None, id="surrogate"),
    pytest.param(b'{"id":908,"method":"bridge_info"', -32700, "parse_error", "truncated", None, id="truncated"),
    pytest.param(b"\x00\x01\x02", -32700, "parse_error", "", None, id="binary"),
]


async def answered_after(host: Host, timeout: float = DEADLINE) -> float:
    """Seconds until a fresh bridge_info is answered."""
    started = time.monotonic()
    info = await host.call("bridge_info", timeout=timeout)
    assert info["name"] == "capture-bridge"
    return time.monotonic() - started


def errors_in(host: Host) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for frame in host.frames:
        for message in frame if isinstance(frame, list) else [frame]:
            if isinstance(message, dict) and "error" in message:
                out.append(message)
    return out


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize(("raw", "code", "kind", "words", "msg_id"), KILLERS)
async def test_one_bad_frame_is_answered_and_the_next_request_too(
    tmp_path: Path, framing: Framing, raw: bytes, code: int, kind: str, words: str, msg_id: object
) -> None:
    async with spawn_bridge(tmp_path, framing=framing) as host:
        await host.call("bridge_info", timeout=60)  # up and talking
        await host.send_raw(encode(raw, framing) if framing == "content-length" else raw + b"\n")
        await answered_after(host)
        assert host.process.returncode is None
    assert await host.wait_exit(9) == 0
    answers = errors_in(host)
    assert answers, host.frames
    error = answers[0]["error"]
    assert isinstance(error, dict)
    assert error["code"] == code, error
    assert error["data"]["kind"] == kind, error
    assert words in error["message"]
    if kind != "invalid_request":  # a wide batch answers one error per element
        assert len(answers) == 1, answers
        assert answers[0]["id"] == msg_id
    assert "Traceback" not in host.stderr()


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_nesting_is_limited_at_256_levels_in_the_whole_frame(tmp_path: Path, framing: Framing) -> None:
    """256 levels (the request, its params, 254 arrays) reach the command, which names the unknown
    field; one level more is refused by the depth check with the request's id."""

    def frame(msg_id: int, arrays: int) -> bytes:
        raw = b'{"id":%d,"method":"bridge_info","params":{"x":%s}}' % (msg_id, nested(arrays))
        return encode(raw, framing) if framing == "content-length" else raw + b"\n"

    async with spawn_bridge(tmp_path, framing=framing) as host:
        await host.send_raw(frame(9, 254) + frame(10, 255))
        at_limit = await host.wait_response(9, timeout=60)
        over = await host.wait_response(10, timeout=60)
    assert at_limit["error"]["code"] == -32602
    assert at_limit["error"]["data"]["field"] == "x"
    assert over["error"]["code"] == -32600
    assert over["error"]["data"] == {"kind": "too_deep", "limit": 256}


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_oversized_frame_is_skipped_and_the_next_request_answered_within_a_second(
    tmp_path: Path, framing: Framing
) -> None:
    size = 24 << 20  # over the 16 MiB limit
    pad = b"a" * (1 << 20)
    async with spawn_bridge(tmp_path, framing=framing) as host:
        await host.call("get_ingest_config", timeout=60)
        head = b'{"jsonrpc":"2.0","id":99,"method":"bridge_info","params":{"pad":"'
        body_len = len(head) + size + len(b'"}}')
        if framing == "content-length":
            await host.send_raw(b"Content-Length: %d\r\n\r\n" % body_len)
        await host.send_raw(head)
        for _ in range(size // len(pad)):
            await host.send_raw(pad)
        await host.send_raw(b'"}}' + (b"\n" if framing == "jsonl" else b""))
        # The pipe holds at most 64 KiB: by now the bridge has skipped nearly all of the frame.
        took = await answered_after(host)
    refused = [e for e in errors_in(host) if e["error"]["data"]["kind"] == "frame_too_large"]  # type: ignore[index]
    assert len(refused) == 1
    assert refused[0]["error"]["data"]["size"] == body_len  # type: ignore[index]
    assert 99 not in host.responses
    assert took < DEADLINE, took


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_a_burst_of_every_killer_leaves_every_request_answered_exactly_once(
    tmp_path: Path, framing: Framing
) -> None:
    """All the bad frames at once, each followed by a good request: each good one gets its answer."""
    async with spawn_bridge(tmp_path, framing=framing) as host:
        out = b""
        for n, param in enumerate(KILLERS):
            raw = param.values[0]
            assert isinstance(raw, bytes)
            good = b'{"id":"ok-%d","method":"bridge_info"}' % n
            for frame in (raw, good):
                out += encode(frame, framing) if framing == "content-length" else frame + b"\n"
        await host.send_raw(out)
        for n in range(len(KILLERS)):
            await host.wait_response(f"ok-{n}", timeout=60)
        with anyio.fail_after(1):
            await anyio.sleep(0.2)
    assert "Traceback" not in host.stderr()
