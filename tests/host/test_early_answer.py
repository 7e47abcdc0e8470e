"""``bridge_info`` answered by the early stdin reader, before the event loop and the commands exist.

The early answer must be the answer the command itself gives, in the host's
framing; anything that is not a plain ``bridge_info`` request ends early
answering and reaches the dispatcher untouched and in order.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.framing import Frame, FrameDecoder
from bridge.host.early import EarlyInput, bridge_info
from bridge.host.info import BridgeInfo
from tests.support.host import bridge_argv, bridge_env, spawn_bridge

INFO = bridge_info("/data", "run-1")


def request(msg_id: Any, method: str = "bridge_info", **extra: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, **extra}).encode()


@pytest.fixture
def early() -> Iterator[tuple[EarlyInput, int, int]]:
    """An EarlyInput reading one pipe and answering into another: (reader, host's write fd, host's read fd)."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    reader = EarlyInput(in_r)
    yield reader, in_w, out_r
    reader.hand_over()
    for fd in (in_w, out_r, out_w):
        os.close(fd)


def answers(fd: int, framing: str = "jsonl", wait: float = 5.0) -> list[dict[str, Any]]:
    """Every complete answer readable from ``fd`` within ``wait`` seconds of the last one."""
    decoder = FrameDecoder(1 << 20)
    found: list[dict[str, Any]] = []
    while select.select([fd], [], [], wait)[0]:
        for event in decoder.feed(os.read(fd, 1 << 16)):
            assert isinstance(event, Frame)
            found.append(json.loads(event.body))
        wait = 0.3
    return found


def rest_of_input(reader: EarlyInput) -> bytes:
    """What the transport reads next: the early reader's chunk, else (it has retired) stdin itself."""
    chunk = reader.read()
    return os.read(reader.fd, 1 << 16) if chunk is None else chunk


def test_the_early_dict_has_the_fields_of_the_command_result_in_order() -> None:
    assert list(INFO) == [BridgeInfo.__struct_encode_fields__[i] for i in range(len(BridgeInfo.__struct_fields__))]


def test_requests_read_before_enable_wait_for_it_then_are_answered(early: tuple[EarlyInput, int, int]) -> None:
    reader, host_in, _ = early
    out_r, out_w = os.pipe()
    try:
        os.write(host_in, request(1) + b"\n" + b"\n  \n" + request("b-2", params={}) + b"\n")
        assert answers(out_r, wait=0.3) == []  # the data dir is not ours yet: nothing is answered
        reader.enable(out_w, dict(INFO))
        got = answers(out_r)
        assert [a["id"] for a in got] == [1, "b-2"]
        assert got[0] == {"jsonrpc": "2.0", "id": 1, "result": {**INFO, "framing": "jsonl"}}
        os.write(host_in, request(3) + b"\n")  # still early: answered as it arrives
        assert [a["id"] for a in answers(out_r)] == [3]
        reader.hand_over()
        os.write(host_in, request(4) + b"\n")  # handed over: the transport's now
        assert answers(out_r, wait=0.3) == []
        assert rest_of_input(reader) == request(4) + b"\n"
    finally:
        os.close(out_r)
        os.close(out_w)


def test_answers_are_written_in_the_hosts_framing_and_the_rest_is_handed_over_in_order() -> None:
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    reader = EarlyInput(in_r)
    try:
        status = request(3, "get_capture_reliability_status")
        data = b"".join(b"Content-Length: %d\r\n\r\n%s" % (len(b), b) for b in (request(1), request(2), status))
        os.write(in_w, data + b"Content-Length: %d\r\n\r\n%s" % (len(request(4)), request(4)))
        reader.enable(out_w, dict(INFO))
        got = answers(out_r)
        assert [a["id"] for a in got] == [1, 2]
        assert all(a["result"] == {**INFO, "framing": "content-length"} for a in got)
        assert reader.framing == "content-length"
        assert [body for body, _ in reader.answered] == [request(1), request(2)]
        reader.hand_over()
        rest = rest_of_input(reader)
        # the first request that is not bridge_info ends early answering: it and the bridge_info after it are left
        assert rest.startswith(b"Content-Length: %d\r\n\r\n%s" % (len(status), status))
        assert rest.endswith(request(4))
    finally:
        reader.hand_over()
        for fd in (in_w, out_r, out_w):
            os.close(fd)


