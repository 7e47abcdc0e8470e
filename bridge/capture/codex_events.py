"""Typed params of the codex app-server messages the capture path understands.

Field names are snake_case here and camelCase on the wire (``rename="camel"``).
Unknown fields are ignored on purpose: codex adds fields every release, and a
new field must never turn a frame into a parse error. Fields codex may leave
out default to ``None``; fields whose inner shape the bridge does not rely on
are typed ``Any`` so a change there cannot break decoding either.

:data:`NOTIFICATIONS` and :data:`SERVER_REQUESTS` map a method to its params
struct; :data:`ITEM_FIELDS` says which :class:`ThreadItem` field belongs to
which item type. The drift test (tests/capture/test_schema_drift.py) walks all
three against the schema the pinned codex generates.
"""

from __future__ import annotations

from typing import Any

import msgspec


class _Wire(msgspec.Struct, rename="camel", gc=False):
    """Base: camelCase wire names, unknown fields ignored."""


# ---------------------------------------------------------------- shared shapes


class TurnError(_Wire):
    message: str
    codex_error_info: Any = None  # a string ("internalServerError") or a one-key object
    additional_details: str | None = None


class FileChange(_Wire):
    path: str
    diff: str | None = None
    kind: Any = None  # {"type": "add"|"delete"|"update", "move_path"?}


class ThreadItem(_Wire):
    """One item, flat as on the wire; the fields that apply depend on ``type``.

    See :data:`ITEM_FIELDS`. Unknown item types decode too (only ``type`` and
    ``id`` are required).
    """

    type: str
    id: str
    started_at_ms: int | None = None
    completed_at_ms: int | None = None
    # userMessage: UserInput objects ({type: "text", text, text_elements} …); reasoning: strings
    content: list[Any] | None = None
    client_id: str | None = None
    # agentMessage, plan
    text: str | None = None
    phase: str | None = None
    # reasoning
    summary: list[str] | None = None
    # commandExecution (status also: fileChange, mcpToolCall, dynamicToolCall, …)
    command: str | None = None
    cwd: str | None = None
    aggregated_output: str | None = None
    exit_code: int | None = None
    status: str | None = None
    duration_ms: int | None = None
    # fileChange
    changes: list[FileChange] | None = None
    # mcpToolCall, dynamicToolCall
    server: str | None = None
    tool: str | None = None
    arguments: Any = None
    result: Any = None
    error: Any = None
    success: bool | None = None
    # webSearch
    query: str | None = None


# Which ThreadItem wire fields the bridge reads, per item type (checked against the schema).
ITEM_FIELDS: dict[str, tuple[str, ...]] = {
    "userMessage": ("clientId", "content"),
    "agentMessage": ("text", "phase"),
    "plan": ("text",),
    "reasoning": ("summary", "content"),
    "commandExecution": ("command", "cwd", "aggregatedOutput", "exitCode", "status", "durationMs"),
    "fileChange": ("changes", "status"),
    "mcpToolCall": ("server", "tool", "arguments", "result", "error", "status", "durationMs"),
    "dynamicToolCall": ("tool", "arguments", "status", "durationMs", "success"),
    "webSearch": ("query",),
}
# Present on every item (ThreadItem's own properties, next to its oneOf).
ITEM_COMMON_FIELDS: tuple[str, ...] = ("id", "type", "startedAtMs", "completedAtMs")


class Turn(_Wire):
    id: str
    status: str  # inProgress | completed | interrupted | failed
    error: TurnError | None = None
    items: list[ThreadItem] = []
    items_view: str | None = None
    root_turn_id: str | None = None
    started_at: int | None = None  # seconds
    completed_at: int | None = None  # seconds
    duration_ms: int | None = None


class Thread(_Wire):
    id: str
    preview: str | None = None
    name: str | None = None
    cwd: str | None = None
    path: str | None = None
    model_provider: str | None = None
    model: str | None = None
    cli_version: str | None = None
    created_at: int | None = None  # seconds
    updated_at: int | None = None  # seconds
    ephemeral: bool = False
    parent_thread_id: str | None = None
    forked_from_id: str | None = None


class ThreadStatus(_Wire):
    type: str  # notLoaded | idle | systemError | active
    active_flags: list[str] = []  # waitingOnApproval | waitingOnUserInput


class TokenUsageBreakdown(_Wire):
    total_tokens: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_output_tokens: int
    cache_write_input_tokens: int = 0


class ThreadTokenUsage(_Wire):
    total: TokenUsageBreakdown
    last: TokenUsageBreakdown
    model_context_window: int | None = None


class PlanStep(_Wire):
    step: str
    status: str


# ---------------------------------------------------------------- notifications


class ThreadStarted(_Wire):
    thread: Thread


class ThreadStatusChanged(_Wire):
    thread_id: str
    status: ThreadStatus


class ThreadNameUpdated(_Wire):
    thread_id: str
    thread_name: str | None = None


class ThreadClosed(_Wire):
    thread_id: str


class TurnStarted(_Wire):
    thread_id: str
    turn: Turn


class TurnCompleted(_Wire):
    thread_id: str
    turn: Turn


class TurnDiffUpdated(_Wire):
    thread_id: str
    turn_id: str
    diff: str


