"""A request's CPU work, everything short of storing it: inflate, parse, flatten, redact, encode.

It runs in the decoder process (``bridge/receiver/decoder_main.py``), so a telemetry
flood spends the second core and not the bridge's GIL, which the stream's capture
and the host's answers need. Its result is a plain value: the rows ready for
``INSERT`` (:mod:`bridge.receiver.sink`) and, for each row the OTEL baseline can use,
what the baseline needs of its record (``mapping.for_baseline``), so nothing but this
module ever sees the protobuf messages.

The redaction walks a value only where the request's bytes hold text it could
mask, or where a key is one whose value it masks (``text_needs_redaction``,
``has_secret_key``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from bridge.receiver import decode, mapping
from bridge.receiver.decode import Format, Signal
from bridge.receiver.records import OtelRecord, extract
from bridge.redact import has_secret_key, needs_redaction, redact, text_needs_redaction

Row = tuple[Any, ...]  # an otel_records row in COLUMNS order, then its resource's JSON (stored once, by sink)
_INT64_MAX = (1 << 63) - 1
_json = msgspec.json.Encoder()

COLUMNS = (
    "dedup_key",
    "signal",
    "provider",
    "name",
    "conversation_id",
    "turn_id",
    "item_id",
    "call_id",
    "sequence",
    "trace_id",
    "span_id",
    "time_ns",
    "service_name",
    "scope_name",
    "body",
    "attributes",
    "detail",
    "received_at_ms",
)


class Prepared(msgspec.Struct):
    """One request, decoded: what the decoder stores and the receiver answers with."""

    count: int  # records decoded (each a row when stored)
    rejected: int  # elements OTLP calls invalid (the answer's partial success)
    problems: str
    rows: list[Row] = msgspec.field(default_factory=list)  # see Row; empty when ingest is off
    baseline: list[tuple[int, OtelRecord]] = msgspec.field(default_factory=list)  # (row index, the baseline's part)


def _int64(value: int | None) -> int | None:
    return value if value is not None and -_INT64_MAX <= value <= _INT64_MAX else None


def _encode(value: Any) -> str:
    raw = _json.encode(value)
    if needs_redaction(raw):  # the deep walk only when the bytes hold something it could mask
        raw = _json.encode(redact(value))
    return raw.decode("utf-8")


def _encode_clean_text(value: Any) -> str:
    """:func:`_encode` for a value whose texts hold nothing to mask: only a secret key can need it."""
    return _json.encode(redact(value) if has_secret_key(value) else value).decode("utf-8")


def to_rows(records: Sequence[OtelRecord], received_at_ms: int, *, clean_text: bool = False) -> list[Row]:
    """Redacted, encoded rows, one per record: :data:`COLUMNS`, then the record's resource.

    ``clean_text``: the request's bytes were found to hold no text ``redact`` would mask
    (``text_needs_redaction``), so only secret keys are looked for. A resource shared by
    the records of a batch is encoded once.
    """
    encode = _encode_clean_text if clean_text else _encode
    resources: dict[int, tuple[Any, str]] = {}

    def resource(value: Any) -> str:
        known = resources.get(id(value))
        if known is None or known[0] is not value:
            known = resources[id(value)] = (value, encode(value))
        return known[1]

    return [
        (
            r.dedup_key,
            r.signal,
            r.provider,
            r.name,
            r.conversation_id,
            r.turn_id,
            r.item_id,
            r.call_id,
            _int64(r.sequence),
            r.trace_id,
            r.span_id,
            _int64(r.time_ns),
            r.service_name,
            r.scope_name,
            None if r.body is None else encode(r.body),
            encode(r.attributes),
            encode(r.detail),
            received_at_ms,
            resource(r.resource),
        )
        for r in records
    ]


def prepare(
    signal: Signal, fmt: Format, raw: bytes, *, gzipped: bool, limit: int, received_at_ms: int, storing: bool
) -> Prepared:
    """The decoder's whole part of a request; :class:`decode.Rejected` when the body is refused.

    ``storing`` (``autoIngestEnabled``): without it the records are only counted.
    """
    body = decode.inflate(raw, gzipped=gzipped, limit=limit)
    extracted = extract(signal, decode.parse_request(signal, fmt, body))
    records = extracted.records
    done = Prepared(len(records), extracted.rejected, extracted.error_message)
    if not storing or not records:
        return done
    clean_text = not text_needs_redaction(body, json=fmt is not Format.PROTOBUF)
    done.rows = to_rows(records, received_at_ms, clean_text=clean_text)
    for index, record in enumerate(records):
        needed = mapping.for_baseline(record)
        if needed is not None:
            done.baseline.append((index, needed))
    return done
