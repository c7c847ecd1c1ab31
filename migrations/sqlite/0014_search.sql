-- Search: full-text indexes over tracks' titles, artists, albums and genres, playlists' and
-- channels' names and descriptions, and accounts' names and handles.

-- SQLite: FTS5 external-content indexes, accents folded by unicode61's remove_diacritics 2,
-- kept by triggers; each is built from the rows already there.

CREATE VIRTUAL TABLE tracks_fts USING fts5(title, artist, album, genre, content='tracks', content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER tracks_fts_insert AFTER INSERT ON tracks BEGIN
    INSERT INTO tracks_fts (rowid, title, artist, album, genre) VALUES (new.rowid, new.title, new.artist, new.album, new.genre);
END;
CREATE TRIGGER tracks_fts_delete AFTER DELETE ON tracks BEGIN
    INSERT INTO tracks_fts (tracks_fts, rowid, title, artist, album, genre) VALUES ('delete', old.rowid, old.title, old.artist, old.album, old.genre);
END;
CREATE TRIGGER tracks_fts_update AFTER UPDATE OF title, artist, album, genre ON tracks BEGIN
    INSERT INTO tracks_fts (tracks_fts, rowid, title, artist, album, genre) VALUES ('delete', old.rowid, old.title, old.artist, old.album, old.genre);
    INSERT INTO tracks_fts (rowid, title, artist, album, genre) VALUES (new.rowid, new.title, new.artist, new.album, new.genre);
END;
INSERT INTO tracks_fts (tracks_fts) VALUES ('rebuild');

CREATE VIRTUAL TABLE playlists_fts USING fts5(title, description, content='playlists', content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER playlists_fts_insert AFTER INSERT ON playlists BEGIN
    INSERT INTO playlists_fts (rowid, title, description) VALUES (new.rowid, new.title, new.description);
END;
CREATE TRIGGER playlists_fts_delete AFTER DELETE ON playlists BEGIN
    INSERT INTO playlists_fts (playlists_fts, rowid, title, description) VALUES ('delete', old.rowid, old.title, old.description);
END;
CREATE TRIGGER playlists_fts_update AFTER UPDATE OF title, description ON playlists BEGIN
    INSERT INTO playlists_fts (playlists_fts, rowid, title, description) VALUES ('delete', old.rowid, old.title, old.description);
    INSERT INTO playlists_fts (rowid, title, description) VALUES (new.rowid, new.title, new.description);
END;
INSERT INTO playlists_fts (playlists_fts) VALUES ('rebuild');

CREATE VIRTUAL TABLE channels_fts USING fts5(title, description, slug, content='channels', content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER channels_fts_insert AFTER INSERT ON channels BEGIN
    INSERT INTO channels_fts (rowid, title, description, slug) VALUES (new.rowid, new.title, new.description, new.slug);
END;
CREATE TRIGGER channels_fts_delete AFTER DELETE ON channels BEGIN
    INSERT INTO channels_fts (channels_fts, rowid, title, description, slug) VALUES ('delete', old.rowid, old.title, old.description, old.slug);
END;
CREATE TRIGGER channels_fts_update AFTER UPDATE OF title, description, slug ON channels BEGIN
    INSERT INTO channels_fts (channels_fts, rowid, title, description, slug) VALUES ('delete', old.rowid, old.title, old.description, old.slug);
    INSERT INTO channels_fts (rowid, title, description, slug) VALUES (new.rowid, new.title, new.description, new.slug);
END;
INSERT INTO channels_fts (channels_fts) VALUES ('rebuild');

CREATE VIRTUAL TABLE accounts_fts USING fts5(display_name, handle, content='accounts', content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER accounts_fts_insert AFTER INSERT ON accounts BEGIN
    INSERT INTO accounts_fts (rowid, display_name, handle) VALUES (new.rowid, new.display_name, new.handle);
END;
CREATE TRIGGER accounts_fts_delete AFTER DELETE ON accounts BEGIN
    INSERT INTO accounts_fts (accounts_fts, rowid, display_name, handle) VALUES ('delete', old.rowid, old.display_name, old.handle);
END;
CREATE TRIGGER accounts_fts_update AFTER UPDATE OF display_name, handle ON accounts BEGIN
    INSERT INTO accounts_fts (accounts_fts, rowid, display_name, handle) VALUES ('delete', old.rowid, old.display_name, old.handle);
    INSERT INTO accounts_fts (rowid, display_name, handle) VALUES (new.rowid, new.display_name, new.handle);
END;
INSERT INTO accounts_fts (accounts_fts) VALUES ('rebuild');
