"""The OTEL baseline: an OTLP/HTTP receiver for codex's and Claude Code's own telemetry.

It is the durable half of hybrid capture, so it depends on nothing in the
codex stream: ``http`` serves, ``auth`` and ``ratelimit`` guard, ``decode``
parses, ``records`` flattens and keys for dedup, ``sink`` stores,
``receiver`` ties them to the bridge's lifecycle and ``status`` reports it.
``baseline`` turns stored records into capture events through ``mapping``
(``mapping_codex``, ``mapping_claude``, ``mapping_events``).
``codex_overrides`` and ``claude_env`` point the peers' exporters at the
receiver.
"""
