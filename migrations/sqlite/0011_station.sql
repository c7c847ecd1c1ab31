-- Running a station: the channel's station settings (crossfade, silence trimming, recording,
-- its interstitial), its programme, what went on air, its recorded shows and its listener
-- statistics.
ALTER TABLE channels ADD COLUMN station TEXT NOT NULL DEFAULT '{}';

-- The programme: the document as PUT, versioned for If-Match.
CREATE TABLE schedules (
    channel_id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every item on air; ids are UUIDv7, so they sort by start.
CREATE TABLE history (
    id TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    artist TEXT,
    track_id TEXT,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    listeners BIGINT NOT NULL
);
CREATE INDEX history_channel ON history (channel_id, id);

-- Recorded live shows: recording, then published as a track, or failed with a reason.
CREATE TABLE recordings (
    id TEXT PRIMARY KEY,
    channel_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    track_id TEXT,
    started_at BIGINT NOT NULL,
    ended_at BIGINT,
    seconds REAL NOT NULL DEFAULT 0
);
CREATE INDEX recordings_channel ON recordings (channel_id, id);

-- Listener statistics per channel and minute: one row per protocol ('protocol', 'hls') and per
-- player family ('family', 'VLC').
CREATE TABLE listener_minutes (
    channel_id TEXT NOT NULL,
    minute BIGINT NOT NULL,
    dimension TEXT NOT NULL,
    name TEXT NOT NULL,
    peak BIGINT NOT NULL,
    mean REAL NOT NULL,
    sessions BIGINT NOT NULL,
    PRIMARY KEY (channel_id, minute, dimension, name)
);

-- On-demand plays per track and UTC day.
CREATE TABLE track_plays (
    track_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    plays BIGINT NOT NULL,
    PRIMARY KEY (track_id, day)
);
