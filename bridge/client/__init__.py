"""Talking to a running bridge as its host does (used by the drill, the CLI and tests)."""
