"""Attach-mode pieces without a daemon: socket path, originator check, observed approvals, observer client."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from bridge import errors
from bridge.capture.approvals import ApprovalBroker
from bridge.errors import BridgeError
from bridge.sidecar.attach import OBSERVER_CLIENT_NAME, ThreadFollower, imposed_originator, resolve_socket_path
from bridge.sidecar.follow import ThreadMeta
from bridge.sidecar.framing import Frame
from bridge.sidecar.protocol import Envelope
from bridge.sidecar.rpc import RpcClient

SOCK = "app-server-control/app-server-control.sock"


@pytest.mark.parametrize(
    ("configured", "home", "environ", "want"),
    [
        ("/run/x.sock", "/h", {"CODEX_HOME": "/e"}, "/run/x.sock"),
        (None, "/h", {"CODEX_HOME": "/e"}, f"/h/{SOCK}"),
        (None, None, {"CODEX_HOME": "/e"}, f"/e/{SOCK}"),
        (None, None, {"HOME": "/home/u"}, f"/home/u/.codex/{SOCK}"),
    ],
)
def test_socket_path(configured: str | None, home: str | None, environ: dict[str, str], want: str) -> None:
    assert resolve_socket_path(configured, home, environ) == want


@pytest.mark.parametrize(
    ("user_agent", "imposed"),
    [
        ("codex_cli_rs/0.169.0 (Debian 12.0.0; x86_64) xterm", False),
        ("codex-tui/0.169.0 (Debian 12.0.0; x86_64) xterm (codex-tui; 0.169.0)", False),
        (f"{OBSERVER_CLIENT_NAME}/0.169.0 (Debian 12.0.0; x86_64) xterm", True),
    ],
)
def test_imposed_originator(user_agent: str, imposed: bool) -> None:
    assert imposed_originator(user_agent) is imposed


def approval_params(thread_id: str = "T") -> bytes:
    return json.dumps(
        {"threadId": thread_id, "turnId": "U", "itemId": "I", "command": "echo hi", "cwd": "/w", "reason": None}
    ).encode()


async def test_observed_approvals_are_recorded_never_answered() -> None:
    pushed: list[dict[str, Any]] = []

    def emit(method: str, body: Any) -> int:
        pushed.append(body)
        return len(pushed)

    broker = ApprovalBroker(emit, lambda: 50)
    async with anyio.create_task_group() as tg:
        broker.tg = tg
        broker.on_observed("item/commandExecution/requestApproval", 7, approval_params())
        [request] = pushed
        assert request["type"] == "ApprovalRequest" and request["observed"] is True
        assert request["decisionToken"] is None and request["options"] == [] and request["command"] == "echo hi"
        assert broker.list_pending() == [request]
        with pytest.raises(BridgeError) as refused:
            broker.submit(request["requestId"], "T", "anything", "accept", None)
        assert refused.value.code == -32017
        await anyio.sleep(0.2)  # no timeout decides an observed request
        assert len(pushed) == 1
        broker.on_resolved("T", 7)
        result = pushed[-1]
        assert result["type"] == "ApprovalResult" and result["decidedBy"] == "user" and result["decision"] is None
        assert broker.list_pending() == []
        # lost connection: a still-pending observed request ends without an answer
        broker.on_observed("item/commandExecution/requestApproval", 8, approval_params())
        broker.sidecar_restarted()
        assert pushed[-1]["decidedBy"] == "system" and pushed[-1]["observed"] is True


class Script:
    """A transport that hands over scripted frames and records what the client sends."""

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames
        self.sent: list[bytes] = []

    async def receive_batch(self) -> list[Frame]:
        if not self.frames:
            await anyio.sleep(0.2)  # time for any answer to go out before the connection ends
            raise anyio.EndOfStream
        batch: list[Frame] = list(self.frames)
        self.frames = []
        return batch

    async def send(self, frame: bytes) -> None:
        self.sent.append(frame)

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("handled", [True, False])
async def test_an_observer_client_never_answers_a_server_request(handled: bool) -> None:
    request = b'{"id": 3, "method": "item/commandExecution/requestApproval", "params": {}}'
    transport = Script([request])
    client = RpcClient(transport, observer=True)
    seen: list[Envelope] = []
    if handled:
        client.set_request_handler("item/commandExecution/requestApproval", seen.append)
    await client.run()
    assert transport.sent == []  # not even -32601
    assert len(seen) == (1 if handled else 0)
    with pytest.raises(BridgeError) as refused:
        await client.respond(3, {"decision": "accept"})
    assert refused.value.code == -32017
    assert client.ended.is_set()


async def test_a_spawn_client_still_answers_unhandled_requests() -> None:
    transport = Script([b'{"id": 3, "method": "item/tool/requestUserInput", "params": {}}'])
    client = RpcClient(transport)
    await client.run()
    assert [json.loads(f)["error"]["code"] for f in transport.sent] == [-32601]


class _RolloutLater:
    """A stand-in for the daemon's ``thread/resume``: "no rollout found" until the thread's turn has ended."""

    def __init__(self, follower: ThreadFollower) -> None:
        self.follower = follower
        self.calls = 0

    async def request_raw(self, method: str, params: dict[str, Any]) -> bytes:
        assert method == "thread/resume"
        self.calls += 1
        if self.calls == 1:  # the turn runs: no rollout yet; it ends before the next try
            self.follower.policy.status_changed(params["threadId"], "idle", now=1)
            raise BridgeError(errors.SIDECAR_ERROR, "codex failed", codexError={"message": "no rollout found for T"})
        return json.dumps({"thread": {"id": params["threadId"], "status": {"type": "idle"}}}).encode()


async def test_a_thread_whose_fast_turn_ended_during_the_resume_retries_is_still_followed() -> None:
    """The first turn of a thread can end before its rollout was there to resume: one last try follows the
    thread idle, so that turn is back-filled instead of missed until the user's next turn."""
    follower = ThreadFollower(idle_unsubscribe_s=600, clock=lambda: 0.0, enabled=lambda: True, on_change=lambda: None)
    client = _RolloutLater(follower)
    follower._client = client  # type: ignore[assignment]
    follower.policy.thread_seen("T", ThreadMeta(), "active", now=0)
    with anyio.fail_after(10):
        await follower._resume("T")
    assert client.calls == 2 and follower.policy.is_followed("T")
