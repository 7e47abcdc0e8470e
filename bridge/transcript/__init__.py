"""Transcripts (CONTRACT §8): recording both connections of a bridge, and replaying them."""
