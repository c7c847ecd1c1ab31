//! `store`: the metadata store. Tracks, their renditions, the durable job queue, playlists, the
//! event outbox, idempotency records and resumable uploads.
//!
//! [`MetadataStore`] is the seam; [`open`] picks the backend from `database.url`: SQLite
//! (embedded, the default) or PostgreSQL. Both run the same SQL apart from job claiming and their
//! column types (one migrations directory each), and the same test suite (`tests/store.rs`).
//!
//! Times are Unix milliseconds passed in by the caller, so the store reads no clock.

mod event;
mod sql;

pub use event::{Event, PlaylistState};

use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A track id: a UUIDv7, so ids sort by creation time and serve as pagination cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub uuid::Uuid);

impl TrackId {
    /// A fresh, time-ordered id.
    pub fn new() -> TrackId {
        TrackId(uuid::Uuid::now_v7())
    }
}

impl Default for TrackId {
    fn default() -> Self {
        TrackId::new()
    }
}

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for TrackId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        uuid::Uuid::try_parse(s).map(TrackId)
    }
}

impl TrackId {
    /// The id spelled exactly as it is written (lowercase, hyphenated), or `None`: delivery URLs
    /// accept one spelling per track, so a CDN never caches one object under two keys.
    pub fn parse_canonical(s: &str) -> Option<TrackId> {
        canonical(s).map(TrackId)
    }
}

/// A UUID in its one written form (RFC 9562 §4: lowercase hexadecimal, hyphenated).
fn canonical(s: &str) -> Option<uuid::Uuid> {
    let id = uuid::Uuid::try_parse(s).ok()?;
    (id.hyphenated()
        .encode_lower(&mut uuid::Uuid::encode_buffer())
        == s)
        .then_some(id)
}

/// Where a track is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Uploaded, waiting for a worker.
    Queued,
    /// A worker is packaging it.
    Processing,
    /// Published: playable.
    Ready,
    /// Failed for good; `error` says why.
    Failed,
}

