"""Pure handshake and auth state machines (docs/protocol.md §3.3, §3.4).

The sidecar is the only authority on auth: the host's claims
(``login_completed``, ``account_updated``) can only move the state towards
"waiting for the sidecar", never to ``authenticated``. Only the sidecar's own
facts — an ``account/read`` result, ``account/updated`` and
``account/login/completed`` notifications — confirm or deny an account.
Every transition is a function from one immutable :class:`AuthView` to the
next, so the table tests cover it without a process.
"""

from __future__ import annotations

from enum import Enum

import msgspec
from msgspec.structs import replace

NEEDS_LOGIN = "needs_login"
AUTHENTICATING = "authenticating"
AUTHENTICATED = "authenticated"
LOGGED_OUT = "logged_out"

# The login types the bridge can start with codex 0.169.0 (chatgptAuthTokens
# needs the experimental API and cannot complete offline: not offered).
LOGIN_MODES = ("chatgpt", "apikey")


class Handshake(Enum):
    """Where one process generation is in the initialize → initialized handshake."""

    NOT_STARTED = "not_started"
    INITIALIZING = "initializing"  # `initialize` sent, no answer yet
    ANSWERED = "answered"  # `initialize` answered (initializeSent: true)
    INITIALIZED = "initialized"  # `initialized` sent (initialized: true)


def handshake_error(step: str, phase: Handshake) -> str | None:
    """Why ``step`` may not run in ``phase`` (``None`` when it may).

    ``step``: ``initialize``, ``initialized`` or ``account`` (any auth command).
    """
    if step == "initialize":
        if phase is Handshake.INITIALIZING:
            return "codex_app_server_initialize is already waiting for the sidecar's answer."
        return None
    if step == "initialized":
        if phase in (Handshake.ANSWERED, Handshake.INITIALIZED):
            return None
        return "Call codex_app_server_initialize and wait for its answer before codex_app_server_initialized."
    if phase is Handshake.INITIALIZED:
        return None
    return "Finish the handshake first: codex_app_server_initialize, then codex_app_server_initialized."


