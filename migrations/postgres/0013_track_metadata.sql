-- What a track says about itself: artist, album, year, genre and track number, from its tags at
-- packaging or edited by its owner, and its cover (the SHA-256 of the normalised JPEG under
-- covers/{track}/), from its embedded art or uploaded.
ALTER TABLE tracks ADD COLUMN artist TEXT;
ALTER TABLE tracks ADD COLUMN album TEXT;
ALTER TABLE tracks ADD COLUMN year BIGINT;
ALTER TABLE tracks ADD COLUMN genre TEXT;
ALTER TABLE tracks ADD COLUMN track_number BIGINT;
ALTER TABLE tracks ADD COLUMN cover TEXT;
-- The published audio's length, for sorting by duration.
ALTER TABLE tracks ADD COLUMN duration_ms BIGINT;
-- Where the title came from: 'given' at upload, 'file' (the file name), 'tags' or 'edited'. The
-- tags' title replaces only a file name's.
ALTER TABLE tracks ADD COLUMN title_source TEXT NOT NULL DEFAULT 'given';
