"""A host that stops reading stdout: the bridge's memory stays bounded and no answer is lost.

The bound is lowered to 1 MiB (a prelude sets ``bridge.host.transport.MAX_PENDING_BYTES``; the
default is 32 MiB) so the tests reach it quickly. The host here is a raw process pipe, so the test
decides exactly when it reads.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bridge.client.host import bridge_argv, bridge_env
from bridge.host.notify import KEEP
from bridge.host.transport import MAX_PENDING_BYTES
from tests.receiver.payloads import claude_event, logs_request

BOUND = 1 << 20
DEFAULT_BOUND = MAX_PENDING_BYTES
SMALL_BOUND = f"import bridge.host.transport as _t\n_t.MAX_PENDING_BYTES = {BOUND}\n"
EXIT_DEADLINE = 9.0  # 3 s, asserted with 3x slack
LIVE = "session:live:event"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class RawHost:
    """The bridge on plain pipes: writes never block the test, reads happen only when asked."""

    def __init__(self, tmp_path: Path, config: dict[str, Any] | None = None, prelude: str | None = SMALL_BOUND) -> None:
        data_dir = tmp_path / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "config.json").write_text(json.dumps({"otlpReceiver": {"port": 0}, **(config or {})}))
        self.data_dir = data_dir
        self.stderr_path = tmp_path / "bridge-stderr.log"
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                bridge_argv(data_dir, prelude=prelude), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=err, env=bridge_env(tmp_path),
            )  # fmt: skip
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin_fd = self.proc.stdin.fileno()
        self.stdout_fd = self.proc.stdout.fileno()
        os.set_blocking(self.stdin_fd, False)
        self._partial = b""
        self._unsent = b""
        self.answers: dict[Any, list[dict[str, Any]]] = {}
        self.notes: list[tuple[str, dict[str, Any]]] = []

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def write(self, data: bytes) -> bool:
        """Write what the pipe takes now; False while some is still waiting (the pipe is full)."""
        self._unsent += data
        while self._unsent:
            try:
                n = os.write(self.stdin_fd, self._unsent)
            except BlockingIOError:
                return False
            self._unsent = self._unsent[n:]
        return True

    def read_for(self, seconds: float) -> int:
        """Read and parse whatever stdout has for ``seconds``; returns the bytes read."""
        total = 0
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.stdout_fd], [], [], left)
            if not ready:
                break
            chunk = os.read(self.stdout_fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            *lines, self._partial = (self._partial + chunk).split(b"\n")
            for line in lines:
                self._accept(json.loads(line))
        return total

    def _accept(self, message: Any) -> None:
        if "method" in message and "id" not in message:
            self.notes.append((message["method"], message["params"]))
        else:
            self.answers.setdefault(message.get("id"), []).append(message)

    def call(self, msg_id: Any, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> Any:
        self.write(json.dumps({"id": msg_id, "method": method, "params": params or {}}).encode() + b"\n")
        end = time.monotonic() + timeout
        while msg_id not in self.answers:
            assert time.monotonic() < end, f"no answer to {msg_id}"
            self.flush_unsent()
            self.read_for(0.05)
        return self.answers[msg_id][-1].get("result")

    def flush_unsent(self) -> None:
        self.write(b"")

    def fill_until_paused(self, make: Any, quiet_s: float = 2.0, limit_s: float = 60) -> int:
        """Write requests without reading until the pipe stays full for ``quiet_s``; returns how many."""
        sent = 0
        full_since: float | None = None
        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            if self._unsent:
                if self.write(b""):
                    full_since = None
                    continue
                full_since = full_since or time.monotonic()
                if time.monotonic() - full_since > quiet_s:
                    return sent
                time.sleep(0.05)
                continue
            self.write(make(sent))
            sent += 1
        raise AssertionError(f"the bridge never stopped reading stdin ({sent} requests written)")

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def request(n: int) -> bytes:
    return b'{"id":%d,"method":"get_ingest_config"}\n' % n


@pytest.mark.parametrize("bound", [BOUND, DEFAULT_BOUND], ids=["1MiB", "default-32MiB"])
def test_a_host_that_never_reads_keeps_the_bridge_bounded_and_eof_still_exits(tmp_path: Path, bound: int) -> None:
    host = RawHost(tmp_path, prelude=SMALL_BOUND if bound == BOUND else None)
    try:
        host.call("warm", "get_ingest_config")  # everything loaded and answered once
        before = rss_kib(host.proc.pid)
        sent = host.fill_until_paused(lambda n: request(n))
        after = rss_kib(host.proc.pid)
        print(f"bound {bound >> 20} MiB: {sent} requests written, none read; RSS {before >> 10} -> {after >> 10} MiB")
        # The bridge stopped reading: the rest of the requests wait in the OS pipe, not in its memory.
        assert sent < 200_000, sent
        assert (after - before) * 1024 < bound + (48 << 20), (before, after)
        host.close_stdin()  # the host hangs up without ever reading the answers
        started = time.monotonic()
        assert host.proc.wait(timeout=EXIT_DEADLINE * 2) == 0
        took = time.monotonic() - started
        print(f"bound {bound >> 20} MiB: exit {took:.2f} s after EOF with every answer unread")
        assert took < EXIT_DEADLINE
        assert "reading stdin pauses" in host.stderr()
        assert "Traceback" not in host.stderr()
    finally:
        host.kill()


def test_answers_are_never_dropped_when_the_host_reads_again(tmp_path: Path) -> None:
    host = RawHost(tmp_path)
    try:
        host.call("warm", "get_ingest_config")
        sent = host.fill_until_paused(lambda n: request(n))
        # The host reads again: every request it wrote (those still in the pipe too) is answered.
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                host.read_for(0.1)

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            end = time.monotonic() + 120
            while host._unsent and time.monotonic() < end:
                host.flush_unsent()
                time.sleep(0.01)
            host.close_stdin()
            assert host.proc.wait(timeout=120) == 0
        finally:
            stop.set()
            thread.join()
        host.read_for(0.5)
    finally:
        host.kill()
    ids = [k for k in host.answers if isinstance(k, int)]
    assert sorted(ids) == list(range(sent)), (len(ids), sent)
    assert all(len(v) == 1 and "result" in v[0] for k, v in host.answers.items() if isinstance(k, int))


def post_logs(endpoint: str, key: str, first: int, count: int) -> int:
    host, port = endpoint.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        records = [claude_event(n, **{"prompt.id": f"prompt-{n}"}) for n in range(first, first + count)]
        body = logs_request(records, scope="com.anthropic.claude_code.events").SerializeToString()
        conn.request("POST", "/v1/logs", body, {"content-type": "application/x-protobuf", "x-capture-bridge-key": key})
        return conn.getresponse().status
    finally:
        conn.close()


def test_live_events_past_the_bound_stay_held_and_the_host_sees_the_gap(tmp_path: Path) -> None:
    host = RawHost(tmp_path, config={"autoIngestEnabled": True})
    try:
        status = host.call("rx", "get_otlp_receiver_status")
        key = (host.data_dir / "otlp.key").read_text().strip()
        host.read_for(0.5)
        # The host stops reading; telemetry keeps arriving and turns into live events.
        posted = 0
        end = time.monotonic() + 90
        while "live events are not sent" not in host.stderr():
            assert time.monotonic() < end, "live events never reached the bound"
            assert post_logs(status["endpoint"], key, 1 + posted, 200) == 200
            posted += 200
        for _ in range(4):  # more events while the host is still not reading: not queued
            assert post_logs(status["endpoint"], key, 1 + posted, 200) == 200
            posted += 200
        host.read_for(1.0)  # the host reads again
        seqs = [p["seq"] for m, p in host.notes]
        assert seqs == sorted(seqs)
        missing = sorted(set(range(seqs[0], seqs[-1] + 1)) - set(seqs))
        after = host.call("last", "get_live_events", {"sinceSeq": seqs[-1]})  # the newest 10,000 are held
        assert after is not None, host.answers["last"]
        newest = after[-1]["params"]["seq"] if after else seqs[-1]
        # The notifier keeps the newest KEEP: asked from further back it answers gap_too_old. The posts may
        # overshoot the bound by a few thousand events before its log line is seen, and events the capture
        # still had queued are sent after the gap once the host reads: ask from as far back as the window
        # allows, less a margin for events that may still come between the two calls.
        since = max(seqs[0], newest - KEEP + 1000)
        held = host.call("held", "get_live_events", {"sinceSeq": since})
    finally:
        host.close_stdin()
        host.proc.wait(timeout=EXIT_DEADLINE * 2)
        host.kill()
    assert missing or newest > seqs[-1], "some live events were not sent while the host did not read"
    not_sent = {seq for seq in set(missing) | set(range(seqs[-1] + 1, newest + 1)) if seq > since}
    assert not_sent, "the events the host was not sent are among the newest, still held"
    assert held is not None, host.answers["held"]
    held_seqs = {m["params"]["seq"] for m in held}
    assert not_sent <= held_seqs, "what was not sent is still held for get_live_events"
    assert all(m["method"] == LIVE for m in held if m["params"]["seq"] in not_sent)
