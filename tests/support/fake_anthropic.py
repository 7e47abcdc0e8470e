"""A local fake of the Anthropic Messages API that drives the real Claude Code offline.

Claude Code ``POST``s ``/v1/messages?beta=true`` (docs/peers.md §3); this fake
answers every such request with one assistant text message, streamed as the
Messages API's SSE events (``message_start``, ``content_block_start``,
``content_block_delta``, ``content_block_stop``, ``message_delta``,
``message_stop``) when the request asks for a stream, and as one JSON message
otherwise (Claude Code makes small non-streaming calls too). The text is
:func:`reply_text` of the latest user message, so a test can check it came
back. Anything else is answered 404 and recorded. Binds to 127.0.0.1 only.

Run it in a task group (``await tg.start(fake.serve)``), in a background
thread (:func:`fake_anthropic_in_thread`), or standalone:
``python -m tests.support.fake_anthropic --port 0`` prints its port.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import h11

from bridge.drill.serving import LoopbackHttpServer, running_in_thread, serve_command

LOOPBACK = "127.0.0.1"
MESSAGES_PATH = "/v1/messages"
USAGE_IN = 42
USAGE_OUT = 7


def reply_text(prompt: str) -> str:
    """What the fake "model" answers to ``prompt``."""
    return f"Hello from the fake Messages API. You said: {prompt.strip()[:200]}"


def latest_user_text(body: Any) -> str:
    """The text of the last ``user`` message of a Messages request (text blocks joined)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages or []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
            texts = [t for t in texts if not t.startswith("<system-reminder>")]
            if texts:
                return "\n".join(texts)
    return ""


def message_events(model: str, text: str) -> list[dict[str, Any]]:
    """The SSE events of one streamed assistant text message."""
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    words = text.split(" ")
    chunks = [" ".join(words[i : i + 4]) + (" " if i + 4 < len(words) else "") for i in range(0, len(words), 4)]
    return [
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": USAGE_IN,
                    "output_tokens": 1,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                },
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": chunk}}
            for chunk in chunks
        ),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": USAGE_OUT},
        },
        {"type": "message_stop"},
    ]


def message_json(model: str, text: str) -> dict[str, Any]:
    """The same message, non-streamed."""
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": USAGE_IN,
            "output_tokens": USAGE_OUT,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def sse_frame(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


@dataclass
class RecordedRequest:
    """One request the fake received (the API key header is not kept)."""

    method: str
    path: str
    body: Any
    streamed: bool
    status: int
    received_at: float


class FakeAnthropic(LoopbackHttpServer):
    """The HTTP side: h11 over an anyio TCP listener on 127.0.0.1."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.requests: list[RecordedRequest] = []

    @property
    def base_url(self) -> str:
        """What ``ANTHROPIC_BASE_URL`` should be (no ``/v1``: Claude Code adds it)."""
        return f"http://{LOOPBACK}:{self.port}"

    def messages(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == MESSAGES_PATH and r.method == "POST" and r.status == 200]

    async def _send(self, conn: h11.Connection, stream: anyio.abc.SocketStream, event: h11.Event) -> None:
        data = conn.send(event)
        if data:
            await stream.send(data)

    async def _answer(
        self, conn: h11.Connection, stream: anyio.abc.SocketStream, request: h11.Request, raw: bytes
    ) -> None:
        path = request.target.decode("latin-1").split("?", 1)[0]
        method = request.method.decode("ascii")
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        streamed = isinstance(body, dict) and bool(body.get("stream"))
        if method != "POST" or path != MESSAGES_PATH or not isinstance(body, dict):
            error = {"type": "error", "error": {"type": "not_found_error", "message": f"no route for {method} {path}"}}
            self.requests.append(RecordedRequest(method, path, body, False, 404, time.time()))
            payload = json.dumps(error).encode()
            head = [("content-type", "application/json"), ("content-length", str(len(payload)))]
            await self._send(conn, stream, h11.Response(status_code=404, headers=head))
            await self._send(conn, stream, h11.Data(data=payload))
            await self._send(conn, stream, h11.EndOfMessage())
            return
        self.requests.append(RecordedRequest(method, path, body, streamed, 200, time.time()))
        model = str(body.get("model") or "claude-fake")
        text = reply_text(latest_user_text(body))
        if not streamed:
            payload = json.dumps(message_json(model, text)).encode()
            head = [("content-type", "application/json"), ("content-length", str(len(payload)))]
            await self._send(conn, stream, h11.Response(status_code=200, headers=head))
            await self._send(conn, stream, h11.Data(data=payload))
            await self._send(conn, stream, h11.EndOfMessage())
            return
        head = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
        await self._send(conn, stream, h11.Response(status_code=200, headers=head))
        for event in message_events(model, text):
            await self._send(conn, stream, h11.Data(data=sse_frame(event)))
        await self._send(conn, stream, h11.EndOfMessage())


@contextmanager
def fake_anthropic_in_thread() -> Iterator[FakeAnthropic]:
    """A running fake on its own anyio loop in a background thread."""
    with running_in_thread(FakeAnthropic()) as fake:
        yield fake


def main(argv: list[str] | None = None) -> int:
    return serve_command("python -m tests.support.fake_anthropic", __doc__.split("\n")[0], FakeAnthropic, argv)


if __name__ == "__main__":
    sys.exit(main())