class AuthView(msgspec.Struct, frozen=True):
    """What the bridge knows of the sidecar's account, plus the login in flight."""

    state: str = NEEDS_LOGIN
    mode: str | None = None  # the sidecar's auth mode, when authenticated
    login_pending: bool = False  # started, or reported complete by the host; unconfirmed
    login_id: str | None = None
    auth_url: str | None = None
    reported_mode: str | None = None  # the last mode `account/updated` named
    cancel_requested: bool = False
    logout_requested: bool = False

    # --- derived ---------------------------------------------------------

    def mode_allowed(self, required: str) -> bool:
        return self.state == AUTHENTICATED and self.mode == required

    def interactive_login_required(self, required: str) -> bool:
        """The required mode is the browser flow and the sidecar is not yet there."""
        return required == "chatgpt" and not self.mode_allowed(required)

    # --- transitions -----------------------------------------------------

    def login_requested(self) -> AuthView:
        """The bridge is about to send ``account/login/start``."""
        return replace(
            self,
            state=self.state if self.state == AUTHENTICATED else AUTHENTICATING,
            login_pending=True,
            login_id=None,
            auth_url=None,
            cancel_requested=False,
            logout_requested=False,
        )

    def login_failed_to_start(self) -> AuthView:
        """``account/login/start`` was refused: nothing is in flight."""
        if not self.login_pending:
            return self
        state = self.state if self.state == AUTHENTICATED else NEEDS_LOGIN
        return replace(self, state=state, login_pending=False, login_id=None, auth_url=None)

    def login_answered(self, login_id: str | None, auth_url: str | None) -> AuthView:
        """The answer to ``account/login/start`` (it may come after the sidecar's notifications)."""
        if not self.login_pending:
            return self
        return replace(self, login_id=login_id, auth_url=auth_url)

    def cancel_sent(self) -> AuthView:
        return replace(self, cancel_requested=True)

    def sidecar_login_completed(self, success: bool, login_id: str | None) -> AuthView:
        """The sidecar's ``account/login/completed``: failure ends the login; success still awaits the account."""
        if login_id is not None and self.login_id is not None and login_id != self.login_id:
            return self  # a completion for an older login
        if not success:
            if self.state == AUTHENTICATED:
                return replace(self, login_pending=False, login_id=None, auth_url=None)
            return replace(self, state=NEEDS_LOGIN, mode=None, login_pending=False, login_id=None, auth_url=None)
        if self.state == AUTHENTICATED and not self.login_pending:
            return self
        return replace(self, state=self.state if self.state == AUTHENTICATED else AUTHENTICATING, login_pending=True)

    def sidecar_account_updated(self, mode: str | None) -> AuthView:
        """The sidecar's ``account/updated``: the account it now has (``None``: none)."""
        if mode is None:
            if self.login_pending and self.state == AUTHENTICATING:
                # "no account" while a login is in flight (e.g. the logout's own late notice): not a failure,
                # which the sidecar reports with account/login/completed.
                return replace(self, mode=None, reported_mode=None)
            state = LOGGED_OUT if self.logout_requested or self.state == LOGGED_OUT else NEEDS_LOGIN
            return AuthView(state=state, reported_mode=None, logout_requested=self.logout_requested)
        return AuthView(state=AUTHENTICATED, mode=mode, reported_mode=mode)

    def sidecar_account_read(self, mode: str | None) -> AuthView:
        """An ``account/read`` result: ``mode`` of the account it reports, ``None`` for no account."""
        if mode is not None:
            return AuthView(state=AUTHENTICATED, mode=mode, reported_mode=self.reported_mode)
        if self.login_pending and self.state == AUTHENTICATING:
            return self  # a login is in flight: not confirmed yet, not failed either
        if self.state == LOGGED_OUT:
            return replace(self, mode=None)
        return AuthView(state=NEEDS_LOGIN, reported_mode=self.reported_mode)

    def host_login_completed(self, success: bool) -> AuthView:
        """The host's ``login_completed``: success only means "waiting for the sidecar"."""
        if not success:
            if self.state == AUTHENTICATED:
                return replace(self, login_pending=False, login_id=None, auth_url=None)
            return replace(self, state=NEEDS_LOGIN, mode=None, login_pending=False, login_id=None, auth_url=None)
        if self.state == AUTHENTICATED:
            return self
        return replace(self, state=AUTHENTICATING, login_pending=True)

    def logout_sent(self) -> AuthView:
        return replace(self, logout_requested=True)

    def logout_answered(self) -> AuthView:
        return AuthView(state=LOGGED_OUT, logout_requested=True)

    def process_replaced(self) -> AuthView:
        """A new sidecar process: a login in flight died with the old one."""
        if self.login_pending or self.state == AUTHENTICATING:
            state = AUTHENTICATED if self.state == AUTHENTICATED else NEEDS_LOGIN
            return replace(self, state=state, login_pending=False, login_id=None, auth_url=None, cancel_requested=False)
        return self


class ClaimVerdict(msgspec.Struct, frozen=True):
    """The outcome of checking a host's ``account_updated`` claim."""

    ok: bool
    message: str | None = None
    mode_refused: bool = False


def check_mode(claimed: str | None, raw: str, required: str) -> ClaimVerdict:
    """The claimed mode must be the required one (checked before asking the sidecar)."""
    if claimed != required:
        return ClaimVerdict(False, f"Unsupported auth mode: {claimed or raw} (expected {required})", mode_refused=True)
    return ClaimVerdict(True)


def check_claim(claimed: str, authenticated: bool, sidecar: AuthView) -> ClaimVerdict:
    """Does the sidecar's own view (fresh from ``account/read``) agree with the claim?"""
    if authenticated:
        if sidecar.state != AUTHENTICATED:
            return ClaimVerdict(
                False,
                f"The sidecar does not confirm a {claimed} login: it reports {sidecar.state}. "
                "Finish the login, then call codex_app_server_account_read.",
            )
        if sidecar.mode != claimed:
            return ClaimVerdict(
                False,
                f"The sidecar does not confirm a {claimed} login: it is authenticated with {sidecar.mode}.",
            )
        return ClaimVerdict(True)
    if sidecar.state == AUTHENTICATED:
        return ClaimVerdict(
            False,
            f"The sidecar does not confirm the logout: it is still authenticated with {sidecar.mode}.",
        )
    return ClaimVerdict(True)
