-- API keys own what they create as `key:<key id>`, a namespace no JWT subject may take. What they
-- created before, under the shared subject `service` (which a JWT with sub=service could also
-- claim), moves to `key:legacy`: admins still manage it, and no token names it.
UPDATE tracks SET owner = 'key:legacy' WHERE owner = 'service';
UPDATE playlists SET owner = 'key:legacy' WHERE owner = 'service';
UPDATE uploads SET owner = 'key:legacy' WHERE owner = 'service';
UPDATE idempotency SET subject = 'key:legacy' WHERE subject = 'service';
