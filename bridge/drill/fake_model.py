"""A local fake of the OpenAI Responses API that drives the real codex offline.

codex ``POST``s ``/v1/responses`` and acts on the SSE events it gets back
(docs/peers.md §1); this fake answers from a tiny script language written into
the prompt, so a test or the drill chooses what the "model" does by what it
asks codex:

``[[scenario:chat]]`` (also the default)
    reasoning (summary and raw-text deltas), then an assistant message whose
    text is :func:`chat_reply` of the prompt, then ``response.completed`` with
    :data:`USAGE`.
``[[scenario:shell:CMD]]``
    the model calls the custom tool ``exec`` with the JavaScript codex's own
    model writes (``tools.exec_command({"cmd": CMD, …})``); on the follow-up
    request, which carries the tool's output, it answers with
    :func:`shell_reply` of that output.
``[[scenario:error]]`` / ``[[scenario:error:STATUS]]``
    every attempt fails with HTTP 500 (or STATUS), so codex retries and then
    fails the turn.
``[[delay:MS]]``
    waits MS milliseconds before each SSE event (to keep a turn in flight).

The script is read from the latest user message of the request. CMD ends at
the first ``]]``. Everything here binds to 127.0.0.1 only.

Run it in a task group (``await tg.start(fake.serve)``), in a background
thread (:func:`fake_model_in_thread`, for pytest fixtures whose set-up and
tear-down run in different tasks), or standalone:
``python -m bridge.drill.fake_model --port 0`` prints its port.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import anyio
import anyio.abc
import h11

from bridge.drill.serving import LoopbackHttpServer, running_in_thread, serve_command

LOOPBACK = "127.0.0.1"
RESPONSES_PATH = "/v1/responses"
MODEL = "gpt-6.1-sol"

# What every successful response reports; feeds thread/tokenUsage/updated.
USAGE: dict[str, Any] = {
    "input_tokens": 1200,
    "input_tokens_details": {"cached_tokens": 200},
    "output_tokens": 30,
    "output_tokens_details": {"reasoning_tokens": 10},
    "total_tokens": 1230,
}

CHAT_SUMMARY = "Considering how to answer briefly."
SHELL_SUMMARY = "The user wants me to run a command, so I will call the exec tool."
FOLLOWUP_SUMMARY = "The command finished; I will report its output."

_SCENARIO_RE = re.compile(r"\[\[scenario:([a-z]+)(?::(.*?))?\]\]", re.S)
_DELAY_RE = re.compile(r"\[\[delay:(\d+)\]\]")
_MARKER_RE = re.compile(r"\[\[(?:scenario|delay):.*?\]\]", re.S)
_CWD_RE = re.compile(r"<cwd>(.*?)</cwd>", re.S)


# ---------------------------------------------------------------- pure script


@dataclass(frozen=True)
class Script:
    """What the latest user message asks of the fake model."""

    scenario: str = "chat"
    arg: str | None = None
    delay_ms: int = 0
    prompt: str = ""


@dataclass
class Reply:
    """An HTTP answer: an SSE stream (``events``) or an error (``error_body``)."""

    scenario: str
    status: int = 200
    events: list[dict[str, Any]] = field(default_factory=list)
    error_body: dict[str, Any] | None = None
    delay_ms: int = 0


def chat_reply(prompt: str) -> str:
    """The assistant text of a chat turn (tests compare agentMessage text with it)."""
    return f"Hello from the fake model! You said: {prompt}"


def shell_reply(tool_output: str) -> str:
    """The assistant text after a shell call whose tool output was ``tool_output``."""
    return f"The command ran. Its output was: {tool_output}"


def exec_source(cmd: str, workdir: str | None) -> str:
    """The JavaScript the model sends to codex's ``exec`` tool (as in the shell reference)."""
    args: dict[str, Any] = {"cmd": cmd, "yield_time_ms": 5000}
    if workdir:
        args["workdir"] = workdir
    call = f"const r = await tools.exec_command({json.dumps(args)});\n"
    return call + "text(r.output);\ntext(`exit_code=${r.exit_code}`);\n"


def parse_script(text: str) -> Script:
    """Read the scenario markers out of a user message."""
    match = _SCENARIO_RE.search(text)
    delay = _DELAY_RE.search(text)
    prompt = _MARKER_RE.sub("", text).strip()
    return Script(
        scenario=match.group(1) if match else "chat",
        arg=match.group(2) if match and match.group(2) is not None else None,
        delay_ms=int(delay.group(1)) if delay else 0,
        prompt=prompt,
    )


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _last_user_index(items: list[Any]) -> int:
    for index in range(len(items) - 1, -1, -1):
        item = items[index]
        if isinstance(item, dict) and item.get("type") == "message" and item.get("role") == "user":
            return index
    return -1


