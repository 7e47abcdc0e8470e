"""The Responses-API fake on its own (no codex): its script language and its HTTP side."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import anyio
import pytest

from bridge.drill.fake_model import (
    USAGE,
    FakeModel,
    Script,
    bearer_fingerprint,
    chat_reply,
    exec_source,
    parse_script,
    plan_reply,
    shell_reply,
)


def body(text: str, *after: dict[str, Any]) -> dict[str, Any]:
    env = "<environment_context>\n  <cwd>/w/here</cwd>\n</environment_context>"
    return {
        "model": "gpt-6.1-sol",
        "stream": True,
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": env}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
            *after,
        ],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", Script("chat", None, 0, "hello")),
        ("hello [[scenario:chat]]", Script("chat", None, 0, "hello")),
        ("[[scenario:shell:echo hi; ls]] go", Script("shell", "echo hi; ls", 0, "go")),
        ("x [[scenario:error]] [[delay:25]]", Script("error", None, 25, "x")),
        ("[[scenario:error:503]]", Script("error", "503", 0, "")),
    ],
)
def test_parse_script(text: str, expected: Script) -> None:
    assert parse_script(text) == expected


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def _text(events: list[dict[str, Any]], kind: str) -> str:
    return "".join(e["delta"] for e in events if e["type"] == kind)


def test_chat_reply_events() -> None:
    reply = plan_reply(body("Say hi [[scenario:chat]]"))
    events = reply.events
    assert reply.status == 200 and reply.scenario == "chat"
    assert _types(events)[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert _types(events)[-1] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert _text(events, "response.output_text.delta") == chat_reply("Say hi")
    assert _text(events, "response.reasoning_text.delta") == "User said: Say hi"
    assert "response.reasoning_summary_text.delta" in _types(events)
    assert events[-1]["response"]["usage"] == USAGE
    assert [o["type"] for o in events[-1]["response"]["output"]] == ["reasoning", "message"]


def test_shell_reply_calls_exec_then_reports_the_tool_output() -> None:
    first = plan_reply(body("[[scenario:shell:echo hi]]"))
    assert first.scenario == "shell"
    call = next(
        e["item"]
        for e in first.events
        if e["type"] == "response.output_item.done" and e["item"]["type"] == "custom_tool_call"
    )
    assert call["name"] == "exec"
    assert call["input"] == exec_source("echo hi", "/w/here")
    assert 'tools.exec_command({"cmd": "echo hi", "yield_time_ms": 5000, "workdir": "/w/here"})' in call["input"]
    assert (
        "".join(e["delta"] for e in first.events if e["type"] == "response.custom_tool_call_input.delta")
        == call["input"]
    )

    parts = [{"type": "input_text", "text": "Output:\n"}, {"type": "input_text", "text": "hi\n"}]
    output = {"type": "custom_tool_call_output", "call_id": call["call_id"], "output": parts}
    second = plan_reply(body("[[scenario:shell:echo hi]]", {**call}, output))
    assert second.scenario == "shell-followup"
    assert _text(second.events, "response.output_text.delta") == shell_reply("Output:\nhi\n")


def test_error_reply() -> None:
    assert plan_reply(body("[[scenario:error]]")).status == 500
    reply = plan_reply(body("[[scenario:error:429]]"))
    assert (reply.status, reply.events) == (429, [])
    assert reply.error_body is not None and "429" in reply.error_body["error"]["message"]


async def _post(port: int, payload: bytes, path: str = "/v1/responses", extra: str = "") -> bytes:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        head = (
            f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{extra}"
            f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n"
        )
        await stream.send(head.encode() + payload)
        data = b""
        with anyio.fail_after(10):
            while True:
                try:
                    data += await stream.receive()
                except anyio.EndOfStream:
                    return data


async def test_http_side_streams_sse_and_records_requests() -> None:
    fake = FakeModel()
    async with anyio.create_task_group() as tg:
        port = await tg.start(fake.serve)
        sse = await _post(port, json.dumps(body("hi")).encode(), extra="authorization: Bearer sk-abc\r\n")
        err = await _post(port, json.dumps(body("[[scenario:error]]")).encode())
        missing = await _post(port, b"{}", path="/v1/models")
        tg.cancel_scope.cancel()
    assert sse.startswith(b"HTTP/1.1 200 OK")
    assert b"content-type: text/event-stream" in sse.lower()
    assert b"event: response.completed\ndata: " in sse
    assert err.startswith(b"HTTP/1.1 500 Internal Server Error")
    assert missing.startswith(b"HTTP/1.1 404 ")
    assert [(r.path, r.status, r.scenario) for r in fake.requests] == [
        ("/v1/responses", 200, "chat"), ("/v1/responses", 500, "error"), ("/v1/models", 404, "not-found")
    ]  # fmt: skip
    first = fake.requests[0]
    assert first.bearer_sha256 == bearer_fingerprint("sk-abc")
    assert "authorization" not in first.headers  # the key itself is never kept
    assert fake.requests[1].bearer_sha256 is None
    assert len(fake.responses()) == 2


def test_standalone_prints_its_port() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.drill.fake_model", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        assert 0 < port < 65536
        response = anyio.run(_post, port, json.dumps(body("hello")).encode())
        assert response.startswith(b"HTTP/1.1 200 OK")
        assert b'"text":"Hello from the fake model! You said: hello"' in response
    finally:
        proc.terminate()
        proc.wait(timeout=10)
