-- JWTs revoked before their expiry, by `jti` (POST /v1/tokens/revoke): every node polls the rows
-- revoked since its last look (and hears them at once over Redis when it is configured). A row
-- goes once the token would have expired anyway.
CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
);
CREATE INDEX revoked_tokens_revoked_at ON revoked_tokens (revoked_at);
