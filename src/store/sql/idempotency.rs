//! Responses kept for idempotency keys. The SQL of both backends, written once: this macro is expanded inside `sql_store!`,
//! where the row types, column lists and helpers it names are in scope.

macro_rules! idempotency_impl {
    ($name:ident, $db:ty, $migrations:literal, $begin:literal, $claim:expr, $skip_locked:literal) => {
        #[async_trait::async_trait]
        impl IdempotencyStore for $name {
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
        }
    };
}
