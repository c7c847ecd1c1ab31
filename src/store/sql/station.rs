//! Station data: programmes, history, recordings and listener statistics. The SQL of both
//! backends, written once: this macro is expanded inside `sql_store!`.

macro_rules! station_impl {
    ($name:ident, $db:ty, $migrations:literal, $begin:literal, $claim:expr, $skip_locked:literal) => {
        #[async_trait::async_trait]
        impl StationStore for $name {
            async fn schedule(&self, channel: ChannelId) -> Result<Option<(String, i64)>> {
                let row: Option<(String, i64)> =
                    sqlx::query_as("SELECT doc, version FROM schedules WHERE channel_id = $1")
                        .bind(channel.to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row)
            }

            async fn put_schedule(
                &self,
                channel: ChannelId,
                doc: &str,
                expected: Option<i64>,
                now: i64,
            ) -> Result<Option<i64>> {
                let mut tx = self.pool.begin_with($begin).await?;
                let current: Option<(i64,)> =
                    sqlx::query_as("SELECT version FROM schedules WHERE channel_id = $1")
                        .bind(channel.to_string())
                        .fetch_optional(&mut *tx)
                        .await?;
                let current = current.map_or(0, |c| c.0);
                if expected.is_some_and(|e| e != current) {
                    tx.rollback().await?;
                    return Ok(None);
                }
                let version = current + 1;
                sqlx::query(
                    "INSERT INTO schedules (channel_id, doc, version, updated_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (channel_id) DO UPDATE \
                     SET doc = excluded.doc, version = excluded.version, \
                     updated_at = excluded.updated_at",
                )
                .bind(channel.to_string())
                .bind(doc)
                .bind(version)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some(version))
            }

            async fn forget_station(&self, channel: ChannelId) -> Result<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                for table in ["schedules", "history", "recordings", "listener_minutes"] {
                    let sql = sqlx::AssertSqlSafe(format!(
                        "DELETE FROM {table} WHERE channel_id = $1"
                    ));
                    sqlx::query(sql)
                        .bind(channel.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn on_air(
                &self,
                channel: ChannelId,
                at: i64,
                next: Option<&HistoryItem>,
            ) -> Result<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                sqlx::query(
                    "UPDATE history SET ended_at = $2 WHERE channel_id = $1 AND ended_at IS NULL",
                )
                .bind(channel.to_string())
                .bind(at)
                .execute(&mut *tx)
                .await?;
                if let Some(h) = next {
                    sqlx::query(
                        "INSERT INTO history (id, channel_id, kind, title, artist, track_id, \
                         started_at, ended_at, listeners) VALUES ($1, $2, $3, $4, $5, $6, $7, \
                         NULL, $8)",
                    )
                    .bind(h.id.to_string())
                    .bind(h.channel_id.to_string())
                    .bind(&h.kind)
                    .bind(&h.title)
                    .bind(&h.artist)
                    .bind(h.track_id.map(|t| t.to_string()))
                    .bind(h.started_at)
                    .bind(h.listeners)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn history(
                &self,
                channel: ChannelId,
                before: Option<uuid::Uuid>,
                limit: i64,
            ) -> Result<Vec<HistoryItem>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {HISTORY_COLUMNS} FROM history WHERE channel_id = $1 \
                     AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3"
                ));
                let rows: Vec<HistoryRow> = sqlx::query_as(sql)
                    .bind(channel.to_string())
                    .bind(before.map(|b| b.to_string()).unwrap_or_default())
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(HistoryItem::try_from).collect()
            }

            async fn create_recording(&self, r: &Recording) -> Result<()> {
                sqlx::query(
                    "INSERT INTO recordings (id, channel_id, owner, title, state, reason, \
                     track_id, started_at, ended_at, seconds) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(r.id.to_string())
                .bind(r.channel_id.to_string())
                .bind(&r.owner)
                .bind(&r.title)
                .bind(&r.state)
                .bind(&r.reason)
                .bind(r.track_id.map(|t| t.to_string()))
                .bind(r.started_at)
                .bind(r.ended_at)
                .bind(r.seconds)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn update_recording(&self, r: &Recording) -> Result<()> {
                sqlx::query(
                    "UPDATE recordings SET title = $2, state = $3, reason = $4, track_id = $5, \
                     ended_at = $6, seconds = $7 WHERE id = $1",
                )
                .bind(r.id.to_string())
                .bind(&r.title)
                .bind(&r.state)
                .bind(&r.reason)
                .bind(r.track_id.map(|t| t.to_string()))
                .bind(r.ended_at)
                .bind(r.seconds)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn recording(&self, id: uuid::Uuid) -> Result<Option<Recording>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {RECORDING_COLUMNS} FROM recordings WHERE id = $1"
                ));
                let row: Option<RecordingRow> = sqlx::query_as(sql)
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(Recording::try_from).transpose()
            }

            async fn recordings(
                &self,
                channel: ChannelId,
                before: Option<uuid::Uuid>,
                limit: i64,
            ) -> Result<Vec<Recording>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {RECORDING_COLUMNS} FROM recordings WHERE channel_id = $1 \
                     AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3"
                ));
                let rows: Vec<RecordingRow> = sqlx::query_as(sql)
                    .bind(channel.to_string())
                    .bind(before.map(|b| b.to_string()).unwrap_or_default())
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(Recording::try_from).collect()
            }

            async fn add_listener_minutes(&self, rows: &[ListenerMinute]) -> Result<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                for m in rows {
                    sqlx::query(
                        "INSERT INTO listener_minutes (channel_id, minute, dimension, name, peak, \
                         mean, sessions) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (channel_id, minute, dimension, name) DO UPDATE \
                         SET peak = excluded.peak, mean = excluded.mean, \
                         sessions = excluded.sessions",
                    )
                    .bind(m.channel_id.to_string())
                    .bind(m.minute)
                    .bind(&m.dimension)
                    .bind(&m.name)
                    .bind(m.peak)
                    .bind(m.mean)
                    .bind(m.sessions)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn listener_minutes(
                &self,
                channel: ChannelId,
                from: i64,
                to: i64,
            ) -> Result<Vec<ListenerMinute>> {
                let rows: Vec<MinuteRow> = sqlx::query_as(
                    "SELECT channel_id, minute, dimension, name, peak, mean, sessions \
                     FROM listener_minutes WHERE channel_id = $1 AND minute >= $2 AND minute < $3 \
                     ORDER BY minute, dimension, name",
                )
                .bind(channel.to_string())
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(ListenerMinute::try_from).collect()
            }

            async fn add_plays(&self, track: TrackId, day: i64, plays: i64) -> Result<()> {
                sqlx::query(
                    "INSERT INTO track_plays (track_id, day, plays) VALUES ($1, $2, $3) \
                     ON CONFLICT (track_id, day) DO UPDATE \
                     SET plays = track_plays.plays + excluded.plays",
                )
                .bind(track.to_string())
                .bind(day)
                .bind(plays)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn plays(&self, track: TrackId, from: i64, to: i64) -> Result<Vec<(i64, i64)>> {
                let rows: Vec<(i64, i64)> = sqlx::query_as(
                    "SELECT day, plays FROM track_plays WHERE track_id = $1 AND day >= $2 \
                     AND day < $3 ORDER BY day",
                )
                .bind(track.to_string())
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            async fn forget_stats(&self, before: i64) -> Result<u64> {
                let mut n = 0;
                for sql in [
                    "DELETE FROM listener_minutes WHERE minute < $1",
                    "DELETE FROM track_plays WHERE day < $1",
                    "DELETE FROM history WHERE started_at < $1 AND ended_at IS NOT NULL",
                ] {
                    n += sqlx::query(sql)
                        .bind(before)
                        .execute(&self.pool)
                        .await?
                        .rows_affected();
                }
                Ok(n)
            }
        }
    };
}
