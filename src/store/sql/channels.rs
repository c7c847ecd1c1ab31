//! Live channels and their leases. The SQL of both backends, written once: this macro is
//! expanded inside `sql_store!`, where the row types, column lists and helpers it names are in
//! scope.

macro_rules! channels_impl {
    ($name:ident, $db:ty, $migrations:literal, $begin:literal, $claim:expr, $skip_locked:literal) => {
        #[async_trait::async_trait]
        impl ChannelStore for $name {
            async fn create_channel(&self, c: &Channel, now: i64) -> Result<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                sqlx::query(
                    "INSERT INTO channels (id, owner, title, description, visibility, playlist_id, \
                     shuffle, renditions, key_hash, version, created_at, updated_at, slug, \
                     mp3_kbps, max_listeners, relay_url, station) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                     $17)",
                )
                .bind(c.id.to_string())
                .bind(&c.owner)
                .bind(&c.title)
                .bind(&c.description)
                .bind(if c.public { "public" } else { "private" })
                .bind(c.playlist_id.map(|p| p.to_string()))
                .bind(i64::from(c.shuffle))
                .bind(c.renditions.join(","))
                .bind(&c.key_hash)
                .bind(c.version)
                .bind(c.created_at)
                .bind(c.updated_at)
                .bind(&c.slug)
                .bind(i64::from(c.mp3_kbps))
                .bind(i64::from(c.max_listeners))
                .bind(&c.relay_url)
                .bind(station_json(&c.station))
                .execute(&mut *tx)
                .await
                .map_err(slug_taken)?;
                Self::emit(&mut tx, &Event::ChannelCreated(channel_ref(c)), now).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn channel(&self, id: ChannelId) -> Result<Option<Channel>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {CHANNEL_COLUMNS} FROM channels WHERE id = $1"
                ));
                let row: Option<ChannelRow> = sqlx::query_as(sql)
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(Channel::try_from).transpose()
            }

            async fn channel_by_slug(&self, slug: &str) -> Result<Option<Channel>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {CHANNEL_COLUMNS} FROM channels WHERE slug = $1"
                ));
                let row: Option<ChannelRow> = sqlx::query_as(sql)
                    .bind(slug)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(Channel::try_from).transpose()
            }

            async fn channels(
                &self,
                filter: PlaylistFilter<'_>,
                before: Option<ChannelId>,
                limit: i64,
            ) -> Result<Vec<Channel>> {
                let (owner, vis) = filter_binds(filter);
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {CHANNEL_COLUMNS} FROM channels WHERE ($1 = '' OR id < $1) \
                     AND ($2 = '' OR owner = $2) AND ($3 = '' OR visibility = $3) \
                     ORDER BY id DESC LIMIT $4"
                ));
                let rows: Vec<ChannelRow> = sqlx::query_as(sql)
                    .bind(before.map(|b| b.to_string()).unwrap_or_default())
                    .bind(owner)
                    .bind(vis)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(Channel::try_from).collect()
            }

            async fn sorted_channels(
                &self,
                filter: PlaylistFilter<'_>,
                sort: TrackSort,
                descending: bool,
                offset: i64,
                limit: i64,
            ) -> Result<Vec<Channel>> {
                let (owner, vis) = filter_binds(filter);
                let key = match sort {
                    TrackSort::Title => "lower(title)",
                    // Listening: mean listeners summed over every minute recorded.
                    TrackSort::Plays => {
                        "(SELECT COALESCE(SUM(m.mean), 0) FROM listener_minutes m \
                         WHERE m.channel_id = channels.id AND m.dimension = 'protocol')"
                    }
                    TrackSort::Date | TrackSort::Duration => "id",
                };
                let dir = if descending { "DESC" } else { "ASC" };
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {CHANNEL_COLUMNS} FROM channels WHERE ($1 = '' OR owner = $1) \
                     AND ($2 = '' OR visibility = $2) ORDER BY {key} {dir}, id {dir} \
                     LIMIT $3 OFFSET $4"
                ));
                let rows: Vec<ChannelRow> = sqlx::query_as(sql)
                    .bind(owner)
                    .bind(vis)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(Channel::try_from).collect()
            }

            async fn autodj_channels(&self) -> Result<Vec<Channel>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {CHANNEL_COLUMNS} FROM channels WHERE playlist_id IS NOT NULL \
                     OR id IN (SELECT channel_id FROM schedules) ORDER BY id"
                ));
                let rows: Vec<ChannelRow> = sqlx::query_as(sql).fetch_all(&self.pool).await?;
                rows.into_iter().map(Channel::try_from).collect()
            }

            async fn relay_channels(&self) -> Result<Vec<Channel>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {CHANNEL_COLUMNS} FROM channels WHERE relay_url IS NOT NULL \
                     ORDER BY id"
                ));
                let rows: Vec<ChannelRow> = sqlx::query_as(sql).fetch_all(&self.pool).await?;
                rows.into_iter().map(Channel::try_from).collect()
            }

            async fn update_channel(&self, c: &Channel, expected: i64, now: i64) -> Result<bool> {
                let mut tx = self.pool.begin_with($begin).await?;
                let r = sqlx::query(
                    "UPDATE channels SET title = $1, description = $2, visibility = $3, \
                     playlist_id = $4, shuffle = $5, renditions = $6, key_hash = $7, version = $8, \
                     updated_at = $9, slug = $12, mp3_kbps = $13, max_listeners = $14, \
                     relay_url = $15, station = $16 \
                     WHERE id = $10 AND version = $11",
                )
                .bind(&c.title)
                .bind(&c.description)
                .bind(if c.public { "public" } else { "private" })
                .bind(c.playlist_id.map(|p| p.to_string()))
                .bind(i64::from(c.shuffle))
                .bind(c.renditions.join(","))
                .bind(&c.key_hash)
                .bind(c.version)
                .bind(c.updated_at)
                .bind(c.id.to_string())
                .bind(expected)
                .bind(&c.slug)
                .bind(i64::from(c.mp3_kbps))
                .bind(i64::from(c.max_listeners))
                .bind(&c.relay_url)
                .bind(station_json(&c.station))
                .execute(&mut *tx)
                .await
                .map_err(slug_taken)?;
                if r.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::emit(&mut tx, &Event::ChannelUpdated(channel_ref(c)), now).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn delete_channel(&self, id: ChannelId, now: i64) -> Result<Option<Channel>> {
                let mut tx = self.pool.begin_with($begin).await?;
                let sql = sqlx::AssertSqlSafe(format!(
                    "DELETE FROM channels WHERE id = $1 RETURNING {CHANNEL_COLUMNS}"
                ));
                let row: Option<ChannelRow> = sqlx::query_as(sql)
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                let c = Channel::try_from(row)?;
                for table in ["channel_leases", "listen_tokens", "schedules"] {
                    let sql = sqlx::AssertSqlSafe(format!(
                        "DELETE FROM {table} WHERE channel_id = $1"
                    ));
                    sqlx::query(sql)
                        .bind(id.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                Self::emit(&mut tx, &Event::ChannelDeleted(channel_ref(&c)), now).await?;
                tx.commit().await?;
                Ok(Some(c))
            }

            async fn acquire_lease(
                &self,
                id: ChannelId,
                node: &str,
                url: &str,
                status: &str,
                until: i64,
                now: i64,
            ) -> Result<Lease> {
                // One statement: insert, or take over when the row is ours or has expired. Two
                // nodes racing both run it; the row lock (PostgreSQL) or the one writer
                // (SQLite) orders them, and the second sees the first's unexpired lease.
                sqlx::query(
                    "INSERT INTO channel_leases (channel_id, node, url, expires_at, status) \
                     VALUES ($1, $2, $3, $4, $6) ON CONFLICT (channel_id) DO UPDATE \
                     SET node = excluded.node, url = excluded.url, \
                     expires_at = excluded.expires_at, status = excluded.status \
                     WHERE channel_leases.node = excluded.node OR channel_leases.expires_at < $5",
                )
                .bind(id.to_string())
                .bind(node)
                .bind(url)
                .bind(until)
                .bind(now)
                .bind(status)
                .execute(&self.pool)
                .await?;
                let row: LeaseRow = sqlx::query_as(
                    "SELECT node, url, expires_at, status FROM channel_leases WHERE channel_id = $1",
                )
                .bind(id.to_string())
                .fetch_one(&self.pool)
                .await?;
                Ok(row.into())
            }

            async fn release_lease(&self, id: ChannelId, node: &str) -> Result<()> {
                sqlx::query("DELETE FROM channel_leases WHERE channel_id = $1 AND node = $2")
                    .bind(id.to_string())
                    .bind(node)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn lease(&self, id: ChannelId, now: i64) -> Result<Option<Lease>> {
                let row: Option<LeaseRow> = sqlx::query_as(
                    "SELECT node, url, expires_at, status FROM channel_leases \
                     WHERE channel_id = $1 AND expires_at >= $2",
                )
                .bind(id.to_string())
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(Lease::from))
            }

            async fn create_listen_token(&self, t: &ListenToken) -> Result<()> {
                sqlx::query(
                    "INSERT INTO listen_tokens (id, channel_id, label, created_by, created_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(t.id.to_string())
                .bind(t.channel_id.to_string())
                .bind(&t.label)
                .bind(&t.created_by)
                .bind(t.created_at)
                .bind(t.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn listen_token(&self, id: uuid::Uuid) -> Result<Option<ListenToken>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {LISTEN_TOKEN_COLUMNS} FROM listen_tokens WHERE id = $1"
                ));
                let row: Option<ListenTokenRow> = sqlx::query_as(sql)
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(ListenToken::try_from).transpose()
            }

            async fn listen_tokens(&self, channel: ChannelId) -> Result<Vec<ListenToken>> {
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {LISTEN_TOKEN_COLUMNS} FROM listen_tokens WHERE channel_id = $1 \
                     ORDER BY id DESC"
                ));
                let rows: Vec<ListenTokenRow> = sqlx::query_as(sql)
                    .bind(channel.to_string())
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(ListenToken::try_from).collect()
            }

            async fn revoke_listen_token(
                &self,
                channel: ChannelId,
                id: uuid::Uuid,
                now: i64,
            ) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE listen_tokens SET revoked_at = $1 \
                     WHERE id = $2 AND channel_id = $3 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(id.to_string())
                .bind(channel.to_string())
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected() == 1)
            }

            async fn record_event(&self, event: &Event, now: i64) -> Result<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                Self::emit(&mut tx, event, now).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}
