//! Tracks, their renditions and the job queue (with the health probes). The SQL of both backends, written once: this macro is expanded inside `sql_store!`,
//! where the row types, column lists and helpers it names are in scope.

macro_rules! tracks_impl {
    ($name:ident, $db:ty, $migrations:literal, $begin:literal, $claim:expr, $skip_locked:literal) => {
        #[async_trait::async_trait]
        impl TrackStore for $name {
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

            async fn sorted_tracks(
                &self,
                owner: Option<&str>,
                sort: TrackSort,
                descending: bool,
                offset: i64,
                limit: i64,
            ) -> Result<Vec<Track>> {
                let key = match sort {
                    TrackSort::Date => "id",
                    TrackSort::Title => "lower(title)",
                    // Not packaged yet: after every length, whichever the direction.
                    TrackSort::Duration => "COALESCE(duration_ms, -1)",
                    TrackSort::Plays => {
                        "(SELECT COALESCE(SUM(p.plays), 0) FROM track_plays p WHERE p.track_id = tracks.id)"
                    }
                };
                let dir = if descending { "DESC" } else { "ASC" };
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {TRACK_COLUMNS} FROM tracks WHERE ($1 = '' OR owner = $1) \
                     ORDER BY {key} {dir}, id {dir} LIMIT $2 OFFSET $3"
                ));
                let rows: Vec<TrackRow> = sqlx::query_as(sql)
                    .bind(owner.unwrap_or(""))
                    .bind(limit)
                    .bind(offset)
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
                    traceparent: row.traceparent,
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
                found: &Found,
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
                // Tags fill what the track lacks; their title replaces only a file name's.
                let updated = sqlx::query(
                    "UPDATE tracks SET status = 'ready', progress = 1, error = NULL, analysis = $1, \
                     media_prefix = $2, updated_at = $3, \
                     title = CASE WHEN title_source = 'file' AND $5 <> '' THEN $5 ELSE title END, \
                     title_source = CASE WHEN title_source = 'file' AND $5 <> '' THEN 'tags' \
                     ELSE title_source END, \
                     artist = COALESCE(artist, $6), album = COALESCE(album, $7), \
                     year = COALESCE(year, $8), genre = COALESCE(genre, $9), \
                     track_number = COALESCE(track_number, $10), cover = COALESCE(cover, $11), \
                     duration_ms = $12 WHERE id = $4",
                )
                .bind(analysis)
                .bind(prefix)
                .bind(now)
                .bind(job.track_id.to_string())
                .bind(found.title.as_deref().unwrap_or(""))
                .bind(&found.meta.artist)
                .bind(&found.meta.album)
                .bind(found.meta.year)
                .bind(&found.meta.genre)
                .bind(found.meta.track_number)
                .bind(&found.cover)
                .bind(found.duration_ms)
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
                     lease_until = NULL, staging_prefix = NULL, last_error = NULL, traceparent = $3 \
                     WHERE track_id = $2 AND state = 'failed' \
                     AND EXISTS (SELECT 1 FROM tracks WHERE id = $2 AND status = 'failed')",
                )
                .bind(now)
                .bind(id.to_string())
                .bind(crate::telemetry::context::traceparent(&tracing::Span::current()))
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

            async fn update_track(&self, t: &Track, now: i64) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE tracks SET title = $1, visibility = $2, updated_at = $3, \
                     title_source = $5, artist = $6, album = $7, year = $8, genre = $9, \
                     track_number = $10, cover = $11 WHERE id = $4",
                )
                .bind(&t.title)
                .bind(if t.public { "public" } else { "private" })
                .bind(now)
                .bind(t.id.to_string())
                .bind(&t.title_source)
                .bind(&t.meta.artist)
                .bind(&t.meta.album)
                .bind(t.meta.year)
                .bind(&t.meta.genre)
                .bind(t.meta.track_number)
                .bind(&t.cover)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn job_counts(&self) -> Result<JobCounts> {
                let rows: Vec<(String, i64, Option<i64>)> =
                    sqlx::query_as("SELECT state, COUNT(*), MIN(run_at) FROM jobs GROUP BY state")
                        .fetch_all(&self.pool)
                        .await?;
                let mut c = JobCounts::default();
                for (state, n, oldest) in rows {
                    match state.as_str() {
                        "queued" => {
                            c.queued = n;
                            c.oldest_due = oldest;
                        }
                        "running" => c.running = n,
                        "failed" => c.failed = n,
                        _ => {}
                    }
                }
                Ok(c)
            }
        }
    };
}
