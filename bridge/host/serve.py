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
import importlib
import logging
import os
import sys

import anyio

from bridge.config.paths import DataDir, resolve_data_dir

log = logging.getLogger("bridge.serve")

SHUTDOWN_BUDGET_S = 2.5


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


def run(args: argparse.Namespace) -> int:
    out_fd = protect_stdout()
    from bridge import logs

    logs.setup()
    from bridge.host.lock import DataDirBusy, acquire

    data_dir = DataDir(resolve_data_dir(args.data_dir))
    try:
        data_dir.ensure()
        lock_fd = acquire(data_dir.lock)
    except DataDirBusy as exc:
        log.error("%s", exc, extra={"dataDir": str(data_dir.root), "holderPid": exc.pid})
        return 1
    except OSError as exc:
        log.error(
            "cannot use data dir %s: %s", data_dir.root, exc.strerror or exc, extra={"dataDir": str(data_dir.root)}
        )
        return 1
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
    app = App(data_dir=data_dir, config=config, db=db, notifier=Notifier())
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
        anyio.run(_main, app, writer, args.parent_pid, backend="asyncio")
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


async def _main(app: object, writer: object, parent_pid: int | None) -> None:
    from anyio.lowlevel import current_token

    import bridge.host.info  # noqa: F401  (bridge_info and shutdown: light, answered first)
    from bridge.framing import FrameDecoder, FrameTooLarge, FramingError
    from bridge.host.app import App
    from bridge.host.dispatch import Dispatcher
    from bridge.host.transport import OutputWriter, start_reader
    from bridge.platform.watchdog import watch_parent as run_parent_watchdog

    assert isinstance(app, App) and isinstance(writer, OutputWriter)
    app.notifier.attach(writer.send, writer.send_many)
    stop = app.shutdown_requested
    token = current_token()

    def request_stop() -> None:
        with contextlib.suppress(Exception):
            anyio.from_thread.run_sync(stop.set, token=token)

    dispatcher = Dispatcher(app, writer.send, stop.set)
    stdin = start_reader(0)
    if parent_pid:
        run_parent_watchdog(parent_pid, request_stop)

    async def read_loop() -> None:
        max_frame = app.config.current.limits.max_frame_bytes
        decoder = FrameDecoder(max_frame)
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
        await anyio.to_thread.run_sync(importlib.import_module, "bridge.host.commands")
        dispatcher.commands_loaded.set()
        await dispatcher.load_pygls()
        from bridge.host import services

        try:
            await services.start(app, tg)  # type: ignore[arg-type]
        except Exception:
            log.exception("a subsystem failed to start")
        dispatcher.ready.set()

    async with anyio.create_task_group() as tg:
        dispatcher.tg = tg
        tg.start_soon(read_loop)
        tg.start_soon(bring_up, tg)
        await stop.wait()
        with anyio.move_on_after(SHUTDOWN_BUDGET_S, shield=True):
            with anyio.move_on_after(1.0):
                await dispatcher.drain()  # answer what was asked before the stop
            from bridge.host import services

            await services.stop(app)
        tg.cancel_scope.cancel()
