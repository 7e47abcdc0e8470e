"""The transcript line format and its redaction (pure)."""

from __future__ import annotations

import json

import pytest

from bridge.transcript.format import TranscriptError, exit_line, frame_line, parse_lines

SECRET = "sk-live-0123456789abcdefXYZ"


def line_of(raw: bytes, channel: str = "host", direction: str = "in", conn: int | None = None) -> dict:  # type: ignore[type-arg]
    out = frame_line(1.5, 0.0, channel, direction, raw, conn)  # type: ignore[arg-type]
    assert out.endswith(b"\n") and out.count(b"\n") == 1
    parsed: dict = json.loads(out)  # type: ignore[type-arg]
    return parsed


def test_a_plain_frame_is_embedded_as_it_is() -> None:
    raw = b'{"jsonrpc":"2.0","id":1,"method":"bridge_info"}'
    obj = line_of(raw)
    assert obj == {"t": 1.5, "ts": "1970-01-01T00:00:00.000Z", "channel": "host", "dir": "in",
                   "msg": {"jsonrpc": "2.0", "id": 1, "method": "bridge_info"}}  # fmt: skip


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id":2,"method":"account/login/start","params":{"type":"apiKey","apiKey":"' + SECRET.encode() + b'"}}',
        b'{"id":2,"method":"x","params":{"note":"my key is ' + SECRET.encode() + b' ok"}}',
        b'{"id":2,"method":"x","params":{"headers":{"Authorization":"Bearer ' + SECRET.encode() + b'"}}}',
        b'{"id":2,"method":"x","params":{"accessToken":"' + SECRET.encode() + b'"}}',
    ],
)
def test_secrets_never_reach_a_line(raw: bytes) -> None:
    out = frame_line(0.1, 0.0, "sidecar", "out", raw, 1)
    assert SECRET.encode() not in out
    assert b"[REDACTED]" in out
    assert json.loads(out)["conn"] == 1


def test_counts_of_tokens_are_kept() -> None:
    obj = line_of(b'{"method":"thread/tokenUsage/updated","params":{"inputTokens":5,"tokenUsage":{"total":7}}}')
    assert obj["msg"]["params"] == {"inputTokens": 5, "tokenUsage": {"total": 7}}


def test_a_frame_spanning_lines_becomes_one_line() -> None:
    obj = line_of(b'{\n  "id": 1,\n  "method": "bridge_info"\n}')
    assert obj["msg"] == {"id": 1, "method": "bridge_info"}


def test_a_frame_that_is_not_json_is_kept_as_redacted_text() -> None:
    obj = line_of(b"not json " + SECRET.encode())
    assert obj["invalid"] is True
    assert obj["msg"] == "not json [REDACTED]"


def test_exit_lines_parse_back() -> None:
    [line] = list(parse_lines([exit_line(2.0, 0.0, 3, -9, False)]))
    assert (line.event, line.conn, line.code, line.expected, line.is_frame) == ("exit", 3, -9, False, False)


def test_a_torn_last_line_is_ignored_but_a_torn_middle_line_is_an_error() -> None:
    good = frame_line(0.1, 0.0, "host", "in", b'{"id":1,"method":"a"}', None)
    torn = good[: len(good) // 2]
    assert [line.msg["method"] for line in parse_lines([good, good, torn])] == ["a", "a"]
    with pytest.raises(TranscriptError, match="line 2"):
        list(parse_lines([good, torn, good]))


def test_a_file_with_no_good_line_is_not_a_transcript() -> None:
    """One bad line is not a torn tail (there is nothing before it), and an empty file holds nothing."""
    with pytest.raises(TranscriptError, match="line 1 is not a transcript line: it has no 'channel' field"):
        list(parse_lines([b'{"a": 1}\n']))
    with pytest.raises(TranscriptError, match="holds no lines"):
        list(parse_lines([]))
    with pytest.raises(TranscriptError, match="holds no lines"):
        list(parse_lines([b"\n", b"  \n"]))
