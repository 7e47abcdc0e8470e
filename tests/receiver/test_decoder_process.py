"""The receiver's decoder process: started on first use, stopped when idle, and its failures answered 503
(the exporter retries, nothing is lost) and, past three in a row, a fact of the mode (receiver state error).

The failing decoders here are named fakes (a process that exits at once, one that dies on its first job):
the real decoder cannot be made to crash on purpose.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import anyio
import pytest

from bridge.capture.events import OTEL, CaptureEvent
from bridge.receiver.decode import Rejected
from bridge.receiver.decoder import FAULT_AFTER, DecoderProcess, DecoderUnavailable, backoff
from bridge.receiver.decoder_main import NICENESS
from bridge.receiver.decoder_wire import Job
from tests.receiver.payloads import CONVERSATION, SESSION, claude_logs, codex_event, codex_logs
from tests.receiver.support import post, running_receiver

# A fake decoder that exits before it answers anything.
EXITS_AT_ONCE = [sys.executable, "-c", "raise SystemExit(3)"]
# A fake decoder that answers the Hello like the real one, then dies on its first job.
DIES_ON_A_JOB = [
    sys.executable,
    "-c",
    "import sys\n"
    "from bridge.receiver.decoder_wire import Ready, frame\n"
    "n = int.from_bytes(sys.stdin.buffer.read(4), 'big'); sys.stdin.buffer.read(n)\n"
    "sys.stdout.buffer.write(frame(Ready(0))); sys.stdout.buffer.flush()\n"
    "sys.stdin.buffer.read(4)\n"
    "raise SystemExit(1)\n",
]


class Clock:
    """Monotonic seconds the test moves on, so backoffs pass without waiting for them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def job(*sequences: int, storing: bool = True) -> Job:
    return Job("logs", "protobuf", claude_logs(*sequences).SerializeToString(), False, 1 << 20, 1, storing)


async def test_the_real_decoder_stores_what_it_decodes_and_stops_when_closed(tmp_path: Path) -> None:
    store = tmp_path / "telemetry.sqlite3"
    decoder = DecoderProcess(store)
    first = await decoder.ingest(job(1, 2))
    again = await decoder.ingest(job(2, 3))
    with pytest.raises(Rejected) as refused:  # a body that is no protobuf: refused as a value, the process lives
        await decoder.ingest(Job("logs", "protobuf", b"\xff\xff", False, 1 << 20, 1, True))
    pid = decoder.pid
    assert pid is not None
    if hasattr(os, "getpriority"):  # it yields the CPU to the bridge: live events before telemetry
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)
    await decoder.aclose()
    assert (first.count, first.stored) == (2, 2) and (again.count, again.stored) == (2, 1)  # 2 was a redelivery
    # the baseline's events cross, never the records: a Claude prompt is its thread, its turn and the prompt
    assert [e.kind for e in first.events] == ["thread", "turn_started", "item_completed"] * 2
    assert [e.kind for e in again.events] == ["thread", "turn_started", "item_completed"]  # 2 was a redelivery
    assert {(e.source, e.thread_id) for e in first.events + again.events} == {(OTEL, SESSION)}
    assert refused.value.status == 400
    assert decoder.pid is None and decoder.starts == 1 and decoder.failures_total == 0
    with sqlite3.connect(store) as conn:
        assert [s for (s,) in conn.execute("SELECT sequence FROM otel_records ORDER BY id")] == [1, 2, 3]


def codex_prompt_job() -> Job:
    """A codex prompt that names no turn (and no trace whose turn is known): the baseline holds it back."""
    body = codex_logs(codex_event("codex.user_prompt", prompt="hello there")).SerializeToString()
    return Job("logs", "protobuf", body, False, 1 << 20, 1, True)


async def test_records_the_decoder_holds_for_their_turn_are_placed_when_it_stops(tmp_path: Path) -> None:
    """The feeder's memory lives in the decoder process: what it held back is let go before the process ends."""
    placed: list[CaptureEvent] = []
    decoder = DecoderProcess(tmp_path / "telemetry.sqlite3")
    decoder.placed = placed.extend
    assert (await decoder.ingest(codex_prompt_job())).events == []  # held: no turn known yet
    await decoder.expire()  # its time (a minute) is not up
    assert placed == []
    await decoder.aclose()
    [prompt] = placed
    assert prompt.thread_id == CONVERSATION and prompt.item is not None
    assert (prompt.item.type, prompt.item.text) == ("userMessage", "hello there")
    assert decoder.pid is None and decoder.failures_total == 0


async def test_a_quiet_decoder_lets_go_of_what_it_held_before_it_stops(tmp_path: Path) -> None:
    placed: list[CaptureEvent] = []
    decoder = DecoderProcess(tmp_path / "telemetry.sqlite3", idle_exit_s=0.2)
    decoder.placed = placed.extend
    async with anyio.create_task_group() as tg:
        tg.start_soon(decoder.run)
        await decoder.ingest(codex_prompt_job())
        with anyio.fail_after(10):
            while decoder.pid is not None:
                await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert [e.item.text for e in placed if e.item is not None] == ["hello there"]
    assert decoder.starts == 1 and decoder.failures_total == 0


