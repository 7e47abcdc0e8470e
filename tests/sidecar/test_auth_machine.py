"""The pure handshake and auth machines as tables: the sidecar is the only authority."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bridge.sidecar.auth import (
    AUTHENTICATED,
    AUTHENTICATING,
    LOGGED_OUT,
    NEEDS_LOGIN,
    AuthView,
    Handshake,
    check_claim,
    check_mode,
    handshake_error,
)

Step = Callable[[AuthView], AuthView]

FRESH = AuthView()
APIKEY = AuthView(state=AUTHENTICATED, mode="apikey", reported_mode="apikey")
CHATGPT = AuthView(state=AUTHENTICATED, mode="chatgpt")


def run(start: AuthView, *steps: Step) -> AuthView:
    view = start
    for step in steps:
        view = step(view)
    return view


@pytest.mark.parametrize(
    ("name", "start", "steps", "state", "mode"),
    [
        ("fresh read: no account", FRESH, [lambda v: v.sidecar_account_read(None)], NEEDS_LOGIN, None),
        ("read reports an account", FRESH, [lambda v: v.sidecar_account_read("apikey")], AUTHENTICATED, "apikey"),
        ("login started", FRESH, [lambda v: v.login_requested()], AUTHENTICATING, None),
        (
            "host says success: still authenticating",
            FRESH,
            [lambda v: v.host_login_completed(True)],
            AUTHENTICATING,
            None,
        ),
        (
            "host success then sidecar read without account: still authenticating",
            FRESH,
            [lambda v: v.host_login_completed(True), lambda v: v.sidecar_account_read(None)],
            AUTHENTICATING,
            None,
        ),
        (
            "host says failure",
            FRESH,
            [lambda v: v.login_requested(), lambda v: v.host_login_completed(False)],
            NEEDS_LOGIN,
            None,
        ),
        (
            "sidecar login completed success alone: not authenticated",
            FRESH,
            [lambda v: v.login_requested(), lambda v: v.sidecar_login_completed(True, None)],
            AUTHENTICATING,
            None,
        ),
        (
            "sidecar account/updated confirms",
            FRESH,
            [
                lambda v: v.login_requested(),
                lambda v: v.sidecar_login_completed(True, None),
                lambda v: v.sidecar_account_updated("apikey"),
            ],
            AUTHENTICATED,
            "apikey",
        ),
        (
            "notifications before the login answer: the answer does not undo them",
            FRESH,
            [
                lambda v: v.login_requested(),
                lambda v: v.sidecar_account_updated("apikey"),
                lambda v: v.login_answered(None, None),
            ],
            AUTHENTICATED,
            "apikey",
        ),
        (
            "cancelled chatgpt login",
            FRESH,
            [
                lambda v: v.login_requested(),
                lambda v: v.login_answered("L1", "https://auth.example/authorize?x=1"),
                lambda v: v.cancel_sent(),
                lambda v: v.sidecar_login_completed(False, "L1"),
            ],
            NEEDS_LOGIN,
            None,
        ),
        (
            "a completion for an older login is ignored",
            FRESH,
            [
                lambda v: v.login_requested(),
                lambda v: v.login_answered("L2", "u"),
                lambda v: v.sidecar_login_completed(False, "L1"),
            ],
            AUTHENTICATING,
            None,
        ),
        ("logout", APIKEY, [lambda v: v.logout_sent(), lambda v: v.logout_answered()], LOGGED_OUT, None),
        (
            "logout notification before the answer",
            APIKEY,
            [lambda v: v.logout_sent(), lambda v: v.sidecar_account_updated(None)],
            LOGGED_OUT,
            None,
        ),
        (
            "read after logout stays logged_out",
            AuthView(state=LOGGED_OUT),
            [lambda v: v.sidecar_account_read(None)],
            LOGGED_OUT,
            None,
        ),
        ("account vanishes without a logout", APIKEY, [lambda v: v.sidecar_account_updated(None)], NEEDS_LOGIN, None),
        (
            "the logout's late no-account notice does not end the next login",
            APIKEY,
            [
                lambda v: v.logout_sent(),
                lambda v: v.logout_answered(),
                lambda v: v.login_requested(),
                lambda v: v.sidecar_account_updated(None),
                lambda v: v.login_answered("L", "u"),
            ],
            AUTHENTICATING,
            None,
        ),
        (
            "a login that fails after that still fails",
            APIKEY,
            [
                lambda v: v.login_requested(),
                lambda v: v.sidecar_account_updated(None),
                lambda v: v.login_answered("L", "u"),
                lambda v: v.sidecar_login_completed(False, "L"),
            ],
            NEEDS_LOGIN,
            None,
        ),
        (
            "host success never downgrades a confirmed account",
            APIKEY,
            [lambda v: v.host_login_completed(True)],
            AUTHENTICATED,
            "apikey",
        ),
        (
            "a failed new login keeps the account the sidecar still has",
            APIKEY,
            [lambda v: v.login_requested(), lambda v: v.sidecar_login_completed(False, None)],
            AUTHENTICATED,
            "apikey",
        ),
        (
            "a login in flight dies with its process",
            FRESH,
            [lambda v: v.login_requested(), lambda v: v.login_answered("L", "u"), lambda v: v.process_replaced()],
            NEEDS_LOGIN,
            None,
        ),
        (
            "a confirmed account survives a new process until read",
            APIKEY,
            [lambda v: v.process_replaced()],
            AUTHENTICATED,
            "apikey",
        ),
        (
            "login refused by the sidecar",
            FRESH,
            [lambda v: v.login_requested(), lambda v: v.login_failed_to_start()],
            NEEDS_LOGIN,
            None,
        ),
    ],
)
def test_auth_transitions(name: str, start: AuthView, steps: list[Step], state: str, mode: str | None) -> None:
    view = run(start, *steps)
    assert (view.state, view.mode) == (state, mode), name


def test_auth_url_only_while_the_login_is_pending() -> None:
    view = run(FRESH, lambda v: v.login_requested(), lambda v: v.login_answered("L", "https://auth/x?y"))
    assert view.auth_url == "https://auth/x?y" and view.login_pending
    done = view.sidecar_login_completed(False, "L")
    assert done.auth_url is None and not done.login_pending


@pytest.mark.parametrize(
    ("view", "required", "allowed", "interactive"),
    [
        (APIKEY, "chatgpt", False, True),
        (APIKEY, "apikey", True, False),
        (CHATGPT, "chatgpt", True, False),
        (FRESH, "chatgpt", False, True),
        (FRESH, "apikey", False, False),
        (AuthView(state=AUTHENTICATING, login_pending=True), "chatgpt", False, True),
    ],
)
def test_mode_allowed(view: AuthView, required: str, allowed: bool, interactive: bool) -> None:
    assert view.mode_allowed(required) is allowed
    assert view.interactive_login_required(required) is interactive


@pytest.mark.parametrize(
    ("claimed", "raw", "required", "ok", "message"),
    [
        ("chatgpt", "ChatGPT", "chatgpt", True, None),
        ("apikey", "apikey", "chatgpt", False, "Unsupported auth mode: apikey (expected chatgpt)"),
        (None, "bogus", "chatgpt", False, "Unsupported auth mode: bogus (expected chatgpt)"),
        ("apikey", "apiKey", "apikey", True, None),
    ],
)
def test_check_mode(claimed: str | None, raw: str, required: str, ok: bool, message: str | None) -> None:
    verdict = check_mode(claimed, raw, required)
    assert (verdict.ok, verdict.message) == (ok, message)


@pytest.mark.parametrize(
    ("claimed", "authenticated", "sidecar", "ok"),
    [
        ("apikey", True, APIKEY, True),
        ("chatgpt", True, APIKEY, False),  # the sidecar has another mode
        ("chatgpt", True, FRESH, False),  # the sidecar has no account
        ("chatgpt", True, AuthView(state=AUTHENTICATING, login_pending=True), False),
        ("chatgpt", False, FRESH, True),
        ("chatgpt", False, CHATGPT, False),  # claims a logout the sidecar does not confirm
    ],
)
def test_check_claim(claimed: str, authenticated: bool, sidecar: AuthView, ok: bool) -> None:
    verdict = check_claim(claimed, authenticated, sidecar)
    assert verdict.ok is ok
    assert (verdict.message is None) is ok


@pytest.mark.parametrize(
    ("step", "phase", "allowed"),
    [
        ("initialize", Handshake.NOT_STARTED, True),
        ("initialize", Handshake.INITIALIZING, False),
        ("initialize", Handshake.ANSWERED, True),  # idempotent
        ("initialized", Handshake.NOT_STARTED, False),
        ("initialized", Handshake.INITIALIZING, False),
        ("initialized", Handshake.ANSWERED, True),
        ("initialized", Handshake.INITIALIZED, True),
        ("account", Handshake.NOT_STARTED, False),
        ("account", Handshake.ANSWERED, False),
        ("account", Handshake.INITIALIZED, True),
    ],
)
def test_handshake_order(step: str, phase: Handshake, allowed: bool) -> None:
    assert (handshake_error(step, phase) is None) is allowed
