"""A FAKE codex app-server, for the faults a real codex cannot be made to show.

Not an imitation of codex's behaviour in general: it answers just enough of
the handshake (initialize, account/read, account/login/start apiKey,
account/logout) to reach the fault under test. Run as
``python fake_sidecar.py MODE [app-server]``; modes:

- ``normal``: the handshake only.
- ``crash_on_start``: exits with code 3 at once.
- ``garbage``: writes unreadable frames before every answer.
- ``oversized``: writes one frame of ``FAKE_OVERSIZED_BYTES`` (default 2 MiB) before answering initialize.
- ``silent``: reads everything, answers nothing.
- ``flood``: after ``initialized``, emits ``FAKE_FLOOD_COUNT`` (default 20000) notifications
  ``fake/flood`` then one ``fake/flood/done``.
- ``ask``: after ``initialized``, sends the server request ``fake/ask`` (id "ask-1") and
  echoes the answer it gets as the notification ``fake/answer``.
- ``replay``: the handshake, and ``thread/list`` with ``fakeReplay: [base64 line, …]`` first writes
  those lines to stdout verbatim (each followed by a newline), then answers ``{data: [], replayed: n}``.
  The fuzz tests feed hostile codex frames through it, one request per example.
- ``stubborn``: ignores stdin EOF and SIGTERM, and starts a child in its process group that
  does the same (like the npm launcher's native child): only SIGKILL to the group ends them.

With ``FAKE_SPAWN_LOG`` set, every start appends one line to that file (tests count spawns).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def send(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def note(method: str, params: object) -> None:
    send({"method": method, "params": params, "emittedAtMs": int(time.time() * 1000)})


GARBAGE = [b"this is not json", b'{"id": 1, "result": ', b"[1, 2, 3]", b'{"method": 5}', b"\xff\xfe\x00"]


def garbage() -> None:
    for line in GARBAGE:
        sys.stdout.buffer.write(line + b"\n")
    sys.stdout.flush()


def answer(mode: str, message: dict[str, object]) -> None:
    method = message.get("method")
    request_id = message.get("id")
    params = message.get("params") or {}
    assert isinstance(params, dict)
    if mode == "garbage" and request_id is not None:
        garbage()
    if method == "initialize":
        if mode == "oversized":
            size = int(os.environ.get("FAKE_OVERSIZED_BYTES", str(2 * 1024 * 1024)))
            sys.stdout.write('{"method":"fake/big","params":{"pad":"' + "x" * size + '"}}\n')
            sys.stdout.flush()
        send({"id": request_id, "result": {"userAgent": "fake_sidecar/0.0.1 (fake)", "codexHome": "/nowhere"}})
    elif method == "initialized":
        if mode == "flood":
            count = int(os.environ.get("FAKE_FLOOD_COUNT", "20000"))
            out = sys.stdout
            for n in range(count):
                out.write(json.dumps({"method": "fake/flood", "params": {"n": n}, "emittedAtMs": 1}) + "\n")
            out.flush()
            note("fake/flood/done", {"count": count})
        elif mode == "ask":
            send({"method": "fake/ask", "id": "ask-1", "params": {"question": "?"}})
    elif method == "account/read":
        send({"id": request_id, "result": {"account": STATE["account"], "requiresOpenaiAuth": True}})
    elif method == "account/login/start" and params.get("type") == "apiKey":
        send({"id": request_id, "result": {"type": "apiKey"}})
        STATE["account"] = {"type": "apiKey"}
        note("account/login/completed", {"loginId": None, "success": True, "error": None})
        note("account/updated", {"authMode": "apikey", "planType": None})
    elif method == "account/logout":
        STATE["account"] = None
        send({"id": request_id, "result": {}})
        note("account/updated", {"authMode": None, "planType": None})
    elif method == "thread/list" and mode == "replay":
        import base64

        lines = params.get("fakeReplay") or []
        for line in lines:
            sys.stdout.buffer.write(base64.b64decode(line) + b"\n")
        sys.stdout.flush()
        send({"id": request_id, "result": {"data": [], "nextCursor": None, "replayed": len(lines)}})
    elif method is None and mode == "ask":
        note("fake/answer", message)
    elif request_id is not None:
        send({"id": request_id, "error": {"code": -32600, "message": f"fake_sidecar does not know {method}"}})


STATE: dict[str, object] = {"account": None}


def stubborn() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.environ.get("FAKE_STUBBORN_CHILD") != "1":
        env = dict(os.environ, FAKE_STUBBORN_CHILD="1")
        subprocess.Popen([sys.executable, __file__, "stubborn"], env=env, stdin=subprocess.DEVNULL)
    while True:
        time.sleep(0.05)


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else "normal"
    spawn_log = os.environ.get("FAKE_SPAWN_LOG")
    if spawn_log:
        with open(spawn_log, "a") as fh:
            fh.write(f"{time.time():.3f} {os.getpid()}\n")
    if mode == "crash_on_start":
        sys.stderr.write("fake_sidecar: crashing on start as asked\n")
        return 3
    if mode == "stubborn":
        stubborn()
    for raw in sys.stdin.buffer:
        if not raw.strip():
            continue
        try:
            message = json.loads(raw)
        except ValueError:
            continue
        if mode == "silent":
            continue
        answer(mode, message)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
