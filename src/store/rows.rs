//! The rows the store reads and writes.

use super::ids::{ChannelId, PlaylistId, TrackId};
use serde::Serialize;

/// Where a track is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackStatus {
    /// Uploaded, waiting for a worker.
    Queued,
    /// A worker is packaging it.
    Processing,
    /// Published: playable.
    Ready,
    /// Failed for good; `error` says why.
    Failed,
}

impl TrackStatus {
    /// The name stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackStatus::Queued => "queued",
            TrackStatus::Processing => "processing",
            TrackStatus::Ready => "ready",
            TrackStatus::Failed => "failed",
        }
    }

    pub(super) fn parse(s: &str) -> Option<TrackStatus> {
        match s {
            "queued" => Some(TrackStatus::Queued),
            "processing" => Some(TrackStatus::Processing),
            "ready" => Some(TrackStatus::Ready),
            "failed" => Some(TrackStatus::Failed),
            _ => None,
        }
    }

    /// Whether the track will change no more.
    pub fn is_final(self) -> bool {
        matches!(self, TrackStatus::Ready | TrackStatus::Failed)
    }
}

/// A client-supplied name made storable: control characters (NUL above all, which PostgreSQL's
/// text refuses) removed, at most `max` characters.
pub fn printable(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// A track row.
#[derive(Debug, Clone)]
pub struct Track {
    /// Its id.
    pub id: TrackId,
    /// The subject that uploaded it.
    pub owner: String,
    /// Title given at upload, or the file name.
    pub title: String,
    /// The uploaded file's name (its extension is a decoding hint).
    pub filename: String,
    /// The upload's `Content-Type`.
    pub content_type: String,
    /// Size of the original in bytes.
    pub size_bytes: i64,
    /// Object key of the original.
    pub original_key: String,
    /// Where it is in its life.
    pub status: TrackStatus,
    /// Packaging progress, 0 to 1.
    pub progress: f64,
    /// Why it failed.
    pub error: Option<String>,
    /// `analysis.json` of the published package.
    pub analysis: Option<String>,
    /// Object prefix of the published package.
    pub media_prefix: Option<String>,
    /// Anyone may play it from its public page, signed in or not.
    pub public: bool,
    /// Artist, album, year, genre and track number.
    pub meta: TrackMeta,
    /// Its cover: the SHA-256 (hex) of the JPEG stored under `covers/{id}/`.
    pub cover: Option<String>,
    /// Where the title came from: `given`, `file`, `tags` or `edited`.
    pub title_source: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// What a track says about itself besides its title, from its tags or its owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackMeta {
    /// The artist as credited.
    pub artist: Option<String>,
    /// Album.
    pub album: Option<String>,
    /// Year of release.
    pub year: Option<i64>,
    /// Genre.
    pub genre: Option<String>,
    /// Position on its album.
    pub track_number: Option<i64>,
}

/// What packaging found in a track's file: its tags' title and the rest, and its cover.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// The tags' title, which replaces a title taken from the file name.
    pub title: Option<String>,
    /// Fills what the track does not have yet.
    pub meta: TrackMeta,
    /// The digest of the cover stored from its embedded art, used when it has none.
    pub cover: Option<String>,
    /// The published audio's length, milliseconds.
    pub duration_ms: Option<i64>,
}

/// How a list of tracks is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackSort {
    /// By upload (id).
    Date,
    /// By title, case ignored.
    Title,
    /// By length; tracks not packaged yet last.
    Duration,
    /// By plays, all time.
    Plays,
}

impl Track {
    /// A track just uploaded, queued for packaging: its original is stored under
    /// `original_key`. The title is the one given or, when none (or only blanks), the file name
    /// without its extension. Client-supplied names are made storable (see [`printable`]).
    #[allow(clippy::too_many_arguments)]
    pub fn queued(
        id: TrackId,
        owner: &str,
        original_key: String,
        filename: &str,
        content_type: &str,
        title: Option<&str>,
        size_bytes: i64,
        now: i64,
    ) -> Track {
        let given = title.filter(|t| !t.trim().is_empty());
        let title_source = if given.is_some() { "given" } else { "file" };
        let title = given.map(str::to_owned).unwrap_or_else(|| {
            std::path::Path::new(filename)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| filename.to_owned())
        });
        Track {
            id,
            owner: owner.to_owned(),
            title: printable(&title, 500),
            filename: printable(filename, 255),
            content_type: printable(content_type, 255),
            size_bytes,
            original_key,
            status: TrackStatus::Queued,
            progress: 0.0,
            error: None,
            analysis: None,
            media_prefix: None,
            public: false,
            meta: TrackMeta::default(),
            cover: None,
            title_source: title_source.into(),
            created_at: now,
            updated_at: now,
        }
    }

    /// The length of the published audio, from its analysis.
    pub fn duration_seconds(&self) -> Option<f64> {
        let a: serde_json::Value = serde_json::from_str(self.analysis.as_deref()?).ok()?;
        a.get("duration_seconds")?.as_f64()
    }
}

