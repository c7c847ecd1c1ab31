-- Search: full-text indexes over tracks' titles, artists, albums and genres, playlists' and
-- channels' names and descriptions, and accounts' names and handles.

-- PostgreSQL: a generated tsvector per table with the 'simple' configuration (no stemming: names
-- are not prose), over the lowercased text with its accents folded by translate() (unaccent is an
-- extension an operator may not be allowed to create), and a GIN index on it. The server folds
-- queries the same way.

ALTER TABLE tracks ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple'::regconfig, replace(replace(translate(lower(coalesce(title, '') || ' ' || coalesce(artist, '') || ' ' || coalesce(album, '') || ' ' || coalesce(genre, '')),
        'àáâãäåāçćčèéêëēęěìíîïīñńňòóôõöøōőùúûüūůűýÿśšşźżžłř',
        'aaaaaaaccceeeeeeeiiiiinnnoooooooouuuuuuuyyssszzzlr'), 'æ', 'ae'), 'ß', 'ss'))
) STORED;
CREATE INDEX tracks_search ON tracks USING GIN (search);

ALTER TABLE playlists ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple'::regconfig, replace(replace(translate(lower(coalesce(title, '') || ' ' || coalesce(description, '')),
        'àáâãäåāçćčèéêëēęěìíîïīñńňòóôõöøōőùúûüūůűýÿśšşźżžłř',
        'aaaaaaaccceeeeeeeiiiiinnnoooooooouuuuuuuyyssszzzlr'), 'æ', 'ae'), 'ß', 'ss'))
) STORED;
CREATE INDEX playlists_search ON playlists USING GIN (search);

ALTER TABLE channels ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple'::regconfig, replace(replace(translate(lower(coalesce(title, '') || ' ' || coalesce(description, '') || ' ' || coalesce(slug, '')),
        'àáâãäåāçćčèéêëēęěìíîïīñńňòóôõöøōőùúûüūůűýÿśšşźżžłř',
        'aaaaaaaccceeeeeeeiiiiinnnoooooooouuuuuuuyyssszzzlr'), 'æ', 'ae'), 'ß', 'ss'))
) STORED;
CREATE INDEX channels_search ON channels USING GIN (search);

ALTER TABLE accounts ADD COLUMN search tsvector GENERATED ALWAYS AS (
    to_tsvector('simple'::regconfig, replace(replace(translate(lower(coalesce(display_name, '') || ' ' || coalesce(handle, '')),
        'àáâãäåāçćčèéêëēęěìíîïīñńňòóôõöøōőùúûüūůűýÿśšşźżžłř',
        'aaaaaaaccceeeeeeeiiiiinnnoooooooouuuuuuuyyssszzzlr'), 'æ', 'ae'), 'ß', 'ss'))
) STORED;
CREATE INDEX accounts_search ON accounts USING GIN (search);
