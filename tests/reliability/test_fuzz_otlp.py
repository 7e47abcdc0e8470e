"""Fuzzing the OTLP receiver of a real bridge over loopback: JSON, protobuf and gzip bodies, valid
payloads mutated byte by byte, and arbitrary bytes. Every request gets an HTTP answer (4xx for
garbage, never a dropped connection or a 5xx), and the bridge survives with its memory bounded."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.receiver.payloads import claude_logs, codex_event, codex_logs, spans_json, to_json
from tests.receiver.support import post
from tests.reliability.fuzz_support import LiveBridge, assert_survived, budget, live_bridge

VALID: list[tuple[str, str, bytes]] = [
    ("/v1/logs", "application/x-protobuf", claude_logs(1, 2).SerializeToString()),
    ("/v1/logs", "application/x-protobuf", codex_logs(codex_event("codex.user_prompt")).SerializeToString()),
    ("/v1/logs", "application/json", to_json(claude_logs(3))),
    ("/v1/traces", "application/json", spans_json("ab" * 16, "cd" * 8)),
    ("/v1/metrics", "application/x-protobuf", b""),
]


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    path, ctype, body = draw(st.sampled_from(VALID))
    how = draw(st.sampled_from(["valid", "flip", "cut", "splice", "random", "json_random"]))
    data = bytearray(body)
    if how == "flip" and data:
        for _ in range(draw(st.integers(min_value=1, max_value=8))):
            i = draw(st.integers(min_value=0, max_value=len(data) - 1))
            data[i] = draw(st.integers(min_value=0, max_value=255))
    elif how == "cut" and data:
        data = data[: draw(st.integers(min_value=0, max_value=len(data) - 1))]
    elif how == "splice":
        i = draw(st.integers(min_value=0, max_value=len(data)))
        data[i:i] = draw(st.binary(max_size=64))
    elif how == "random":
        data = bytearray(draw(st.binary(max_size=2048)))
    elif how == "json_random":
        data = bytearray(
            draw(
                st.recursive(
                    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
                    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner)),
                    max_leaves=10,
                ).map(lambda v: __import__("json").dumps({"resourceLogs": v}).encode())
            )
        )
    headers: dict[str, str] = {}
    encoding = draw(st.sampled_from(["identity", "gzip", "gzip_broken", "bogus"]))
    if encoding == "gzip":
        data, headers["content-encoding"] = bytearray(gzip.compress(bytes(data))), "gzip"
    elif encoding == "gzip_broken":
        packed = gzip.compress(bytes(data))
        data, headers["content-encoding"] = bytearray(packed[: max(1, len(packed) // 2)]), "gzip"
    elif encoding == "bogus":
        headers["content-encoding"] = draw(st.sampled_from(["br", "deflate", "gzip, gzip", "x"]))
    ctype = draw(st.sampled_from([ctype, ctype, "application/json", "text/plain", "", "application/x-protobuf"]))
    path = draw(st.sampled_from([path, path, "/v1/logs", "/v1/traces", "/nope", "/v1/logs?x=1"]))
    method = draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]))
    return {"path": path, "ctype": ctype, "body": bytes(data), "headers": headers, "method": method}


def run_example(bridge: LiveBridge, key: str, request: dict[str, Any]) -> None:
    host = bridge.ensure()
    endpoint = bridge.endpoint

    async def send() -> int:
        reply = await post(
            endpoint, request["path"], request["body"], key=key, content_type=request["ctype"],
            headers=request["headers"], method=request["method"],
        )  # fmt: skip
        return reply.status

    status = bridge.run(send)
    assert bridge.alive(), f"the bridge died; stderr:\n{host.stderr()[-3000:]}"
    assert status < 500 or status == 503, f"HTTP {status} for {request!r}"


def test_fuzz_otlp_bodies(tmp_path: Path) -> None:
    config = {"autoIngestEnabled": True, "otlpReceiver": {"port": 0, "maxRequestsPerSecond": 100000}}
    with live_bridge(tmp_path, config) as bridge:
        status = bridge.call("get_otlp_receiver_status")
        assert status["state"] == "listening", status
        bridge.endpoint = status["endpoint"]
        assert bridge.host is not None
        key = (bridge.host.data_dir / "otlp.key").read_text().strip()

        @budget(400, 5000)
        @given(requests())
        def prop(request: dict[str, Any]) -> None:
            run_example(bridge, key, request)

        prop()
        assert_survived(bridge)