@pytest.mark.parametrize(
    "first",
    [
        request(1, params={"x": 1}),  # params: the command's own validation answers
        request(True),  # not an id the early reader may echo
        request("tab\there"),  # an id JSON writes with an escape
        b'{"jsonrpc":"2.0","id":1,"id":2,"method":"bridge_info"}',  # duplicate keys
        b'{"jsonrpc":"1.0","id":1,"method":"bridge_info"}',
        b"[" + request(1) + b"]",  # a batch
        b"not json",
    ],
)
def test_anything_but_a_plain_bridge_info_is_left_to_the_dispatcher(first: bytes) -> None:
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    reader = EarlyInput(in_r)
    try:
        os.write(in_w, first + b"\n" + request(9) + b"\n")
        reader.enable(out_w, dict(INFO))
        assert answers(out_r, wait=0.5) == []
        reader.hand_over()
        assert rest_of_input(reader) == first + b"\n" + request(9) + b"\n"
    finally:
        reader.hand_over()
        for fd in (in_w, out_r, out_w):
            os.close(fd)


def test_eof_after_the_hand_over_reads_empty() -> None:
    in_r, in_w = os.pipe()
    reader = EarlyInput(in_r)
    os.write(in_w, b'{"id":1,"method":"get_ingest_config"}\n')
    os.close(in_w)
    reader.hand_over()
    assert rest_of_input(reader) == b'{"id":1,"method":"get_ingest_config"}\n'
    assert rest_of_input(reader) == b""


def test_after_the_hand_over_the_reader_retires_and_stdin_is_the_transports() -> None:
    in_r, in_w = os.pipe()
    reader = EarlyInput(in_r)
    try:
        reader.hand_over()
        os.write(in_w, request(5) + b"\n")
        # The chunk the retiring thread may have been reading is handed over; after it, nothing is in hand
        # and no thread but the transport's reads the pipe.
        assert rest_of_input(reader) == request(5) + b"\n"
        assert reader.read() is None
        os.write(in_w, request(6) + b"\n")
        assert reader.read() is None
        assert os.read(in_r, 1 << 16) == request(6) + b"\n"
    finally:
        os.close(in_w)


async def test_the_early_answer_is_the_commands_answer(tmp_path: Path) -> None:
    async with spawn_bridge(tmp_path) as host:
        early = await host.call("bridge_info")
        await host.call("get_capture_reliability_status")  # the commands and subsystems are up
        late = await host.call("bridge_info")
    assert early == late


def test_a_burst_of_bridge_info_then_other_requests_is_answered_exactly_once_each(tmp_path: Path) -> None:
    lines = [request(i) for i in range(1, 6)] + [request(6, "get_ingest_config"), request(7), request(8, "shutdown")]
    proc = subprocess.run(
        bridge_argv(tmp_path / "data"),
        input=b"\n".join(lines) + b"\n",
        capture_output=True,
        env=bridge_env(tmp_path),
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = [json.loads(line) for line in proc.stdout.splitlines()]
    ids = sorted(m["id"] for m in got if "id" in m)
    assert ids == list(range(1, 9))
    infos = [m["result"] for m in got if m.get("id") in (1, 2, 3, 4, 5, 7)]
    assert len({m["runId"] for m in infos}) == 1 and all(m["framing"] == "jsonl" for m in infos)


def test_the_transcript_holds_the_early_request_and_answer(tmp_path: Path) -> None:
    transcript = tmp_path / "t.jsonl"
    proc = subprocess.run(
        bridge_argv(tmp_path / "data", "--transcript", str(transcript)),
        input=request(1) + b"\n" + request(2, "shutdown") + b"\n",
        capture_output=True,
        env=bridge_env(tmp_path),
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    host_lines = [json.loads(line) for line in transcript.read_text().splitlines()]
    frames = [(r.get("dir"), r.get("msg")) for r in host_lines if r.get("channel") == "host"]
    assert ("in", {"jsonrpc": "2.0", "id": 1, "method": "bridge_info"}) in frames
    assert any(d == "out" and isinstance(f, dict) and f.get("id") == 1 and "result" in f for d, f in frames)
