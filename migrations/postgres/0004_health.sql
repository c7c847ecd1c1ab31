-- One row that /readyz overwrites: the store is ready only if it takes a write.
CREATE TABLE health (
    id        INTEGER PRIMARY KEY,
    probed_at BIGINT NOT NULL
);
