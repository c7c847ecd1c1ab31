-- Tracks, their published renditions, and the durable transcode queue.
-- Times are Unix milliseconds set by the server.
CREATE TABLE tracks (
    id            TEXT PRIMARY KEY,
    title         TEXT NOT NULL,
    filename      TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    original_key  TEXT NOT NULL,
    status        TEXT NOT NULL,
    progress      DOUBLE PRECISION NOT NULL DEFAULT 0,
    error         TEXT,
    analysis      TEXT,
    media_prefix  TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE renditions (
    track_id          TEXT NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    codecs            TEXT NOT NULL,
    sample_rate       BIGINT NOT NULL,
    channels          BIGINT NOT NULL,
    bandwidth         BIGINT NOT NULL,
    average_bandwidth BIGINT NOT NULL,
    segments          BIGINT NOT NULL,
    PRIMARY KEY (track_id, name)
);

CREATE TABLE jobs (
    id             TEXT PRIMARY KEY,
    track_id       TEXT NOT NULL UNIQUE REFERENCES tracks(id) ON DELETE CASCADE,
    state          TEXT NOT NULL,
    attempts       BIGINT NOT NULL DEFAULT 0,
    run_at         BIGINT NOT NULL,
    lease_id       TEXT,
    lease_until    BIGINT,
    staging_prefix TEXT,
    last_error     TEXT,
    created_at     BIGINT NOT NULL
);

CREATE INDEX jobs_claim ON jobs (state, run_at);
