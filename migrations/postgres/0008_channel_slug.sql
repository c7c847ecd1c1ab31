-- What the channel's Icecast-style mounts need: a unique, URL-safe slug to name them by
-- (/listen/night-radio.mp3), the MP3 mount's bitrate and the channel's listener cap (0: the
-- server's settings).
ALTER TABLE channels ADD COLUMN slug TEXT;
CREATE UNIQUE INDEX channels_slug ON channels (slug);
ALTER TABLE channels ADD COLUMN mp3_kbps BIGINT NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN max_listeners BIGINT NOT NULL DEFAULT 0;
