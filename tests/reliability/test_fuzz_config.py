"""Fuzzing ``set_ingest_config`` of a real bridge: every patch is answered with the new config or a
-32602 that names the field, never -32603 and never a crash; a refused patch changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.reliability.fuzz_support import LiveBridge, assert_survived, budget, live_bridge

FIELDS = [
    "autoIngestEnabled", "streamEnrichmentEnabled", "streamKillSwitch", "appServerAuthMode", "retentionDays",
    "codex.binaryPath", "codex.home", "codex.args", "codex.env", "codex.connection", "codex.socketPath",
    "codex.requestTimeoutMs", "approvals.timeoutMs", "limits.maxFrameBytes", "otlpReceiver.enabled",
    "otlpReceiver.host", "otlpReceiver.port", "otlpReceiver.maxBodyBytes", "otlpReceiver.maxRequestsPerSecond",
    "dedup.completedContentSource", "export.endpoint", "export.headers", "transcript.path", "transcript.maxBytes",
    "codex", "otlpReceiver", "export", "bogus", "codex.bogus", "auto_ingest_enabled", "otlp_receiver.port",
]  # fmt: skip

odd_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "\u202e\u0000", "127.0.0.1", "::1", "0.0.0.0", "localhost", "http://127.0.0.1:1",
                     "https://[::1]:4318/v1", "apikey", "APIKEY", "attach", "spawn", "otel", "..", "/", "\x00",
                     "127.0.0.1\n", "1" * 300]),
    st.integers(min_value=1, max_value=20000).map(lambda n: "x" * n),
)  # fmt: skip
leaf = st.one_of(
    st.none(), st.booleans(), odd_text, st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 99, 100, 1023, 1024, 4096, 65535, 65536, 1 << 30, (1 << 30) + 1, 2**63]),
)  # fmt: skip
# No Infinity: JSON cannot carry it, so the host client refuses it (test_fuzz_transport sends it raw).
values = st.recursive(
    leaf, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(odd_text, inner, max_size=3)),
    max_leaves=8,
)  # fmt: skip


def related(field: str, path: str) -> bool:
    """``field`` (from the error) names the patched ``path``, or a part of it, or what holds it."""
    def canon(name: str) -> str:  # snake_case is accepted for every field: compare spelling-free
        return name.split("[")[0].replace("_", "").lower()

    norm, path = canon(field), canon(path)
    return norm.startswith(path.split(".")[0]) or path.startswith(norm)


def run_example(bridge: LiveBridge, patches: list[tuple[str, Any]]) -> None:
    bridge.ensure()
    before = bridge.request("get_ingest_config")
    assert "result" in before, before
    patch: dict[str, Any] = {}
    for path, value in patches:
        *parents, last = path.split(".")
        node = patch
        for name in parents:
            if not isinstance(node.get(name), dict):
                node[name] = {}
            node = node[name]
        node[last] = value
    answer = bridge.request("set_ingest_config", patch)
    assert bridge.alive(), "the bridge died"
    after = bridge.request("get_ingest_config")
    assert "result" in after, after
    if "error" in answer:
        error = answer["error"]
        assert error["code"] == -32602, f"patch {patch!r} answered {error}"
        field = (error.get("data") or {}).get("field")
        assert isinstance(field, str) and field, f"no field named in {error}"
        assert any(related(field, path) for path, _ in patches), (field, patch)
        assert after["result"] == before["result"], "a refused patch changed the config"
    else:
        assert answer["result"] == after["result"]


def test_fuzz_set_ingest_config(tmp_path: Path) -> None:
    config = {"autoIngestEnabled": True, "otlpReceiver": {"port": 0}}
    with live_bridge(tmp_path, config) as bridge:

        @budget(500, 4000)
        @given(st.lists(st.tuples(st.sampled_from(FIELDS), values), min_size=1, max_size=3))
        def prop(patches: list[tuple[str, Any]]) -> None:
            run_example(bridge, patches)

        prop()
        assert_survived(bridge)
