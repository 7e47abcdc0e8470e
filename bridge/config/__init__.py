"""Ingest config (docs/protocol.md §3.7) and the places the bridge keeps things."""
