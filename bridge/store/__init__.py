"""The durable store: SQLite in WAL mode, versioned schema, one writer."""
