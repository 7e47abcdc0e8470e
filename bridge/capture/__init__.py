"""Stream capture: decoding codex app-server frames (and, later, dedup, persistence, enrichment)."""
