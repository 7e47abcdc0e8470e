"""The follow policy as tables: which threads are followed, skipped, back-filled and let go."""

from __future__ import annotations

import pytest

from bridge.sidecar.follow import (
    RESUME_RETRIES,
    Action,
    FollowPolicy,
    ThreadMeta,
    resume_retry_delay,
    skip_reason,
)

USER = ThreadMeta()
TITLE = ThreadMeta(ephemeral=True, thread_source="thread_title")
EPHEMERAL = ThreadMeta(ephemeral=True)
TITLE_ONLY = ThreadMeta(thread_source="thread_title")


@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        (USER, None),
        (ThreadMeta(thread_source="user"), None),
        (EPHEMERAL, "ephemeral"),
        (TITLE_ONLY, "threadSource thread_title"),
        (TITLE, "ephemeral"),
    ],
)
def test_skip_reason(meta: ThreadMeta, reason: str | None) -> None:
    assert skip_reason(meta) == reason


@pytest.mark.parametrize(
    ("attempt", "message", "delay"),
    [
        (1, "no rollout found for thread id T", 0.2),
        (2, "No rollout found for thread id T", 0.4),
        (3, "no rollout found", 0.8),
        (4, "no rollout found", 1.0),  # capped
        (RESUME_RETRIES - 1, "no rollout found", 1.0),
        (RESUME_RETRIES, "no rollout found", None),  # gives up: waits for the next status change
        (1, "thread T already has an active writer", None),
        (1, "timeout", None),
    ],
)
def test_resume_retry_delay(attempt: int, message: str, delay: float | None) -> None:
    assert resume_retry_delay(attempt, message) == delay


def resume(tid: str) -> list[Action]:
    return [Action("resume", tid)]


def test_a_user_thread_is_followed_when_it_turns_active() -> None:
    p = FollowPolicy(idle_unsubscribe_s=60)
    assert p.thread_seen("T", USER, "idle", now=0) == []  # thread/start: nothing to follow yet
    assert p.status_changed("T", "active", now=1) == resume("T")
    assert p.status_changed("T", "active", now=1.5) == []  # already resuming
    assert p.followed == []
    assert p.resumed("T", USER, "active", now=2) == []  # mid-turn: back-fill after the turn
    assert p.followed == ["T"]
    assert p.turn_completed("T", now=3) == [Action("backfill", "T")]
    assert p.status_changed("T", "idle", now=3) == []  # back-fill already scheduled once
    assert p.turn_completed("T", now=4) == []


def test_resumed_while_idle_is_back_filled_at_once() -> None:
    p = FollowPolicy()
    p.status_changed("T", "active", now=0)  # unknown thread: read first
    assert p.resumed("T", USER, "idle", now=1) == [Action("backfill", "T")]


@pytest.mark.parametrize("meta", [TITLE, EPHEMERAL, TITLE_ONLY])
def test_ephemeral_and_title_threads_are_never_followed(meta: ThreadMeta) -> None:
    p = FollowPolicy()
    assert p.thread_seen("X", meta, "idle", now=0) == []
    assert p.status_changed("X", "active", now=1) == []
    assert not p.wants_resume("X")
    assert p.followed == []


def test_an_unknown_active_thread_is_read_before_it_is_followed() -> None:
    p = FollowPolicy()
    assert p.status_changed("T", "active", now=0) == [Action("read", "T")]
    assert p.status_changed("T", "active", now=0.1) == []  # the read is in flight
    assert p.read_done("T", USER, "active", now=0.2) == resume("T")
    q = FollowPolicy()
    q.status_changed("X", "active", now=0)
    assert q.read_done("X", TITLE, "active", now=0.2) == []


def test_a_thread_found_skipped_after_the_resume_is_let_go() -> None:
    p = FollowPolicy()
    p.status_changed("X", "active", now=0)
    assert p.resumed("X", EPHEMERAL, "active", now=1) == [Action("unsubscribe", "X")]
    assert p.unsubscribed("X") == []
    assert p.followed == []


