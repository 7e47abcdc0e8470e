"""Hot-path decoding of codex app-server frames (newline-delimited JSON-RPC).

Two passes per frame, both with reused msgspec decoders: an :class:`Envelope`
whose ``params``/``result``/``error`` stay raw (cheap, and it tolerates every
method codex will ever add), then, for methods in
:data:`~bridge.capture.codex_events.NOTIFICATIONS` or
:data:`~bridge.capture.codex_events.SERVER_REQUESTS`, the typed params. A frame
of an unknown method keeps its params raw and is counted by method. A frame
that is not JSON, not a message, or whose known params do not fit is returned
as a :class:`Frame` with a :class:`Problem` (never raised): the stream goes on.

codex frames carry no ``jsonrpc`` field and every notification carries
``emittedAtMs``; unknown fields are ignored everywhere on purpose.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

import msgspec

from bridge.capture.codex_events import NOTIFICATIONS, SERVER_REQUESTS

FrameKind = Literal["notification", "request", "response", "invalid"]
ProblemKind = Literal["schema_mismatch", "missing_fields", "protocol_violation"]

_EMPTY = msgspec.Raw()


class Envelope(msgspec.Struct, rename="camel", gc=False):
    """Any codex message: request, notification, server request or response."""

    method: str | None = None
    id: int | str | None = None
    params: msgspec.Raw = _EMPTY
    result: msgspec.Raw = _EMPTY
    error: msgspec.Raw = _EMPTY
    emitted_at_ms: int | None = None


class Problem(msgspec.Struct, frozen=True, gc=False):
    """Why a frame could not be typed (the material of a ParserValidationError)."""

    kind: ProblemKind
    reason: str


class Frame(msgspec.Struct, gc=False):
    """One decoded line.

    ``params`` is the typed struct when the method is known and its params fit,
    else None; ``params_raw`` always holds the params' JSON (empty when absent).
    Responses carry ``result`` / ``error`` raw, for whoever sent the request.
    """

    kind: FrameKind
    raw: bytes
    method: str | None = None
    id: int | str | None = None
    emitted_at_ms: int | None = None
    params: Any = None
    params_raw: msgspec.Raw = _EMPTY
    result: msgspec.Raw = _EMPTY
    error: msgspec.Raw = _EMPTY
    problem: Problem | None = None


_ENVELOPE = msgspec.json.Decoder(Envelope)
_NOTIFICATION_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    method: msgspec.json.Decoder(params_type) for method, params_type in NOTIFICATIONS.items()
}
_REQUEST_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    method: msgspec.json.Decoder(params_type) for method, params_type in SERVER_REQUESTS.items()
}


def _problem(exc: msgspec.ValidationError) -> Problem:
    reason = str(exc)
    kind: ProblemKind = "missing_fields" if reason.startswith("Object missing required field") else "schema_mismatch"
    return Problem(kind, reason)


def decode_frame(line: bytes, untyped: Counter[str] | None = None) -> Frame:
    """Decode one line; methods without a typed struct are counted in ``untyped``."""
    try:
        env = _ENVELOPE.decode(line)
    except msgspec.ValidationError as exc:
        return Frame("invalid", line, problem=Problem("protocol_violation", f"not a JSON-RPC message: {exc}"))
    except msgspec.DecodeError as exc:
        return Frame("invalid", line, problem=Problem("protocol_violation", f"not JSON: {exc}"))
    method = env.method
    if method is None:
        if env.id is None:
            return Frame("invalid", line, problem=Problem("protocol_violation", "neither method nor id"))
        return Frame("response", line, id=env.id, result=env.result, error=env.error)
    if env.id is None:
        kind: FrameKind = "notification"
        decoder = _NOTIFICATION_DECODERS.get(method)
    else:
        kind = "request"
        decoder = _REQUEST_DECODERS.get(method)
    params_raw = env.params
    if decoder is None:
        if untyped is not None:
            untyped[method] += 1
        return Frame(kind, line, method, env.id, env.emitted_at_ms, None, params_raw)
    if not params_raw:
        problem = Problem("missing_fields", f"{method} without params")
        return Frame(kind, line, method, env.id, env.emitted_at_ms, None, params_raw, problem=problem)
    try:
        params = decoder.decode(params_raw)
    except msgspec.ValidationError as exc:
        return Frame(kind, line, method, env.id, env.emitted_at_ms, None, params_raw, problem=_problem(exc))
    return Frame(kind, line, method, env.id, env.emitted_at_ms, params, params_raw)


class Codec:
    """Decodes frames and keeps the counts the reliability metrics need."""

    def __init__(self) -> None:
        self.frames = 0
        self.problems = 0
        self.untyped: Counter[str] = Counter()  # method -> frames kept raw

    def decode(self, line: bytes) -> Frame:
        frame = decode_frame(line, self.untyped)
        self.frames += 1
        if frame.problem is not None:
            self.problems += 1
        return frame

    def decode_batch(self, lines: Iterable[bytes]) -> list[Frame]:
        """Decode every non-blank line, in order (frames already waiting are decoded together)."""
        untyped = self.untyped
        frames = [decode_frame(line, untyped) for line in lines if line and not line.isspace()]
        self.frames += len(frames)
        self.problems += sum(1 for frame in frames if frame.problem is not None)
        return frames

    def decode_chunk(self, data: bytes) -> list[Frame]:
        """Decode a chunk of complete lines (``\\n``-separated)."""
        return self.decode_batch(data.split(b"\n"))
