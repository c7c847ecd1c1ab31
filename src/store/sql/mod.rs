//! The SQLite and PostgreSQL backends. One macro writes both from the same SQL; they differ in the
//! pool set-up, the migrations directory, how a write transaction starts and how a job is claimed.

mod open;
mod rows;

use super::contract::MetadataStore;
use super::error::{Error, Result};
use super::event::{Event, PlaylistState};
use super::ids::{PlaylistId, TrackId};
use super::rows::{
    Entry, Failure, Idempotent, Job, JobCounts, OutboxEvent, Playlist, PlaylistFilter, Rendition,
    Settle, Track, Upload,
};
use rows::*;

macro_rules! sql_store {
    ($name:ident, $db:ty, $migrations:literal, $begin:literal, $claim:expr, $skip_locked:literal) => {
        /// A metadata store backend.
        pub struct $name {
            pool: sqlx::Pool<$db>,
        }

        #[async_trait::async_trait]
        impl MetadataStore for $name {
            async fn migrate(&self) -> Result<()> {
                sqlx::migrate!($migrations).run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn probe_write(&self, now: i64) -> Result<()> {
                sqlx::query(
                    "INSERT INTO health (id, probed_at) VALUES (1, $1) \
                     ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
                )
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn create_track(&self, t: &Track, job_id: &str, now: i64) -> Result<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                Self::insert_track(&mut tx, t, job_id, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn track(&self, id: TrackId) -> Result<Option<Track>> {
                let sql = sqlx::AssertSqlSafe(format!("SELECT {TRACK_COLUMNS} FROM tracks WHERE id = $1"));
                let row: Option<TrackRow> = sqlx::query_as(sql)
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(Track::try_from).transpose()
            }

            async fn tracks(
                &self,
                before: Option<TrackId>,
                limit: i64,
                owner: Option<&str>,
            ) -> Result<Vec<Track>> {
                // Absent filters compare against values every row passes: '' sorts before any id
                // and a NULL owner matches everything.
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {TRACK_COLUMNS} FROM tracks WHERE ($1 = '' OR id < $1) \
                     AND ($2 = '' OR owner = $2) ORDER BY id DESC LIMIT $3"
                ));
                let rows: Vec<TrackRow> = sqlx::query_as(sql)
                    .bind(before.map(|b| b.to_string()).unwrap_or_default())
                    .bind(owner.unwrap_or(""))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(Track::try_from).collect()
            }

            async fn renditions(&self, id: TrackId) -> Result<Vec<Rendition>> {
                let rows: Vec<RenditionRow> = sqlx::query_as(
                    "SELECT name, codecs, sample_rate, channels, bandwidth, average_bandwidth, \
                     segments FROM renditions WHERE track_id = $1 ORDER BY name",
                )
                .bind(id.to_string())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| Rendition {
                        name: r.name,
                        codecs: r.codecs,
                        sample_rate: r.sample_rate,
                        channels: r.channels,
                        bandwidth: r.bandwidth,
                        average_bandwidth: r.average_bandwidth,
                        segments: r.segments,
                    })
                    .collect())
            }

            async fn delete_track(&self, id: TrackId, now: i64) -> Result<Option<Track>> {
                let mut tx = self.pool.begin_with($begin).await?;
                let sql = sqlx::AssertSqlSafe(format!(
                    "DELETE FROM tracks WHERE id = $1 RETURNING {TRACK_COLUMNS}"
                ));
                let row: Option<TrackRow> = sqlx::query_as(sql)
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                // Cascades would do this too; saying it keeps both backends identical even where
                // foreign keys are off.
                sqlx::query("DELETE FROM renditions WHERE track_id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM jobs WHERE track_id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                let track = row.map(Track::try_from).transpose()?;
                if let Some(t) = &track {
                    let e = Event::TrackDeleted { track_id: id, owner: t.owner.clone() };
                    Self::emit(&mut tx, &e, now).await?;
                }
                tx.commit().await?;
                Ok(track)
            }

            async fn claim(&self, lease_id: &str, lease_until: i64, now: i64) -> Result<Option<Job>> {
                let row: Option<JobRow> = sqlx::query_as($claim)
                    .bind(lease_id)
                    .bind(lease_until)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some(Job {
                    track_id: row
                        .track_id
                        .parse()
                        .map_err(|_| Error::Corrupt(format!("job track id {}", row.track_id)))?,
                    id: row.id,
                    attempts: row.attempts,
                    lease_id: lease_id.to_string(),
                    stale_staging: row.staging_prefix,
                }))
            }

            async fn heartbeat(&self, job: &Job, lease_until: i64) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND lease_id = $3 AND state = 'running'",
                )
                .bind(lease_until)
                .bind(&job.id)
                .bind(&job.lease_id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn set_staging(&self, job: &Job, prefix: &str) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE jobs SET staging_prefix = $1 WHERE id = $2 AND lease_id = $3 AND state = 'running'",
                )
                .bind(prefix)
                .bind(&job.id)
                .bind(&job.lease_id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn set_progress(&self, job: &Job, progress: f64, now: i64) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE tracks SET status = 'processing', progress = $1, updated_at = $2 \
                     WHERE id = $3 AND EXISTS (SELECT 1 FROM jobs WHERE id = $4 AND lease_id = $5)",
                )
                .bind(progress)
                .bind(now)
                .bind(job.track_id.to_string())
                .bind(&job.id)
                .bind(&job.lease_id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn publish(
                &self,
                job: &Job,
                prefix: &str,
                analysis: &str,
                renditions: &[Rendition],
                now: i64,
            ) -> Result<bool> {
                let mut tx = self.pool.begin_with($begin).await?;
                // Removing the job under its lease is the claim check: if another worker took it
                // over, or the track was deleted, nothing is published.
                let gone = sqlx::query("DELETE FROM jobs WHERE id = $1 AND lease_id = $2 AND state = 'running'")
                    .bind(&job.id)
                    .bind(&job.lease_id)
                    .execute(&mut *tx)
                    .await?;
                if gone.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                let updated = sqlx::query(
                    "UPDATE tracks SET status = 'ready', progress = 1, error = NULL, analysis = $1, \
                     media_prefix = $2, updated_at = $3 WHERE id = $4",
                )
                .bind(analysis)
                .bind(prefix)
                .bind(now)
                .bind(job.track_id.to_string())
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                let owner: (String,) = sqlx::query_as("SELECT owner FROM tracks WHERE id = $1")
                    .bind(job.track_id.to_string())
                    .fetch_one(&mut *tx)
                    .await?;
                let e = Event::TrackReady { track_id: job.track_id, owner: owner.0 };
                Self::emit(&mut tx, &e, now).await?;
                for r in renditions {
                    sqlx::query(
                        "INSERT INTO renditions (track_id, name, codecs, sample_rate, channels, \
                         bandwidth, average_bandwidth, segments) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(job.track_id.to_string())
                    .bind(&r.name)
                    .bind(&r.codecs)
                    .bind(r.sample_rate)
                    .bind(r.channels)
                    .bind(r.bandwidth)
                    .bind(r.average_bandwidth)
                    .bind(r.segments)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn fail(&self, job: &Job, failure: &Failure, now: i64) -> Result<bool> {
                let mut tx = self.pool.begin_with($begin).await?;
                let r = match failure {
                    Failure::Retry { at, error } => {
                        sqlx::query(
                            "UPDATE jobs SET state = 'queued', run_at = $1, lease_id = NULL, \
                             lease_until = NULL, staging_prefix = NULL, last_error = $2 \
                             WHERE id = $3 AND lease_id = $4",
                        )
                        .bind(at)
                        .bind(error)
                        .bind(&job.id)
                        .bind(&job.lease_id)
                        .execute(&mut *tx)
                        .await?
                    }
                    Failure::Final(error) => {
                        let r = sqlx::query(
                            "UPDATE jobs SET state = 'failed', lease_id = NULL, lease_until = NULL, \
                             staging_prefix = NULL, last_error = $1 WHERE id = $2 AND lease_id = $3",
                        )
                        .bind(error)
                        .bind(&job.id)
                        .bind(&job.lease_id)
                        .execute(&mut *tx)
                        .await?;
                        if r.rows_affected() == 1 {
                            let owner: Option<(String,)> = sqlx::query_as(
                                "UPDATE tracks SET status = 'failed', error = $1, updated_at = $2 \
                                 WHERE id = $3 RETURNING owner",
                            )
                            .bind(error)
                            .bind(now)
                            .bind(job.track_id.to_string())
                            .fetch_optional(&mut *tx)
                            .await?;
                            if let Some((owner,)) = owner {
                                let e = Event::TrackFailed {
                                    track_id: job.track_id,
                                    owner,
                                    error: error.to_string(),
                                };
                                Self::emit(&mut tx, &e, now).await?;
                            }
                        }
                        r
                    }
                };
                tx.commit().await?;
                Ok(r.rows_affected() == 1)
            }

            async fn release(&self, job: &Job, now: i64) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE jobs SET state = 'queued', run_at = $1, lease_id = NULL, lease_until = NULL, \
                     staging_prefix = NULL, attempts = attempts - 1 WHERE id = $2 AND lease_id = $3",
                )
                .bind(now)
                .bind(&job.id)
                .bind(&job.lease_id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn retry_track(&self, id: TrackId, now: i64) -> Result<bool> {
                let mut tx = self.pool.begin_with($begin).await?;
                let r = sqlx::query(
                    "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $1, lease_id = NULL, \
                     lease_until = NULL, staging_prefix = NULL, last_error = NULL \
                     WHERE track_id = $2 AND state = 'failed' \
                     AND EXISTS (SELECT 1 FROM tracks WHERE id = $2 AND status = 'failed')",
                )
                .bind(now)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
                if r.rows_affected() == 1 {
                    sqlx::query(
                        "UPDATE tracks SET status = 'queued', error = NULL, progress = 0, \
                         updated_at = $1 WHERE id = $2",
                    )
                    .bind(now)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(r.rows_affected() == 1)
            }

            async fn job_counts(&self) -> Result<JobCounts> {
                let rows: Vec<(String, i64)> =
                    sqlx::query_as("SELECT state, COUNT(*) FROM jobs GROUP BY state")
                        .fetch_all(&self.pool)
                        .await?;
                let mut c = JobCounts::default();
                for (state, n) in rows {
                    match state.as_str() {
                        "queued" => c.queued = n,
                        "running" => c.running = n,
                        "failed" => c.failed = n,
                        _ => {}
                    }
                }
                Ok(c)
            }

            async fn create_playlist(&self, p: &Playlist, entries: &[Entry], now: i64) -> Result<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                sqlx::query(
                    "INSERT INTO playlists (id, owner, title, description, visibility, version, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(p.id.to_string())
                .bind(&p.owner)
                .bind(&p.title)
                .bind(&p.description)
                .bind(visibility(p))
                .bind(p.version)
                .bind(p.created_at)
                .bind(p.updated_at)
                .execute(&mut *tx)
                .await?;
                Self::write_entries(&mut tx, p.id, entries).await?;
                let e = Event::PlaylistCreated(PlaylistState::of(p, Some(entries)));
                Self::emit(&mut tx, &e, now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn playlist(&self, id: PlaylistId) -> Result<Option<(Playlist, Vec<Entry>)>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {PLAYLIST_COLUMNS} FROM playlists WHERE id = $1"
                ));
                let row: Option<PlaylistRow> = sqlx::query_as(sql)
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let p = Playlist::try_from(row)?;
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT entry_id, track_id FROM playlist_entries WHERE playlist_id = $1 \
                     ORDER BY position",
                )
                .bind(id.to_string())
                .fetch_all(&self.pool)
                .await?;
                let entries = rows
                    .into_iter()
                    .map(|(e, t)| {
                        Ok(Entry {
                            id: e.parse().map_err(|_| Error::Corrupt(format!("entry id {e}")))?,
                            track_id: t
                                .parse()
                                .map_err(|_| Error::Corrupt(format!("entry track id {t}")))?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Some((p, entries)))
            }

            async fn playlists(
                &self,
                filter: PlaylistFilter<'_>,
                before: Option<PlaylistId>,
                limit: i64,
            ) -> Result<Vec<Playlist>> {
                let (owner, vis) = match filter {
                    PlaylistFilter::All => ("", ""),
                    PlaylistFilter::Owner(o) => (o, ""),
                    PlaylistFilter::Public => ("", "public"),
                };
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {PLAYLIST_COLUMNS} FROM playlists WHERE ($1 = '' OR id < $1) \
                     AND ($2 = '' OR owner = $2) AND ($3 = '' OR visibility = $3) \
                     ORDER BY id DESC LIMIT $4"
                ));
                let rows: Vec<PlaylistRow> = sqlx::query_as(sql)
                    .bind(before.map(|b| b.to_string()).unwrap_or_default())
                    .bind(owner)
                    .bind(vis)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(Playlist::try_from).collect()
            }

            async fn update_playlist(
                &self,
                p: &Playlist,
                entries: Option<&[Entry]>,
                expected: i64,
                now: i64,
            ) -> Result<bool> {
                let mut tx = self.pool.begin_with($begin).await?;
                let r = sqlx::query(
                    "UPDATE playlists SET title = $1, description = $2, visibility = $3, \
                     version = $4, updated_at = $5 WHERE id = $6 AND version = $7",
                )
                .bind(&p.title)
                .bind(&p.description)
                .bind(visibility(p))
                .bind(p.version)
                .bind(p.updated_at)
                .bind(p.id.to_string())
                .bind(expected)
                .execute(&mut *tx)
                .await?;
                if r.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                if let Some(entries) = entries {
                    sqlx::query("DELETE FROM playlist_entries WHERE playlist_id = $1")
                        .bind(p.id.to_string())
                        .execute(&mut *tx)
                        .await?;
                    Self::write_entries(&mut tx, p.id, entries).await?;
                }
                let e = Event::PlaylistUpdated(PlaylistState::of(p, entries));
                Self::emit(&mut tx, &e, now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn delete_playlist(
                &self,
                id: PlaylistId,
                expected: Option<i64>,
                now: i64,
            ) -> Result<bool> {
                let mut tx = self.pool.begin_with($begin).await?;
                let owner: Option<(String,)> = sqlx::query_as(
                    "DELETE FROM playlists WHERE id = $1 AND ($2 < 0 OR version = $2) RETURNING owner",
                )
                .bind(id.to_string())
                .bind(expected.unwrap_or(-1))
                .fetch_optional(&mut *tx)
                .await?;
                let Some((owner,)) = owner else {
                    tx.rollback().await?;
                    return Ok(false);
                };
                sqlx::query("DELETE FROM playlist_entries WHERE playlist_id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                let e = Event::PlaylistDeleted { playlist_id: id, owner };
                Self::emit(&mut tx, &e, now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn claim_events(
                &self,
                lease_id: &str,
                lease_until: i64,
                now: i64,
                limit: i64,
            ) -> Result<Vec<OutboxEvent>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "UPDATE outbox SET lease_id = $1, lease_until = $2 WHERE id IN \
                     (SELECT id FROM outbox WHERE state = 'pending' AND next_at <= $3 \
                      AND (lease_until IS NULL OR lease_until < $3) ORDER BY id LIMIT $4 {}) \
                     RETURNING {EVENT_COLUMNS}",
                    $skip_locked
                ));
                let rows: Vec<EventRow> = sqlx::query_as(sql)
                    .bind(lease_id)
                    .bind(lease_until)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                let mut events = rows
                    .into_iter()
                    .map(OutboxEvent::try_from)
                    .collect::<Result<Vec<_>>>()?;
                events.sort_by(|a, b| a.id.cmp(&b.id));
                Ok(events)
            }

            async fn settle_event(&self, e: &OutboxEvent, outcome: &Settle) -> Result<bool> {
                let lease = e.lease_id.as_deref().unwrap_or("");
                let (state, delivered, next_at, error) = match outcome {
                    Settle::Delivered { delivered } => ("delivered", delivered.clone(), None, None),
                    Settle::Retry { delivered, next_at, error } => {
                        ("pending", delivered.clone(), Some(*next_at), Some(error.as_str()))
                    }
                    Settle::Dead { delivered, error } => ("dead", delivered.clone(), None, Some(error.as_str())),
                };
                let delivered = serde_json::to_string(&delivered).expect("strings serialise");
                let r = sqlx::query(
                    "UPDATE outbox SET state = $1, delivered = $2, next_at = COALESCE($3, next_at), \
                     last_error = $4, attempts = attempts + 1, lease_id = NULL, lease_until = NULL \
                     WHERE id = $5 AND lease_id = $6",
                )
                .bind(state)
                .bind(delivered)
                .bind(next_at)
                .bind(error)
                .bind(&e.id)
                .bind(lease)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn events(&self, state: Option<&str>, limit: i64) -> Result<Vec<OutboxEvent>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {EVENT_COLUMNS} FROM outbox WHERE ($1 = '' OR state = $1) \
                     ORDER BY id DESC LIMIT $2"
                ));
                let rows: Vec<EventRow> = sqlx::query_as(sql)
                    .bind(state.unwrap_or(""))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(OutboxEvent::try_from).collect()
            }

            async fn replay_event(&self, id: &str, now: i64) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE outbox SET state = 'pending', attempts = 0, delivered = '[]', \
                     next_at = $1, lease_id = NULL, lease_until = NULL, last_error = NULL WHERE id = $2",
                )
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn idempotent(&self, subject: &str, key: &str) -> Result<Option<Idempotent>> {
                let row: Option<(String, i64, String)> = sqlx::query_as(
                    "SELECT fingerprint, status, body FROM idempotency WHERE subject = $1 AND key = $2",
                )
                .bind(subject)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(fingerprint, status, body)| Idempotent {
                    fingerprint,
                    status: u16::try_from(status).unwrap_or(200),
                    body,
                }))
            }

            async fn remember(&self, subject: &str, key: &str, r: &Idempotent, now: i64) -> Result<bool> {
                let done = sqlx::query(
                    "INSERT INTO idempotency (subject, key, fingerprint, status, body, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subject, key) DO NOTHING",
                )
                .bind(subject)
                .bind(key)
                .bind(&r.fingerprint)
                .bind(i64::from(r.status))
                .bind(&r.body)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn forget_idempotency(&self, before: i64) -> Result<u64> {
                let r = sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected())
            }

            async fn create_upload(&self, u: &Upload) -> Result<()> {
                sqlx::query(
                    "INSERT INTO uploads (id, owner, length, upload_offset, metadata, track_id, \
                     created_at, expires_at) VALUES ($1, $2, $3, $4, $5, NULL, $6, $7)",
                )
                .bind(&u.id)
                .bind(&u.owner)
                .bind(u.length)
                .bind(u.offset)
                .bind(&u.metadata)
                .bind(u.created_at)
                .bind(u.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn upload(&self, id: &str) -> Result<Option<Upload>> {
                let sql = sqlx::AssertSqlSafe(format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1"));
                let row: Option<UploadRow> = sqlx::query_as(sql)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(Upload::try_from).transpose()
            }

            async fn advance_upload(&self, id: &str, from: i64, to: i64) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE uploads SET upload_offset = $1 WHERE id = $2 AND upload_offset = $3 \
                     AND track_id IS NULL",
                )
                .bind(to)
                .bind(id)
                .bind(from)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn complete_upload(&self, id: &str, t: &Track, job_id: &str, now: i64) -> Result<bool> {
                let mut tx = self.pool.begin_with($begin).await?;
                let r = sqlx::query(
                    "UPDATE uploads SET track_id = $1 WHERE id = $2 AND track_id IS NULL \
                     AND upload_offset = length",
                )
                .bind(t.id.to_string())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if r.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::insert_track(&mut tx, t, job_id, now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn delete_upload(&self, id: &str) -> Result<bool> {
                let r = sqlx::query("DELETE FROM uploads WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn expired_uploads(&self, now: i64) -> Result<Vec<Upload>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE expires_at < $1 LIMIT 100"
                ));
                let rows: Vec<UploadRow> = sqlx::query_as(sql).bind(now).fetch_all(&self.pool).await?;
                rows.into_iter().map(Upload::try_from).collect()
            }
        }

        impl $name {
            async fn insert_track(
                tx: &mut sqlx::Transaction<'static, $db>,
                t: &Track,
                job_id: &str,
                now: i64,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO tracks (id, owner, title, filename, content_type, size_bytes, \
                     original_key, status, progress, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9)",
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
                .execute(&mut **tx)
                .await?;
                sqlx::query(
                    "INSERT INTO jobs (id, track_id, state, attempts, run_at, created_at) \
                     VALUES ($1, $2, 'queued', 0, $3, $3)",
                )
                .bind(job_id)
                .bind(t.id.to_string())
                .bind(now)
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

sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    "./migrations/sqlite",
    "BEGIN IMMEDIATE",
    CLAIM_SQLITE,
    ""
);
sql_store!(
    PgStore,
    sqlx::Postgres,
    "./migrations/postgres",
    "BEGIN",
    CLAIM_POSTGRES,
    "FOR UPDATE SKIP LOCKED"
);
