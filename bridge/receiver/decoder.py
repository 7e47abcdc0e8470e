"""The bridge's handle on its OTLP decoder process: started on first use, restarted after a failure.

Decoding and storing a request (protobuf parsing, flattening, redaction,
encoding, inserting: ~40 µs a record) is the receiver's whole cost. In the
bridge it would hold the GIL the stream's capture thread and the host's answers
need, and the store's write lock the capture commits wait for; in a process of
its own, writing a store file of its own, it runs on the other core
(docs/performance.md). Only the jobs cross the pipe: the body in, the counts
and the OTEL baseline's capture events out (:mod:`decoder_wire`; the process maps
the records it stored itself).

- Started on the first request, not at launch (nothing to pay before the first
  status answer), and stopped after :data:`IDLE_EXIT_S` without a request, so an
  idle bridge holds no second interpreter.
- Jobs are pipelined (answers come back in the order the jobs went), so the process
  has the next body waiting while the bridge answers the last.
- A process that exits, breaks the protocol or outlives :data:`JOB_TIMEOUT` is
  killed; the request fails with :class:`DecoderUnavailable` (the receiver answers
  503, so the sender retries and nothing is lost) and the next start waits out a
  backoff. After :data:`FAULT_AFTER` failures in a row :attr:`DecoderProcess.fault`
  says so, and the receiver reports state ``error`` (a fact of the capture mode)
  until a start succeeds.
- Every :data:`IDLE_CHECK_S` it is asked for the events of the records its baseline
  feeder held past their time (:class:`Expire`), and before it stops for all it still
  holds, so a stop loses none of them. They go to :attr:`DecoderProcess.placed`.
- Shutdown is bounded and shielded: the held events asked for, stdin closed (the
  process ends by itself), then a kill.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio

from bridge import runtime
from bridge.capture.events import CaptureEvent
from bridge.receiver.decode import Rejected
from bridge.receiver.decoder_pipe import LOST, Running, Waiter
from bridge.receiver.decoder_wire import (
    Expire,
    Failed,
    FromDecoder,
    Handed,
    Hello,
    Ingested,
    Job,
    Outcome,
    Placed,
    Ready,
    Refused,
    packet,
)
from bridge.receiver.handoff import HandOff, channel_pairs, close_pairs, read_outcomes, send_with_fds
from bridge.receiver.intake import DecoderFailed, DecoderUnavailable
from bridge.redact import registered_secrets

__all__ = ["DecoderFailed", "DecoderProcess", "DecoderUnavailable", "HandOff", "backoff"]

log = logging.getLogger(__name__)

MODULE = "bridge.receiver.decoder_main"
START_TIMEOUT = 20.0  # seconds for the interpreter to start and import the decoders (a slow machine)
JOB_TIMEOUT = 60.0  # one job; a 16 MiB JSON body takes a few seconds
HAND_TIMEOUT = 10.0  # handing over a connection or the rules: a process that takes none for this long is stuck
IDLE_EXIT_S = 60.0
IDLE_CHECK_S = 5.0
STOP_TIMEOUT = 1.0
FAULT_AFTER = 3
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0


def backoff(failures: int) -> float:
    """Seconds to wait before the next start after ``failures`` failures in a row (0 after none)."""
    if failures <= 0:
        return 0.0
    return float(min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (failures - 1)))


class DecoderProcess:
    """One decoder process at a time, on demand; see the module docstring for its rules."""

    def __init__(
        self,
        store: Path | None = None,
        *,
        argv: Sequence[str] | None = None,
        idle_exit_s: float = IDLE_EXIT_S,
        clock: Callable[[], float] = time.monotonic,
        hand_off: HandOff | None = None,
    ) -> None:
        self._store = store
        self._hand_off = hand_off
        self._argv = list(argv) if argv is not None else runtime.module_argv(MODULE)
        self._idle_exit_s = idle_exit_s
        self._clock = clock
        self._starting = anyio.Lock()
        self._running: Running | None = None
        self._last_used = 0.0
        self._failures = 0
        self._not_before = 0.0
        self._last_problem = ""
        self.starts = 0
        self.failures_total = 0
        self.connections_handed = 0
        # The baseline's events the process let go outside a job (held records placed); on the event loop.
        self.placed: Callable[[list[CaptureEvent]], None] | None = None

    # -- state -------------------------------------------------------------------

    @property
    def fault(self) -> str | None:
        """A sentence while the decoder keeps failing (:data:`FAULT_AFTER` in a row), else None."""
        if self._failures < FAULT_AFTER:
            return None
        return (
            f"The OTLP decoder process failed {self._failures} times in a row (last: {self._last_problem}); "
            "telemetry is answered 503 so senders retry, and it is started again after a backoff."
        )

    @property
    def serves(self) -> bool:
        """The running process serves connections handed to it."""
        return self._running is not None and self._running.channels is not None

    @property
    def pid(self) -> int | None:
        return self._running.process.pid if self._running is not None else None

    # -- jobs --------------------------------------------------------------------

    async def ingest(self, job: Job) -> Ingested:
        """Decode and store one request in the process; :class:`Rejected` for a refused body.

        :class:`DecoderUnavailable` when the process could not take it (the request is to be
        retried), :class:`DecoderFailed` when the process met an unexpected error.

        Jobs are pipelined: a request sends its job as soon as it has one and waits for its
        answer in order, so the process always has the next body waiting while the bridge
        answers the last one. Whoever waits reads answers off the pipe for everyone, one
        whole answer at a time (shielded, so a cancelled request never leaves the pipe out
        of step); a cancelled request's answer is read and dropped.
        """
        self._last_used = self._clock()  # from now on the process is not idle: the reaper leaves it
        async with self._starting:
            running = await self._ensure()
        waiter = await self._send(running, job)
        answer = await self._answer(running, waiter)
        if isinstance(answer, Ingested):
            return answer
        if isinstance(answer, Refused):
            raise Rejected(answer.status, answer.reason)
        if isinstance(answer, Failed):
            raise DecoderFailed(answer.error)
        raise DecoderFailed(f"an answer of the wrong kind ({type(answer).__name__})")

    async def expire(self, *, everything: bool = False, timeout: float = JOB_TIMEOUT) -> None:
        """Ask the running process for the events of the records it held past their time (or all it holds).

        They go to :attr:`placed`. Not a use: an idle process still stops. Nothing happens without a
        running process, and one that does not answer within ``timeout`` is dealt with as for a job.
        """
        running = self._running
        if running is None or running.lost is not None or running.process.returncode is not None:
            return
        if self._starting.locked():  # a start reads the Ready itself: no other reader meanwhile (it holds nothing)
            return
        try:
            waiter = await self._send(running, Expire(everything), timeout)
            answer = await self._answer(running, waiter, timeout)
        except DecoderUnavailable:
            return
        if isinstance(answer, Placed):
            if answer.unplaced is not None:
                log.error("placing held OTEL records failed in the decoder process: %s", answer.unplaced)
            self._hand_on(answer.events)

    def _hand_on(self, events: list[CaptureEvent]) -> None:
        """The baseline's events to :attr:`placed` (a failure there is logged: the records stay stored)."""
        if events and self.placed is not None:
            try:
                self.placed(events)
            except Exception:
                log.exception("capturing %d OTEL baseline events failed; their records stay in otel_records",
                              len(events))  # fmt: skip

    async def _send(self, running: Running, message: Job | Expire, timeout: float = JOB_TIMEOUT) -> Waiter:
        """Queue ``message`` (after a Hello, when the secrets changed); its waiter is in line from now."""
        async with running.sending:
            current = registered_secrets()
            if current != running.secrets:  # secrets registered since the start
                await self._send_now(running, Hello(sorted(current), self._store_arg()), timeout)
                running.secrets = current
            return await self._send_now(running, message, timeout)

    async def _send_now(self, running: Running, message: Job | Hello | Expire, timeout: float) -> Waiter:
        if running.lost is not None:
            raise self._unavailable(running.lost)
        waiter = Waiter()
        running.waiting.append(waiter)
        if not isinstance(message, Expire):  # asking for held events is not telemetry: the process may idle
            self._last_used = self._clock()
        try:
            with anyio.CancelScope(shield=True), anyio.fail_after(timeout):
                await running.send(message)  # all of it or nothing: a frame cut short would desync the pipe
        except LOST as exc:
            await self._lose(running, f"it stopped taking jobs ({_what(exc)})")
            raise self._unavailable(running.lost or "") from exc
        return waiter

    async def _answer(self, running: Running, waiter: Waiter, timeout: float = JOB_TIMEOUT) -> FromDecoder:
        """Read answers in order until ``waiter``'s is in (each within ``timeout``, or the process is lost)."""
        while not waiter.done:
            async with running.reading:
                if waiter.done:
                    break
                try:
                    with anyio.CancelScope(shield=True), anyio.fail_after(timeout):
                        answer = await running.receive()
                except LOST as exc:
                    await self._lose(running, f"it stopped answering ({_what(exc)})")
                    break
                first = running.waiting.popleft()
                first.answer, first.done = answer, True
                if not isinstance(answer, Placed):
                    self._last_used = self._clock()
        if waiter.answer is None:
            raise self._unavailable(waiter.problem or running.lost or "it stopped")
        return waiter.answer

    async def _lose(self, running: Running, problem: str) -> None:
        """The process can take no more jobs: everyone waiting gets ``problem``; it is killed and counted once."""
        if running.lost is not None:
            return
        running.lost = problem
        while running.waiting:
            waiter = running.waiting.popleft()
            waiter.problem, waiter.done = problem, True
        await self._kill_and_count(running, problem)

    def _unavailable(self, problem: str) -> DecoderUnavailable:
        return DecoderUnavailable(
            f"The OTLP decoder stopped while decoding this request ({problem}); retry.", max(1.0, self._wait())
        )

    def _store_arg(self) -> str | None:
        return str(self._store) if self._store is not None else None

    def _wait(self) -> float:
        return max(0.0, self._not_before - self._clock())

    async def _ensure(self) -> Running:
        if self._running is not None:
            if self._running.process.returncode is None and self._running.lost is None:
                return self._running
            if self._running.lost is None:
                await self._lose(self._running, f"it exited with code {self._running.process.returncode} while idle")
            self._running = None
        wait = self._wait()
        if wait > 0:
            raise DecoderUnavailable(
                f"The OTLP decoder is restarting after a failure ({self._last_problem}); retry.", wait
            )
        pairs = channel_pairs() if self._hand_off is not None else None
        theirs = (pairs[0][1].fileno(), pairs[1][1].fileno()) if pairs is not None else None
        try:
            with anyio.fail_after(START_TIMEOUT):
                process = await anyio.open_process(
                    self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                    pass_fds=theirs or (),
                )  # fmt: skip
        except (OSError, TimeoutError) as exc:
            close_pairs(pairs, ours=True)
            await self._failed(f"it could not be started ({_what(exc)})")
            raise DecoderUnavailable(f"The OTLP decoder could not be started ({_what(exc)}); retry.",
                                     max(1.0, self._wait())) from exc  # fmt: skip
        finally:
            close_pairs(pairs, ours=False)  # the child has its own copies now
        running = Running(process)
        self._running = running
        self.starts += 1
        try:
            secrets = registered_secrets()
            with anyio.fail_after(START_TIMEOUT):
                await running.send(Hello(sorted(secrets), self._store_arg(), theirs))
                ready = await running.receive()
            if not isinstance(ready, Ready):
                raise ValueError(f"a {type(ready).__name__} instead of Ready")
            running.secrets = secrets
            self._last_used = self._clock()  # a fresh process is not idle before its first job
            if pairs is not None and ready.serves and self._hand_off is not None:
                running.channels = (pairs[0][0], pairs[1][0])
                pairs = None
                for sock in running.channels:
                    sock.setblocking(False)
                self._hand_off.tg.start_soon(self._read_outcomes, running, self._hand_off)
        except LOST as exc:
            running.lost = "it did not start"
            await self._kill_and_count(running, f"it did not start ({_what(exc)}, exit code {process.returncode})")
            raise DecoderUnavailable("The OTLP decoder did not start; retry.", max(1.0, self._wait())) from exc
        except BaseException:
            running.lost = "its start was cancelled"
            await self._stop(running, kill=True)
            raise
        finally:
            close_pairs(pairs, ours=True)  # not taken (or the start failed)
        if self._failures:
            log.info("the OTLP decoder process started again after %d failure(s)", self._failures)
            self._failures = 0
        return running

    # -- hand-off ------------------------------------------------------------------

    async def adopt(self, sock: socket.socket, peer: str) -> bool:
        """Hand an accepted connection to the process (started if need be); False when it cannot take it.

        On True the process has its own descriptor of the connection: the caller closes its copy.
        On False the caller serves the connection itself (the decoder is restarting, failing, or
        cannot take connections on this system).
        """
        if self._hand_off is None:
            return False
        self._last_used = self._clock()
        try:
            async with self._starting:
                running = await self._ensure()
        except DecoderUnavailable:
            return False
        if running.channels is None or running.lost is not None:
            return False
        try:
            with anyio.fail_after(HAND_TIMEOUT):
                async with running.handing:
                    await self._send_rules(running)
                    await send_with_fds(running.channels[0], packet(Handed(peer)), [sock.fileno()])
        except (OSError, TimeoutError) as exc:
            await self._lose(running, f"it stopped taking connections ({_what(exc)})")
            return False
        self.connections_handed += 1
        return True

    async def push_rules(self) -> None:
        """Send the current rules now (a config or ``autoIngestEnabled`` change), when the process serves."""
        running = self._running
        if running is None or running.channels is None or running.lost is not None:
            return
        try:
            with anyio.fail_after(HAND_TIMEOUT):
                async with running.handing:
                    await self._send_rules(running)
        except (OSError, TimeoutError) as exc:
            await self._lose(running, f"it stopped taking connections ({_what(exc)})")

    async def _send_rules(self, running: Running) -> None:
        assert self._hand_off is not None and running.channels is not None
        rules = self._hand_off.rules()
        if rules != running.rules_sent:
            await send_with_fds(running.channels[0], packet(rules), [])
            running.rules_sent = rules

    async def _read_outcomes(self, running: Running, hand_off: HandOff) -> None:
        """Until the process goes: each answered request's outcome to the receiver."""
        assert running.channels is not None

        async def served(outcome: Outcome) -> None:
            self._last_used = self._clock()
            await hand_off.served(outcome)

        problem = await read_outcomes(running.channels[1], served)
        if running.lost is None:
            await self._lose(running, problem)

    async def _kill_and_count(self, running: Running, problem: str) -> None:
        """Kill the process and count the failure (its backoff starts now)."""
        await self._stop(running, kill=True)
        await self._failed(problem)

    async def _failed(self, problem: str) -> None:
        self._failures += 1
        self.failures_total += 1
        self._last_problem = problem
        self._not_before = self._clock() + backoff(self._failures)
        log.warning("the OTLP decoder process failed: %s (%d in a row)", problem, self._failures)

    # -- lifetime ----------------------------------------------------------------

    async def run(self) -> None:
        """Place held records past their time, and stop the process after :data:`IDLE_EXIT_S` without a job.

        Until cancelled.
        """
        while True:
            await anyio.sleep(min(IDLE_CHECK_S, self._idle_exit_s))
            running = self._running
            if running is not None and running.waiting and not running.reading.locked():
                with contextlib.suppress(DecoderUnavailable):  # answers whose requests were cancelled: drop them
                    await self._answer(running, running.waiting[-1])
            if running is None or running.waiting or self._starting.locked():
                continue
            idle = self._clock() - self._last_used >= self._idle_exit_s
            await self.expire(everything=idle)  # before it stops, all it holds: its memory ends with it
            if idle:
                async with self._starting, running.sending:
                    idle = self._clock() - self._last_used >= self._idle_exit_s
                    if self._running is running and not running.waiting and idle:
                        running.lost = "it was stopped after a quiet while"
                        await self._stop(running, kill=False)

    async def aclose(self) -> None:
        """Stop the process (bounded, shielded): take what it holds, end its stdin, wait a moment, then kill it."""
        with anyio.CancelScope(shield=True):
            running = self._running
            if running is not None and not running.waiting:  # nothing in flight: its answer is the next one
                with anyio.move_on_after(STOP_TIMEOUT):
                    await self.expire(everything=True, timeout=STOP_TIMEOUT)
            if self._running is not None:
                await self._stop(self._running, kill=False)

    async def _stop(self, running: Running, *, kill: bool) -> None:
        if self._running is running:
            self._running = None
        if running.lost is None:
            running.lost = "it was stopped"  # a stop, not a failure: the outcome reader must not count one
        process = running.process
        with anyio.CancelScope(shield=True):
            if running.channels is not None:
                for sock in running.channels:
                    anyio.notify_closing(sock)  # the outcome reader stops waiting on it
                    sock.close()
            if not kill:
                with anyio.move_on_after(STOP_TIMEOUT):
                    await running.stdin.aclose()
                    await process.wait()
            if process.returncode is None:
                process.kill()
                with anyio.move_on_after(STOP_TIMEOUT):
                    await process.wait()
            with anyio.move_on_after(STOP_TIMEOUT):
                await process.aclose()


def _what(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
