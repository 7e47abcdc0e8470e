"""The replay player: a stand-in "codex app-server" that plays the codex side of a transcript.

A replay points a real bridge's ``codex.binaryPath`` at :func:`write_launcher`'s
executable. Each time the bridge spawns it, the player takes the next
connection of the transcript (``conn`` 1, 2, …) and walks its script
(:mod:`bridge.transcript.script`): it waits for each frame the bridge sent in
the recording (requests matched by method and order, answers to codex's own
requests by id) and writes each frame codex sent, answers carrying the live
request's id. Frames go out as fast as possible, or, with
``CAPTURE_BRIDGE_REPLAY_REALTIME=1``, at their recorded distance from the
bridge frame they followed. A connection that ended in a crash ends the same
way (the recorded exit code, or the recorded signal), once the replay host has
sent what the recorded host sent before the crash (with
``CAPTURE_BRIDGE_REPLAY_GATE=1``: it waits for ``crash-<conn>`` in the state
dir); otherwise the player waits for stdin to close, as codex does.

Requests the script does not expect (a liveness probe, an extra
``account/read``) are answered with the last recorded answer to that method,
or -32601. Progress goes to ``$CAPTURE_BRIDGE_REPLAY_STATE/progress`` (one
JSON line per step: the next step's ordinal and what the player waits for),
which the replay host follows to issue its commands at the right moment.

Only the standard library and the pure transcript modules are imported: the
bridge spawns this once per connection and waits for it.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shlex
import signal
import stat
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, BinaryIO

from bridge import runtime
from bridge.transcript.format import parse_lines
from bridge.transcript.script import (
    ConnScript,
    Step,
    conn_scripts,
    is_notification,
    is_request,
    is_response,
    recorded_answers,
)

ENV_TRANSCRIPT = "CAPTURE_BRIDGE_REPLAY_TRANSCRIPT"
ENV_STATE = "CAPTURE_BRIDGE_REPLAY_STATE"
ENV_REALTIME = "CAPTURE_BRIDGE_REPLAY_REALTIME"
ENV_GATE = "CAPTURE_BRIDGE_REPLAY_GATE"  # "1": a crash waits for the host's go (state/crash-<conn>)
GATE_LIMIT_S = 30.0

_EOF = object()


def write_launcher(directory: Path) -> Path:
    """An executable that runs the player (the bridge's ``codex.binaryPath``).

    From a checkout it is a Python script run by this interpreter; in a frozen
    build it is a shell script that runs this executable's player entry
    (:func:`bridge.runtime.module_argv`), since there is no Python to run.
    """
    path = directory / "codex-replay"
    if runtime.frozen():
        command = shlex.join(runtime.module_argv("bridge.transcript.player"))
        path.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
    else:
        repo = Path(__file__).resolve().parents[2]
        path.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            f"sys.path.insert(0, {str(repo)!r})\n"
            "from bridge.transcript.player import main\n"
            "raise SystemExit(main(sys.argv[1:]))\n"
        )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def wait_for_file(path: Path, limit: float) -> None:
    """Block until ``path`` exists (the replay host's go), at most ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.005)


def claim_conn(state: Path) -> int:
    """The next connection number (1 for the first spawn), counted under a lock in ``state``."""
    with open(state / "conns", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        count = len(fh.read().split())
        fh.write(f"{count + 1}\n")
        fh.flush()
    return count + 1


class Player:
    def __init__(
        self,
        script: ConnScript,
        answers: dict[str, Any],
        out: BinaryIO,
        progress: BinaryIO | None,
        realtime: bool,
    ) -> None:
        self.script = script
        self.answers = answers
        self.out = out
        self.progress = progress
        self.realtime = realtime
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.pool: list[dict[str, Any]] = []
        self.ids: dict[Any, Any] = {}  # recorded request id -> live id
        self.eof = False
        self._anchor = (time.monotonic(), script.steps[0].t if script.steps else 0.0)
        self._remaining: Counter[tuple[str, str]] = Counter(
            self._key(s.msg) for s in script.steps if s.kind == "expect"
        )

    @staticmethod
    def _key(msg: Any) -> tuple[str, str]:
        if is_request(msg):
            return ("request", str(msg["method"]))
        if is_notification(msg):
            return ("notification", str(msg["method"]))
        return ("response", str(msg.get("id") if isinstance(msg, dict) else None))

    # -------------------------------------------------------------- io

    def read_stdin(self, stdin: BinaryIO) -> None:
        for line in stdin:
            if not line.strip():
                continue
            try:
                self.inbox.put(json.loads(line))
            except ValueError:
                continue
        self.inbox.put(_EOF)

    def write(self, msg: Any) -> None:
        self.out.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")
        self.out.flush()

    def report(self, ordinal: int, waiting: str | None) -> None:
        if self.progress is not None:
            record = {"conn": self.script.conn, "at": ordinal, "waiting": waiting}
            self.progress.write(json.dumps(record).encode() + b"\n")
            self.progress.flush()

    # -------------------------------------------------------------- matching

    def _take(self, step: Step) -> dict[str, Any] | None:
        key = self._key(step.msg)
        for index, live in enumerate(self.pool):
            if self._key(live) == key:
                return self.pool.pop(index)
        return None

    def _arrive(self, live: Any) -> None:
        """A frame from the bridge: pool it, or answer/drop it when the script will never expect it."""
        if not isinstance(live, dict):
            return
        key = self._key(live)
        pooled = sum(1 for m in self.pool if self._key(m) == key)
        if pooled < self._remaining[key]:
            self.pool.append(live)
        elif is_request(live):
            answer = self.answers.get(str(live["method"]))
            if answer is None:
                answer = {"error": {"code": -32601, "message": f"{live['method']} is not in the transcript"}}
            self.write({"id": live["id"], **answer})

    def _wait_for(self, step: Step) -> bool:
        while True:
            live = self._take(step)
            if live is not None:
                self._remaining[self._key(step.msg)] -= 1
                if is_request(step.msg):
                    self.ids[step.msg["id"]] = live["id"]
                return True
            if self.eof:
                return False
            item = self.inbox.get()
            if item is _EOF:
                self.eof = True
            else:
                self._arrive(item)

    def _drain_nowait(self) -> None:
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return
            if item is _EOF:
                self.eof = True
            else:
                self._arrive(item)

    # -------------------------------------------------------------- playing

    def play(self) -> bool:
        """Walk the script; False when the bridge hung up first."""
        for step in self.script.steps:
            if step.kind == "expect":
                self.report(step.ordinal, f"{self._key(step.msg)[0]} {self._key(step.msg)[1]}")
                if not self._wait_for(step):
                    return False
                self._anchor = (time.monotonic(), step.t)
                continue
            self.report(step.ordinal, None)
            if self.realtime:
                due = self._anchor[0] + (step.t - self._anchor[1])
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            msg = step.msg
            if is_response(msg) and msg["id"] in self.ids:
                msg = {**msg, "id": self.ids[msg["id"]]}
            self._drain_nowait()
            self.write(msg)
        last = self.script.steps[-1].ordinal + 1 if self.script.steps else 0
        self.report(last, "done")
        return True

    def linger(self) -> None:
        """After the script: answer what comes until stdin closes (codex exits on EOF)."""
        while not self.eof:
            item = self.inbox.get()
            if item is _EOF:
                return
            self._arrive(item)


def main(argv: list[str] | None = None) -> int:
    transcript = os.environ.get(ENV_TRANSCRIPT)
    state = os.environ.get(ENV_STATE)
    if not transcript or not state:
        print(f"codex-replay: {ENV_TRANSCRIPT} and {ENV_STATE} must be set", file=sys.stderr)
        return 2
    state_dir = Path(state)
    with open(transcript, "rb") as fh:
        lines = list(parse_lines(fh, transcript))
    conn = claim_conn(state_dir)
    scripts = conn_scripts(lines)
    script = scripts.get(conn, ConnScript(conn))
    realtime = os.environ.get(ENV_REALTIME) == "1"
    with open(state_dir / "progress", "ab") as progress:
        player = Player(script, recorded_answers(lines), sys.stdout.buffer, progress, realtime)
        threading.Thread(target=player.read_stdin, args=(sys.stdin.buffer,), daemon=True).start()
        finished = player.play()
        if finished and script.exit_t is not None and not script.exit_expected:
            if realtime and script.steps:
                time.sleep(max(0.0, script.exit_t - script.steps[-1].t))
            if os.environ.get(ENV_GATE) == "1":
                wait_for_file(state_dir / f"crash-{conn}", GATE_LIMIT_S)
            code = script.exit_code if script.exit_code is not None else 1
            sys.stdout.flush()
            if code < 0:
                os.kill(os.getpid(), -code)
                time.sleep(5)  # the signal ends us
            os._exit(code)
        if finished:
            player.linger()
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    raise SystemExit(main())
