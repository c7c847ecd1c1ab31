//! Playlists and their entries, with optimistic versions. The SQL of both backends, written once: this macro is expanded inside `sql_store!`,
//! where the row types, column lists and helpers it names are in scope.

macro_rules! playlists_impl {
    ($name:ident, $db:ty, $migrations:literal, $begin:literal, $claim:expr, $skip_locked:literal) => {
        #[async_trait::async_trait]
        impl PlaylistStore for $name {
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
                let (owner, vis) = filter_binds(filter);
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

            async fn sorted_playlists(
                &self,
                filter: PlaylistFilter<'_>,
                sort: TrackSort,
                descending: bool,
                offset: i64,
                limit: i64,
            ) -> Result<Vec<Playlist>> {
                let (owner, vis) = filter_binds(filter);
                let key = match sort {
                    TrackSort::Date => "id",
                    TrackSort::Title => "lower(title)",
                    TrackSort::Duration => {
                        "(SELECT COALESCE(SUM(t.duration_ms), 0) FROM playlist_entries e \
                         JOIN tracks t ON t.id = e.track_id WHERE e.playlist_id = playlists.id)"
                    }
                    TrackSort::Plays => {
                        "(SELECT COALESCE(SUM(p.plays), 0) FROM playlist_entries e \
                         JOIN track_plays p ON p.track_id = e.track_id \
                         WHERE e.playlist_id = playlists.id)"
                    }
                };
                let dir = if descending { "DESC" } else { "ASC" };
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {PLAYLIST_COLUMNS} FROM playlists WHERE ($1 = '' OR owner = $1) \
                     AND ($2 = '' OR visibility = $2) ORDER BY {key} {dir}, id {dir} \
                     LIMIT $3 OFFSET $4"
                ));
                let rows: Vec<PlaylistRow> = sqlx::query_as(sql)
                    .bind(owner)
                    .bind(vis)
                    .bind(limit)
                    .bind(offset)
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
        }
    };
}
