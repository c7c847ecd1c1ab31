-- Owners, playlists, the event outbox, idempotency keys and resumable uploads.
-- Times are Unix milliseconds set by the server.
ALTER TABLE tracks ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE INDEX tracks_owner ON tracks (owner, id);

CREATE TABLE playlists (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    visibility  TEXT NOT NULL,
    version     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX playlists_owner ON playlists (owner, id);
CREATE INDEX playlists_visibility ON playlists (visibility, id);

-- Entries keep their track id after the track is deleted, so the playlist shows what went missing.
CREATE TABLE playlist_entries (
    playlist_id TEXT NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
    position    BIGINT NOT NULL,
    entry_id    TEXT NOT NULL,
    track_id    TEXT NOT NULL,
    PRIMARY KEY (playlist_id, position)
);

-- The transactional outbox: written in the same transaction as the change it reports.
CREATE TABLE outbox (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    data        TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    next_at     BIGINT NOT NULL,
    lease_id    TEXT,
    lease_until BIGINT,
    delivered   TEXT NOT NULL DEFAULT '[]',
    last_error  TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_at);

CREATE TABLE idempotency (
    subject     TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      BIGINT NOT NULL,
    body        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (subject, key)
);

CREATE TABLE uploads (
    id           TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    length       BIGINT NOT NULL,
    upload_offset BIGINT NOT NULL,
    metadata     TEXT NOT NULL,
    track_id     TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
