"""Fuzzing the host transport of a real ``capture-bridge serve``, both framings.

Each example is a run of frames written to one long-lived bridge: valid
requests, arbitrary bytes, truncated JSON, invalid UTF-8 inside strings, deep
nesting, oversized frames, batches and messages with wrong types. Every
message that carries one of our ids must be answered exactly once and never
with -32603, and the bridge must outlive the whole run with its memory back
within 50 MB of its start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.reliability.fuzz_support import LiveBridge, answers, assert_survived, budget, live_bridge

MAX_FRAME = 4096
CONFIG: dict[str, Any] = {"limits": {"maxFrameBytes": MAX_FRAME}, "autoIngestEnabled": True}
# Commands without side effects on the bridge's own set-up (no shutdown, no config, no codex spawn).
SAFE = [
    "bridge_info",
    "get_ingest_config",
    "get_capture_reliability_status",
    "get_release_gate",
    "get_codex_app_server_status",
    "get_otlp_receiver_status",
    "get_collector_migration_status",
    "list_pending_approvals",
    "list_captured_threads",
    "get_captured_thread",
    "get_codex_stream_dedupe_log",
    "get_live_events",
    "codex_app_server_account_read",
]

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False),
    st.text(max_size=40),
)  # fmt: skip
json_values = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)
param_names = st.sampled_from(["threadId", "limit", "sinceSeq", "sinceIso", "windowHours", "stableSeconds", "x"])
params = st.one_of(st.none(), st.dictionaries(st.one_of(param_names, st.text(max_size=8)), json_values, max_size=4))


@st.composite
def frames(draw: st.DrawFn) -> dict[str, Any]:
    """One frame: ``body`` (bytes, no framing yet) and ``ids`` (the ids that must each be answered once)."""
    kind = draw(
        st.sampled_from(["request", "junk", "truncated", "bad_utf8", "deep", "oversized", "batch", "wrong_types"])
    )
    if kind == "request":
        message = {"jsonrpc": "2.0", "id": None, "method": draw(st.sampled_from(SAFE))}
        p = draw(params)
        if p is not None:
            message["params"] = p
        return {"kind": kind, "messages": [message]}
    if kind == "junk":
        return {"kind": kind, "body": draw(st.binary(min_size=1, max_size=300))}
    if kind == "truncated":
        full = json.dumps({"jsonrpc": "2.0", "id": 7, "method": draw(st.sampled_from(SAFE)), "params": draw(params)})
        cut = draw(st.integers(min_value=1, max_value=len(full) - 1))
        return {"kind": kind, "body": full[:cut].encode()}
    if kind == "bad_utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"\xe2\x82"]))
        where = draw(st.sampled_from(["value", "key", "method"]))
        if where == "value":
            body = b'{"id":2,"method":"bridge_info","x":"' + bad + b'"}'
        elif where == "key":
            body = b'{"id":2,"method":"bridge_info","' + bad + b'":1}'
        else:
            body = b'{"id":2,"method":"bridge_' + bad + b'info"}'
        return {"kind": kind, "body": body}
    if kind == "deep":
        depth = draw(st.integers(min_value=1, max_value=1500))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        tail = draw(st.booleans())  # closed, or cut open
        return {"kind": kind, "body": opener * depth + b"1" + (closer * depth if tail else b"")}
    if kind == "oversized":
        size = draw(st.integers(min_value=MAX_FRAME + 1, max_value=4 * MAX_FRAME))
        return {"kind": kind, "body": b'{"id":3,"method":"bridge_info","pad":"' + b"x" * size + b'"}'}
    if kind == "batch":
        elements = draw(
            st.lists(
                st.one_of(
                    st.builds(lambda m, p: {"id": None, "method": m, **({"params": p} if p is not None else {})},
                              st.sampled_from(SAFE), params),
                    st.builds(lambda m: {"method": m}, st.sampled_from(SAFE)),  # a notification: no answer
                    json_values,
                ),
                min_size=0, max_size=6,
            )
        )  # fmt: skip
        return {"kind": kind, "messages": elements, "batch": True}
    # wrong types: an id we can recognise, every other member arbitrary
    message = {"id": None}
    for name in ("method", "params", "jsonrpc"):
        if draw(st.booleans()):
            message[name] = draw(st.one_of(json_values, st.sampled_from(SAFE)))
    return {"kind": kind, "messages": [message]}


def materialise(bridge: LiveBridge, frame: dict[str, Any]) -> tuple[bytes, list[Any]]:
    """Give every placeholder id a fresh one (strings and integers); the body and the ids owed an answer."""
    if "body" in frame:
        return frame["body"], []
    ids: list[Any] = []
    messages = []
    for message in frame["messages"]:
        if isinstance(message, dict) and "id" in message and message["id"] is None:
            n = next(bridge.ids)
            message = {**message, "id": f"fz-{n}" if n % 2 else n}
            ids.append(message["id"])
        messages.append(message)
    payload: Any = messages if frame.get("batch") else messages[0]
    try:
        return json.dumps(payload, allow_nan=False).encode(), ids
    except ValueError:  # Infinity is not JSON: the whole frame is a parse error, answered with id null
        return json.dumps(payload).encode(), []


def encode(body: bytes, framing: str, kind: str) -> bytes:
    if framing == "jsonl":
        return body.replace(b"\n", b" ") + b"\n"
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


bad_headers = st.sampled_from(
    [
        b"Content-Length: abc\r\n\r\n",
        b"Content-Length: -5\r\n\r\n",
        b"Content-Length: \r\n\r\n",
        b"Content-Type: application/json\r\n\r\n",
        b"Content-Length: 1e3\r\n\r\n",
        b"Content-Length: 0\r\n\r\n",
        b"X-Junk: " + b"a" * 9000 + b"\r\n\r\n",
        b"content-length:\t12\n\n{\"id\": null}",
    ]
)


def run_example(bridge: LiveBridge, items: list[Any], framing: str) -> None:
    bridge.ensure()
    owed: list[Any] = []
    data = bytearray()
    for item in items:
        if isinstance(item, bytes):  # a raw header block (Content-Length framing only)
            data += item
            continue
        body, ids = materialise(bridge, item)
        owed += ids
        data += encode(body, framing, item["kind"])
    sentinel = bridge.request_id()
    data += encode(json.dumps({"id": sentinel, "method": "bridge_info"}).encode(), framing, "request")
    bridge.send_raw(bytes(data))
    owed.append(sentinel)
    bridge.wait_answered(owed)
    host = bridge.host
    assert host is not None
    if not answers(host, sentinel):
        bridge.condemn()
    assert bridge.alive(), f"the bridge died or stopped answering; stderr:\n{host.stderr()[-3000:]}"
    for msg_id in owed:
        got = answers(host, msg_id)
        assert len(got) == 1, f"id {msg_id!r} answered {len(got)} times: {got}"
        error = got[0].get("error")
        assert error is None or error.get("code") != -32603, got[0]


def test_fuzz_jsonl_transport(tmp_path: Path) -> None:
    with live_bridge(tmp_path, CONFIG, framing="jsonl") as bridge:

        @budget(500, 3000)
        @given(st.lists(frames(), min_size=1, max_size=8))
        def prop(items: list[Any]) -> None:
            run_example(bridge, items, "jsonl")

        prop()
        assert_survived(bridge)


def test_fuzz_content_length_transport(tmp_path: Path) -> None:
    with live_bridge(tmp_path, CONFIG, framing="content-length") as bridge:
        item = st.one_of(frames(), bad_headers)

        @budget(400, 2000)
        @given(st.lists(item, min_size=1, max_size=8))
        def prop(items: list[Any]) -> None:
            run_example(bridge, items, "content-length")

        prop()
        assert_survived(bridge)
