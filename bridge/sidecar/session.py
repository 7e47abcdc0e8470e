"""The session with codex over one connection: handshake, account and login requests.

:class:`CodexSession` speaks the JSON-RPC client of the current generation
(:mod:`.rpc`) and keeps what codex reports in the pure auth machine
(:class:`.auth.AuthView`), which outlives generations (a new process starts
from ``process_replaced``). It owns no process and no task: its owner (the
supervisor) says which generation is current, records its notes
(``lastError``/``lastInfo``), publishes the state and runs background tasks.
Whether a command is allowed at all (a process runs, the handshake order, an
observer refusing logins) is checked before it is called
(:class:`.commands.SidecarCommands`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import anyio
import msgspec

from bridge import errors
from bridge.config.model import canonical_auth_mode
from bridge.errors import BridgeError
from bridge.redact import MASK, redact_text
from bridge.sidecar.auth import AUTHENTICATED, LOGIN_MODES, AuthView, Handshake, check_claim, check_mode
from bridge.sidecar.generation import Generation, SupervisorOptions
from bridge.sidecar.protocol import (
    AccountLoginCompletedNotification,
    AccountUpdatedNotification,
    CancelLoginParams,
    CancelLoginResponse,
    EmptyResponse,
    Envelope,
    GetAccountParams,
    GetAccountResponse,
    InitializeParams,
    InitializeResponse,
    LoginAccountResponse,
    LoginApiKeyParams,
    LoginChatgptParams,
    account_mode,
    codex_version,
)
from bridge.sidecar.status import CodexAccountStatus, LoginStartResult

log = logging.getLogger("bridge.sidecar")


class SessionOwner(Protocol):
    """What the session needs of its supervisor."""

    @property
    def required_mode(self) -> str: ...

    def is_current(self, gen: Generation) -> bool: ...

    def info(self, message: str) -> None: ...

    def error(self, message: str) -> None: ...

    def refresh(self) -> None: ...

    def closed_error(self, gen: Generation, method: str) -> BridgeError: ...

    def start_soon(self, fn: Callable[[Generation], Coroutine[Any, Any, None]], gen: Generation) -> None: ...


def _scrub(exc: BridgeError, secret: str | None) -> BridgeError:
    """``exc`` with every occurrence of ``secret`` masked (codex may echo what it was sent)."""
    if not secret:
        return exc

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(secret, MASK)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    data = clean(dict(exc.data))
    kind = data.pop("kind", None)
    return BridgeError(exc.code, clean(exc.message), kind=kind, **data)



class CodexSession:
    """Handshake and auth with codex; the authority on what codex reported about its account."""

    def __init__(self, owner: SessionOwner, options: SupervisorOptions) -> None:
        self._owner = owner
        self._options = options
        self.auth = AuthView()
        self.codex_version: str | None = None
        self.originator_imposed = False
        self._login_done: anyio.Event | None = None
        self._note_decoders: dict[str, msgspec.json.Decoder[Any]] = {
            "account/updated": msgspec.json.Decoder(AccountUpdatedNotification),
            "account/login/completed": msgspec.json.Decoder(AccountLoginCompletedNotification),
        }

    def account_status(self) -> CodexAccountStatus:
        required = self._owner.required_mode
        auth = self.auth
        return CodexAccountStatus(
            auth_state=auth.state,
            auth_mode=auth.mode,
            auth_mode_allowed=auth.mode_allowed(required),
            interactive_login_required=auth.interactive_login_required(required),
            supported_modes=list(LOGIN_MODES),
            required_mode=required,
        )

    def on_notes(self, gen: Generation, batch: list[Envelope]) -> bool:
        """Keep track of the account notifications in ``batch``; whether what codex reported changed."""
        changed = False
        decoders = self._note_decoders
        for env in batch:  # once per frame of the stream: one dict lookup each
            method = env.method
            if method in decoders:
                assert method is not None
                changed = self.on_account_note(gen, method, env) or changed
        return changed

    def on_account_note(self, gen: Generation, method: str, env: Envelope) -> bool:
        try:
            note = self._note_decoders[method].decode(env.params if len(env.params) else b"{}")
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False
        before = self.auth
        if isinstance(note, AccountUpdatedNotification):
            mode = canonical_auth_mode(note.authMode) if note.authMode else None
            self.auth = self.auth.sidecar_account_updated(mode or note.authMode)
        elif isinstance(note, AccountLoginCompletedNotification):
            cancelled = before.cancel_requested
            self.auth = self.auth.sidecar_login_completed(note.success, note.loginId)
            if not note.success:
                reason = redact_text(note.error or "no reason given")
                if cancelled:
                    self._owner.info(f"Login cancelled; the sidecar reports: {reason}")
                else:
                    self._owner.error(f"Login failed; the sidecar reports: {reason}")
            elif self.auth.state != AUTHENTICATED:
                self._owner.start_soon(self._confirm_quietly, gen)
            if self._login_done is not None:
                self._login_done.set()
        return self.auth != before

    async def _confirm_quietly(self, gen: Generation) -> None:
        """After a successful login notification: ask the sidecar for the account it now has."""
        await anyio.sleep(0.05)
        if self._owner.is_current(gen) and self.auth.state != AUTHENTICATED:
            with contextlib.suppress(BridgeError):
                await self.read_account(gen)
            self._owner.refresh()

    async def initialize(self, gen: Generation) -> None:
        gen.handshake = Handshake.INITIALIZING
        opts = self._options
        info = gen.conn.client_info(opts.client_name, opts.client_version, opts.client_title)
        params = InitializeParams(info)
        try:
            result = await gen.client.request("initialize", params, InitializeResponse)
        except BridgeError as exc:
            if self._owner.is_current(gen):
                if gen.handshake is Handshake.INITIALIZING:
                    gen.handshake = Handshake.NOT_STARTED
                self._owner.error(f"initialize failed: {exc.message}")
                self._owner.refresh()
            raise
        if not self._owner.is_current(gen):
            raise self._owner.closed_error(gen, "initialize")
        gen.handshake = Handshake.ANSWERED
        self.codex_version = codex_version(result.userAgent) or self.codex_version
        self.originator_imposed = gen.conn.imposed_originator(result.userAgent)
        if self.originator_imposed:
            log.warning("the codex daemon took the bridge's initialize as its originator: %s", result.userAgent)
        self._owner.info("initialize answered; call codex_app_server_initialized next.")
        self._owner.refresh()

    async def initialized(self, gen: Generation) -> None:
        if gen.handshake is Handshake.ANSWERED:
            await gen.client.notify("initialized")
            gen.handshake = Handshake.INITIALIZED
            self._owner.refresh()
        await self.read_account(gen)
        self._owner.info(f"Handshake complete; the sidecar reports {self.auth.state}.")
        self._owner.refresh()

    async def read_account(self, gen: Generation) -> AuthView:
        result = await gen.client.request("account/read", GetAccountParams(refreshToken=False), GetAccountResponse)
        if self._owner.is_current(gen):
            account = result.account
            mode = account_mode(account.type, self.auth.reported_mode) if account is not None else None
            self.auth = self.auth.sidecar_account_read(mode)
            self._owner.refresh()
        return self.auth

    async def login_start(self, gen: Generation, auth_mode: str, api_key: str | None) -> LoginStartResult:
        """Start a login at the sidecar; an API key is forwarded and never kept."""
        mode = canonical_auth_mode(auth_mode)
        if mode not in LOGIN_MODES:
            raise errors.invalid_params(
                "codex_app_server_account_login_start",
                "authMode",
                f"must be one of chatgpt, apiKey (got {auth_mode!r}; chatgptAuthTokens is not offered by this bridge)",
            )
        if mode == "apikey" and not api_key:
            raise errors.invalid_params("codex_app_server_account_login_start", "apiKey", "is required for apiKey")
        if mode == "chatgpt" and api_key:
            raise errors.invalid_params("codex_app_server_account_login_start", "apiKey", "is only used with apiKey")
        params: LoginApiKeyParams | LoginChatgptParams = (
            LoginApiKeyParams(apiKey=api_key or "") if mode == "apikey" else LoginChatgptParams()
        )
        done = self._login_done = anyio.Event()
        self.auth = self.auth.login_requested()
        self._owner.info(f"Starting the {mode} login at the sidecar.")
        self._owner.refresh()
        try:
            result = await gen.client.request("account/login/start", params, LoginAccountResponse)
        except BridgeError as exc:
            safe = _scrub(exc, api_key)
            if self._owner.is_current(gen):
                self.auth = self.auth.login_failed_to_start()
                self._owner.error(f"Login could not start: {safe.message}")
                self._owner.refresh()
            raise safe from None
        self.auth = self.auth.login_answered(result.loginId, result.authUrl)
        if mode == "chatgpt":
            self._owner.info(
                "Open authUrl in a browser to finish the ChatGPT login; the sidecar reports when it is done."
            )
            self._owner.refresh()
        else:
            with anyio.move_on_after(self._options.confirm_wait):
                await done.wait()
            await self.read_account(gen)
            self._owner.info(f"apiKey login sent; the sidecar reports {self.auth.state}.")
            self._owner.refresh()
        account = self.account_status()
        return LoginStartResult(
            **msgspec.structs.asdict(account),
            login_id=result.loginId,
            auth_url=result.authUrl if mode == "chatgpt" else None,
        )

    async def login_cancel(self, gen: Generation, login_id: str) -> CodexAccountStatus:
        done = self._login_done = anyio.Event()
        self.auth = self.auth.cancel_sent()
        result = await gen.client.request("account/login/cancel", CancelLoginParams(login_id), CancelLoginResponse)
        if result.status == "canceled":
            with anyio.move_on_after(self._options.confirm_wait):
                await done.wait()
        else:
            self._owner.info(f"The sidecar had no login {login_id} to cancel ({result.status}).")
        self._owner.refresh()
        return self.account_status()

    async def login_completed(
        self, gen: Generation, success: bool, login_id: str | None, error: str | None
    ) -> CodexAccountStatus:
        """The host says a login finished; only the sidecar's confirmation authenticates."""
        pending_id = self.auth.login_id
        self.auth = self.auth.host_login_completed(success)
        if success:
            self._owner.info("The host reports the login completed; waiting for the sidecar to confirm it.")
            self._owner.refresh()
            await self.read_account(gen)
        else:
            self._owner.error(f"The host reports the login failed: {redact_text(error or 'no reason given')}")
            self._owner.refresh()
            cancel_id = login_id or pending_id
            if cancel_id:  # free the sidecar's pending browser login, best effort
                self.auth = self.auth.cancel_sent()
                with anyio.move_on_after(2.0):
                    with contextlib.suppress(BridgeError):
                        await gen.client.request(
                            "account/login/cancel", CancelLoginParams(cancel_id), CancelLoginResponse, timeout=2.0
                        )
        self._owner.refresh()
        return self.account_status()

    def _refused_claim(self, message: str | None, **data: Any) -> BridgeError:
        """A host auth claim the sidecar does not back: recorded as the last error, refused -32012."""
        assert message is not None
        self._owner.error(message)
        self._owner.refresh()
        return BridgeError(errors.AUTH_NOT_CONFIRMED, message, **data)

    async def account_updated(self, gen: Generation, auth_mode: str, authenticated: bool) -> CodexAccountStatus:
        """Check the host's claim against the sidecar; -32012 when it does not hold."""
        required = self._owner.required_mode
        claimed = canonical_auth_mode(auth_mode)
        verdict = check_mode(claimed, auth_mode, required)
        if not verdict.ok:
            raise self._refused_claim(
                verdict.message, authMode=claimed or redact_text(auth_mode), requiredMode=required
            )
        assert claimed is not None
        view = await self.read_account(gen)
        verdict = check_claim(claimed, authenticated, view)
        if not verdict.ok:
            raise self._refused_claim(verdict.message, sidecar={"authState": view.state, "authMode": view.mode})
        self._owner.info(f"The sidecar confirms {'a ' + claimed + ' login' if authenticated else 'no login'}.")
        self._owner.refresh()
        return self.account_status()

    async def logout(self, gen: Generation) -> CodexAccountStatus:
        self.auth = self.auth.logout_sent()
        await gen.client.request("account/logout", msgspec.UNSET, EmptyResponse)
        if self._owner.is_current(gen):
            self.auth = self.auth.logout_answered()
            self._owner.info("Logged out at the sidecar.")
        self._owner.refresh()
        return self.account_status()

    # --- liveness ----------------------------------------------------------------

    async def liveness(self, gen: Generation) -> None:
        """Probe with ``account/read`` after a silence; a timeout marks the sidecar not alive."""
        idle_limit = self._options.liveness_idle
        while True:
            idle = time.monotonic() - gen.client.last_frame_at
            if not gen.alive and idle < idle_limit:
                gen.alive = True  # a frame arrived since the failed probe
                self._owner.refresh()
            if gen.handshake is not Handshake.INITIALIZED:
                await anyio.sleep(min(1.0, idle_limit))
                continue
            if idle < idle_limit:
                await anyio.sleep(max(0.05, min(idle_limit - idle, 1.0)))
                continue
            try:
                await self.read_account(gen)
                gen.alive = True
            except BridgeError as exc:
                if exc.code in (errors.SIDECAR_NOT_RUNNING, errors.SIDECAR_SPAWN_FAILED):
                    return
                if exc.code == errors.TIMEOUT:
                    gen.alive = False
                    self._owner.error("codex app-server did not answer the liveness probe (account/read) in time.")
            self._owner.refresh()
            if not gen.alive:  # wait for any frame (or the next probe) before trying again
                failed_at = time.monotonic()
                while gen.client.last_frame_at < failed_at and time.monotonic() - failed_at < idle_limit:
                    await anyio.sleep(0.1)
