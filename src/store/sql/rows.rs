//! Rows as the database holds them, their columns, and the job claim of each backend.

use super::super::account::Account;
use super::super::error::{Error, Result};
use super::super::rows::{
    Channel, HistoryItem, Lease, ListenToken, ListenerMinute, OutboxEvent, Playlist, Recording,
    Track, TrackMeta, TrackStatus, Upload,
};

#[derive(sqlx::FromRow)]
pub(super) struct TrackRow {
    pub(super) id: String,
    pub(super) owner: String,
    pub(super) title: String,
    pub(super) filename: String,
    pub(super) content_type: String,
    pub(super) size_bytes: i64,
    pub(super) original_key: String,
    pub(super) status: String,
    pub(super) progress: f64,
    pub(super) error: Option<String>,
    pub(super) analysis: Option<String>,
    pub(super) media_prefix: Option<String>,
    pub(super) visibility: String,
    pub(super) artist: Option<String>,
    pub(super) album: Option<String>,
    pub(super) year: Option<i64>,
    pub(super) genre: Option<String>,
    pub(super) track_number: Option<i64>,
    pub(super) cover: Option<String>,
    pub(super) title_source: String,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
}

pub(super) const TRACK_COLUMNS: &str =
    "id, owner, title, filename, content_type, size_bytes, original_key, status, \
     progress, error, analysis, media_prefix, visibility, artist, album, year, genre, \
     track_number, cover, title_source, created_at, updated_at";