class TurnPlanUpdated(_Wire):
    thread_id: str
    turn_id: str
    plan: list[PlanStep]
    explanation: str | None = None


class ItemStarted(_Wire):
    thread_id: str
    turn_id: str
    item: ThreadItem
    started_at_ms: int | None = None


class ItemCompleted(_Wire):
    thread_id: str
    turn_id: str
    item: ThreadItem
    completed_at_ms: int | None = None


class ItemRef(_Wire):
    """Any item-scoped notification: the flat ids every one carries."""

    thread_id: str
    turn_id: str
    item_id: str


class ItemDelta(ItemRef):
    """A streamed piece of an item (agent text, plan text, command or patch output)."""

    delta: str


class ReasoningSummaryTextDelta(ItemDelta):
    summary_index: int


class ReasoningTextDelta(ItemDelta):
    content_index: int


class ReasoningSummaryPartAdded(ItemRef):
    summary_index: int


class FileChangePatchUpdated(ItemRef):
    changes: list[FileChange]


class McpToolCallProgress(ItemRef):
    message: str


class TerminalInteraction(ItemRef):
    process_id: str
    stdin: str


class ThreadTokenUsageUpdated(_Wire):
    thread_id: str
    turn_id: str
    token_usage: ThreadTokenUsage


class ErrorNotification(_Wire):
    error: TurnError
    will_retry: bool
    thread_id: str
    turn_id: str


class ServerRequestResolved(_Wire):
    thread_id: str
    request_id: int | str


class AccountUpdated(_Wire):
    auth_mode: str | None = None
    plan_type: str | None = None


class AccountLoginCompleted(_Wire):
    success: bool
    login_id: str | None = None
    error: str | None = None


class AccountRateLimitsUpdated(_Wire):
    rate_limits: dict[str, Any]


class WarningNotice(_Wire):
    message: str
    thread_id: str | None = None


class ConfigWarning(_Wire):
    summary: str
    details: str | None = None


class DeprecationNotice(_Wire):
    summary: str
    details: str | None = None


# ---------------------------------------------------------------- server requests (approvals)


class CommandApprovalRequest(_Wire):
    thread_id: str
    turn_id: str
    item_id: str
    started_at_ms: int | None = None
    approval_id: str | None = None
    kind: str | None = None  # command | … (defaults to command on older servers)
    command: str | None = None
    cwd: str | None = None
    reason: str | None = None
    proposed_execpolicy_amendment: list[str] | None = None
    # On the wire in 0.169.0 but absent from its JSON Schema: "accept", {"acceptWithExecpolicyAmendment": …}, "cancel"
    available_decisions: list[Any] | None = None


class FileChangeApprovalRequest(_Wire):
    thread_id: str
    turn_id: str
    item_id: str
    started_at_ms: int | None = None
    reason: str | None = None
    grant_root: str | None = None


class PermissionsApprovalRequest(_Wire):
    thread_id: str
    turn_id: str
    item_id: str
    permissions: Any
    started_at_ms: int | None = None
    cwd: str | None = None
    reason: str | None = None


NOTIFICATIONS: dict[str, type[msgspec.Struct]] = {
    "thread/started": ThreadStarted,
    "thread/status/changed": ThreadStatusChanged,
    "thread/name/updated": ThreadNameUpdated,
    "thread/closed": ThreadClosed,
    "thread/tokenUsage/updated": ThreadTokenUsageUpdated,
    "turn/started": TurnStarted,
    "turn/completed": TurnCompleted,
    "turn/diff/updated": TurnDiffUpdated,
    "turn/plan/updated": TurnPlanUpdated,
    "item/started": ItemStarted,
    "item/completed": ItemCompleted,
    "item/agentMessage/delta": ItemDelta,
    "item/plan/delta": ItemDelta,
    "item/reasoning/summaryTextDelta": ReasoningSummaryTextDelta,
    "item/reasoning/summaryPartAdded": ReasoningSummaryPartAdded,
    "item/reasoning/textDelta": ReasoningTextDelta,
    "item/commandExecution/outputDelta": ItemDelta,
    "item/commandExecution/terminalInteraction": TerminalInteraction,
    "item/fileChange/outputDelta": ItemDelta,
    "item/fileChange/patchUpdated": FileChangePatchUpdated,
    "item/mcpToolCall/progress": McpToolCallProgress,
    "error": ErrorNotification,
    "serverRequest/resolved": ServerRequestResolved,
    "account/updated": AccountUpdated,
    "account/login/completed": AccountLoginCompleted,
    "account/rateLimits/updated": AccountRateLimitsUpdated,
    "warning": WarningNotice,
    "configWarning": ConfigWarning,
    "deprecationNotice": DeprecationNotice,
}

SERVER_REQUESTS: dict[str, type[msgspec.Struct]] = {
    "item/commandExecution/requestApproval": CommandApprovalRequest,
    "item/fileChange/requestApproval": FileChangeApprovalRequest,
    "item/permissions/requestApproval": PermissionsApprovalRequest,
}

# Wire fields codex 0.169.0 sends that its generated JSON Schema does not declare.
WIRE_ONLY_FIELDS: dict[str, frozenset[str]] = {
    "CommandApprovalRequest": frozenset({"availableDecisions"}),
}
