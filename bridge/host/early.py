"""The host's stdin from the first millisecond, and ``bridge_info`` answered before the rest loads.

A host asks ``bridge_info`` first, and the app waits on it. Everything else the
bridge loads (asyncio, anyio, msgspec, the store, pygls) takes several times
longer than the interpreter's own start, so a thread started before any of it
owns stdin: it reads into a small buffer and, once :meth:`EarlyInput.enable`
gives it the facts the answer holds, answers the ``bridge_info`` requests at
the head of the input itself.

Only a plain prefix is answered: complete frames, each a ``bridge_info``
request without params, in one framing, with an integer or simple string id.
The first frame that is anything else ends the early answering; it and
everything after it go, untouched and in order, to the real transport after
:meth:`EarlyInput.hand_over`. Then the thread retires: it finishes the read it
may be in, hands that chunk over too, and ends; :meth:`EarlyInput.read` says
so (``None``) and the transport reads stdin itself from then on. Only one
thread ever reads the pipe at a time (two readers could reorder it), and a
request costs no hop between two threads once the bridge is up.

Standard library only: importing this module must cost nothing measurable.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from bridge.framing import Framing

READ_CHUNK = 1 << 16
MAX_EARLY_FRAME = 4096  # a bridge_info request is tiny; anything larger is left to the real decoder
MAX_BUFFERED = 1 << 20  # before the hand-over, read no further than this (the pipe holds the rest)
_BLANK = b" \t\r\n"
_FAST_SWITCH_S = 0.001  # while imports hold the GIL, let the reader in within a millisecond


class EarlyInput:
    """The one reader of the host's stdin; answers the leading ``bridge_info`` requests."""

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd
        self.framing: Framing | None = None  # set by the first frame answered early
        self.answered: list[tuple[bytes, bytes]] = []  # (request body, answer body), for the transcript
        self._cond = threading.Condition()
        self._chunks: deque[bytes] = deque()  # after the hand-over: chunks for the transport
        self._prefix = bytearray()  # before it: what was read and not answered
        self._eof = False
        self._handed = False
        self._retired = False  # the reader thread has ended after the hand-over
        self._scanning = True  # the prefix is still made of answerable frames
        self._out_fd: int | None = None
        self._info: dict[str, Any] | None = None
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(_FAST_SWITCH_S)
        threading.Thread(target=self._read, name="stdin-reader", daemon=True).start()

    # -- the owner's side --------------------------------------------------------------------
    def enable(self, out_fd: int, info: dict[str, Any]) -> None:
        """From now on answer leading ``bridge_info`` requests with ``info`` (its ``framing`` is filled in)."""
        with self._cond:
            self._out_fd, self._info = out_fd, info
            self._answer_prefix()

    def hand_over(self) -> None:
        """Stop answering; what was read and not answered becomes the transport's first chunk."""
        with self._cond:
            self._scanning = False
            self._handed = True
            if self._prefix:
                self._chunks.appendleft(bytes(self._prefix))
                self._prefix.clear()
            self._cond.notify_all()
        sys.setswitchinterval(self._switch)

    def read(self) -> bytes | None:
        """The next chunk for the transport (blocking); ``b""`` at EOF. Call after :meth:`hand_over`.

        ``None``: the reader thread has retired with nothing more in hand; the caller reads ``fd`` itself.
        """
        with self._cond:
            while not self._chunks and not self._eof and not self._retired:
                self._cond.wait()
            if self._chunks:
                return self._chunks.popleft()
            return b"" if self._eof else None

    # -- the reader thread -------------------------------------------------------------------
    def _read(self) -> None:
        while True:
            with self._cond:
                # Before the hand-over, read no further than MAX_BUFFERED; after it, read no more at all.
                while not self._handed and len(self._prefix) >= MAX_BUFFERED:
                    self._cond.wait()
                if self._handed:
                    self._retired = True
                    self._cond.notify_all()
                    return
            try:
                data = os.read(self.fd, READ_CHUNK)
            except InterruptedError:
                continue
            except OSError:
                data = b""
            with self._cond:
                if not data:
                    self._eof = True
                    self._cond.notify_all()
                    return
                if self._handed:
                    self._chunks.append(data)
                else:
                    self._prefix += data
                    self._answer_prefix()
                self._cond.notify_all()

    def _answer_prefix(self) -> None:
        """Answer every complete leading ``bridge_info`` frame (called with the lock held)."""
        while self._scanning and self._info is not None and self._out_fd is not None:
            start = 0
            while start < len(self._prefix) and self._prefix[start] in _BLANK:
                start += 1
            if start == len(self._prefix):
                return
            parsed = self._next_frame(start)
            if parsed is None:
                return  # incomplete: wait for more
            if parsed is False:
                self._scanning = False
                return
            body, end, framing = parsed
            answer = self._answer_for(body, framing)
            if answer is None:
                self._scanning = False
                return
            self.framing = framing
            self.answered.append((body, answer))
            del self._prefix[:end]
            data = answer + b"\n" if framing == "jsonl" else b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer)
            try:
                while data:
                    data = data[os.write(self._out_fd, data) :]
            except OSError:
                self._scanning = False  # the host is gone; the transport will find out

    def _next_frame(self, start: int) -> tuple[bytes, int, Framing] | Literal[False] | None:
        """(body, end, framing) of the frame at ``start``; None if incomplete; False if not a simple frame."""
        buf = self._prefix
        framing: Framing = "content-length" if buf[start] in b"Cc" else "jsonl"
        if self.framing is not None and framing != self.framing:
            return False
        if framing == "jsonl":
            nl = buf.find(b"\n", start)
            if nl < 0:
                return None if len(buf) - start <= MAX_EARLY_FRAME else False
            return bytes(buf[start:nl]).strip(), nl + 1, framing
        sep = buf.find(b"\r\n\r\n", start)
        if sep < 0:
            return None if len(buf) - start <= 256 else False
        name, colon, value = bytes(buf[start:sep]).partition(b":")
        if not colon or name.strip().lower() != b"content-length" or not value.strip().isdigit():
            return False
        length = int(value.strip())
        if length > MAX_EARLY_FRAME:
            return False
        end = sep + 4 + length
        if len(buf) < end:
            return None
        return bytes(buf[sep + 4 : end]), end, framing

    def _answer_for(self, body: bytes, framing: Framing) -> bytes | None:
        """The answer's bytes if ``body`` is a plain ``bridge_info`` request, else None."""
        try:
            message = json.loads(body, object_pairs_hook=_no_duplicates)
        except (ValueError, RecursionError):
            return None
        if not isinstance(message, dict) or message.get("method") != "bridge_info":
            return None
        if set(message) - {"jsonrpc", "id", "method", "params"} or message.get("jsonrpc", "2.0") != "2.0":
            return None
        if "params" in message and message["params"] != {}:
            return None
        msg_id = message.get("id")
        if isinstance(msg_id, bool) or not isinstance(msg_id, (int, str)):
            return None
        if isinstance(msg_id, str) and not _plain(msg_id):
            return None
        assert self._info is not None
        result = {**self._info, "framing": framing}
        answer = {"jsonrpc": "2.0", "id": msg_id, "result": result}
        return json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate keys")  # leave such a frame to the real decoder's judgement
    return dict(pairs)


def _plain(text: str) -> bool:
    """A string id that JSON writes the same way everywhere (no escapes)."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def bridge_info(data_dir: str, run_id: str) -> dict[str, Any]:
    """The ``bridge_info`` result before anything is running: the fields of ``host.info.BridgeInfo``, in order.

    Nothing here may differ from what the command itself answers at that moment
    (``tests/host/test_early_answer.py`` compares the two).
    """
    from bridge import PROTOCOL_VERSION, __version__
    from bridge.host.manifest import COMMANDS

    return {
        "name": "capture-bridge", "version": __version__, "protocolVersion": PROTOCOL_VERSION, "framing": None,
        "commands": list(COMMANDS), "codex": None, "dataDir": data_dir, "pid": os.getpid(), "runId": run_id,
    }  # fmt: skip


_CURRENT: EarlyInput | None = None


def start(fd: int = 0) -> EarlyInput:
    """Start the process's stdin reader (once); :func:`current` finds it later."""
    global _CURRENT
    if _CURRENT is None:
        _CURRENT = EarlyInput(fd)
    return _CURRENT


def current() -> EarlyInput | None:
    return _CURRENT
