-- Tracks, their published renditions, and the durable transcode queue.
-- Times are Unix milliseconds set by the server.
CREATE TABLE tracks (
    id            TEXT PRIMARY KEY,
    title         TEXT NOT NULL,
    filename      TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL,
    original_key  TEXT NOT NULL,
    status        TEXT NOT NULL,
    progress      REAL NOT NULL DEFAULT 0,
    error         TEXT,
    analysis      TEXT,
    media_prefix  TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE renditions (
    track_id          TEXT NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    codecs            TEXT NOT NULL,
    sample_rate       INTEGER NOT NULL,
    channels          INTEGER NOT NULL,
    bandwidth         INTEGER NOT NULL,
    average_bandwidth INTEGER NOT NULL,
    segments          INTEGER NOT NULL,
    PRIMARY KEY (track_id, name)
);

CREATE TABLE jobs (
    id             TEXT PRIMARY KEY,
    track_id       TEXT NOT NULL UNIQUE REFERENCES tracks(id) ON DELETE CASCADE,
    state          TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    run_at         INTEGER NOT NULL,
    lease_id       TEXT,
    lease_until    INTEGER,
    staging_prefix TEXT,
    last_error     TEXT,
    created_at     INTEGER NOT NULL
);

CREATE INDEX jobs_claim ON jobs (state, run_at);
