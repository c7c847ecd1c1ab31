//! The SQLite and PostgreSQL backends. One macro writes both from the same SQL; they differ in the
//! pool set-up, the migrations directory, how a write transaction starts and how a job is claimed.

#[macro_use]
mod accounts;
#[macro_use]
mod channels;
#[macro_use]
mod idempotency;
#[macro_use]
mod outbox;
#[macro_use]
mod playlists;
#[macro_use]
mod station;
#[macro_use]
mod tracks;
#[macro_use]
mod uploads;

mod open;
mod rows;
#[macro_use]
mod search;

use super::account::{Account, Created, Hit, NewAccount, Search, SearchKind, SearchSort, Session};
use super::contract::{
    AccountStore, ChannelStore, IdempotencyStore, OutboxStore, PlaylistStore, SearchStore,
    StationStore, TrackStore, UploadStore,
};
use super::error::{slug_taken, Error, Result};
use super::event::{ChannelRef, Event, PlaylistState};
use super::ids::{ChannelId, PlaylistId, TrackId};
use super::rows::{
    Channel, Entry, Failure, Found, HistoryItem, Idempotent, Job, JobCounts, Lease, ListenToken,
    ListenerMinute, OutboxEvent, Playlist, PlaylistFilter, Recording, Rendition, Settle, Track,
    TrackSort, Upload,
};
use rows::*;

macro_rules! sql_store {
    ($name:ident, $db:ty, $migrations:literal, $begin:literal, $claim:expr, $skip_locked:literal, $dialect:literal) => {
        /// A metadata store backend.
        pub struct $name {
            pool: sqlx::Pool<$db>,
        }

        tracks_impl!($name, $db, $migrations, $begin, $claim, $skip_locked);
        playlists_impl!($name, $db, $migrations, $begin, $claim, $skip_locked);
        outbox_impl!($name, $db, $migrations, $begin, $claim, $skip_locked);
        idempotency_impl!($name, $db, $migrations, $begin, $claim, $skip_locked);
        uploads_impl!($name, $db, $migrations, $begin, $claim, $skip_locked);
        channels_impl!($name, $db, $migrations, $begin, $claim, $skip_locked);
        station_impl!($name, $db, $migrations, $begin, $claim, $skip_locked);
        accounts_impl!($name, $db, $migrations, $begin, $claim, $skip_locked);
        search_impl!($name, $db, $dialect);

        impl $name {
            async fn insert_track(
                tx: &mut sqlx::Transaction<'static, $db>,
                t: &Track,
                job_id: &str,
                now: i64,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO tracks (id, owner, title, filename, content_type, size_bytes, \
                     original_key, status, progress, title_source, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $10, $9, $9)",
                )
                .bind(t.id.to_string())
                .bind(&t.owner)
                .bind(&t.title)
                .bind(&t.filename)
                .bind(&t.content_type)
                .bind(t.size_bytes)
                .bind(&t.original_key)
                .bind(t.status.as_str())
                .bind(now)
                .bind(&t.title_source)
                .execute(&mut **tx)
                .await?;
                sqlx::query(
                    "INSERT INTO jobs (id, track_id, state, attempts, run_at, created_at, traceparent) \
                     VALUES ($1, $2, 'queued', 0, $3, $3, $4)",
                )
                .bind(job_id)
                .bind(t.id.to_string())
                .bind(now)
                // The request queuing the job is the current span: its trace is linked from the
                // job's.
                .bind(crate::telemetry::context::traceparent(&tracing::Span::current()))
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Writes an event to the outbox inside the caller's transaction.
            async fn emit(
                tx: &mut sqlx::Transaction<'static, $db>,
                event: &Event,
                now: i64,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO outbox (id, kind, data, state, attempts, next_at, delivered, created_at) \
                     VALUES ($1, $2, $3, 'pending', 0, $4, '[]', $4)",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(event.kind())
                .bind(event.data())
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            async fn write_entries(
                tx: &mut sqlx::Transaction<'static, $db>,
                id: PlaylistId,
                entries: &[Entry],
            ) -> Result<()> {
                for (i, e) in entries.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO playlist_entries (playlist_id, position, entry_id, track_id) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(id.to_string())
                    .bind(i as i64)
                    .bind(e.id.to_string())
                    .bind(e.track_id.to_string())
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }
        }
    };
}

fn station_json(s: &super::rows::StationSettings) -> String {
    // Plain numbers, booleans and strings: serialising cannot fail.
    serde_json::to_string(s).unwrap_or_else(|_| "{}".into())
}

/// A listing filter as the two values its SQL binds: the only owner and the only visibility,
/// `''` for any.
fn filter_binds(filter: PlaylistFilter<'_>) -> (&str, &'static str) {
    match filter {
        PlaylistFilter::All => ("", ""),
        PlaylistFilter::Owner(o) => (o, ""),
        PlaylistFilter::Public => ("", "public"),
    }
}

fn channel_ref(c: &Channel) -> ChannelRef {
    ChannelRef {
        channel_id: c.id,
        owner: c.owner.clone(),
    }
}

sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    "./migrations/sqlite",
    "BEGIN IMMEDIATE",
    CLAIM_SQLITE,
    "",
    "sqlite"
);
sql_store!(
    PgStore,
    sqlx::Postgres,
    "./migrations/postgres",
    "BEGIN",
    CLAIM_POSTGRES,
    "FOR UPDATE SKIP LOCKED",
    "postgres"
);
