"""Pure follow policy for attach mode: which of the user's threads to subscribe to, and when to let go.

The daemon broadcasts ``thread/started`` and ``thread/status/changed`` to every
client; turn and item events only reach clients subscribed to the thread
(``thread/resume``). The policy turns what the bridge has heard into
:class:`Action` s for the runtime (:mod:`bridge.sidecar.attach`) to carry out:

| what happened | the thread | action |
|---|---|---|
| becomes ``active``, kind unknown | not followed | ``read`` (learn whether it is ephemeral / a title thread) |
| becomes ``active`` | a user thread, not followed | ``resume`` |
| any | ephemeral or ``threadSource`` in :data:`SKIPPED_SOURCES` | nothing (``unsubscribe`` if followed) |
| resumed while idle, or its turn completes / it turns idle after a resume | followed, back-fill due | ``backfill`` |
| idle for ``idle_unsubscribe_s`` | followed | ``unsubscribe`` (so the daemon may unload it) |
| ``notLoaded`` / closed, or the connection ends | followed | forgotten (the daemon dropped the subscription) |

A resume that fails with "no rollout found" (a thread before its first turn is
written) is retried by the runtime while the thread stays active; see
:func:`resume_retry_delay`. A thread whose turn ended between two tries gets one
last try (:meth:`FollowPolicy.worth_a_last_resume`): its rollout is written by
then, and the turn it ran is back-filled instead of waiting for the next one.
No clocks here: callers pass ``now``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

SKIPPED_SOURCES = frozenset({"thread_title"})
IDLE_UNSUBSCRIBE_S = 600.0
ACTIVE = "active"
NOT_LOADED = "notLoaded"
NO_ROLLOUT = "no rollout found"
RESUME_RETRIES = 40
RESUME_RETRY_BASE = 0.1
RESUME_RETRY_CAP = 1.0

ActionKind = Literal["read", "resume", "unsubscribe", "backfill"]


class ThreadMeta(msgspec.Struct, frozen=True):
    """What decides whether a thread is the user's work (from ``thread/started`` or ``thread/read``)."""

    ephemeral: bool = False
    thread_source: str | None = None


class Action(msgspec.Struct, frozen=True):
    kind: ActionKind
    thread_id: str


def skip_reason(meta: ThreadMeta) -> str | None:
    """Why a thread is not followed (``None``: follow it)."""
    if meta.ephemeral:
        return "ephemeral"
    if meta.thread_source in SKIPPED_SOURCES:
        return f"threadSource {meta.thread_source}"
    return None


def resume_retry_delay(attempt: int, message: str) -> float | None:
    """Seconds before retrying a failed ``thread/resume`` (``attempt`` failures so far), or ``None``.

    Only "no rollout found" is worth retrying: the thread exists but its
    rollout is not written yet (it is, once its first turn runs).
    """
    if NO_ROLLOUT not in message.lower() or attempt >= RESUME_RETRIES:
        return None
    return min(RESUME_RETRY_CAP, RESUME_RETRY_BASE * float(1 << min(attempt, 10)))


class _Thread(msgspec.Struct):
    meta: ThreadMeta | None = None
    status: str = NOT_LOADED
    followed: bool = False
    busy: bool = False  # a read, resume or unsubscribe is in flight
    idle_since: float | None = None
    backfill_due: bool = False
    order: int = 0