def latest_user_text(body: Any) -> str:
    """The text of the request's latest user message ("" when there is none)."""
    items = body.get("input") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return ""
    index = _last_user_index(items)
    return _content_text(items[index].get("content")) if index >= 0 else ""


def tool_output_after_prompt(items: list[Any]) -> str | None:
    """The output text of the last tool call answered after the latest user message.

    ``items`` is a request body's ``input``; None when no tool output follows the prompt.
    """
    output: str | None = None
    for item in items[_last_user_index(items) + 1 :]:
        if isinstance(item, dict) and item.get("type") in ("custom_tool_call_output", "function_call_output"):
            output = _content_text(item.get("output"))
    return output


def _workspace_cwd(items: list[Any]) -> str | None:
    for item in items:
        if isinstance(item, dict) and item.get("type") == "message":
            found = _CWD_RE.search(_content_text(item.get("content")))
            if found:
                return found.group(1).strip()
    return None


def _chunks(text: str, words: int = 3) -> list[str]:
    """``text`` cut into deltas of a few words each (concatenating gives it back)."""
    parts = re.findall(r"\S+\s*|\s+", text)
    out = ["".join(parts[i : i + words]) for i in range(0, len(parts), words)]
    return out or [""]


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


class _Stream:
    """Builds one response's SSE events with running sequence numbers."""

    def __init__(self) -> None:
        self.response_id = _new_id("resp")
        self.events: list[dict[str, Any]] = []
        self.output: list[dict[str, Any]] = []

    def emit(self, kind: str, **fields: Any) -> None:
        self.events.append({"type": kind, "sequence_number": len(self.events), **fields})

    def response(self, status: str) -> dict[str, Any]:
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": MODEL,
            "output": list(self.output) if status == "completed" else [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": dict(USAGE) if status == "completed" else None,
        }

    def start(self) -> None:
        self.emit("response.created", response=self.response("in_progress"))
        self.emit("response.in_progress", response=self.response("in_progress"))

    def reasoning(self, summary: str, text: str | None) -> None:
        index = len(self.output)
        item_id = _new_id("rs")
        self.emit(
            "response.output_item.added", output_index=index, item={"id": item_id, "type": "reasoning", "summary": []}
        )
        where = {"item_id": item_id, "output_index": index}
        self.emit(
            "response.reasoning_summary_part.added", **where, summary_index=0, part={"type": "summary_text", "text": ""}
        )
        for delta in _chunks(summary):
            self.emit("response.reasoning_summary_text.delta", **where, summary_index=0, delta=delta)
        self.emit("response.reasoning_summary_text.done", **where, summary_index=0, text=summary)
        part = {"type": "summary_text", "text": summary}
        self.emit("response.reasoning_summary_part.done", **where, summary_index=0, part=part)
        item: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": [part], "encrypted_content": None}
        if text is not None:
            for delta in _chunks(text):
                self.emit("response.reasoning_text.delta", **where, content_index=0, delta=delta)
            self.emit("response.reasoning_text.done", **where, content_index=0, text=text)
            item["content"] = [{"type": "reasoning_text", "text": text}]
        self.emit("response.output_item.done", output_index=index, item=item)
        self.output.append(item)

    def message(self, text: str) -> None:
        index = len(self.output)
        item_id = _new_id("msg")
        added = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
        self.emit("response.output_item.added", output_index=index, item=added)
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        self.emit("response.content_part.added", **where, part={"type": "output_text", "text": "", "annotations": []})
        for delta in _chunks(text):
            self.emit("response.output_text.delta", **where, delta=delta, logprobs=[])
        self.emit("response.output_text.done", **where, text=text, logprobs=[])
        part = {"type": "output_text", "text": text, "annotations": []}
        self.emit("response.content_part.done", **where, part=part)
        item = {**added, "status": "completed", "content": [part], "phase": "final_answer"}
        self.emit("response.output_item.done", output_index=index, item=item)
        self.output.append(item)

    def custom_tool_call(self, name: str, source: str) -> None:
        index = len(self.output)
        item_id = _new_id("ctc")
        call = {"id": item_id, "type": "custom_tool_call", "call_id": _new_id("call"), "name": name}
        self.emit("response.output_item.added", output_index=index, item={**call, "status": "in_progress", "input": ""})
        for delta in _chunks(source, words=6):
            self.emit("response.custom_tool_call_input.delta", item_id=item_id, output_index=index, delta=delta)
        self.emit("response.custom_tool_call_input.done", item_id=item_id, output_index=index, input=source)
        item = {**call, "status": "completed", "input": source}
        self.emit("response.output_item.done", output_index=index, item=item)
        self.output.append(item)

    def complete(self) -> list[dict[str, Any]]:
        self.emit("response.completed", response=self.response("completed"))
        return self.events


