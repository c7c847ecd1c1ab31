//! Resumable uploads. The SQL of both backends, written once: this macro is expanded inside `sql_store!`,
//! where the row types, column lists and helpers it names are in scope.

macro_rules! uploads_impl {
    ($name:ident, $db:ty, $migrations:literal, $begin:literal, $claim:expr, $skip_locked:literal) => {
        #[async_trait::async_trait]
        impl UploadStore for $name {
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
                let sql = sqlx::AssertSqlSafe(format!(
                    "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1"
                ));
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

            async fn complete_upload(
                &self,
                id: &str,
                t: &Track,
                job_id: &str,
                now: i64,
            ) -> Result<bool> {
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
                let rows: Vec<UploadRow> =
                    sqlx::query_as(sql).bind(now).fetch_all(&self.pool).await?;
                rows.into_iter().map(Upload::try_from).collect()
            }
        }
    };
}
