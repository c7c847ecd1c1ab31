//! [`MetadataStore`]: the seam between the server and its database.

use super::account::{Account, Created, Hit, NewAccount, Search, Session};
use super::error::Result;
use super::event::Event;
use super::ids::{ChannelId, PlaylistId, TrackId};
use super::rows::*;

/// The metadata store: every concern's part. Every method is one statement or one transaction.
pub trait MetadataStore:
    TrackStore
    + PlaylistStore
    + ChannelStore
    + OutboxStore
    + IdempotencyStore
    + UploadStore
    + StationStore
    + AccountStore
    + SearchStore
    + Send
    + Sync
    + 'static
{
}

impl<T> MetadataStore for T where
    T: TrackStore
        + PlaylistStore
        + ChannelStore
        + OutboxStore
        + IdempotencyStore
        + UploadStore
        + StationStore
        + AccountStore
        + SearchStore
        + Send
        + Sync
        + 'static
{
}

/// Tracks, their renditions and the job queue (with the health probes).
#[async_trait::async_trait]
pub trait TrackStore: Send + Sync {
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
    /// A page of tracks (`owner`'s, or all) in the asked order, after `offset` of them.
    async fn sorted_tracks(
        &self,
        owner: Option<&str>,
        sort: TrackSort,
        descending: bool,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Track>>;
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
    /// track still exists. What packaging `found` fills the fields the track lacks; its title
    /// replaces a title taken from the file name.
    async fn publish(
        &self,
        job: &Job,
        prefix: &str,
        analysis: &str,
        renditions: &[Rendition],
        found: &Found,
        now: i64,
    ) -> Result<bool>;
    /// Ends an attempt that failed; a final failure records `track.failed`.
    async fn fail(&self, job: &Job, failure: &Failure, now: i64) -> Result<bool>;
    /// Gives a job back (shutdown): queued again, due now, this attempt not counted.
    async fn release(&self, job: &Job, now: i64) -> Result<bool>;
    /// Queues a `failed` track again with a fresh count of attempts, in one transaction. False
    /// when the track is not failed (or has no job left).
    async fn retry_track(&self, id: TrackId, now: i64) -> Result<bool>;
    /// Writes a track's title (and its source), visibility, metadata and cover. False when there
    /// is no such track.
    async fn update_track(&self, t: &Track, now: i64) -> Result<bool>;
    /// Job counts by state.
    async fn job_counts(&self) -> Result<JobCounts>;
}

/// Playlists and their entries, with optimistic versions.
#[async_trait::async_trait]
pub trait PlaylistStore: Send + Sync {
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
    /// A page of playlists in the asked order, after `offset` of them: by title, by length
    /// (their ready tracks'), or by plays (their tracks', all time).
    async fn sorted_playlists(
        &self,
        filter: PlaylistFilter<'_>,
        sort: TrackSort,
        descending: bool,
        offset: i64,
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
}

/// Live channels, and the leases that place each on one node.
#[async_trait::async_trait]
pub trait ChannelStore: Send + Sync {
    /// Inserts a channel and records `channel.created`.
    async fn create_channel(&self, c: &Channel, now: i64) -> Result<()>;
    /// One channel.
    async fn channel(&self, id: ChannelId) -> Result<Option<Channel>>;
    /// The channel with this slug.
    async fn channel_by_slug(&self, slug: &str) -> Result<Option<Channel>>;
    /// Up to `limit` channels, newest first, older than `before` when given.
    async fn channels(
        &self,
        filter: PlaylistFilter<'_>,
        before: Option<ChannelId>,
        limit: i64,
    ) -> Result<Vec<Channel>>;
    /// A page of channels by title or by listening (every minute recorded), after `offset` of
    /// them; `Date` and `Duration` order by creation.
    async fn sorted_channels(
        &self,
        filter: PlaylistFilter<'_>,
        sort: TrackSort,
        descending: bool,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Channel>>;
    /// Every channel with an auto-DJ playlist or a programme: the ones some node should keep on
    /// air.
    async fn autodj_channels(&self) -> Result<Vec<Channel>>;
    /// Channels that relay another server's stream.
    async fn relay_channels(&self) -> Result<Vec<Channel>>;
    /// Replaces a channel's fields (stream key included) if its version is still `expected`, and
    /// records `channel.updated`. False when another update won. A slug another channel has is
    /// [`Error::SlugTaken`](super::Error::SlugTaken), as it is on create.
    async fn update_channel(&self, c: &Channel, expected: i64, now: i64) -> Result<bool>;
    /// Deletes a channel and its lease, recording `channel.deleted`. Returns the row as it was.
    async fn delete_channel(&self, id: ChannelId, now: i64) -> Result<Option<Channel>>;
    /// Takes or renews the lease of a channel for `node` until `until`, with the `status` the
    /// other nodes show, unless another node holds an unexpired one. Returns the holder after the
    /// attempt: `node` itself when it got it.
    async fn acquire_lease(
        &self,
        id: ChannelId,
        node: &str,
        url: &str,
        status: &str,
        until: i64,
        now: i64,
    ) -> Result<Lease>;
    /// Gives up `node`'s lease of a channel.
    async fn release_lease(&self, id: ChannelId, node: &str) -> Result<()>;
    /// The unexpired lease of a channel.
    async fn lease(&self, id: ChannelId, now: i64) -> Result<Option<Lease>>;
    /// Stores a new listener token of a channel.
    async fn create_listen_token(&self, t: &ListenToken) -> Result<()>;
    /// One listener token.
    async fn listen_token(&self, id: uuid::Uuid) -> Result<Option<ListenToken>>;
    /// A channel's listener tokens, newest first.
    async fn listen_tokens(&self, channel: ChannelId) -> Result<Vec<ListenToken>>;
    /// Revokes a channel's listener token; false when it has none by that id or it was revoked.
    async fn revoke_listen_token(
        &self,
        channel: ChannelId,
        id: uuid::Uuid,
        now: i64,
    ) -> Result<bool>;
    /// Records an event on its own (a live channel's state, which no row holds).
    async fn record_event(&self, event: &Event, now: i64) -> Result<()>;
}

/// The event outbox: claims under a lease, settlements, replays.
#[async_trait::async_trait]
pub trait OutboxStore: Send + Sync {
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
}

/// Responses kept for idempotency keys.
#[async_trait::async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// The response stored for an idempotency key.
    async fn idempotent(&self, subject: &str, key: &str) -> Result<Option<Idempotent>>;
    /// Stores the response for an idempotency key; false when the key was taken meanwhile.
    async fn remember(&self, subject: &str, key: &str, r: &Idempotent, now: i64) -> Result<bool>;
    /// Forgets idempotency keys created before `before`.
    async fn forget_idempotency(&self, before: i64) -> Result<u64>;
}

/// Resumable uploads.
#[async_trait::async_trait]
pub trait UploadStore: Send + Sync {
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

/// What a channel does as a station: its programme, what went on air, its recorded shows and
/// its listener statistics.
#[async_trait::async_trait]
pub trait StationStore: Send + Sync {
    /// The channel's programme document and its version, if it has one.
    async fn schedule(&self, channel: ChannelId) -> Result<Option<(String, i64)>>;
    /// Writes the programme when its version is `expected` (0: it has none), giving the new
    /// version; `None` when another write came first.
    async fn put_schedule(
        &self,
        channel: ChannelId,
        doc: &str,
        expected: Option<i64>,
        now: i64,
    ) -> Result<Option<i64>>;
    /// Removes the channel's programme, history, recordings' rows and statistics.
    async fn forget_station(&self, channel: ChannelId) -> Result<()>;
    /// Ends the item on air at `at` and records `next` as on air, in one transaction.
    async fn on_air(&self, channel: ChannelId, at: i64, next: Option<&HistoryItem>) -> Result<()>;
    /// Up to `limit` items, newest first, older than `before` when given.
    async fn history(
        &self,
        channel: ChannelId,
        before: Option<uuid::Uuid>,
        limit: i64,
    ) -> Result<Vec<HistoryItem>>;
    /// Starts a recording.
    async fn create_recording(&self, r: &Recording) -> Result<()>;
    /// Writes a recording's state, reason, track, end and length.
    async fn update_recording(&self, r: &Recording) -> Result<()>;
    /// One recording.
    async fn recording(&self, id: uuid::Uuid) -> Result<Option<Recording>>;
    /// Up to `limit` recordings of a channel, newest first, older than `before` when given.
    async fn recordings(
        &self,
        channel: ChannelId,
        before: Option<uuid::Uuid>,
        limit: i64,
    ) -> Result<Vec<Recording>>;
    /// Adds (or replaces) listener minutes.
    async fn add_listener_minutes(&self, rows: &[ListenerMinute]) -> Result<()>;
    /// A channel's listener minutes in [from, to).
    async fn listener_minutes(
        &self,
        channel: ChannelId,
        from: i64,
        to: i64,
    ) -> Result<Vec<ListenerMinute>>;
    /// Adds `plays` to a track's count of the UTC day starting at `day` (Unix ms).
    async fn add_plays(&self, track: TrackId, day: i64, plays: i64) -> Result<()>;
    /// A track's plays by day in [from, to).
    async fn plays(&self, track: TrackId, from: i64, to: i64) -> Result<Vec<(i64, i64)>>;
    /// Deletes statistics and history older than `before`; how many rows went.
    async fn forget_stats(&self, before: i64) -> Result<u64>;
}

/// Local accounts, their sign-in sessions and invitations.
#[async_trait::async_trait]
pub trait AccountStore: Send + Sync {
    /// Makes an account, in one transaction: its email must be free and, when the request names
    /// an invitation, that invitation unused and unexpired (it is then used up). The first
    /// account of the store becomes admin when `first_is_admin`.
    async fn create_account(&self, new: &NewAccount<'_>, now: i64) -> Result<Created>;
    /// The account with this email key (see [`Account::email_key`]).
    async fn account_by_email(&self, email_key: &str) -> Result<Option<Account>>;
    /// One account.
    async fn account(&self, id: uuid::Uuid) -> Result<Option<Account>>;
    /// The account with this handle.
    async fn account_by_handle(&self, handle: &str) -> Result<Option<Account>>;
    /// The account an OpenID provider's `(issuer, subject)` signed in as before.
    async fn account_by_oidc(&self, issuer: &str, subject: &str) -> Result<Option<Account>>;
    /// Whether a handle is taken.
    async fn handle_taken(&self, handle: &str) -> Result<bool>;
    /// Links an account to an OpenID provider's `(issuer, subject)`; false if there is no such
    /// account.
    async fn link_oidc(
        &self,
        id: uuid::Uuid,
        issuer: &str,
        subject: &str,
        now: i64,
    ) -> Result<bool>;
    /// Sets an account's role (an OpenID provider's role claim is the authority on it).
    async fn set_role(&self, id: uuid::Uuid, role: &str, now: i64) -> Result<bool>;
    /// Starts a session.
    async fn create_session(&self, s: &Session) -> Result<()>;
    /// A session unexpired at `now`, with its account.
    async fn session(&self, token_hash: &str, now: i64) -> Result<Option<(Session, Account)>>;
    /// Ends a session; whether it existed.
    async fn delete_session(&self, token_hash: &str) -> Result<bool>;
    /// Deletes sessions and invitations expired before `now`, and revocations of tokens that
    /// have expired since; how many rows went.
    async fn forget_sessions(&self, now: i64) -> Result<u64>;
    /// Revokes the JWT `jti` until `expires_at` (Unix ms). Revoking it again keeps the later
    /// expiry.
    async fn revoke_token(&self, jti: &str, expires_at: i64, now: i64) -> Result<()>;
    /// Revocations recorded at or after `since` (Unix ms): `(jti, expires_at, revoked_at)`.
    async fn revocations_since(&self, since: i64) -> Result<Vec<(String, i64, i64)>>;
    /// Stores an invitation (its code's SHA-256, hex) made by `by`.
    async fn create_invite(
        &self,
        code_hash: &str,
        by: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<()>;
}

/// Full-text search and browsing of tracks, playlists, channels and artists: SQLite FTS5 or
/// PostgreSQL `tsvector`.
#[async_trait::async_trait]
pub trait SearchStore: Send + Sync {
    /// Public items (and the viewer's own) matching every term, in the asked order.
    async fn search(&self, q: &Search<'_>) -> Result<Vec<Hit>>;
}