def test_idle_threads_are_unsubscribed_after_the_idle_time() -> None:
    p = FollowPolicy(idle_unsubscribe_s=60)
    p.thread_seen("T", USER, "active", now=0)
    p.resumed("T", USER, "active", now=0)
    p.turn_completed("T", now=10)
    p.status_changed("T", "idle", now=10)
    assert p.tick(now=69.9) == []
    assert p.tick(now=70) == [Action("unsubscribe", "T")]
    assert p.tick(now=71) == []  # in flight
    assert p.followed == ["T"]
    p.unsubscribed("T")
    assert p.followed == []
    # active again: followed again
    assert p.status_changed("T", "active", now=100) == resume("T")


def test_an_active_thread_is_never_unsubscribed() -> None:
    p = FollowPolicy(idle_unsubscribe_s=1)
    p.thread_seen("T", USER, "active", now=0)
    p.resumed("T", USER, "active", now=0)
    assert p.tick(now=1000) == []


def test_a_thread_active_again_before_the_idle_time_stays_followed() -> None:
    p = FollowPolicy(idle_unsubscribe_s=60)
    p.thread_seen("T", USER, "active", now=0)
    p.resumed("T", USER, "idle", now=0)  # back-fill now
    p.status_changed("T", "active", now=50)
    p.status_changed("T", "idle", now=55)
    assert p.tick(now=100) == []  # idle since 55
    assert p.tick(now=115) == [Action("unsubscribe", "T")]


def test_unloaded_threads_and_lost_connections_drop_the_subscriptions() -> None:
    p = FollowPolicy()
    for tid in ("A", "B"):
        p.thread_seen(tid, USER, "active", now=0)
        p.resumed(tid, USER, "active", now=0)
    assert p.followed == ["A", "B"]
    p.status_changed("A", "notLoaded", now=1)
    assert p.followed == ["B"]
    p.disconnected()
    assert p.followed == []
    # after a reconnect the still-active thread is found again and followed
    assert p.thread_seen("B", USER, "active", now=2) == resume("B")


def test_a_failed_resume_waits_for_the_next_status_change() -> None:
    p = FollowPolicy()
    p.thread_seen("T", USER, "active", now=0)
    assert p.failed("T") == []
    assert p.followed == []
    assert p.status_changed("T", "idle", now=1) == []
    assert p.status_changed("T", "active", now=2) == resume("T")


def test_a_thread_whose_turn_ended_while_its_resume_was_retried_gets_one_last_try() -> None:
    """A fast first turn can end between two "no rollout found" tries: its rollout exists by then."""
    p = FollowPolicy()
    p.thread_seen("T", USER, "active", now=0)
    assert p.wants_resume("T") and not p.worth_a_last_resume("T")  # still active: an ordinary retry
    p.status_changed("T", "idle", now=1)
    assert not p.wants_resume("T") and p.worth_a_last_resume("T")
    assert p.resumed("T", USER, "idle", now=2) == [Action("backfill", "T")]  # the ended turn is back-filled
    assert not p.worth_a_last_resume("T")  # followed now


@pytest.mark.parametrize(("meta", "status"), [(USER, "notLoaded"), (EPHEMERAL, "idle"), (TITLE_ONLY, "idle")])
def test_no_last_try_for_an_unloaded_or_skipped_thread(meta: ThreadMeta, status: str) -> None:
    p = FollowPolicy()
    p.thread_seen("T", meta, "active", now=0)
    p.status_changed("T", status, now=1)
    assert not p.worth_a_last_resume("T")
    assert not FollowPolicy().worth_a_last_resume("unknown")


def test_followed_order_is_the_order_of_following() -> None:
    p = FollowPolicy()
    for tid in ("C", "A", "B"):
        p.thread_seen(tid, USER, "active", now=0)
    for tid in ("B", "C", "A"):
        p.resumed(tid, USER, "active", now=0)
    assert p.followed == ["B", "C", "A"]
