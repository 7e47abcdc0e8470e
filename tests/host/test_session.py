"""The pygls host session in process: answers come back as values; cancel flags the running request."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from bridge import errors
from bridge.errors import BridgeError
from bridge.host.request import Request, current
from bridge.host.session import HostSession


def _session() -> tuple[HostSession, list[Any]]:
    sent: list[Any] = []
    return HostSession.create(lambda body: sent.append(msgspec.json.decode(body))), sent


async def _answer(session: HostSession, method: str, host_id: Any, params: Any, token: Any = None) -> Any:
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    session.submit(method, host_id, params, token, done.set_result)
    return await done


async def test_a_result_and_an_error_come_back_as_values() -> None:
    session, sent = _session()

    async def echo(params: Any) -> Any:
        return {"got": params}

    async def refuse(params: Any) -> Any:
        return BridgeError(errors.NOT_FOUND, "no such thing")

    session.register("echo", echo)
    session.register("refuse", refuse)
    assert await _answer(session, "echo", 1, {"a": 1}) == ({"got": {"a": 1}}, None)
    result, error = await _answer(session, "refuse", 2, {})
    assert result is None and isinstance(error, BridgeError) and error.code == errors.NOT_FOUND
    assert sent == []  # pygls wrote nothing itself


async def test_cancel_flags_only_the_running_request_and_ignores_unknown_ids() -> None:
    session, _ = _session()
    started, release = asyncio.Event(), asyncio.Event()
    seen: list[Request] = []

    async def long(params: Any) -> Any:
        seen.append(current())
        started.set()
        await release.wait()
        return BridgeError(errors.REQUEST_CANCELLED, "stopped") if current().cancelled() else "done"

    session.register("long", long)
    task = asyncio.ensure_future(_answer(session, "long", "a", {}))
    await started.wait()
    session.cancel("someone else")  # unknown: ignored
    assert not seen[0].cancelled()
    session.cancel("a")
    assert seen[0].cancelled()
    release.set()
    result, error = await task
    assert result is None and error is not None and error.code == -32800
    session.cancel("a")  # finished: ignored, nothing raised


async def test_progress_goes_out_as_lsprotocol_values_only_with_a_token() -> None:
    session, sent = _session()

    async def work(params: Any) -> Any:
        request = current()
        request.begin("Work", "starting")
        request.report("half", 50)
        request.end("done")
        return None

    session.register("work", work)
    await _answer(session, "work", 1, {}, token="t")
    await _answer(session, "work", 2, {})  # no token: no progress
    assert [m["method"] for m in sent] == ["$/progress"] * 3
    assert [m["params"]["token"] for m in sent] == ["t"] * 3
    assert [m["params"]["value"] for m in sent] == [
        {"kind": "begin", "title": "Work", "message": "starting", "percentage": 0, "cancellable": True},
        {"kind": "report", "message": "half", "percentage": 50},
        {"kind": "end", "message": "done"},
    ]
