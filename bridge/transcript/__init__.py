"""Transcripts (docs/protocol.md §8): recording both connections of a bridge, and replaying them."""
