"""codex's answers on their way to the host: passed through as bytes when nothing needs masking.

A resumed thread is megabytes of JSON. When nothing in it could need masking it
goes out as codex's own bytes (never decoded, redacted and encoded again); when
something could, the parts that could are redacted, and the result is the same
value the redacting path gives. Either way the work runs off the event loop,
in slices, so other commands are answered meanwhile.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import anyio
import msgspec

from bridge.capture import codex_events as ce
from bridge.capture.snapshot import thread_read_decoder, turns_page_decoder, view_of
from bridge.host.commands import threads
from bridge.host.dispatch import _resolve
from bridge.host.registry import Forwarded
from bridge.host.request import CURRENT, Request
from bridge.redact import MASK, PIECE_BYTES, redact

_encode = msgspec.json.encode
_decode = msgspec.json.decode


def _item(turn: int, k: int) -> dict[str, Any]:
    text = f"turn {turn} item {k}: " + " ".join(f"word{n}" for n in range(30))
    return {"type": "agentMessage", "id": f"t{turn}-i{k}", "text": text, "phase": None, "startedAtMs": 1000 + k}


def _turn(n: int, items: int = 20) -> dict[str, Any]:
    return {"id": f"turn-{n}", "status": "completed", "error": None, "items": [_item(n, k) for k in range(items)],
            "startedAt": 1_700_000_000 + n, "completedAt": 1_700_000_009 + n}  # fmt: skip


def _resumed(turns: int) -> dict[str, Any]:
    thread = {"id": "th-1", "preview": "a long thread", "cwd": "/work", "createdAt": 1_700_000_000,
              "turns": [_turn(n) for n in range(turns)]}  # fmt: skip
    return {"thread": thread, "model": "gpt-5.1-codex", "modelProvider": "openai", "cwd": "/work",
            "approvalPolicy": "never", "sandbox": {"type": "readOnly"}}  # fmt: skip


class FakeClient:
    """The stream client: answers every request with the bytes it was given."""

    def __init__(self, answers: dict[str, bytes]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, Any]] = []

    async def request_raw(self, method: str, params: Any) -> msgspec.Raw:
        self.asked.append((method, params))
        return msgspec.Raw(self.answers[method])


def _app(client: FakeClient) -> Any:
    commands = SimpleNamespace(stream_client=lambda: client)
    sidecar = SimpleNamespace(observer=False, commands=commands, thread_followed=lambda thread_id: None)
    return SimpleNamespace(sidecar=sidecar, capture=None)


async def test_a_clean_answer_is_passed_on_as_codex_bytes() -> None:
    small = b'{"thread": {"id": "th-1", "turns": []},  "model": "m"}'  # codex's spacing, kept
    large = _encode(_resumed(200))
    assert len(large) > PIECE_BYTES
    for raw in (small, large):
        out = await threads.pass_on(msgspec.Raw(raw))
        assert isinstance(out, msgspec.Raw)
        assert bytes(out) == raw  # not decoded and encoded again
        assert _decode(bytes(out)) == redact(_decode(raw))
    assert await threads.pass_on(msgspec.Raw(b"")) is None


async def test_a_secret_inside_a_large_answer_is_masked_and_the_rest_is_unchanged() -> None:
    answer = _resumed(200)
    turns = answer["thread"]["turns"]
    turns[3]["items"][2]["text"] = "here: sk-abcdefghijklmnop1234 and more"
    turns[150]["items"][0]["apiKey"] = "plain-value"
    turns[199]["accessToken"] = None
    answer["sessionToken"] = "tok"
    raw = _encode(answer)
    out = await threads.pass_on(msgspec.Raw(raw))
    assert out is not None
    got = _decode(bytes(out))
    assert got == redact(_decode(raw))
    assert "sk-abcdefgh" not in bytes(out).decode() and "plain-value" not in bytes(out).decode()
    assert got["thread"]["turns"][150]["items"][0]["apiKey"] == MASK
    assert got["thread"]["turns"][199]["accessToken"] is None and got["sessionToken"] == MASK


async def test_an_answer_with_line_breaks_goes_out_on_one_line() -> None:
    pretty = b'{\n  "thread": {"id": "th-1",\r\n "turns": []}\n}'  # JSON whitespace, as a WebSocket frame may carry it
    large = b'{"rows": [' + b",\n".join([b'{"a": 1}'] * (PIECE_BYTES // 8)) + b"]}"
    for raw in (pretty, large):
        out = await threads.pass_on(msgspec.Raw(raw))
        assert out is not None and b"\n" not in bytes(out) and b"\r" not in bytes(out)
        assert _decode(bytes(out)) == _decode(raw)


async def test_a_small_answer_with_a_secret_is_redacted_on_the_spot() -> None:
    raw = _encode({"thread": {"id": "th-1"}, "note": "Bearer abc.def"})
    out = await threads.pass_on(msgspec.Raw(raw))
    assert out is not None and _decode(bytes(out)) == {"thread": {"id": "th-1"}, "note": MASK}


async def test_the_event_loop_runs_other_tasks_while_a_large_answer_is_worked_on() -> None:
    raw = _encode(_resumed(400))  # megabytes: many slices
    ticks = 0
    done = anyio.Event()

    async def other_command() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(other_command)
        await anyio.sleep(0)
        ticks = 0
        out = await threads.pass_on(msgspec.Raw(raw))
        done.set()
    assert out is not None and bytes(out) == raw
    # Decoding, redacting and encoding on the loop (as before) would not let it run at all meanwhile.
    assert ticks >= len(raw) // threads.SLICE_BYTES


async def test_resume_passes_the_answer_through_and_reports_the_turn_count() -> None:
    raw = _encode(_resumed(300))
    client = FakeClient({"thread/resume": raw})
    sent: list[dict[str, Any]] = []
    request = Request(
        "codex_app_server_thread_resume",
        token="resume-1",
        send=lambda body: sent.append(_decode(body)),
        unstructure=lambda value: {"kind": value.kind, "message": value.message},
    )
    params = threads.ThreadResumeParams(thread_id="th-1", work_done_token="resume-1")
    reset = CURRENT.set(request)
    try:
        result = await threads.thread_resume(
            _app(client), Forwarded(params, {"thread_id": "th-1", "workDoneToken": "resume-1"})
        )
    finally:
        CURRENT.reset(reset)
    assert isinstance(result, msgspec.Raw) and bytes(result) == raw
    assert client.asked == [("thread/resume", {"threadId": "th-1"})]  # the token is ours, never forwarded
    values = [message["params"]["value"] for message in sent]
    assert [v["kind"] for v in values] == ["begin", "report", "end"]
    assert values[-1]["message"] == "resumed; turns: 300"


def test_the_turn_count_reads_only_the_outline_of_the_answer() -> None:
    assert threads.turn_count(msgspec.Raw(_encode(_resumed(7)))) == 7
    assert threads.turn_count(msgspec.Raw(b'{"thread": {"id": "th-1"}}')) is None  # excludeTurns
    assert threads.turn_count(msgspec.Raw(b'{"thread": {"turns": "odd"}}')) is None
    assert threads.turn_count(msgspec.Raw(b'{"thread": null}')) is None
    assert threads.turn_count(msgspec.Raw(b"[1, 2]")) is None
    assert threads.turn_count(None) is None


async def test_a_result_that_is_already_json_is_not_encoded_again() -> None:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    raw = msgspec.Raw(b'{"thread":{"id":"th-1"}}')
    _resolve(future, (raw, None))
    result, error = future.result()
    assert result is raw and error is None


async def test_the_snapshot_answers_the_redacted_view_of_the_thread_and_its_pages() -> None:
    thread = {"id": "th-1", "name": "long", "cwd": "/work", "createdAt": 1_700_000_000, "extra": "dropped"}
    turns = [_turn(n, items=4) for n in range(120)]
    turns[5]["items"][1]["text"] = "token: Bearer secret-value"
    pages = {}
    for at in range(0, 120, 50):
        nxt = str(at + 50) if at + 50 < 120 else None
        pages[str(at)] = _encode({"data": turns[at : at + 50], "nextCursor": nxt})

    class Paged(FakeClient):
        async def request_raw(self, method: str, params: Any) -> msgspec.Raw:
            if method == "thread/turns/list":
                self.asked.append((method, params))
                return msgspec.Raw(pages[params.get("cursor", "0")])
            return await super().request_raw(method, params)

    client = Paged({"thread/read": _encode({"thread": thread})})
    out = await threads.take_snapshot(_app(client), "th-1")
    assert [m for m, _ in client.asked] == ["thread/read"] + ["thread/turns/list"] * 3
    # What the view was before it was built a slice at a time: the typed thread and turns, redacted.
    typed = thread_read_decoder.decode(_encode({"thread": thread})).thread
    typed_turns = [t for page in pages.values() for t in turns_page_decoder.decode(page).data]
    expected = redact(msgspec.to_builtins(typed))
    expected["turns"] = [redact(msgspec.to_builtins(t)) for t in typed_turns]
    got = _decode(bytes(out))
    assert got == expected
    assert "secret-value" not in bytes(out).decode() and "extra" not in got


def test_the_view_of_a_thread_without_turns() -> None:
    thread = ce.Thread(id="th-1", name="Bearer abc")
    steps = view_of(thread, [])
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            assert _decode(stop.value) == {**msgspec.to_builtins(thread), "name": MASK, "turns": []}
            break
