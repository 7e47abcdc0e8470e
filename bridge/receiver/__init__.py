"""The OTEL baseline: an OTLP/HTTP receiver for codex's and Claude Code's own telemetry.

It is the durable half of hybrid capture, so it depends on nothing in the
codex stream: ``http`` serves, ``decode`` parses, ``records`` flattens and
keys for dedup, ``sink`` stores, ``receiver`` ties them to the bridge's
lifecycle.
"""
