-- Live channels and the lease that says which node runs each one.
-- Times are Unix milliseconds set by the server.
CREATE TABLE channels (
    id          TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    visibility  TEXT NOT NULL,
    playlist_id TEXT,
    shuffle     BIGINT NOT NULL,
    renditions  TEXT NOT NULL,
    key_hash    TEXT NOT NULL,
    version     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX channels_owner ON channels (owner, id);
CREATE INDEX channels_visibility ON channels (visibility, id);

-- A channel is live on one node: the one holding an unexpired lease.
CREATE TABLE channel_leases (
    channel_id TEXT PRIMARY KEY,
    node       TEXT NOT NULL,
    url        TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
