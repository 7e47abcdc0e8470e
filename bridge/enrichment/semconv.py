"""Attribute and event names of the enrichment export, as local constants.

The ``gen_ai.*`` names follow the OpenTelemetry GenAI semantic conventions.
They are spelled out here instead of imported because every ``gen_ai``
constant in the ``opentelemetry-semantic-conventions`` package is marked
deprecated/incubating and moves between releases; the wire names are what
matter to a collector. ``capture.*`` names are the bridge's own.
"""

from __future__ import annotations

from typing import Final

# ------------------------------------------------------------ GenAI (semconv)
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_SYSTEM: Final = "gen_ai.system"  # the older name of gen_ai.provider.name, still read by many backends
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
ERROR_TYPE: Final = "error.type"
SERVICE_NAME: Final = "service.name"

# values
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_EXECUTE_TOOL: Final = "execute_tool"
PROVIDER_OPENAI: Final = "openai"
PROVIDER_ANTHROPIC: Final = "anthropic"
TOOL_TYPE_FUNCTION: Final = "function"
TOOL_TYPE_EXTENSION: Final = "extension"

# ------------------------------------------------------------ the bridge's own
CAPTURE_SOURCE: Final = "capture.source"
CAPTURE_DEDUP_DECISION: Final = "capture.dedup.decision"
CAPTURE_DEDUP_CHOSEN_SOURCE: Final = "capture.dedup.chosen_source"
CAPTURE_DEDUP_REPLACED_SOURCE: Final = "capture.dedup.replaced_source"
CAPTURE_EVENT_KEY: Final = "capture.event.key"  # the ledger key: a receiver can dedup log records on it
CAPTURE_EVENT_METHOD: Final = "capture.event.method"
CAPTURE_TURN_ID: Final = "capture.turn.id"
CAPTURE_TURN_STATUS: Final = "capture.turn.status"
CAPTURE_TURN_ERROR: Final = "capture.turn.error"
CAPTURE_ITEM_ID: Final = "capture.item.id"
CAPTURE_ITEM_TYPE: Final = "capture.item.type"
CAPTURE_ITEM_STATUS: Final = "capture.item.status"
CAPTURE_TOOL_EXIT_CODE: Final = "capture.tool.exit_code"
CAPTURE_TOOL_SERVER: Final = "capture.tool.server"
CAPTURE_THREAD_TITLE: Final = "capture.thread.title"
CAPTURE_THREAD_CWD: Final = "capture.thread.cwd"
CAPTURE_CONTENT_TRUNCATED: Final = "capture.content.truncated"

# span names (the GenAI operation names) and log record event names
SPAN_INVOKE_AGENT: Final = OP_INVOKE_AGENT
SPAN_EXECUTE_TOOL: Final = OP_EXECUTE_TOOL
EVENT_THREAD_STARTED: Final = "capture.thread.started"
EVENT_TURN_STARTED: Final = "capture.turn.started"
EVENT_TURN_COMPLETED: Final = "capture.turn.completed"
EVENT_TURN_ERROR: Final = "capture.turn.error"
EVENT_ITEM_COMPLETED: Final = "capture.item.completed"

SCOPE_NAME: Final = "capture-bridge.enrichment"
SERVICE: Final = "capture-bridge"