/// A published rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// `opus-96`, `aac-128`, `flac`: also its directory in the package.
    pub name: String,
    /// RFC 6381 codecs string.
    pub codecs: String,
    /// Hz.
    pub sample_rate: i64,
    /// Channel count.
    pub channels: i64,
    /// Peak bit rate.
    pub bandwidth: i64,
    /// Average bit rate.
    pub average_bandwidth: i64,
    /// Number of media segments.
    pub segments: i64,
}

/// A claimed job.
#[derive(Debug, Clone)]
pub struct Job {
    /// Job id.
    pub id: String,
    /// The track it packages.
    pub track_id: TrackId,
    /// Claims so far, this one included.
    pub attempts: i64,
    /// The lease this claim holds; every later write is conditional on it.
    pub lease_id: String,
    /// The staging prefix of an earlier attempt that did not finish, to be removed.
    pub stale_staging: Option<String>,
    /// The W3C `traceparent` of the request that queued it, which its trace links to.
    pub traceparent: Option<String>,
}

/// Job counts for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobCounts {
    /// Waiting (including retries waiting for their backoff).
    pub queued: i64,
    /// Claimed.
    pub running: i64,
    /// Failed for good.
    pub failed: i64,
    /// When the oldest queued job came due (Unix ms), waiting or not; `None` with none queued.
    pub oldest_due: Option<i64>,
}

/// What a failed attempt leads to.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Try again at this time (Unix ms).
    Retry {
        /// When.
        at: i64,
        /// Why this attempt failed.
        error: String,
    },
    /// Give up: the track becomes `failed` with this reason.
    Final(String),
}

/// A playlist row.
#[derive(Debug, Clone)]
pub struct Playlist {
    /// Its id.
    pub id: PlaylistId,
    /// The subject that owns it.
    pub owner: String,
    /// Title.
    pub title: String,
    /// Free text.
    pub description: String,
    /// Whether listeners other than the owner may read and play it.
    pub public: bool,
    /// Bumped by every change; the ETag is made from it.
    pub version: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// One entry of a playlist. The same track may appear more than once; the entry id tells them
/// apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Stable id of this entry.
    pub id: uuid::Uuid,
    /// The track it plays (which may have been deleted since).
    pub track_id: TrackId,
}

/// A live channel as stored. Its live state (source, now playing, listeners) is the owning
/// node's memory, not the store's.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// Its id.
    pub id: ChannelId,
    /// The subject that owns it.
    pub owner: String,
    /// Title.
    pub title: String,
    /// Free text.
    pub description: String,
    /// A unique, URL-safe name for its mounts (`night-radio`), if set.
    pub slug: Option<String>,
    /// The MP3 mount's bitrate, kb/s; 0: `live.mp3_bitrate_kbps`.
    pub mp3_kbps: u32,
    /// Progressive listeners at once; 0: `live.max_listeners_per_channel`.
    pub max_listeners: u32,
    /// Another server's stream it relays as its live source, when it has one.
    pub relay_url: Option<String>,
    /// How it runs as a station: crossfade, silence trimming, recording, jingles.
    pub station: StationSettings,
    /// Whether listeners other than the owner may read and play it.
    pub public: bool,
    /// The auto-DJ playlist, played when no source is live.
    pub playlist_id: Option<PlaylistId>,
    /// Whether the auto-DJ shuffles.
    pub shuffle: bool,
    /// Rendition names (`opus-128`, `aac-128`), encoded once each.
    pub renditions: Vec<String>,
    /// SHA-256 of the stream key, hex.
    pub key_hash: String,
    /// Bumped by every change; the ETag is made from it.
    pub version: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// Who runs a channel: the node holding its lease, and where it is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The node's id.
    pub node: String,
    /// The node's public URL.
    pub url: String,
    /// Unix ms.
    pub expires_at: i64,
    /// What the holder wrote with its last renewal (the channel's live status, as JSON); empty
    /// before its first.
    pub status: String,
}

/// A listener token of a private channel: what revokes it, and what its owner sees of it (the
/// token itself is shown once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenToken {
    /// Its id: the session the signed token carries.
    pub id: uuid::Uuid,
    /// The channel whose mounts it opens.
    pub channel_id: ChannelId,
    /// What its owner calls it (`kitchen speaker`, `TuneIn`).
    pub label: String,
    /// Who made it.
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub expires_at: i64,
    /// Unix ms, once revoked.
    pub revoked_at: Option<i64>,
}

