"""A host frame's bytes to its JSON value, or the error answer that says why it is not one (pure)."""

from __future__ import annotations

from typing import Any

import msgspec

from bridge import errors
from bridge.errors import BridgeError

_json_decode = msgspec.json.Decoder().decode

Response = dict[str, Any]


def error_response(msg_id: Any, err: BridgeError) -> Response:
    return {"jsonrpc": "2.0", "id": msg_id, "error": err.to_wire()}


def valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, (str, int)) and not isinstance(value, bool))


def decode_frame(body: bytes) -> tuple[Any, Response | None]:
    """The frame's JSON value, or the error answer that names why it is not one.

    msgspec raises more than ``DecodeError`` on hostile input: invalid UTF-8
    inside a string is a ``UnicodeDecodeError`` and deep nesting a
    ``RecursionError``. Both are answered; nothing a host sends escapes.
    """
    try:
        message = _json_decode(body)
    except msgspec.DecodeError as exc:
        return None, error_response(None, BridgeError(errors.PARSE_ERROR, f"Parse error: {exc}."))
    except UnicodeDecodeError:
        offset = _bad_utf8_offset(body)
        err = BridgeError(
            errors.PARSE_ERROR,
            f"Parse error: the frame is not valid UTF-8 (byte 0x{body[offset]:02x} at offset {offset}); "
            "JSON text must be UTF-8.",
            offset=offset,
        )
        return None, error_response(_salvage_id(body), err)
    except RecursionError:
        return None, error_response(None, _too_deep())
    if (body.count(b"[") + body.count(b"{") > MAX_DEPTH) and _deeper_than(message, MAX_DEPTH):
        salvaged = message.get("id") if isinstance(message, dict) and valid_id(message.get("id")) else None
        return None, error_response(salvaged, _too_deep())
    return message, None


MAX_DEPTH = 256  # arrays/objects inside each other; deeper frames are -32600


def _too_deep() -> BridgeError:
    return BridgeError(
        errors.INVALID_REQUEST,
        f"Invalid request: arrays and objects are nested more than {MAX_DEPTH} deep.",
        kind="too_deep",
        limit=MAX_DEPTH,
    )


def _deeper_than(value: Any, limit: int) -> bool:
    """True when ``value`` nests containers more than ``limit`` deep (iterative: no recursion)."""
    level: list[Any] = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        nested: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            nested.extend(child for child in children if isinstance(child, (dict, list)))
        level = nested
    return False


def _bad_utf8_offset(body: bytes) -> int:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return 0


def _salvage_id(body: bytes) -> Any:
    """The id of a frame whose only fault is bad UTF-8, so the host can match the error; else None."""
    try:
        message = _json_decode(body.decode("utf-8", "replace").encode())
    except Exception:
        return None
    msg_id = message.get("id") if isinstance(message, dict) else None
    return msg_id if valid_id(msg_id) else None
