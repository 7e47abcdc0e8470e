"""Sidecar lifecycle, handshake and auth commands (docs/protocol.md §3.2 to §3.4).

Thin: each command checks that the supervisor exists and hands over; the
supervisor (its checks in bridge.sidecar.commands) holds every rule.
"""

from __future__ import annotations

from bridge import errors
from bridge.host.app import App
from bridge.host.commands.config import apply_config
from bridge.host.registry import NoParams, Params, command
from bridge.sidecar.status import CodexAccountStatus, CodexAppServerStatus, LoginStartResult
from bridge.sidecar.supervisor import Supervisor


def _sidecar(app: App) -> Supervisor:
    if app.sidecar is None:
        raise errors.BridgeError(
            errors.SIDECAR_NOT_RUNNING,
            "The sidecar supervisor is not up yet (the bridge is starting or stopping); retry in a moment.",
        )
    return app.sidecar


class StartParams(Params):
    connection: str | None = None  # "spawn" | "attach", any case; default config codex.connection


class KillSwitchParams(Params):
    enabled: bool


class LoginStartParams(Params):
    auth_mode: str = "chatgpt"
    api_key: str | None = None

    def __repr__(self) -> str:  # the key never shows up in a log or traceback
        return f"LoginStartParams(auth_mode={self.auth_mode!r}, api_key={'[REDACTED]' if self.api_key else None})"


class LoginCancelParams(Params):
    login_id: str


class LoginCompletedParams(Params):
    success: bool
    login_id: str | None = None
    error: str | None = None


class AccountUpdatedParams(Params):
    auth_mode: str
    authenticated: bool


@command("get_codex_app_server_status", result=CodexAppServerStatus)
async def get_codex_app_server_status(app: App, params: NoParams) -> CodexAppServerStatus:
    """The sidecar's status (a pure read)."""
    return _sidecar(app).status()


@command("start_codex_app_server", params=StartParams, result=CodexAppServerStatus)
async def start_codex_app_server(app: App, params: StartParams) -> CodexAppServerStatus:
    """Spawn codex app-server in its own process group; returns once it runs (idempotent)."""
    return await _sidecar(app).start(params.connection or app.config.current.codex.connection)


@command("stop_codex_app_server", result=CodexAppServerStatus)
async def stop_codex_app_server(app: App, params: NoParams) -> CodexAppServerStatus:
    """Stop gracefully (stdin, SIGTERM, SIGKILL to the group) from any state."""
    return await _sidecar(app).stop()


@command("codex_app_server_set_stream_kill_switch", params=KillSwitchParams, result=CodexAppServerStatus)
async def codex_app_server_set_stream_kill_switch(app: App, params: KillSwitchParams) -> CodexAppServerStatus:
    """Persist the kill switch (config ``streamKillSwitch``): on stops enrichment and restarts at once."""
    sidecar = _sidecar(app)
    await apply_config(app, {"streamKillSwitch": params.enabled})
    return sidecar.status()


@command("codex_app_server_initialize", result=CodexAppServerStatus)
async def codex_app_server_initialize(app: App, params: NoParams) -> CodexAppServerStatus:
    """Send ``initialize``; returns once codex answered (``initializeSent: true``)."""
    return await _sidecar(app).commands.initialize()


@command("codex_app_server_initialized", result=CodexAppServerStatus)
async def codex_app_server_initialized(app: App, params: NoParams) -> CodexAppServerStatus:
    """Send ``initialized`` then ``account/read``; returns with the auth state codex reported."""
    return await _sidecar(app).commands.initialized()


@command("codex_app_server_account_read", result=CodexAccountStatus)
async def codex_app_server_account_read(app: App, params: NoParams) -> CodexAccountStatus:
    """The account as codex reports it right now."""
    return await _sidecar(app).commands.account_read()


@command("codex_app_server_account_login_start", params=LoginStartParams, result=LoginStartResult)
async def codex_app_server_account_login_start(app: App, params: LoginStartParams) -> LoginStartResult:
    """Start a chatgpt (browser) or apiKey login at codex; the key is forwarded, never kept."""
    return await _sidecar(app).commands.login_start(params.auth_mode, params.api_key)


@command("codex_app_server_account_login_cancel", params=LoginCancelParams, result=CodexAccountStatus)
async def codex_app_server_account_login_cancel(app: App, params: LoginCancelParams) -> CodexAccountStatus:
    """Cancel a pending login; codex then reports it failed."""
    return await _sidecar(app).commands.login_cancel(params.login_id)


@command("codex_app_server_account_login_completed", params=LoginCompletedParams, result=CodexAccountStatus)
async def codex_app_server_account_login_completed(app: App, params: LoginCompletedParams) -> CodexAccountStatus:
    """The host's word that a login ended; success waits for codex to confirm."""
    return await _sidecar(app).commands.login_completed(params.success, params.login_id, params.error)


@command("codex_app_server_account_updated", params=AccountUpdatedParams, result=CodexAccountStatus)
async def codex_app_server_account_updated(app: App, params: AccountUpdatedParams) -> CodexAccountStatus:
    """Check the host's auth claim against codex and the required mode (-32012 otherwise)."""
    return await _sidecar(app).commands.account_updated(params.auth_mode, params.authenticated)


@command("codex_app_server_account_logout", result=CodexAccountStatus)
async def codex_app_server_account_logout(app: App, params: NoParams) -> CodexAccountStatus:
    """Send ``account/logout``."""
    return await _sidecar(app).commands.logout()