class FollowPolicy:
    """The follow state of every thread the bridge has heard of, and the decisions on it."""

    def __init__(self, idle_unsubscribe_s: float = IDLE_UNSUBSCRIBE_S) -> None:
        self.idle_unsubscribe_s = idle_unsubscribe_s
        self._threads: dict[str, _Thread] = {}
        self._order = 0

    # --- views ------------------------------------------------------------

    @property
    def followed(self) -> list[str]:
        """Followed thread ids, in the order they were followed."""
        live = [(t.order, tid) for tid, t in self._threads.items() if t.followed]
        return [tid for _, tid in sorted(live)]

    def wants_resume(self, thread_id: str) -> bool:
        """Still worth subscribing to (a retry asks this before each attempt)."""
        t = self._threads.get(thread_id)
        return t is not None and t.status == ACTIVE and not t.followed and not self._skipped(t)

    def worth_a_last_resume(self, thread_id: str) -> bool:
        """A retried resume's thread stopped being active: it ran a turn (so its rollout exists) and is loaded.

        One more resume follows it idle, which back-fills that turn (a fast first turn can end between
        two "no rollout found" tries, and the next status change may be the user's next turn).
        """
        t = self._threads.get(thread_id)
        return (
            t is not None and t.status not in (ACTIVE, NOT_LOADED) and not t.followed and not self._skipped(t)
        )

    def is_followed(self, thread_id: str) -> bool:
        t = self._threads.get(thread_id)
        return t is not None and t.followed

    # --- inputs -----------------------------------------------------------

    def thread_seen(self, thread_id: str, meta: ThreadMeta | None, status: str | None, now: float) -> list[Action]:
        """``thread/started``, or a thread found loaded when the connection began."""
        t = self._get(thread_id)
        if meta is not None:
            t.meta = meta
        if status is not None:
            self._set_status(t, status, now)
        return self._decide(thread_id, t)

    def status_changed(self, thread_id: str, status: str, now: float) -> list[Action]:
        t = self._get(thread_id)
        self._set_status(t, status, now)
        if status == NOT_LOADED:
            t.followed = False  # unloaded: the daemon dropped every subscription
            t.backfill_due = False
        return self._decide(thread_id, t)

    def read_done(self, thread_id: str, meta: ThreadMeta, status: str | None, now: float) -> list[Action]:
        t = self._get(thread_id)
        t.busy = False
        t.meta = meta
        if status is not None:
            self._set_status(t, status, now)
        return self._decide(thread_id, t)

    def resumed(self, thread_id: str, meta: ThreadMeta | None, status: str | None, now: float) -> list[Action]:
        """The daemon confirmed the subscription; what happened before it is back-filled later."""
        t = self._get(thread_id)
        t.busy = False
        if meta is not None:
            t.meta = meta
        if not t.followed:
            self._order += 1
            t.order = self._order
        t.followed = True
        t.backfill_due = True
        if status is not None:
            self._set_status(t, status, now)
        return self._decide(thread_id, t)

    def failed(self, thread_id: str) -> list[Action]:
        """A read, resume or unsubscribe failed for good: wait for the next status change."""
        self._get(thread_id).busy = False
        return []

    def turn_completed(self, thread_id: str, now: float) -> list[Action]:
        t = self._threads.get(thread_id)
        if t is None or not t.followed or not t.backfill_due:
            return []
        t.backfill_due = False
        return [Action("backfill", thread_id)]

    def unsubscribed(self, thread_id: str) -> list[Action]:
        t = self._get(thread_id)
        t.busy = False
        t.followed = False
        t.backfill_due = False
        return []

    def tick(self, now: float) -> list[Action]:
        """Unsubscribe followed threads idle for ``idle_unsubscribe_s``."""
        out: list[Action] = []
        for tid, t in self._threads.items():
            if (
                t.followed
                and not t.busy
                and not t.backfill_due
                and t.status != ACTIVE
                and t.idle_since is not None
                and now - t.idle_since >= self.idle_unsubscribe_s
            ):
                t.busy = True
                out.append(Action("unsubscribe", tid))
        return out

    def disconnected(self) -> None:
        """The connection ended: every subscription (and every request in flight) went with it."""
        for t in self._threads.values():
            t.followed = False
            t.busy = False
            t.backfill_due = False

    # --- rules ------------------------------------------------------------

    def _get(self, thread_id: str) -> _Thread:
        t = self._threads.get(thread_id)
        if t is None:
            t = self._threads[thread_id] = _Thread()
        return t

    @staticmethod
    def _skipped(t: _Thread) -> bool:
        return t.meta is not None and skip_reason(t.meta) is not None

    @staticmethod
    def _set_status(t: _Thread, status: str, now: float) -> None:
        if status == ACTIVE:
            t.idle_since = None
        elif t.status == ACTIVE or t.idle_since is None:
            t.idle_since = now
        t.status = status

    def _decide(self, thread_id: str, t: _Thread) -> list[Action]:
        if t.busy:
            return []
        if self._skipped(t):
            if t.followed:
                t.busy = True
                return [Action("unsubscribe", thread_id)]
            return []
        if t.followed:
            if t.backfill_due and t.status != ACTIVE:
                t.backfill_due = False
                return [Action("backfill", thread_id)]
            return []
        if t.status != ACTIVE:
            return []
        t.busy = True
        return [Action("read" if t.meta is None else "resume", thread_id)]
