-- Local accounts and their sign-in sessions, and the invitations that admit new accounts when
-- registration is by invitation.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    -- As given, for display; `email_key` (lowercased) is what is unique.
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,
    -- Argon2id in the PHC string format; NULL for an account that only signs in with OIDC.
    password_hash TEXT,
    display_name TEXT NOT NULL,
    -- The artist page's address, /a/{handle}.
    handle TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    -- The OpenID provider's issuer and subject of an account made by OIDC sign-in.
    oidc_issuer TEXT,
    oidc_subject TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_oidc ON accounts (oidc_issuer, oidc_subject);

-- Sessions are found by the SHA-256 of their cookie's secret, so the table holds no usable secret.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Single-use invitation codes, also kept as hashes.
CREATE TABLE invites (
    code_hash TEXT PRIMARY KEY,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_by TEXT,
    used_at BIGINT
);
