-- A channel may take its live source from another server's stream (an Icecast mount) instead of
-- a source client: how a station moves over from an existing Icecast server.
ALTER TABLE channels ADD COLUMN relay_url TEXT;
