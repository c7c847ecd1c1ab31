//! The event outbox: claims under a lease, settlements, replays. The SQL of both backends, written once: this macro is expanded inside `sql_store!`,
//! where the row types, column lists and helpers it names are in scope.

macro_rules! outbox_impl {
    ($name:ident, $db:ty, $migrations:literal, $begin:literal, $claim:expr, $skip_locked:literal) => {
        #[async_trait::async_trait]
        impl OutboxStore for $name {
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
        }
    };
}
