"""The host's sidecar commands (docs/protocol.md §3.3, §3.4), each checked before the session does it.

The checks are the supervisor's rules, kept here in one place: a start is
refused with the kill switch on (-32013) or while the other mode runs
(-32017); a connection is up (-32010), the handshake is done (-32011), the
kill switch is off and the login is confirmed (-32012) for stream commands;
an observer leaves the daemon's account to the user's own client (-32017). The
mode performs the host's handshake steps (spawn: in order; attach: the bridge
ran them itself); the session does the account and login requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge import errors
from bridge.errors import BridgeError
from bridge.sidecar.auth import handshake_error
from bridge.sidecar.generation import Generation
from bridge.sidecar.lifecycle import UP
from bridge.sidecar.rpc import RpcClient
from bridge.sidecar.status import CodexAccountStatus, CodexAppServerStatus, LoginStartResult

if TYPE_CHECKING:
    from bridge.sidecar.supervisor import Supervisor


class SidecarCommands:
    """What ``host/commands/sidecar.py`` and the stream commands call on the supervisor."""

    def __init__(self, sup: Supervisor) -> None:
        self._sup = sup

    # --- the checks ------------------------------------------------------------------------

    def require_up(self) -> Generation:
        """The current generation; -32010 when no connection is up."""
        sup = self._sup
        gen = sup.gen
        if gen is None or sup.lc.phase != UP:
            state = sup.lc.phase
            raise BridgeError(
                errors.SIDECAR_NOT_RUNNING,
                f"codex app-server is not running (state {state}); call start_codex_app_server first.",
                state=state,
            )
        return gen

    def require_initialized(self) -> Generation:
        """... whose handshake is complete; -32011 otherwise."""
        gen = self.require_up()
        self.require_order("account", gen)
        return gen

    @staticmethod
    def require_order(step: str, gen: Generation) -> None:
        """-32011 when ``step`` (``initialize``, ``initialized``, ``account``) may not run in ``gen``'s handshake."""
        problem = handshake_error(step, gen.handshake)
        if problem:
            raise BridgeError(errors.HANDSHAKE_ORDER, problem, handshake=gen.handshake.value)

    def check_startable(self, kind: str) -> None:
        """Refuse a start in ``kind`` (the kill switch, or another mode that is not stopped)."""
        lc = self._sup.lc
        refusal = lc.start_refusal(kind, kill_switch=self._sup.kill_switch)
        if refusal == "kill_switch":
            raise BridgeError(
                errors.KILL_SWITCH_ENGAGED,
                "The stream kill switch is on, so codex app-server was not started; "
                "turn it off with codex_app_server_set_stream_kill_switch first.",
            )
        if refusal == "other_mode":
            other = lc.connection
            raise BridgeError(
                errors.NOT_ALLOWED,
                f"codex app-server is in {other} mode ({lc.phase}); call stop_codex_app_server first, "
                f"then start it with connection {kind!r}.",
                connection=other,
            )

    def refuse_as_observer(self, what: str) -> None:
        """-32017 while attached as an observer: the daemon's account belongs to the user's own client."""
        if self._sup.observer:
            raise BridgeError(
                errors.NOT_ALLOWED,
                f"Attached to the user's codex daemon as an observer, the bridge does not {what}: "
                "the daemon's account belongs to the user's own client.",
                connection="attach",
            )

    def stream_client(self) -> RpcClient:
        """The client for stream commands, or the error saying why there is none to use."""
        gen = self.require_initialized()
        sup = self._sup
        if sup.kill_switch:
            raise BridgeError(
                errors.KILL_SWITCH_ENGAGED,
                "The stream kill switch is on; turn it off with codex_app_server_set_stream_kill_switch first.",
            )
        required = sup.required_mode
        auth = sup.session.auth
        if not auth.mode_allowed(required):
            raise BridgeError(
                errors.AUTH_NOT_CONFIRMED,
                f"The sidecar has not confirmed a {required} login (it reports {auth.state}"
                + (f" with {auth.mode}" if auth.mode else "")
                + "); log in first.",
                authState=auth.state,
                authMode=auth.mode,
            )
        return gen.client

    # --- the handshake -----------------------------------------------------------------------

    async def initialize(self) -> CodexAppServerStatus:
        await self._sup.mode.host_initialize(self.require_up())
        return self._sup.status()

    async def initialized(self) -> CodexAppServerStatus:
        await self._sup.mode.host_initialized(self.require_up())
        return self._sup.status()

    # --- the account --------------------------------------------------------------------------

    async def account_read(self) -> CodexAccountStatus:
        session = self._sup.session
        await session.read_account(self.require_initialized())
        return session.account_status()

    async def login_start(self, auth_mode: str, api_key: str | None) -> LoginStartResult:
        """Start a login at the sidecar; an API key is forwarded and never kept."""
        self.refuse_as_observer("start logins")
        return await self._sup.session.login_start(self.require_initialized(), auth_mode, api_key)

    async def login_cancel(self, login_id: str) -> CodexAccountStatus:
        self.refuse_as_observer("cancel logins")
        return await self._sup.session.login_cancel(self.require_initialized(), login_id)

    async def login_completed(self, success: bool, login_id: str | None, error: str | None) -> CodexAccountStatus:
        """The host says a login finished; only the sidecar's confirmation authenticates."""
        self.refuse_as_observer("take part in logins")
        return await self._sup.session.login_completed(self.require_initialized(), success, login_id, error)

    async def account_updated(self, auth_mode: str, authenticated: bool) -> CodexAccountStatus:
        """Check the host's claim against the sidecar; -32012 when it does not hold."""
        return await self._sup.session.account_updated(self.require_initialized(), auth_mode, authenticated)

    async def logout(self) -> CodexAccountStatus:
        self.refuse_as_observer("log out")
        return await self._sup.session.logout(self.require_initialized())