async def test_an_idle_decoder_stops_and_the_next_request_starts_it_again(tmp_path: Path) -> None:
    decoder = DecoderProcess(tmp_path / "telemetry.sqlite3", idle_exit_s=0.2)
    async with anyio.create_task_group() as tg:
        tg.start_soon(decoder.run)
        await decoder.ingest(job(1))
        with anyio.fail_after(10):
            while decoder.pid is not None:
                await anyio.sleep(0.05)
        assert (await decoder.ingest(job(2))).stored == 1
        tg.cancel_scope.cancel()
    await decoder.aclose()
    assert decoder.starts == 2 and decoder.failures_total == 0


async def test_a_decoder_that_dies_on_a_job_is_counted_and_started_again_after_a_backoff(tmp_path: Path) -> None:
    clock = Clock()
    decoder = DecoderProcess(tmp_path / "telemetry.sqlite3", argv=DIES_ON_A_JOB, clock=clock)
    with pytest.raises(DecoderUnavailable) as lost:
        await decoder.ingest(job(1))
    assert lost.value.retry_after >= 1 and decoder.failures_total == 1 and decoder.fault is None
    with pytest.raises(DecoderUnavailable, match="restarting"):  # inside the backoff: not started again
        await decoder.ingest(job(1))
    assert decoder.starts == 1
    clock.now += backoff(1)
    with pytest.raises(DecoderUnavailable):
        await decoder.ingest(job(1))
    assert decoder.starts == 2 and decoder.failures_total == 2
    await decoder.aclose()


async def test_a_decoder_that_keeps_failing_turns_the_receiver_to_error_and_requests_to_503(tmp_path: Path) -> None:
    clock = Clock()
    decoder = DecoderProcess(argv=EXITS_AT_ONCE, clock=clock)
    async with running_receiver(tmp_path, decoder=decoder) as rx:
        answers = []
        for n in range(FAULT_AFTER):
            answers.append(await post(rx.endpoint, "/v1/logs", claude_logs(n + 1).SerializeToString(), key=rx.key))
            clock.now += backoff(n + 1)
        assert [a.status for a in answers] == [503] * FAULT_AFTER
        assert all(int(a.headers["retry-after"]) >= 1 for a in answers)
        status = rx.service.status()
        assert status.state == "error" and rx.service.state == "error"
        assert status.message is not None and "decoder process failed 3 times" in status.message
        assert rx.emitted[-1][1].state == "error"  # the notification (and the mode's facts) say so
        assert rx.service.counters.decoder_refused == FAULT_AFTER and rx.count() == 0


async def test_concurrent_requests_share_one_process_and_a_cancelled_one_leaves_it_in_step(tmp_path: Path) -> None:
    """Jobs are pipelined: answers come back in order, each to its own request; a request cancelled while
    its job is out leaves an answer that is read and dropped, never a pipe out of step."""
    decoder = DecoderProcess(tmp_path / "telemetry.sqlite3")
    results: dict[int, tuple[int, int]] = {}

    async def one(n: int) -> None:
        done = await decoder.ingest(job(*range(n * 100 + 1, n * 100 + n + 2)))  # n + 1 records of its own
        results[n] = (done.count, done.stored)

    async with anyio.create_task_group() as tg:
        for n in range(8):
            tg.start_soon(one, n)
    assert results == {n: (n + 1, n + 1) for n in range(8)}
    for wait in (0.0, 0.001, 0.005):
        with anyio.move_on_after(wait):  # cancelled before, while or after its job went out
            await decoder.ingest(job(*range(5_000, 5_400)))
    after = await decoder.ingest(job(9_999))
    await decoder.aclose()
    assert (after.count, after.stored) == (1, 1)
    assert decoder.starts == 1 and decoder.failures_total == 0


# -- connections handed to the decoder process --------------------------------------------------------


async def test_the_decoder_process_serves_the_connections_and_the_bridge_keeps_the_counts(tmp_path: Path) -> None:
    """The receiver hands each accepted connection to its decoder, which answers there; the bridge still
    counts every answer and gets the baseline's events."""
    baseline: list[CaptureEvent] = []
    async with running_receiver(tmp_path) as rx:
        rx.service.on_events = baseline.extend
        first = await post(rx.endpoint, "/v1/logs", claude_logs(1, 2).SerializeToString(), key=rx.key)
        again = await post(rx.endpoint, "/v1/logs", claude_logs(2, 3).SerializeToString(), key=rx.key)
        wrong = await post(rx.endpoint, "/v1/logs", claude_logs(4).SerializeToString(), key="x" * 43)
        decoder = rx.service.decoder
        assert decoder is not None and decoder.serves and decoder.connections_handed == 3
        counters = rx.service.counters
        assert [first.status, again.status, wrong.status] == [200, 200, 401]
        assert (counters.accepted, counters.rejected) == (2, 1)
        assert (counters.records_stored, counters.records_duplicate) == (3, 1)
        assert [e.kind for e in baseline].count("item_completed") == 3  # one prompt a new record: 1, 2, 3
        assert [row["sequence"] for row in rx.rows()] == [1, 2, 3]


