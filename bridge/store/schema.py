"""Versioned schema migrations, applied in order on start.

Append a new entry to :data:`MIGRATIONS` for every schema change; never edit
one that has shipped. ``PRAGMA user_version`` records how far a database got,
and each migration runs in its own transaction, so a crash mid-upgrade leaves
the previous version intact.
"""

from __future__ import annotations

# The OTEL baseline's received records (bridge.receiver), one row per dedup key.
_OTEL_RECORDS_TABLE = """
    CREATE TABLE otel_records (
        id INTEGER PRIMARY KEY,
        dedup_key TEXT NOT NULL UNIQUE,
        signal TEXT NOT NULL,
        provider TEXT NOT NULL,
        name TEXT,
        conversation_id TEXT,
        turn_id TEXT,
        item_id TEXT,
        call_id TEXT,
        sequence INTEGER,
        trace_id TEXT,
        span_id TEXT,
        time_ns INTEGER,
        service_name TEXT,
        scope_name TEXT,
        body TEXT,
        attributes TEXT NOT NULL,
        resource TEXT NOT NULL,
        detail TEXT NOT NULL,
        received_at_ms INTEGER NOT NULL
    );
    CREATE INDEX otel_records_conversation ON otel_records(provider, conversation_id, time_ns);
    """

# As migration 2 made it in the main store (with an index of arrival times, which the telemetry store
# does without: its rows are appended as they arrive, so the last row is the newest).
OTEL_RECORDS = (
    _OTEL_RECORDS_TABLE
    + """
    CREATE INDEX otel_records_received ON otel_records(received_at_ms);
    """
)

MIGRATIONS: list[str] = [
    # 1: bridge-wide key/value state and the host notification log.
    """
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE mode_transitions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        from_mode TEXT,
        to_mode TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE INDEX mode_transitions_at ON mode_transitions(at_ms);
    """,
    # 2: the OTEL baseline's received records, as bridges before the telemetry store wrote them
    #    (kept: they stay readable; new records go to TELEMETRY_MIGRATIONS' store).
    OTEL_RECORDS,
    # 3: captured content (bridge.capture): threads → turns → items, deltas as they arrived,
    #    the dedup ledger (key → source holding it) and the bounded decision log.
    """
    CREATE TABLE threads (
        thread_id TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        title TEXT,
        cwd TEXT,
        created_at_ms INTEGER,
        updated_at_ms INTEGER NOT NULL,
        captured_at_ms INTEGER NOT NULL,
        sources TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX threads_updated ON threads(updated_at_ms);
    CREATE TABLE turns (
        thread_id TEXT NOT NULL REFERENCES threads(thread_id) ON DELETE CASCADE,
        turn_id TEXT NOT NULL,
        ord INTEGER NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        started_at_ms INTEGER,
        completed_at_ms INTEGER,
        usage TEXT,
        source TEXT NOT NULL,
        last_event_at_ms INTEGER NOT NULL,
        captured_at_ms INTEGER NOT NULL,
        PRIMARY KEY (thread_id, turn_id)
    );
    CREATE INDEX turns_status ON turns(status);
    CREATE TABLE items (
        thread_id TEXT NOT NULL REFERENCES threads(thread_id) ON DELETE CASCADE,
        item_id TEXT NOT NULL,
        turn_id TEXT,
        ord INTEGER NOT NULL,
        type TEXT,
        status TEXT,
        text TEXT,
        output TEXT,
        exit_code INTEGER,
        command TEXT,
        started_at_ms INTEGER,
        completed_at_ms INTEGER,
        source TEXT NOT NULL,
        seen_by TEXT NOT NULL DEFAULT '[]',
        extra TEXT,
        captured_at_ms INTEGER NOT NULL,
        PRIMARY KEY (thread_id, item_id)
    );
    -- Deltas as they arrived, one row per run of consecutive deltas of one item
    -- and method within a committed batch: ordinals first..last, their texts
    -- concatenated in order, and each delta's identity ([emitted_at_ms,
    -- text_hash] in order) — the ledger of deltas, read back per item only for
    -- threads seen before a restart.
    CREATE TABLE deltas (
        thread_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        first_ordinal INTEGER NOT NULL,
        last_ordinal INTEGER NOT NULL,
        method TEXT NOT NULL,
        text TEXT NOT NULL,
        idents TEXT NOT NULL,
        captured_at_ms INTEGER NOT NULL,
        PRIMARY KEY (thread_id, item_id, first_ordinal)
    ) WITHOUT ROWID;
    CREATE TABLE ledger (
        key TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    -- threads that have ledger rows: a thread not listed here has none to look up
    CREATE TABLE ledger_threads (thread_id TEXT PRIMARY KEY) WITHOUT ROWID;
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        key TEXT NOT NULL,
        decision TEXT NOT NULL,
        incoming_source TEXT NOT NULL,
        stored_source TEXT,
        chosen_source TEXT NOT NULL,
        replaced_source TEXT,
        preferred_source TEXT NOT NULL
    );
    """,
    # 4: capture reliability events (bridge.reliability): bridge start/stop, crash_loop, unexpected
    #    sidecar exits, with their time, for the release gate's window.
    """
    CREATE TABLE reliability_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX reliability_events_at ON reliability_events(at_ms);
    """,
    # 5: a turn's items in order, so joining the baseline's user prompt to the stream's userMessage of
    #    its turn looks up that turn instead of sorting every item of a long thread, once per prompt.
    """
    CREATE INDEX items_turn ON items(thread_id, turn_id, ord);
    """,
]

# <dataDir>/telemetry.sqlite3, which the receiver's decoder process writes: a file of its own, so
# a telemetry flood never holds the write lock the stream's capture commits wait for.
TELEMETRY_MIGRATIONS: list[str] = [
    _OTEL_RECORDS_TABLE,
    # 2: no index of conversations: nothing reads this store by conversation, and keeping one cost the
    #    decoder a fifth of every insert during a telemetry flood (docs/performance.md). The dedup key's
    #    UNIQUE index stays: it is what makes a redelivery a duplicate.
    """
    DROP INDEX IF EXISTS otel_records_conversation;
    """,
    # 3: a resource is stored once, in otel_resources, and a record names it by id: every record of a
    #    request shares its resource, and repeating that JSON (~190 bytes) in each row was a sixth of the
    #    bytes a telemetry flood wrote (docs/performance.md). Rows stored before this keep their resource
    #    in `resource` (resource_id NULL); later rows have '' there. otel_records_full joins them back.
    #    No REFERENCES clause: a foreign-key check would cost every insert a lookup the decoder does not need.
    """
    CREATE TABLE otel_resources (
        id INTEGER PRIMARY KEY,
        resource TEXT NOT NULL UNIQUE
    );
    ALTER TABLE otel_records ADD COLUMN resource_id INTEGER;
    CREATE VIEW otel_records_full AS
        SELECT r.id, r.dedup_key, r.signal, r.provider, r.name, r.conversation_id, r.turn_id, r.item_id,
               r.call_id, r.sequence, r.trace_id, r.span_id, r.time_ns, r.service_name, r.scope_name, r.body,
               r.attributes, coalesce(s.resource, r.resource) AS resource, r.detail, r.received_at_ms
        FROM otel_records AS r LEFT JOIN otel_resources AS s ON s.id = r.resource_id;
    """,
]
