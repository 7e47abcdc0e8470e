"""``capture-bridge serve``: the process the host spawns.

Order matters here. stdout is protected before anything else can print: the
real fd 1 is duplicated for frames and fd 1 is pointed at stderr, so a stray
``print()`` (or a C library) can only ever reach the log. Then the data dir is
locked, config and database opened, and the event loop started; the stdin
reader begins at once while pygls is imported in the background.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import logging
import os
import signal
import sys

import anyio

from bridge import tokens
from bridge.config.paths import DataDir, resolve_data_dir

log = logging.getLogger("bridge.serve")

SHUTDOWN_BUDGET_S = 2.5  # from the stop request to leaving the event loop (the exit promise is 3 s)
ANSWER_BUDGET_READY_S = 1.0  # of it, for requests in flight when the bridge was up
ANSWER_BUDGET_STARTING_S = 2.0  # of it, when start-up was still under way: it may finish and answer

AFTER_READY_WAIT_S = 1.0  # after ready, start-up's garbage and warm-ups wait at most this long for idle
_EARLY_SIGNAL: list[int] = []  # a SIGTERM/SIGINT that came before the event loop could take it


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data dir (default: $CAPTURE_BRIDGE_HOME or the user data dir)")
    parser.add_argument("--transcript", help="write a transcript of both connections to this file")
    parser.add_argument("--parent-pid", type=int, help="exit within 2 s after this process dies")


def protect_stdout() -> int:
    """Keep fd 1 for frames only: returns a private dup of it; fd 1 becomes stderr."""
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out_fd


def _setup_logs() -> None:
    from bridge import logs

    logs.setup()


def _early_signal(signum: int, frame: object) -> None:
    _EARLY_SIGNAL[:] = [signum]


def run(args: argparse.Namespace) -> int:
    # Start-up (imports above all: pygls's lsprotocol builds ~1,000 classes) makes ~100,000 objects
    # that live as long as the process, and the cyclic collector would walk them again and again
    # while the first status waits (~40 ms). It is off until the bridge is ready (``bridge.cli`` turns
    # it off before this module's imports); then one collection frees the start-up's garbage, once
    # the requests already sent are answered.
    gc.disable()
    # Until the loop takes them over, a signal is remembered: the stop is the same bounded one.
    signal.signal(signal.SIGTERM, _early_signal)
    signal.signal(signal.SIGINT, _early_signal)
    from bridge.host import early as early_input

    early = early_input.start(0)  # stdin is read from now on; bridge_info answered once the data dir is ours
    out_fd = protect_stdout()
    from bridge.host.lock import DataDirBusy, acquire

    data_dir = DataDir(resolve_data_dir(args.data_dir))
    try:
        data_dir.ensure()
        lock_fd = acquire(data_dir.lock)
    except DataDirBusy as exc:
        _setup_logs()
        log.error("%s", exc, extra={"dataDir": str(data_dir.root), "holderPid": exc.pid})
        return 1
    except OSError as exc:
        _setup_logs()
        log.error(
            "cannot use data dir %s: %s", data_dir.root, exc.strerror or exc, extra={"dataDir": str(data_dir.root)}
        )
        return 1
    run_id = tokens.token_hex(16)
    early.enable(out_fd, early_input.bridge_info(str(data_dir.root), run_id))
    _setup_logs()
    from bridge.config.store import ConfigStore
    from bridge.config.validate import ConfigError
    from bridge.store.db import Database

    try:
        config = ConfigStore(data_dir.config)
    except ConfigError as exc:
        log.error(
            "%s is invalid at %s: %s; fix the file or remove it to start from the defaults",
            data_dir.config, exc.field or "top level", exc.problem,
            extra={"configPath": str(data_dir.config), "field": exc.field},
        )  # fmt: skip
        return 1
    try:
        db = Database(data_dir.database)
    except Exception as exc:
        log.error("cannot open the store %s: %s", data_dir.database, exc, extra={"database": str(data_dir.database)})
        return 1
    from bridge.host.app import App
    from bridge.host.notify import Notifier
    from bridge.host.transport import OutputWriter

    writer = OutputWriter(out_fd)
    app = App(data_dir=data_dir, config=config, db=db, notifier=Notifier(run_id=run_id))
    transcript_path = args.transcript or config.current.transcript.path
    if transcript_path:
        from bridge.transcript.recorder import BridgeTranscript, Recorder

        try:
            recorder = Recorder(transcript_path, max_bytes=config.current.transcript.max_bytes)
        except OSError as exc:
            reason = exc.strerror or exc
            log.error("cannot write the transcript %s: %s", transcript_path, reason)
            return 1
        app.transcript = BridgeTranscript(recorder)
        writer.tap, writer.tap_many = app.transcript.host_out, app.transcript.host_out_many
    code = 0
    try:
        anyio.run(_main, app, writer, early, args.parent_pid, backend="asyncio")
    except BaseException:
        log.exception("the bridge stopped on an unexpected error")
        code = 1
    writer.flush(0.5)
    if app.transcript is not None:
        app.transcript.close()
    try:
        db.close()
    except Exception:
        log.exception("closing the store failed")
    for handler in logging.getLogger().handlers:
        handler.flush()
    os.close(lock_fd)
    # Daemon threads (stdin reader) may still block in read(); leave without waiting for them.
    os._exit(code)


async def _main(app: object, writer: object, early: object, parent_pid: int | None) -> None:
    from anyio.lowlevel import current_token

    import bridge.host.info  # noqa: F401  (bridge_info and shutdown: light, answered first)
    from bridge.framing import FrameDecoder, FrameTooLarge, FramingError
    from bridge.host.app import App
    from bridge.host.dispatch import Dispatcher
    from bridge.host.early import EarlyInput
    from bridge.host.transport import OutputWriter, start_reader
    from bridge.platform.watchdog import watch_parent as run_parent_watchdog

    assert isinstance(app, App) and isinstance(writer, OutputWriter) and isinstance(early, EarlyInput)
    app.notifier.attach(writer.send, writer.send_many)
    stop = app.shutdown_requested
    token = current_token()

    def request_stop() -> None:
        with contextlib.suppress(Exception):
            anyio.from_thread.run_sync(stop.set, token=token)

    dispatcher = Dispatcher(app, writer.send, stop.set)
    early.hand_over()  # from here on the dispatcher answers; what the early reader answered is recorded
    if early.framing is not None:
        app.framing = early.framing
        writer.set_framing(early.framing)
    if app.transcript is not None:
        for request, answer in early.answered:
            app.transcript.host_in(request)
            app.transcript.host_out(answer)
    stdin = start_reader(early, writer, on_hangup=request_stop)
    if parent_pid:
        run_parent_watchdog(parent_pid, request_stop)

    async def read_loop() -> None:
        max_frame = app.config.current.limits.max_frame_bytes
        decoder = FrameDecoder(max_frame)
        decoder.framing = early.framing  # the framing of the requests answered before the hand-over, if any
        from bridge import errors

        tap = app.transcript.host_in if app.transcript is not None else None

        async for chunk in stdin:
            for event in decoder.feed(chunk):
                if app.framing is None and decoder.framing is not None:
                    app.framing = decoder.framing
                    writer.set_framing(decoder.framing)
                if isinstance(event, FrameTooLarge):
                    dispatcher.answer(
                        {"jsonrpc": "2.0", "id": None, "error": errors.frame_too_large(event.size, max_frame).to_wire()}
                    )
                elif isinstance(event, FramingError):
                    dispatcher.answer(
                        {
                            "jsonrpc": "2.0",
                            "id": None,
                            "error": errors.BridgeError(errors.PARSE_ERROR, f"Parse error: {event.reason}.").to_wire(),
                        }
                    )
                else:
                    if tap is not None:
                        tap(event.body)
                    if not dispatcher.has_room():
                        await dispatcher.room()  # a host writing faster than it is answered waits (pipe)
                    dispatcher.handle_frame(event.body)
        for event in decoder.finish():
            if not isinstance(event, (FrameTooLarge, FramingError)):
                if tap is not None:
                    tap(event.body)
                dispatcher.handle_frame(event.body)
        log.info("stdin closed: shutting down")
        await anyio.sleep(0)
        stop.set()

    async def bring_up(tg: object) -> None:
        # The heavy imports (every command module and the subsystems they use, then
        # pygls) run in a worker thread, so the loop keeps answering bridge_info.
        try:
            await anyio.to_thread.run_sync(importlib.import_module, "bridge.host.commands", abandon_on_cancel=True)
            dispatcher.commands_loaded.set()
            await dispatcher.load_pygls()
            from bridge.host import services

            try:
                await services.start(app, tg)  # type: ignore[arg-type]
            except Exception:
                log.exception("a subsystem failed to start")
            dispatcher.ready.set()
            # What no answer needs waits until the requests that waited for start-up are answered and
            # their answers written: run now, it would hold the GIL between their last steps (a
            # collection never lets go of it: the writer thread would wait the whole ~40 ms).
            with anyio.move_on_after(AFTER_READY_WAIT_S):
                await dispatcher.drain()
                await anyio.to_thread.run_sync(writer.flush, AFTER_READY_WAIT_S, abandon_on_cancel=True)
            gc.collect()
            services.after_ready(app, tg)  # type: ignore[arg-type]
        finally:
            gc.enable()  # start-up is over (or given up): the cyclic collector runs from here on

    starting = anyio.CancelScope()
    started = anyio.Event()  # bring_up has returned (done, failed or cancelled)

    async def start_up(tg: object) -> None:
        try:
            with starting:
                await bring_up(tg)
        finally:
            started.set()

    async with anyio.create_task_group() as tg:
        dispatcher.tg = tg
        tg.start_soon(read_loop)
        tg.start_soon(start_up, tg)
        tg.start_soon(watch_signals, stop)
        await stop.wait()
        with anyio.move_on_after(SHUTDOWN_BUDGET_S, shield=True):
            await _answer_then_stop(app, dispatcher, starting, started)
        tg.cancel_scope.cancel()


def _take_early_signal() -> int | None:
    signum, _EARLY_SIGNAL[:] = (_EARLY_SIGNAL[0] if _EARLY_SIGNAL else None), []
    return signum


async def watch_signals(stop: anyio.Event) -> None:
    """SIGTERM and SIGINT take the same bounded stop as ``shutdown`` (exit 0, no traceback)."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        early = _take_early_signal()
        if early is not None:
            log.info("%s received during start-up: stopping", signal.Signals(early).name)
            stop.set()
        async for signum in signals:
            if not stop.is_set():
                log.info("%s received: stopping", signal.Signals(signum).name)
            stop.set()


async def _answer_then_stop(app: object, dispatcher: object, starting: anyio.CancelScope, started: anyio.Event) -> None:
    """Answer what was asked before the stop, then stop the subsystems; the caller bounds it.

    Requests that wait for a start-up still under way are given until
    ``ANSWER_BUDGET_STARTING_S`` for it to finish; whatever is still
    unanswered then is answered SHUTTING_DOWN, so a host never waits in vain.
    """
    from bridge.host import services
    from bridge.host.app import App
    from bridge.host.dispatch import Dispatcher

    assert isinstance(app, App) and isinstance(dispatcher, Dispatcher)
    was_ready = dispatcher.ready.is_set()
    with anyio.move_on_after(ANSWER_BUDGET_READY_S if was_ready else ANSWER_BUDGET_STARTING_S):
        await dispatcher.ready.wait()
        await dispatcher.drain()
    await dispatcher.abandon()
    if not dispatcher.ready.is_set():
        log.warning("stopping before start-up finished; requests still waiting were answered 'shutting down'")
        starting.cancel()
        with anyio.move_on_after(0.3):
            await started.wait()  # let a half-done start unwind before the subsystems are stopped
    try:
        await services.stop(app)
    except Exception:
        log.exception("stopping a subsystem failed")