async def test_ingest_turned_off_applies_to_the_next_request_the_decoder_answers(tmp_path: Path) -> None:
    storing = [True]
    async with running_receiver(tmp_path, ingest=lambda: storing[0]) as rx:
        assert (await post(rx.endpoint, "/v1/logs", claude_logs(1).SerializeToString(), key=rx.key)).status == 200
        storing[0] = False
        await rx.service.refresh()  # what the bridge does when autoIngestEnabled changes
        assert (await post(rx.endpoint, "/v1/logs", claude_logs(2).SerializeToString(), key=rx.key)).status == 200
        assert rx.service.counters.records_discarded == 1 and [r["sequence"] for r in rx.rows()] == [1]
        decoder = rx.service.decoder
        assert decoder is not None and decoder.connections_handed == 2


async def test_the_decoders_rate_limit_refuses_a_burst(tmp_path: Path) -> None:
    async with running_receiver(tmp_path, max_requests_per_second=3) as rx:
        body = claude_logs(1).SerializeToString()
        await post(rx.endpoint, "/v1/logs", body, key=rx.key)  # the decoder is up from here on
        statuses = [(await post(rx.endpoint, "/v1/logs", body, key=rx.key)).status for _ in range(10)]
        decoder = rx.service.decoder
        assert decoder is not None and decoder.connections_handed == 11
    assert set(statuses) == {200, 429} and statuses.count(429) >= 4  # 3 tokens a second, 10 requests at once


async def test_a_killed_decoder_loses_nothing_and_a_new_one_takes_the_next_connections(tmp_path: Path) -> None:
    """Its connections end with it (the exporter sends again); while it restarts, requests are answered 503
    by the bridge itself; then a new process serves them. One failure is counted."""
    async with running_receiver(tmp_path) as rx:
        assert (await post(rx.endpoint, "/v1/logs", claude_logs(1).SerializeToString(), key=rx.key)).status == 200
        decoder = rx.service.decoder
        assert decoder is not None and decoder.pid is not None
        os.kill(decoder.pid, 9)
        statuses: list[int] = []
        with anyio.fail_after(30):
            while not statuses or statuses[-1] != 200:
                try:
                    reply = await post(rx.endpoint, "/v1/logs", claude_logs(2).SerializeToString(), key=rx.key)
                    statuses.append(reply.status)
                except (anyio.BrokenResourceError, anyio.EndOfStream, OSError):
                    statuses.append(0)  # the connection ended with the process: the exporter's retry
                await anyio.sleep(0.05)
        assert set(statuses) <= {0, 200, 503}
        assert decoder.starts == 2 and decoder.failures_total == 1 and decoder.serves
        assert [r["sequence"] for r in rx.rows()] == [1, 2]


async def test_without_descriptor_passing_the_bridge_serves_the_connections_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a system without SOCK_SEQPACKET / SCM_RIGHTS (Windows) does: the same answers, from the bridge."""
    import bridge.receiver.decoder as decoder_module

    monkeypatch.setattr(decoder_module, "channel_pairs", lambda: None)
    async with running_receiver(tmp_path) as rx:
        reply = await post(rx.endpoint, "/v1/logs", claude_logs(1, 2).SerializeToString(), key=rx.key)
        decoder = rx.service.decoder
        assert reply.status == 200 and decoder is not None
        assert not decoder.serves and decoder.connections_handed == 0
        assert rx.service.counters.records_stored == 2 and [r["sequence"] for r in rx.rows()] == [1, 2]


async def test_a_connection_whose_hand_off_breaks_never_stops_the_listener(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error while handing one connection over closes that connection only."""
    real_adopt = DecoderProcess.adopt
    calls = []

    async def adopt_failing_once(self: DecoderProcess, sock: object, peer: str) -> bool:
        calls.append(peer)
        if len(calls) == 1:
            raise RuntimeError("a bug in the hand-off")
        return await real_adopt(self, sock, peer)  # type: ignore[arg-type]

    monkeypatch.setattr(DecoderProcess, "adopt", adopt_failing_once)
    async with running_receiver(tmp_path) as rx:
        with pytest.raises((anyio.BrokenResourceError, anyio.EndOfStream, OSError, AssertionError)):
            await post(rx.endpoint, "/v1/logs", claude_logs(1).SerializeToString(), key=rx.key)
        reply = await post(rx.endpoint, "/v1/logs", claude_logs(2).SerializeToString(), key=rx.key)
        assert reply.status == 200 and rx.service.state == "listening" and len(calls) == 2
        assert [r["sequence"] for r in rx.rows()] == [2]
