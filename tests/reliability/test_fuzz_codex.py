"""Fuzzing the codex stream of a real bridge: hostile frames replayed by the FAKE sidecar
(tests/fakes/fake_sidecar.py ``replay``). The bridge must not crash, capture must continue (a valid
thread sent after the hostile lines is stored), and the mode must stay truthful (the status agrees
with the last pushed transition, and comes back to HYBRID_ACTIVE once the stream is healthy again)."""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.reliability.fuzz_support import LiveBridge, assert_survived, budget, live_bridge

FAKE_SIDECAR = Path(__file__).resolve().parents[1] / "fakes" / "fake_sidecar.py"
TRANSITION = "capture-reliability-transition"
METHODS = [
    "thread/started", "turn/started", "turn/completed", "item/started", "item/completed", "item/agentMessage/delta",
    "item/reasoning/summaryTextDelta", "item/fileChange/patchUpdated", "thread/tokenUsage/updated", "error",
    "serverRequest/resolved", "account/rateLimits/updated", "warning", "thread/status/changed", "fake/unknown",
    "item/commandExecution/requestApproval", "item/fileChange/requestApproval", "item/permissions/requestApproval",
]  # fmt: skip
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
ids = {"threadId": "t-fuzz", "turnId": "u-fuzz", "itemId": "i-fuzz"}


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["junk", "mutated", "bad_utf8", "deep", "response", "shaped"]))
    if kind == "junk":
        return draw(st.binary(min_size=1, max_size=200)).replace(b"\n", b"")
    if kind == "deep":
        return b"[" * draw(st.integers(min_value=1, max_value=3000)) + b"1"
    if kind == "bad_utf8":
        head = b'{"method":"item/agentMessage/delta","params":{"threadId":"t","turnId":"u","itemId":"i","delta":"'
        return head + b'\xff"}}'
    if kind == "response":
        return json.dumps({"id": draw(json_values), "result": draw(json_values)}).encode()
    message: dict[str, Any] = {"method": draw(st.sampled_from(METHODS))}
    if kind == "shaped":  # the right ids, other members arbitrary
        names = st.sampled_from(["item", "turn", "thread", "delta", "x"])
        params = {**ids, **draw(st.dictionaries(names, json_values))}
    else:
        params = draw(json_values)
    message["params"] = params
    if message["method"].endswith("requestApproval") or draw(st.booleans()):
        message["id"] = draw(st.one_of(st.integers(min_value=0, max_value=10**6), st.text(max_size=5)))
    return json.dumps(message).encode()


def b64(line: bytes) -> str:
    return base64.b64encode(line).decode()


def sentinel(n: int) -> list[bytes]:
    thread = {"id": f"thr-sentinel-{n}", "preview": "fuzz", "cwd": "/tmp", "createdAt": 1, "updatedAt": 1}
    return [
        json.dumps({"method": "account/updated", "params": {"authMode": "apikey", "planType": None}}).encode(),
        json.dumps({"method": "thread/started", "params": {"thread": thread}}).encode(),
    ]


def mode_agrees(bridge: LiveBridge) -> dict[str, Any]:
    host = bridge.host
    assert host is not None
    status = bridge.call("get_capture_reliability_status")
    pushed = [p for m, p in host.notifications if m == TRANSITION]
    assert pushed and pushed[-1]["toMode"] == status["mode"], (status["mode"], pushed[-1:])
    return status


def run_example(bridge: LiveBridge, hostile: list[bytes]) -> None:
    host = bridge.ensure()
    n = next(bridge.ids)
    answer = bridge.request("codex_app_server_thread_list", {"fakeReplay": [b64(x) for x in hostile]})
    assert bridge.alive(), f"the bridge died; stderr:\n{host.stderr()[-3000:]}"
    assert "result" in answer, answer
    mode_agrees(bridge)
    again = bridge.request("codex_app_server_thread_list", {"fakeReplay": [b64(x) for x in sentinel(n)]})
    assert "result" in again, again
    end = time.monotonic() + 20
    while True:
        got = bridge.request("get_captured_thread", {"threadId": f"thr-sentinel-{n}"})
        status = mode_agrees(bridge)
        if "result" in got and status["mode"] == "HYBRID_ACTIVE":
            return
        assert time.monotonic() < end, f"capture or mode did not recover: {got}, {status['mode']} {status['reasons']}"
        time.sleep(0.1)


def test_fuzz_codex_frames(tmp_path: Path) -> None:
    config = {
        "autoIngestEnabled": True,
        "appServerAuthMode": "apikey",
        "otlpReceiver": {"port": 0},
        "approvals": {"timeoutMs": 500},
        "limits": {"maxFrameBytes": 65536},
        "codex": {"binaryPath": sys.executable, "args": [str(FAKE_SIDECAR), "replay"]},
    }
    with live_bridge(tmp_path, config) as bridge:
        bridge.call("start_codex_app_server")
        bridge.call("codex_app_server_initialize")
        bridge.call("codex_app_server_initialized")
        login = {"authMode": "apiKey", "apiKey": "sk-fuzz-0123456789abcdef"}
        bridge.call("codex_app_server_account_login_start", login)
        end = time.monotonic() + 20
        while mode_agrees(bridge)["mode"] != "HYBRID_ACTIVE":
            assert time.monotonic() < end, "never reached HYBRID_ACTIVE"
            time.sleep(0.1)

        @budget(120, 2000)
        @given(st.lists(lines(), min_size=1, max_size=10))
        def prop(hostile: list[bytes]) -> None:
            run_example(bridge, hostile)

        prop()
        assert_survived(bridge)
