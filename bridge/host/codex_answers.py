"""Result types of the commands that pass codex's own answer through.

``codex_app_server_thread_start`` and its siblings answer with what codex
answered, unchanged, so their results are codex's types. These Structs give
each result its real top level as codex 0.169.0 writes it (field names,
which are required, scalar types); nested codex objects (a ``Thread``, a
``Turn``, a sandbox policy) keep codex's own shape, which codex publishes with
``codex app-server generate-json-schema``. The handlers still return codex's
answer as received: these types describe it for the schemas and the
TypeScript, and the schema test checks recorded answers against them.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from bridge.capture.codex_events import Thread, Turn

CodexObject = Annotated[dict[str, Any], msgspec.Meta(description="an object of codex's own type, as codex sent it")]


class _Answer(msgspec.Struct, rename="camel", kw_only=True):
    pass


class ThreadStarted(_Answer):
    """``thread/start``'s answer: the new thread and the settings it runs with."""

    thread: CodexObject
    model: str
    model_provider: str
    cwd: str
    approval_policy: Any
    approvals_reviewer: Any
    sandbox: CodexObject
    reasoning_effort: str | None = None
    service_tier: str | None = None
    disabled_plugin_ids: list[str] = []
    instruction_sources: list[Any] = []
    # sent by codex 0.169.0 though its generated schema leaves them out (seen in fixtures/transcripts)
    active_permission_profile: Any = None
    multi_agent_mode: Any = None
    runtime_workspace_roots: list[Any] = []


class ThreadResumed(ThreadStarted, kw_only=True):
    """``thread/resume``'s answer: as ``thread/start``'s, plus where paginated hydration continues."""

    collaboration_mode: CodexObject | None = None
    items_backwards_cursor: str | None = None
    turns_backwards_cursor: str | None = None


class TurnStarted(_Answer):
    """``turn/start``'s answer: the turn, which then streams as notifications."""

    turn: CodexObject


class TurnInterrupted(_Answer):
    """``turn/interrupt``'s answer: an empty object (the turn ends with its own ``turn/completed``)."""


class ThreadPage(_Answer):
    """``thread/list``'s answer: one page of codex's stored threads."""

    data: list[CodexObject]
    next_cursor: str | None = None
    backwards_cursor: str | None = None


class ThreadSnapshot(Thread, kw_only=True):
    """The snapshot: codex's ``thread/read`` thread with every turn and item from ``thread/turns/list``."""

    turns: list[Turn] = []