def plan_reply(body: Any) -> Reply:
    """Decide the whole answer to one ``/v1/responses`` request body (pure)."""
    script = parse_script(latest_user_text(body))
    items: list[Any] = body.get("input", []) if isinstance(body, dict) else []
    if not isinstance(items, list):
        items = []
    if script.scenario == "error":
        status = int(script.arg) if script.arg and script.arg.isdigit() else 500
        message = f"fake model: scripted failure (HTTP {status})"
        return Reply("error", status=status, error_body={"error": {"type": "server_error", "message": message}})
    stream = _Stream()
    stream.start()
    if script.scenario == "shell" and script.arg:
        output = tool_output_after_prompt(items)
        if output is None:
            stream.reasoning(SHELL_SUMMARY, None)
            stream.custom_tool_call("exec", exec_source(script.arg, _workspace_cwd(items)))
            return Reply("shell", events=stream.complete(), delay_ms=script.delay_ms)
        stream.reasoning(FOLLOWUP_SUMMARY, None)
        stream.message(shell_reply(output))
        return Reply("shell-followup", events=stream.complete(), delay_ms=script.delay_ms)
    stream.reasoning(CHAT_SUMMARY, f"User said: {script.prompt}")
    stream.message(chat_reply(script.prompt))
    return Reply("chat", events=stream.complete(), delay_ms=script.delay_ms)


def sse_frame(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


# ---------------------------------------------------------------- the server


@dataclass
class RecordedRequest:
    """One request the fake received. The bearer token is kept only as a fingerprint."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    scenario: str
    status: int
    bearer_sha256: str | None
    received_at: float


def bearer_fingerprint(token: str) -> str:
    """What :attr:`RecordedRequest.bearer_sha256` holds for ``token`` (first 16 hex digits)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class FakeModel(LoopbackHttpServer):
    """The HTTP side: h11 over an anyio TCP listener on 127.0.0.1."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.requests: list[RecordedRequest] = []

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v1"

    def responses(self) -> list[RecordedRequest]:
        """The ``POST /v1/responses`` requests, oldest first."""
        return [r for r in self.requests if r.path == RESPONSES_PATH and r.method == "POST"]

    async def _answer(
        self, conn: h11.Connection, stream: anyio.abc.SocketStream, request: h11.Request, raw: bytes
    ) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
        path = request.target.decode("latin-1").split("?", 1)[0]
        method = request.method.decode("ascii")
        auth = headers.pop("authorization", "")
        bearer = bearer_fingerprint(auth[7:]) if auth.startswith("Bearer ") else None
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if method == "POST" and path == RESPONSES_PATH and isinstance(body, dict):
            reply = plan_reply(body)
        elif method == "POST" and path == RESPONSES_PATH:
            reply = Reply("bad-request", status=400, error_body={"error": {"message": "body is not a JSON object"}})
        else:
            reply = Reply("not-found", status=404, error_body={"error": {"message": f"no route for {method} {path}"}})
        self.requests.append(
            RecordedRequest(method, path, headers, body, reply.scenario, reply.status, bearer, time.time())
        )
        if reply.error_body is not None:
            payload = json.dumps(reply.error_body).encode()
            head = [("content-type", "application/json"), ("content-length", str(len(payload)))]
            response = h11.Response(status_code=reply.status, headers=head, reason=_reason(reply.status))
            await stream.send(conn.send(response))
            await stream.send(conn.send(h11.Data(data=payload)))
            await stream.send(conn.send(h11.EndOfMessage()))
            return
        head = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
        await stream.send(conn.send(h11.Response(status_code=200, headers=head, reason=b"OK")))
        for event in reply.events:
            if reply.delay_ms:
                await anyio.sleep(reply.delay_ms / 1000)
            await stream.send(conn.send(h11.Data(data=sse_frame(event))))
        await stream.send(conn.send(h11.EndOfMessage()))


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


@contextmanager
def fake_model_in_thread() -> Iterator[FakeModel]:
    """A running fake on its own anyio loop in a background thread."""
    with running_in_thread(FakeModel()) as fake:
        yield fake


def main(argv: list[str] | None = None) -> int:
    return serve_command("python -m bridge.drill.fake_model", __doc__.split("\n")[0], FakeModel, argv)


if __name__ == "__main__":
    sys.exit(main())
