"""Supervision of a spawned ``codex app-server``: JSON-RPC client, process, policy, auth, status."""