impl TryFrom<TrackRow> for Track {
    type Error = Error;
    fn try_from(r: TrackRow) -> Result<Track> {
        Ok(Track {
            id: r
                .id
                .parse()
                .map_err(|_| Error::Corrupt(format!("track id {}", r.id)))?,
            owner: r.owner,
            title: r.title,
            filename: r.filename,
            content_type: r.content_type,
            size_bytes: r.size_bytes,
            original_key: r.original_key,
            status: TrackStatus::parse(&r.status)
                .ok_or_else(|| Error::Corrupt(format!("track status {}", r.status)))?,
            progress: r.progress,
            error: r.error,
            analysis: r.analysis,
            media_prefix: r.media_prefix,
            public: r.visibility == "public",
            meta: TrackMeta {
                artist: r.artist,
                album: r.album,
                year: r.year,
                genre: r.genre,
                track_number: r.track_number,
            },
            cover: r.cover,
            title_source: r.title_source,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct PlaylistRow {
    pub(super) id: String,
    pub(super) owner: String,
    pub(super) title: String,
    pub(super) description: String,
    pub(super) visibility: String,
    pub(super) version: i64,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
}

pub(super) const PLAYLIST_COLUMNS: &str =
    "id, owner, title, description, visibility, version, created_at, updated_at";

impl TryFrom<PlaylistRow> for Playlist {
    type Error = Error;
    fn try_from(r: PlaylistRow) -> Result<Playlist> {
        Ok(Playlist {
            id: r
                .id
                .parse()
                .map_err(|_| Error::Corrupt(format!("playlist id {}", r.id)))?,
            owner: r.owner,
            title: r.title,
            description: r.description,
            public: match r.visibility.as_str() {
                "public" => true,
                "private" => false,
                v => return Err(Error::Corrupt(format!("playlist visibility {v}"))),
            },
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ChannelRow {
    pub(super) id: String,
    pub(super) owner: String,
    pub(super) title: String,
    pub(super) description: String,
    pub(super) slug: Option<String>,
    pub(super) mp3_kbps: i64,
    pub(super) max_listeners: i64,
    pub(super) relay_url: Option<String>,
    pub(super) station: String,
    pub(super) visibility: String,
    pub(super) playlist_id: Option<String>,
    pub(super) shuffle: i64,
    pub(super) renditions: String,
    pub(super) key_hash: String,
    pub(super) version: i64,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
}

pub(super) const CHANNEL_COLUMNS: &str = "id, owner, title, description, slug, mp3_kbps, \
     max_listeners, visibility, playlist_id, shuffle, renditions, key_hash, version, created_at, \
     updated_at, relay_url, station";

impl TryFrom<ChannelRow> for Channel {
    type Error = Error;
    fn try_from(r: ChannelRow) -> Result<Channel> {
        let corrupt = |what: &str| Error::Corrupt(format!("channel {} {what}", r.id));
        Ok(Channel {
            id: r.id.parse().map_err(|_| corrupt("id"))?,
            playlist_id: match &r.playlist_id {
                Some(p) => Some(p.parse().map_err(|_| corrupt("playlist id"))?),
                None => None,
            },
            public: match r.visibility.as_str() {
                "public" => true,
                "private" => false,
                _ => return Err(corrupt("visibility")),
            },
            shuffle: r.shuffle != 0,
            renditions: r
                .renditions
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            owner: r.owner,
            title: r.title,
            description: r.description,
            slug: r.slug,
            mp3_kbps: u32::try_from(r.mp3_kbps).map_err(|_| corrupt("mp3_kbps"))?,
            max_listeners: u32::try_from(r.max_listeners).map_err(|_| corrupt("max_listeners"))?,
            relay_url: r.relay_url.clone(),
            station: serde_json::from_str(&r.station).map_err(|_| corrupt("station"))?,
            key_hash: r.key_hash,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ListenTokenRow {
    pub(super) id: String,
    pub(super) channel_id: String,
    pub(super) label: String,
    pub(super) created_by: String,
    pub(super) created_at: i64,
    pub(super) expires_at: i64,
    pub(super) revoked_at: Option<i64>,
}

pub(super) const LISTEN_TOKEN_COLUMNS: &str =
    "id, channel_id, label, created_by, created_at, expires_at, revoked_at";

impl TryFrom<ListenTokenRow> for ListenToken {
    type Error = Error;
    fn try_from(r: ListenTokenRow) -> Result<ListenToken> {
        let bad = |what: &str| Error::Corrupt(format!("listen token {}: bad {what}", r.id));
        Ok(ListenToken {
            id: uuid::Uuid::try_parse(&r.id).map_err(|_| bad("id"))?,
            channel_id: r.channel_id.parse().map_err(|_| bad("channel_id"))?,
            label: r.label,
            created_by: r.created_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct LeaseRow {
    pub(super) node: String,
    pub(super) url: String,
    pub(super) expires_at: i64,
    pub(super) status: String,
}

impl From<LeaseRow> for Lease {
    fn from(r: LeaseRow) -> Lease {
        Lease {
            node: r.node,
            url: r.url,
            expires_at: r.expires_at,
            status: r.status,
        }
    }
}

pub(super) fn visibility(p: &Playlist) -> &'static str {
    if p.public {
        "public"
    } else {
        "private"
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    pub(super) id: String,
    pub(super) kind: String,
    pub(super) data: String,
    pub(super) state: String,
    pub(super) attempts: i64,
    pub(super) delivered: String,
    pub(super) last_error: Option<String>,
    pub(super) created_at: i64,
    pub(super) lease_id: Option<String>,
}

pub(super) const EVENT_COLUMNS: &str =
    "id, kind, data, state, attempts, delivered, last_error, created_at, lease_id";

impl TryFrom<EventRow> for OutboxEvent {
    type Error = Error;
    fn try_from(r: EventRow) -> Result<OutboxEvent> {
        Ok(OutboxEvent {
            delivered: serde_json::from_str(&r.delivered)
                .map_err(|_| Error::Corrupt(format!("event {} delivered list", r.id)))?,
            id: r.id,
            kind: r.kind,
            data: r.data,
            state: r.state,
            attempts: r.attempts,
            last_error: r.last_error,
            created_at: r.created_at,
            lease_id: r.lease_id,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct UploadRow {
    pub(super) id: String,
    pub(super) owner: String,
    pub(super) length: i64,
    pub(super) upload_offset: i64,
    pub(super) metadata: String,
    pub(super) track_id: Option<String>,
    pub(super) created_at: i64,
    pub(super) expires_at: i64,
}

pub(super) const UPLOAD_COLUMNS: &str =
    "id, owner, length, upload_offset, metadata, track_id, created_at, expires_at";

impl TryFrom<UploadRow> for Upload {
    type Error = Error;
    fn try_from(r: UploadRow) -> Result<Upload> {
        Ok(Upload {
            track_id: match r.track_id {
                Some(t) => Some(
                    t.parse()
                        .map_err(|_| Error::Corrupt(format!("upload {} track id", r.id)))?,
                ),
                None => None,
            },
            id: r.id,
            owner: r.owner,
            length: r.length,
            offset: r.upload_offset,
            metadata: r.metadata,
            created_at: r.created_at,
            expires_at: r.expires_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct RenditionRow {
    pub(super) name: String,
    pub(super) codecs: String,
    pub(super) sample_rate: i64,
    pub(super) channels: i64,
    pub(super) bandwidth: i64,
    pub(super) average_bandwidth: i64,
    pub(super) segments: i64,
}

#[derive(sqlx::FromRow)]
pub(super) struct JobRow {
    pub(super) id: String,
    pub(super) track_id: String,
    pub(super) attempts: i64,
    pub(super) staging_prefix: Option<String>,
    pub(super) traceparent: Option<String>,
}

/// Claims one job in one statement. SQLite runs one writer at a time, so the sub-select and the
/// update cannot interleave with another claim; the `lease_id` written is what every later write of
/// this attempt is conditional on.
pub(super) const CLAIM_SQLITE: &str =
    "UPDATE jobs SET state = 'running', lease_id = $1, lease_until = $2, \
     attempts = attempts + 1 \
     WHERE id = (SELECT id FROM jobs WHERE (state = 'queued' AND run_at <= $3) \
                 OR (state = 'running' AND lease_until < $3) ORDER BY run_at, id LIMIT 1) \
     RETURNING id, track_id, attempts, staging_prefix, traceparent";

/// PostgreSQL: concurrent workers skip rows another transaction has locked, so each claims a
/// different job without waiting.
pub(super) const CLAIM_POSTGRES: &str =
    "UPDATE jobs SET state = 'running', lease_id = $1, lease_until = $2, \
     attempts = attempts + 1 \
     WHERE id = (SELECT id FROM jobs WHERE (state = 'queued' AND run_at <= $3) \
                 OR (state = 'running' AND lease_until < $3) ORDER BY run_at, id LIMIT 1 \
                 FOR UPDATE SKIP LOCKED) \
     RETURNING id, track_id, attempts, staging_prefix, traceparent";

#[derive(sqlx::FromRow)]
pub(super) struct HistoryRow {
    pub(super) id: String,
    pub(super) channel_id: String,
    pub(super) kind: String,
    pub(super) title: String,
    pub(super) artist: Option<String>,
    pub(super) track_id: Option<String>,
    pub(super) started_at: i64,
    pub(super) ended_at: Option<i64>,
    pub(super) listeners: i64,
}

pub(super) const HISTORY_COLUMNS: &str =
    "id, channel_id, kind, title, artist, track_id, started_at, ended_at, listeners";

impl TryFrom<HistoryRow> for HistoryItem {
    type Error = Error;
    fn try_from(r: HistoryRow) -> Result<HistoryItem> {
        let corrupt = |what: &str| Error::Corrupt(format!("history {} {what}", r.id));
        Ok(HistoryItem {
            id: r.id.parse().map_err(|_| corrupt("id"))?,
            channel_id: r.channel_id.parse().map_err(|_| corrupt("channel"))?,
            track_id: match &r.track_id {
                Some(t) => Some(t.parse().map_err(|_| corrupt("track"))?),
                None => None,
            },
            kind: r.kind,
            title: r.title,
            artist: r.artist,
            started_at: r.started_at,
            ended_at: r.ended_at,
            listeners: r.listeners,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct RecordingRow {
    pub(super) id: String,
    pub(super) channel_id: String,
    pub(super) owner: String,
    pub(super) title: String,
    pub(super) state: String,
    pub(super) reason: Option<String>,
    pub(super) track_id: Option<String>,
    pub(super) started_at: i64,
    pub(super) ended_at: Option<i64>,
    pub(super) seconds: f64,
}

pub(super) const RECORDING_COLUMNS: &str =
    "id, channel_id, owner, title, state, reason, track_id, started_at, ended_at, seconds";

impl TryFrom<RecordingRow> for Recording {
    type Error = Error;
    fn try_from(r: RecordingRow) -> Result<Recording> {
        let corrupt = |what: &str| Error::Corrupt(format!("recording {} {what}", r.id));
        Ok(Recording {
            id: r.id.parse().map_err(|_| corrupt("id"))?,
            channel_id: r.channel_id.parse().map_err(|_| corrupt("channel"))?,
            track_id: match &r.track_id {
                Some(t) => Some(t.parse().map_err(|_| corrupt("track"))?),
                None => None,
            },
            owner: r.owner,
            title: r.title,
            state: r.state,
            reason: r.reason,
            started_at: r.started_at,
            ended_at: r.ended_at,
            seconds: r.seconds,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct MinuteRow {
    pub(super) channel_id: String,
    pub(super) minute: i64,
    pub(super) dimension: String,
    pub(super) name: String,
    pub(super) peak: i64,
    pub(super) mean: f64,
    pub(super) sessions: i64,
}

impl TryFrom<MinuteRow> for ListenerMinute {
    type Error = Error;
    fn try_from(r: MinuteRow) -> Result<ListenerMinute> {
        Ok(ListenerMinute {
            channel_id: r
                .channel_id
                .parse()
                .map_err(|_| Error::Corrupt(format!("listener minute of {}", r.channel_id)))?,
            minute: r.minute,
            dimension: r.dimension,
            name: r.name,
            peak: r.peak,
            mean: r.mean,
            sessions: r.sessions,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AccountRow {
    pub(super) id: String,
    pub(super) email: String,
    pub(super) password_hash: Option<String>,
    pub(super) display_name: String,
    pub(super) handle: String,
    pub(super) role: String,
    pub(super) oidc_issuer: Option<String>,
    pub(super) oidc_subject: Option<String>,
    pub(super) created_at: i64,
}

pub(super) const ACCOUNT_COLUMNS: &str = "id, email, password_hash, display_name, handle, role, \
     oidc_issuer, oidc_subject, created_at";

impl TryFrom<AccountRow> for Account {
    type Error = Error;
    fn try_from(r: AccountRow) -> Result<Account> {
        Ok(Account {
            id: r
                .id
                .parse()
                .map_err(|_| Error::Corrupt(format!("account id {}", r.id)))?,
            email: r.email,
            password_hash: r.password_hash,
            display_name: r.display_name,
            handle: r.handle,
            role: r.role,
            oidc: r.oidc_issuer.zip(r.oidc_subject),
            created_at: r.created_at,
        })
    }
}
