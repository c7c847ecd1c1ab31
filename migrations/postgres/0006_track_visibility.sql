-- Tracks become shareable: a public track plays on its /play/track/{id} page without sign-in.
-- Existing tracks stay private.
ALTER TABLE tracks ADD COLUMN visibility TEXT NOT NULL DEFAULT 'private';
