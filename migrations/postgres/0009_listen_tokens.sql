-- Listener tokens: long-lived (up to a year), channel-scoped credentials for a private channel's
-- Icecast-style mounts, given to a speaker, a directory or a paying listener, and revocable one
-- by one. The token itself is signed; the row is what revocation looks up.
CREATE TABLE listen_tokens (
    id TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL,
    label TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX listen_tokens_channel ON listen_tokens (channel_id, id);
