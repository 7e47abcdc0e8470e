"""The codex app-server messages the bridge sends and reads, as msgspec types.

Codex speaks newline-delimited JSON-RPC without the ``jsonrpc`` field and adds
fields every release, so incoming structs never forbid unknown fields. Every
incoming frame is decoded once into an :class:`Envelope` whose ``params`` and
``result`` stay raw until someone needs them (the stream's hot path).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec


class Envelope(msgspec.Struct, gc=False):
    """One decoded frame from codex: a response, a notification or a server request.

    ``id`` is UNSET for notifications; ``line`` is filled in by the client
    with the frame's own bytes (for transcripts and the capture layer).
    """

    method: str | None = None
    id: int | str | msgspec.UnsetType | None = msgspec.UNSET
    params: msgspec.Raw = msgspec.Raw()
    result: msgspec.Raw = msgspec.Raw()
    error: Any = None
    emittedAtMs: int | None = None
    line: bytes = msgspec.field(default=b"", name="__bridge_line__")

    @property
    def is_notification(self) -> bool:
        return self.method is not None and self.id is msgspec.UNSET

    @property
    def is_request(self) -> bool:
        return self.method is not None and self.id is not msgspec.UNSET


class RpcErrorObject(msgspec.Struct):
    """A JSON-RPC error object as codex sends it."""

    code: int = 0
    message: str = ""
    data: Any = None


# --- outgoing frames -------------------------------------------------------


class OutRequest(msgspec.Struct, omit_defaults=True):
    method: str
    id: int
    params: Any = msgspec.UNSET


class OutNotification(msgspec.Struct, omit_defaults=True):
    method: str
    params: Any = msgspec.UNSET


class OutResult(msgspec.Struct):
    id: int | str | None
    result: Any


class OutError(msgspec.Struct):
    id: int | str | None
    error: RpcErrorObject


# --- initialize ------------------------------------------------------------


class ClientInfo(msgspec.Struct):
    name: str
    version: str
    title: str | None = None


class InitializeParams(msgspec.Struct, omit_defaults=True):
    clientInfo: ClientInfo


class InitializeResponse(msgspec.Struct):
    userAgent: str = ""
    codexHome: str | None = None
    platformFamily: str | None = None
    platformOs: str | None = None


_VERSION_RE = re.compile(r"^[^/\s]+/(\d+\.\d+\.\d+[^\s]*)")


def codex_version(user_agent: str) -> str | None:
    """``"recorder/0.169.0 (Debian …)"`` → ``"0.169.0"``."""
    match = _VERSION_RE.match(user_agent)
    return match.group(1) if match else None


# --- account ---------------------------------------------------------------


class GetAccountParams(msgspec.Struct):
    refreshToken: bool = False


class Account(msgspec.Struct):
    type: str
    email: str | None = None
    planType: str | None = None


class GetAccountResponse(msgspec.Struct):
    account: Account | None = None
    requiresOpenaiAuth: bool = True


class LoginApiKeyParams(msgspec.Struct, tag_field="type", tag="apiKey"):
    apiKey: str

    def __repr__(self) -> str:  # never show the key, even in a traceback
        return "LoginApiKeyParams(apiKey=[REDACTED])"


class LoginChatgptParams(msgspec.Struct, tag_field="type", tag="chatgpt"):
    pass


class LoginAccountResponse(msgspec.Struct):
    type: str = ""
    loginId: str | None = None
    authUrl: str | None = None


class CancelLoginParams(msgspec.Struct):
    loginId: str


class CancelLoginResponse(msgspec.Struct):
    status: str = ""


class EmptyResponse(msgspec.Struct):
    pass


class AccountUpdatedNotification(msgspec.Struct):
    authMode: str | None = None
    planType: str | None = None


class AccountLoginCompletedNotification(msgspec.Struct):
    success: bool = False
    loginId: str | None = None
    error: str | None = None


# Account ``type`` (account/read) → auth mode (account/updated) spelling.
ACCOUNT_TYPE_MODES: dict[str, str] = {"apiKey": "apikey", "chatgpt": "chatgpt"}


def account_mode(account_type: str, last_reported: str | None) -> str:
    """The auth mode an ``account/read`` account stands for.

    ``chatgpt`` accounts may be managed (``chatgpt``) or host-supplied
    (``chatgptAuthTokens``), and Bedrock has two modes: the mode the sidecar
    last reported in ``account/updated`` decides when it fits the type.
    """
    if last_reported and (
        (account_type == "chatgpt" and last_reported in ("chatgpt", "chatgptAuthTokens"))
        or (account_type == "amazonBedrock" and last_reported.startswith("bedrock"))
    ):
        return last_reported
    if account_type == "amazonBedrock":
        return "bedrockApiKey"
    return ACCOUNT_TYPE_MODES.get(account_type, account_type)


# --- what codex 0.169.0 sends (for counting unknown notifications) ---------

KNOWN_NOTIFICATIONS: frozenset[str] = frozenset(
    """
    account/gatewayOAuth/changed account/login/completed account/rateLimits/updated account/updated
    app/list/updated autoApprovalReview/strictReviewRequired command/exec/outputDelta configWarning
    deprecationNotice error externalAgentConfig/import/completed externalAgentConfig/import/progress
    fs/changed fuzzyFileSearch/sessionCompleted fuzzyFileSearch/sessionUpdated guardianWarning
    hook/completed hook/started item/agentMessage/delta item/autoApprovalReview/completed
    item/autoApprovalReview/started item/commandExecution/outputDelta
    item/commandExecution/terminalInteraction item/completed item/fileChange/outputDelta
    item/fileChange/patchUpdated item/mcpToolCall/progress item/plan/delta
    item/reasoning/summaryPartAdded item/reasoning/summaryTextDelta item/reasoning/textDelta
    item/started mcpServer/event/stream/notification mcpServer/oauthLogin/completed
    mcpServer/startupStatus/updated model/rerouted model/safetyBuffering/updated model/verification
    modelProvider/authRecoveryCompleted modelProvider/authRecoveryStarted process/exited
    process/outputDelta project/changed remoteControl/status/changed serverRequest/resolved
    skills/changed thread/archived thread/attachment/updated thread/closed thread/compacted
    thread/deleted thread/environment/connected thread/environment/disconnected thread/goal/cleared
    thread/goal/updated thread/name/updated thread/prediction/updated thread/project/updated
    thread/queue/changed thread/readState/changed thread/realtime/closed thread/realtime/error
    thread/realtime/item/completed thread/realtime/item/started
    thread/realtime/item/transcript/delta thread/realtime/itemAdded
    thread/realtime/outputAudio/delta thread/realtime/sdp thread/realtime/started
    thread/realtime/transcript/delta thread/realtime/transcript/done thread/reverted
    thread/section/changed thread/settings/updated thread/started thread/status/changed
    thread/tokenUsage/updated thread/unarchived turn/completed turn/diff/updated
    turn/moderationMetadata turn/plan/updated turn/started warning windows/worldWritableWarning
    windowsSandbox/setupCompleted
    """.split()  # noqa: SIM905 (one name a word, as the schema lists them)
)

KNOWN_SERVER_REQUESTS: frozenset[str] = frozenset(
    """
    account/chatgptAuthTokens/refresh applyPatchApproval attestation/generate execCommandApproval
    item/commandExecution/requestApproval item/fileChange/requestApproval
    item/permissions/requestApproval item/tool/call item/tool/requestUserInput
    mcpServer/elicitation/request
    """.split()  # noqa: SIM905 (one name a word, as the schema lists them)
)