impl Status {
    /// The name stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Processing => "processing",
            Status::Ready => "ready",
            Status::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        match s {
            "queued" => Some(Status::Queued),
            "processing" => Some(Status::Processing),
            "ready" => Some(Status::Ready),
            "failed" => Some(Status::Failed),
            _ => None,
        }
    }

    /// Whether the track will change no more.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Ready | Status::Failed)
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
    pub status: Status,
    /// Packaging progress, 0 to 1.
    pub progress: f64,
    /// Why it failed.
    pub error: Option<String>,
    /// `analysis.json` of the published package.
    pub analysis: Option<String>,
    /// Object prefix of the published package.
    pub media_prefix: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
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
        let title = title
            .filter(|t| !t.trim().is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| {
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
            status: Status::Queued,
            progress: 0.0,
            error: None,
            analysis: None,
            media_prefix: None,
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

/// Store errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database failed or is unreachable. Retry later; answer 503.
    #[error("metadata store: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed at start-up. Fix the database.
    #[error("metadata store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value is malformed: a bug or a hand-edited row.
    #[error("metadata store: corrupt row: {0}")]
    Corrupt(String),
}

/// The result type of the store.
pub type Result<T> = std::result::Result<T, Error>;

/// The metadata store. Every method is one statement or one transaction.
#[async_trait::async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;
    /// Checks the store answers.
    async fn ping(&self) -> Result<()>;
    /// Checks the store takes a write (one row, overwritten): what `/readyz` asks, so a full disk
    /// or a failing device shows there while reads still work.
    async fn probe_write(&self, now: i64) -> Result<()>;
    /// Inserts a queued track and its job, in one transaction.
    async fn create_track(&self, track: &Track, job_id: &str, now: i64) -> Result<()>;
    /// One track.
    async fn track(&self, id: TrackId) -> Result<Option<Track>>;
    /// Up to `limit` tracks, newest first, older than `before` when given, of `owner` when given.
    async fn tracks(
        &self,
        before: Option<TrackId>,
        limit: i64,
        owner: Option<&str>,
    ) -> Result<Vec<Track>>;
    /// The published renditions of a track.
    async fn renditions(&self, id: TrackId) -> Result<Vec<Rendition>>;
    /// Deletes a track with its renditions and job, recording `track.deleted`. Returns the row as
    /// it was.
    async fn delete_track(&self, id: TrackId, now: i64) -> Result<Option<Track>>;
    /// Claims the next runnable job: queued and due, or running with an expired lease.
    async fn claim(&self, lease_id: &str, lease_until: i64, now: i64) -> Result<Option<Job>>;
    /// Extends a lease. False when the lease was lost.
    async fn heartbeat(&self, job: &Job, lease_until: i64) -> Result<bool>;
    /// Records the attempt's staging prefix before anything is written there.
    async fn set_staging(&self, job: &Job, prefix: &str) -> Result<bool>;
    /// Records progress; sets the track `processing`.
    async fn set_progress(&self, job: &Job, progress: f64, now: i64) -> Result<bool>;
    /// Publishes: the track becomes `ready` with its renditions and package prefix, the job is
    /// removed and `track.ready` is recorded, in one transaction, if the lease still holds and the
    /// track still exists.
    async fn publish(
        &self,
        job: &Job,
        prefix: &str,
        analysis: &str,
        renditions: &[Rendition],
        now: i64,
    ) -> Result<bool>;
    /// Ends an attempt that failed; a final failure records `track.failed`.
    async fn fail(&self, job: &Job, failure: &Failure, now: i64) -> Result<bool>;
    /// Gives a job back (shutdown): queued again, due now, this attempt not counted.
    async fn release(&self, job: &Job, now: i64) -> Result<bool>;
    /// Queues a `failed` track again with a fresh count of attempts, in one transaction. False
    /// when the track is not failed (or has no job left).
    async fn retry_track(&self, id: TrackId, now: i64) -> Result<bool>;
    /// Job counts by state.
    async fn job_counts(&self) -> Result<JobCounts>;

    /// Inserts a playlist with its entries and records `playlist.created`.
    async fn create_playlist(&self, p: &Playlist, entries: &[Entry], now: i64) -> Result<()>;
    /// One playlist and its entries in order.
    async fn playlist(&self, id: PlaylistId) -> Result<Option<(Playlist, Vec<Entry>)>>;
    /// Up to `limit` playlists, newest first, older than `before` when given.
    async fn playlists(
        &self,
        filter: PlaylistFilter<'_>,
        before: Option<PlaylistId>,
        limit: i64,
    ) -> Result<Vec<Playlist>>;
    /// Replaces a playlist's fields (and its entries when given) if its version is still
    /// `expected`, and records `playlist.updated`. False when another update won.
    async fn update_playlist(
        &self,
        p: &Playlist,
        entries: Option<&[Entry]>,
        expected: i64,
        now: i64,
    ) -> Result<bool>;
    /// Deletes a playlist if its version is `expected` (any version when `None`) and records
    /// `playlist.deleted`. False when it is gone or another update won.
    async fn delete_playlist(
        &self,
        id: PlaylistId,
        expected: Option<i64>,
        now: i64,
    ) -> Result<bool>;

    /// Claims up to `limit` due outbox events for `lease_until`.
    async fn claim_events(
        &self,
        lease_id: &str,
        lease_until: i64,
        now: i64,
        limit: i64,
    ) -> Result<Vec<OutboxEvent>>;
    /// Records a dispatch attempt under its lease: delivered everywhere, retry at `next_at`, or
    /// dead.
    async fn settle_event(&self, event: &OutboxEvent, outcome: &Settle) -> Result<bool>;
    /// Events, newest first, in `state` when given.
    async fn events(&self, state: Option<&str>, limit: i64) -> Result<Vec<OutboxEvent>>;
    /// Sends an event again to every destination. False when there is no such event.
    async fn replay_event(&self, id: &str, now: i64) -> Result<bool>;

    /// The response stored for an idempotency key.
    async fn idempotent(&self, subject: &str, key: &str) -> Result<Option<Idempotent>>;
    /// Stores the response for an idempotency key; false when the key was taken meanwhile.
    async fn remember(&self, subject: &str, key: &str, r: &Idempotent, now: i64) -> Result<bool>;
    /// Forgets idempotency keys created before `before`.
    async fn forget_idempotency(&self, before: i64) -> Result<u64>;

    /// Inserts a resumable upload.
    async fn create_upload(&self, u: &Upload) -> Result<()>;
    /// One resumable upload.
    async fn upload(&self, id: &str) -> Result<Option<Upload>>;
    /// Moves an upload's offset from `from` to `to`; false when it was not at `from`.
    async fn advance_upload(&self, id: &str, from: i64, to: i64) -> Result<bool>;
    /// Completes an upload: the track and its job are inserted and the upload points at the
    /// track, in one transaction. False when another request completed it first.
    async fn complete_upload(
        &self,
        id: &str,
        track: &Track,
        job_id: &str,
        now: i64,
    ) -> Result<bool>;
    /// Removes an upload row.
    async fn delete_upload(&self, id: &str) -> Result<bool>;
    /// Uploads that expired before `now`.
    async fn expired_uploads(&self, now: i64) -> Result<Vec<Upload>>;
}

impl Serialize for TrackId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for PlaylistId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A playlist id (UUIDv7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlaylistId(pub uuid::Uuid);

impl PlaylistId {
    /// A fresh, time-ordered id.
    pub fn new() -> PlaylistId {
        PlaylistId(uuid::Uuid::now_v7())
    }
}

impl Default for PlaylistId {
    fn default() -> Self {
        PlaylistId::new()
    }
}

impl fmt::Display for PlaylistId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for PlaylistId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        uuid::Uuid::try_parse(s).map(PlaylistId)
    }
}

impl PlaylistId {
    /// The id spelled exactly as it is written, or `None` (see [`TrackId::parse_canonical`]).
    pub fn parse_canonical(s: &str) -> Option<PlaylistId> {
        canonical(s).map(PlaylistId)
    }
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

/// Opens the store named by `url` (`sqlite:` or `postgres://`), creating a SQLite file and its
/// directory if needed.
pub async fn open(url: &str, max_connections: u32) -> Result<Arc<dyn MetadataStore>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            sql::SqliteStore::open(url, max_connections).await?,
        ))
    } else {
        Ok(Arc::new(sql::PgStore::open(url, max_connections).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_have_one_spelling() {
        let id = TrackId::new();
        let text = id.to_string();
        assert_eq!(TrackId::parse_canonical(&text), Some(id));
        for other in [
            text.to_uppercase(),
            text.replace('-', ""),
            format!("{{{text}}}"),
            format!("urn:uuid:{text}"),
            format!("{text} "),
        ] {
            assert!(other.parse::<TrackId>().is_ok() || other.ends_with(' '));
            assert_eq!(TrackId::parse_canonical(&other), None, "{other}");
            assert_eq!(PlaylistId::parse_canonical(&other), None, "{other}");
        }
    }
}
