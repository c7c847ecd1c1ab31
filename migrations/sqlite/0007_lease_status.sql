-- The node that holds a channel's lease writes the channel's live status (state, source,
-- now-playing, listeners) with each renewal, so that every node's channel record shows it.
ALTER TABLE channel_leases ADD COLUMN status TEXT NOT NULL DEFAULT '';
