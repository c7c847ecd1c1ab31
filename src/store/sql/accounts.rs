//! Local accounts, sessions and invitations. The SQL of both backends, written once: this macro
//! is expanded inside `sql_store!`.

macro_rules! accounts_impl {
    ($name:ident, $db:ty, $migrations:literal, $begin:literal, $claim:expr, $skip_locked:literal) => {
        #[async_trait::async_trait]
        impl AccountStore for $name {
            async fn create_account(&self, new: &NewAccount<'_>, now: i64) -> Result<Created> {
                let a = new.account;
                let mut tx = self.pool.begin_with($begin).await?;
                let taken: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM accounts WHERE email_key = $1")
                        .bind(Account::email_key(&a.email))
                        .fetch_optional(&mut *tx)
                        .await?;
                if taken.is_some() {
                    tx.rollback().await?;
                    return Ok(Created::EmailTaken);
                }
                if let Some(code) = new.invite {
                    let used = sqlx::query(
                        "UPDATE invites SET used_by = $1, used_at = $2 \
                         WHERE code_hash = $3 AND used_by IS NULL AND expires_at > $2",
                    )
                    .bind(a.id.to_string())
                    .bind(now)
                    .bind(code)
                    .execute(&mut *tx)
                    .await?;
                    if used.rows_affected() == 0 {
                        tx.rollback().await?;
                        return Ok(Created::BadInvite);
                    }
                }
                let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM accounts")
                    .fetch_one(&mut *tx)
                    .await?;
                let role = if count == 0 && new.first_is_admin {
                    "admin".to_string()
                } else {
                    a.role.clone()
                };
                let mut handle = a.handle.clone();
                for n in 2.. {
                    let held: Option<(String,)> =
                        sqlx::query_as("SELECT id FROM accounts WHERE handle = $1")
                            .bind(&handle)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if held.is_none() {
                        break;
                    }
                    handle = format!("{}-{n}", a.handle);
                }
                let (issuer, subject) = a.oidc.clone().unzip();
                sqlx::query(
                    "INSERT INTO accounts (id, email, email_key, password_hash, display_name, \
                     handle, role, oidc_issuer, oidc_subject, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
                )
                .bind(a.id.to_string())
                .bind(&a.email)
                .bind(Account::email_key(&a.email))
                .bind(&a.password_hash)
                .bind(&a.display_name)
                .bind(&handle)
                .bind(&role)
                .bind(issuer)
                .bind(subject)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Created::Made { role, handle })
            }

            async fn account_by_email(&self, email_key: &str) -> Result<Option<Account>> {
                self.account_where("email_key = $1", email_key).await
            }

            async fn account(&self, id: uuid::Uuid) -> Result<Option<Account>> {
                self.account_where("id = $1", &id.to_string()).await
            }

            async fn account_by_handle(&self, handle: &str) -> Result<Option<Account>> {
                self.account_where("handle = $1", handle).await
            }

            async fn account_by_oidc(
                &self,
                issuer: &str,
                subject: &str,
            ) -> Result<Option<Account>> {
                let row: Option<AccountRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts \
                     WHERE oidc_issuer = $1 AND oidc_subject = $2"
                )))
                .bind(issuer)
                .bind(subject)
                .fetch_optional(&self.pool)
                .await?;
                row.map(Account::try_from).transpose()
            }

            async fn handle_taken(&self, handle: &str) -> Result<bool> {
                Ok(self.account_by_handle(handle).await?.is_some())
            }

            async fn link_oidc(
                &self,
                id: uuid::Uuid,
                issuer: &str,
                subject: &str,
                now: i64,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE accounts SET oidc_issuer = $2, oidc_subject = $3, updated_at = $4 \
                     WHERE id = $1",
                )
                .bind(id.to_string())
                .bind(issuer)
                .bind(subject)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_role(&self, id: uuid::Uuid, role: &str, now: i64) -> Result<bool> {
                let done =
                    sqlx::query("UPDATE accounts SET role = $2, updated_at = $3 WHERE id = $1")
                        .bind(id.to_string())
                        .bind(role)
                        .bind(now)
                        .execute(&self.pool)
                        .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_session(&self, s: &Session) -> Result<()> {
                sqlx::query(
                    "INSERT INTO sessions (token_hash, account_id, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&s.token_hash)
                .bind(s.account_id.to_string())
                .bind(s.created_at)
                .bind(s.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn session(
                &self,
                token_hash: &str,
                now: i64,
            ) -> Result<Option<(Session, Account)>> {
                let row: Option<(String, i64, i64)> = sqlx::query_as(
                    "SELECT account_id, created_at, expires_at FROM sessions \
                     WHERE token_hash = $1 AND expires_at > $2",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                let Some((account_id, created_at, expires_at)) = row else {
                    return Ok(None);
                };
                let Some(account) = self.account_where("id = $1", &account_id).await? else {
                    return Ok(None);
                };
                let session = Session {
                    token_hash: token_hash.to_owned(),
                    account_id: account.id,
                    created_at,
                    expires_at,
                };
                Ok(Some((session, account)))
            }

            async fn delete_session(&self, token_hash: &str) -> Result<bool> {
                let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn forget_sessions(&self, now: i64) -> Result<u64> {
                let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                let invites =
                    sqlx::query("DELETE FROM invites WHERE expires_at <= $1 AND used_by IS NULL")
                        .bind(now)
                        .execute(&self.pool)
                        .await?;
                let revoked = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(sessions.rows_affected() + invites.rows_affected() + revoked.rows_affected())
            }

            async fn revoke_token(&self, jti: &str, expires_at: i64, now: i64) -> Result<()> {
                sqlx::query(
                    "INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (jti) DO UPDATE SET revoked_at = $3, \
                     expires_at = CASE WHEN revoked_tokens.expires_at > $2 \
                     THEN revoked_tokens.expires_at ELSE $2 END",
                )
                .bind(jti)
                .bind(expires_at)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn revocations_since(&self, since: i64) -> Result<Vec<(String, i64, i64)>> {
                Ok(sqlx::query_as(
                    "SELECT jti, expires_at, revoked_at FROM revoked_tokens WHERE revoked_at >= $1",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn create_invite(
                &self,
                code_hash: &str,
                by: &str,
                expires_at: i64,
                now: i64,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO invites (code_hash, created_by, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(code_hash)
                .bind(by)
                .bind(now)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }

        impl $name {
            async fn account_where(&self, filter: &str, value: &str) -> Result<Option<Account>> {
                let row: Option<AccountRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE {filter}"
                )))
                .bind(value)
                .fetch_optional(&self.pool)
                .await?;
                row.map(Account::try_from).transpose()
            }
        }
    };
}