/// Which playlists a listing shows.
#[derive(Debug, Clone, Copy)]
pub enum PlaylistFilter<'a> {
    /// Every playlist (admins).
    All,
    /// Those owned by a subject.
    Owner(&'a str),
    /// Public ones.
    Public,
}

/// An event waiting in (or delivered from) the outbox.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    /// UUIDv7; receivers use it as an idempotency key.
    pub id: String,
    /// `track.ready`, `playlist.updated`, ...
    pub kind: String,
    /// JSON object.
    pub data: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Dispatch attempts so far.
    pub attempts: i64,
    /// Destinations that have acknowledged it.
    pub delivered: Vec<String>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// The claim this copy was read under.
    pub lease_id: Option<String>,
}

/// The outcome of one dispatch attempt.
#[derive(Debug, Clone)]
pub enum Settle {
    /// Every destination has it.
    Delivered {
        /// The destinations.
        delivered: Vec<String>,
    },
    /// Some failed: try again at `next_at` (Unix ms).
    Retry {
        /// Destinations that have it now.
        delivered: Vec<String>,
        /// When.
        next_at: i64,
        /// Why.
        error: String,
    },
    /// Out of attempts.
    Dead {
        /// Destinations that have it.
        delivered: Vec<String>,
        /// Why.
        error: String,
    },
}

/// A stored response for an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotent {
    /// SHA-256 of the method, path and body of the first request.
    pub fingerprint: String,
    /// Its status code.
    pub status: u16,
    /// Its JSON body.
    pub body: String,
}

/// A resumable (tus) upload.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Its id (UUIDv4, unguessable: the URL is the capability tus clients resume with).
    pub id: String,
    /// The subject that created it.
    pub owner: String,
    /// Total length in bytes.
    pub length: i64,
    /// Bytes received so far.
    pub offset: i64,
    /// The `Upload-Metadata` header as sent.
    pub metadata: String,
    /// The track it became, once complete.
    pub track_id: Option<TrackId>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms; an incomplete upload is removed after this.
    pub expires_at: i64,
}

/// An interstitial playlist (jingles, station IDs) and how often it plays: every `every_tracks`
/// tracks or every `every_minutes` minutes, whichever comes first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InterstitialDoc {
    /// The playlist, played in order.
    pub playlist_id: String,
    /// After this many tracks (1 to 1000).
    pub every_tracks: Option<u32>,
    /// After this many minutes (1 to 1440).
    pub every_minutes: Option<u32>,
}

/// How a channel runs as a station, kept with it as one JSON document.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct StationSettings {
    /// Crossfade between the auto-DJ's items, seconds (0: gapless).
    pub crossfade_seconds: f64,
    /// Leading and trailing silence quieter than this is skipped (`None`: kept).
    pub silence_threshold_dbfs: Option<f64>,
    /// Every live source session is recorded and published as a track.
    pub record_live: bool,
    /// The channel's jingles (a slot's own replace them).
    pub interstitial: Option<InterstitialDoc>,
}

impl Default for StationSettings {
    fn default() -> StationSettings {
        StationSettings {
            crossfade_seconds: 0.0,
            silence_threshold_dbfs: Some(-50.0),
            record_live: false,
            interstitial: None,
        }
    }
}

/// One item that went on air.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryItem {
    /// UUIDv7: sorts by start.
    pub id: uuid::Uuid,
    /// Its channel.
    pub channel_id: ChannelId,
    /// `track`, `event`, `interstitial` or `live`.
    pub kind: String,
    /// Its title.
    pub title: String,
    /// Its artist, when known.
    pub artist: Option<String>,
    /// The track, for the auto-DJ's items.
    pub track_id: Option<TrackId>,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms, once it ended.
    pub ended_at: Option<i64>,
    /// Listeners when it started.
    pub listeners: i64,
}

/// A recorded live show.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// Its id.
    pub id: uuid::Uuid,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Who owns the track it becomes (the channel's owner).
    pub owner: String,
    /// The show's name and date.
    pub title: String,
    /// `recording`, `published` or `failed`.
    pub state: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// The track it became.
    pub track_id: Option<TrackId>,
    /// Unix ms.
    pub started_at: i64,
    /// Unix ms.
    pub ended_at: Option<i64>,
    /// Seconds recorded.
    pub seconds: f64,
}

/// One minute of a channel's listeners, along one dimension (`protocol` or `family`).
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerMinute {
    /// Its channel.
    pub channel_id: ChannelId,
    /// Unix ms of the minute's start.
    pub minute: i64,
    /// `protocol` or `family`.
    pub dimension: String,
    /// `hls`, `webrtc`, `progressive`; or a player family.
    pub name: String,
    /// Most listeners at once.
    pub peak: i64,
    /// Mean listeners.
    pub mean: f64,
    /// Sessions that started in it.
    pub sessions: i64,
}
