"""The stderr ring (bounded, redacted) and the spawn spec."""

from __future__ import annotations

from bridge.sidecar.process import StderrRing, build_spec


def test_stderr_ring_redacts_and_bounds() -> None:
    ring = StderrRing(max_lines=3, max_line_chars=40)
    ring.feed(b"key sk-abcdefghijkl12345 leaked\nAuthorization: Bearer abc.def\n")
    ring.feed(b"\x1b[31mERROR\x1b[0m partial")
    ring.feed(b" line\n" + b"x" * 100 + b"\n")
    lines = ring.tail(10)
    assert len(lines) == 3 and ring.dropped == 1 and ring.total == 4
    assert lines[0] == "Authorization: [REDACTED]"
    assert lines[1] == "ERROR partial line"
    assert lines[2] == "x" * 40 + "…"
    assert all("sk-abc" not in line for line in lines)


def test_stderr_ring_caps_a_runaway_line() -> None:
    ring = StderrRing(max_lines=5, max_line_chars=10)
    for _ in range(100):
        ring.feed(b"y" * 1000)  # never a newline
    assert ring.buffered <= 5
    assert len(ring._partial) <= 10 * 4 + 1000
    ring.flush()
    assert all(len(line) <= 11 for line in ring.tail())


def test_spec_puts_global_args_before_app_server() -> None:
    spec = build_spec("/bin/codex", ["-c", "features.plugins=false"], {"X": "1"}, "~/ch", {"PATH": "/bin", "X": "0"})
    assert spec.argv == ["/bin/codex", "-c", "features.plugins=false", "app-server"]
    assert spec.env["X"] == "1" and spec.env["PATH"] == "/bin"
    assert spec.env["CODEX_HOME"].endswith("/ch") and not spec.env["CODEX_HOME"].startswith("~")


def test_spec_without_home_inherits_codex_home() -> None:
    spec = build_spec("/bin/codex", [], {}, None, {"CODEX_HOME": "/inherited"})
    assert spec.env["CODEX_HOME"] == "/inherited"
