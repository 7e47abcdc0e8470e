"""Ingest config (CONTRACT §3.7) and the places the bridge keeps things."""
