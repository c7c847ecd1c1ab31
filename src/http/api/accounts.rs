//! Local accounts and sign-in: `POST /v1/accounts` (registration, as `auth.registration`
//! allows), `POST /v1/sessions` (sign-in: a session cookie for the web app and a JWT for API
//! clients), `DELETE /v1/sessions/current` (sign-out), `GET /v1/me` (who the credential is) and
//! `POST /v1/invites` (an admin's single-use invitation code).

use crate::app::App;
use crate::auth::{accounts, Identity, Role};
use crate::http::access::{authenticate, require, signed_in};
use crate::http::body::json_body;
use crate::http::openapi::{Malformed, ProblemDoc, Refusals, JSON_PROBLEM, ME};
use crate::http::problem::Problem;
use crate::store::{Account, Created, NewAccount, Session};
use crate::util;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(sign_in))
        .routes(routes!(sign_out))
        .routes(routes!(me))
        .routes(routes!(invite))
        .routes(routes!(revoke))
}

/// A JWT to revoke.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Revoke {
    /// The token's `jti`. Left out: the token this request is made with.
    jti: Option<String>,
    /// The token's `exp` (Unix seconds), after which the revocation is forgotten; left out, it
    /// is kept 30 days.
    exp: Option<i64>,
}

/// Revoke a JWT by its `jti`, on every node within a second: an admin revokes any token; any
/// caller revokes the token it calls with (no `jti`). Later requests with it get 401
/// `token-revoked`.
#[utoipa::path(
    post, path = "/v1/tokens/revoke", tag = ME, request_body = Revoke,
    responses(
        (status = 204, description = "Revoked"),
        Malformed,
        (status = 403, description = "Only admins revoke others' tokens", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 422, description = "No jti to revoke, or a bad one", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn revoke(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers).await?;
    let asked: Revoke = json_body(&raw)?;
    let own = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::auth::bearer)
        .and_then(crate::auth::jwt::claims_of);
    let now = util::now_ms();
    let kept = |exp: Option<i64>| {
        exp.filter(|e| (0..=i64::MAX / 1000).contains(e))
            .map_or(now + 30 * 86_400_000, |e| e * 1000)
    };
    let (jti, until) = match asked.jti {
        Some(jti) => {
            let is_own = own
                .as_ref()
                .and_then(|c| c.get("jti"))
                .and_then(|j| j.as_str())
                == Some(jti.as_str());
            if !is_own {
                require(&who, Role::Admin, "revoking another's token")?;
            }
            (jti, kept(asked.exp))
        }
        None => {
            let claims = own.ok_or_else(|| {
                Problem::unprocessable(
                    "no-jti",
                    "name the jti to revoke, or call with the JWT to revoke",
                )
            })?;
            let jti = claims
                .get("jti")
                .and_then(|j| j.as_str())
                .ok_or_else(|| Problem::unprocessable("no-jti", "this token has no jti claim"))?
                .to_owned();
            (jti, kept(claims.get("exp").and_then(|e| e.as_i64())))
        }
    };
    if jti.is_empty() || jti.len() > 255 || jti.chars().any(char::is_control) {
        return Err(Problem::unprocessable(
            "bad-jti",
            "jti must be 1 to 255 bytes without control characters",
        ));
    }
    app.cluster.revoke(app.store.as_ref(), &jti, until).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The longest password taken: Argon2 reads all of it, so it is bounded.
const MAX_PASSWORD: usize = 1024;
/// The shortest password taken (NIST SP 800-63B 5.1.1.2 asks for at least 8).
const MIN_PASSWORD: usize = 8;

/// A new account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccountBody {
    /// Sign-in email; unique whatever its case.
    pub email: String,
    /// At least 8 characters.
    pub password: String,
    /// The name shown on the artist page and in the app, 1 to 80 characters.
    pub display_name: String,
    /// An invitation code, when registration is by invitation.
    #[serde(default)]
    pub invite: Option<String>,
}

/// Email and password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The account's email, in any case.
    pub email: String,
    /// Its password.
    pub password: String,
}

/// A local account as its owner sees it.
#[derive(Serialize, ToSchema)]
pub struct Profile {
    /// The account id.
    pub id: String,
    /// Its email.
    pub email: String,
    /// The name shown.
    pub display_name: String,
    /// The artist page is `/a/{handle}`.
    pub handle: String,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&Account> for Profile {
    fn from(a: &Account) -> Profile {
        Profile {
            id: a.id.to_string(),
            email: a.email.clone(),
            display_name: a.display_name.clone(),
            handle: a.handle.clone(),
            created_at: util::rfc3339(a.created_at),
        }
    }
}

/// A signed-in session. The web app keeps the cookie (set with this answer) and sends `csrf` as
/// `X-CSRF-Token`; API clients send `token` as `Authorization: Bearer`.
#[derive(Serialize, ToSchema)]
pub struct SignedIn {
    /// Its account.
    pub account: Profile,
    /// `listener`, `artist` or `admin`.
    pub role: String,
    /// A JWT the API accepts like any other, for `auth.account_token_seconds`.
    pub token: String,
    /// When `token` expires, RFC 3339.
    pub expires_at: String,
    /// The session's CSRF token, for `X-CSRF-Token` on requests made with the cookie.
    pub csrf: String,
}

/// Who a credential is.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// The JWT's `sub`, `key:<key id>` for an API key, or `acct:<id>` for a local account.
    pub subject: String,
    /// `listener`, `artist` or `admin`: what the caller may do.
    pub role: String,
    /// The local account, when the caller is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<Profile>,
    /// The session's CSRF token, when the caller signed in with the session cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
}

/// An invitation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvite {
    /// Days it stays usable, 1 to 90 (7 by default).
    #[serde(default)]
    pub days: Option<u32>,
}

/// An invitation code, shown once.
#[derive(Serialize, ToSchema)]
pub struct Invite {
    /// The code, for `POST /v1/accounts` as `invite`. Used once.
    pub code: String,
    /// RFC 3339.
    pub expires_at: String,
}

fn refused(wait: std::time::Duration) -> Problem {
    let secs = wait.as_secs().max(1);
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "sign-in-limited",
        "Too many failed sign-ins",
        format!(
            "too many failed sign-ins for this account or from this address; retry in {secs} s"
        ),
    )
    .retry_after(secs)
}

fn wrong() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "sign-in-failed",
        "Sign-in failed",
        "the email or the password is wrong",
    )
}

/// Starts a session for `account`: the answer to give (the JWT and the CSRF token) and the
/// `Set-Cookie` value of its cookie.
pub(super) async fn open_session(
    app: &App,
    account: &Account,
) -> Result<(SignedIn, String), Problem> {
    let now = util::now_ms();
    let secret = accounts::new_secret();
    let days = app.config.auth.session_days;
    app.store
        .create_session(&Session {
            token_hash: accounts::digest(&secret),
            account_id: account.id,
            created_at: now,
            expires_at: now + (days * 86_400_000) as i64,
        })
        .await?;
    let role = Role::parse(&account.role).unwrap_or(Role::Listener);
    let ttl = app.config.auth.account_token_seconds;
    let token = app
        .auth
        .jwt
        .mint_local(&account.subject(), role, ttl, (now / 1000) as u64)
        .ok_or_else(|| Problem::unavailable("token signer", &"no local key"))?;
    let body = SignedIn {
        account: account.into(),
        role: role.as_str().into(),
        token,
        expires_at: util::rfc3339(now + (ttl * 1000) as i64),
        csrf: accounts::csrf(&secret),
    };
    Ok((body, accounts::set_cookie(&secret, days * 86_400)))
}

/// Starts a session for `account` and answers with it.
async fn start(app: &App, account: &Account, status: StatusCode) -> Result<Response, Problem> {
    let (body, cookie) = open_session(app, account).await?;
    let mut r = (status, Json(body)).into_response();
    // Base64url and fixed attributes: always a valid header value.
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Make an account, and sign in to it.
///
/// Open when `auth.registration` is `open`, with an invitation code when it is `invite`. On
/// embedded defaults the first account becomes admin.
#[utoipa::path(
    post, path = "/v1/accounts", tag = ME, request_body = NewAccountBody,
    responses(
        (status = 201, description = "Made and signed in; the session cookie is set", body = SignedIn),
        Malformed,
        (status = 403, description = "Registration is closed, or the invitation is missing, used or expired", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 409, description = "An account has this email", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 422, description = "The email, password or name is not acceptable", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 429, description = "Over the client address's rate limit", body = ProblemDoc, content_type = JSON_PROBLEM),
    ),
    security(())
)]
pub(super) async fn register(State(app): State<Arc<App>>, raw: Bytes) -> Result<Response, Problem> {
    let new: NewAccountBody = json_body(&raw)?;
    let embedded = app.dev_api_key.is_some();
    let invite = match app.config.auth.registration(embedded) {
        "open" => None,
        "invite" => Some(new.invite.as_deref().map(str::trim).unwrap_or_default()),
        _ => {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "registration-closed",
                "Registration is closed",
                "this server does not take new accounts; ask its operator",
            ))
        }
    };
    let email = new.email.trim();
    if !accounts::plausible_email(email) {
        return Err(Problem::unprocessable(
            "bad-email",
            "email must be an address such as name@example.org",
        ));
    }
    let length = new.password.chars().count();
    if length < MIN_PASSWORD || new.password.len() > MAX_PASSWORD {
        return Err(Problem::unprocessable(
            "weak-password",
            format!("the password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        ));
    }
    let name = new.display_name.trim();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(Problem::unprocessable(
            "bad-name",
            "display_name must have 1 to 80 characters, none of them control characters",
        ));
    }
    let password = new.password.clone();
    let hash = tokio::task::spawn_blocking(move || accounts::hash_password(&password))
        .await
        .map_err(|e| Problem::unavailable("password hashing", &e))?;
    let account = Account {
        id: uuid::Uuid::now_v7(),
        email: email.to_owned(),
        password_hash: Some(hash),
        display_name: name.to_owned(),
        handle: accounts::handle_from(name),
        role: app.config.auth.registration_role.clone(),
        oidc: None,
        created_at: util::now_ms(),
    };
    let code = invite.map(accounts::digest);
    let made = app
        .store
        .create_account(
            &NewAccount {
                account: &account,
                first_is_admin: embedded,
                invite: code.as_deref(),
            },
            account.created_at,
        )
        .await?;
    let account = match made {
        Created::Made { role, handle } => Account {
            role,
            handle,
            ..account
        },
        Created::EmailTaken => {
            return Err(Problem::conflict(
                "email-taken",
                "Email taken",
                "an account already has this email: sign in instead",
            ))
        }
        Created::BadInvite => {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "invite-invalid",
                "Invitation needed",
                "registration needs an invitation code that is unused and unexpired",
            ))
        }
    };
    tracing::info!(account = %account.id, role = %account.role, "account made");
    start(&app, &account, StatusCode::CREATED).await
}

/// Sign in with email and password.
///
/// The same refusal answers an unknown email and a wrong password. Too many failures for one
/// account or from one address are refused for a while (429), right password or not.
#[utoipa::path(
    post, path = "/v1/sessions", tag = ME, request_body = Credentials,
    responses(
        (status = 201, description = "Signed in; the session cookie is set", body = SignedIn),
        Malformed,
        (status = 401, description = "The email or the password is wrong", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 429, description = "Too many failed sign-ins; Retry-After says when to try again", body = ProblemDoc, content_type = JSON_PROBLEM),
    ),
    security(())
)]
pub(super) async fn sign_in(
    State(app): State<Arc<App>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    raw: Bytes,
) -> Result<Response, Problem> {
    let c: Credentials = json_body(&raw)?;
    let ip = addr.ip();
    let key = Account::email_key(&c.email);
    // With Redis the failures are counted on every node together; else by this node.
    let [by_account, by_address] = accounts::Guard::keys(&key, ip);
    let shared = app.cluster.refused(&[&by_account, &by_address]).await;
    if let Some(wait) = shared.unwrap_or_else(|| app.auth.guard.refused(&key, ip)) {
        return Err(refused(wait));
    }
    if c.password.len() > MAX_PASSWORD || key.len() > 254 {
        return Err(wrong());
    }
    let account = app.store.account_by_email(&key).await?;
    let hash = account.as_ref().and_then(|a| a.password_hash.clone());
    let password = c.password;
    let ok =
        tokio::task::spawn_blocking(move || accounts::verify_password(hash.as_deref(), &password))
            .await
            .map_err(|e| Problem::unavailable("password check", &e))?;
    match account {
        Some(a) if ok => start(&app, &a, StatusCode::CREATED).await,
        _ => {
            tracing::info!(%ip, "failed sign-in");
            let a = &app.config.auth;
            let buckets = [
                (by_account.as_str(), 1, a.sign_in_failures_per_account),
                (by_address.as_str(), 4, a.sign_in_failures_per_address),
            ];
            let counted = match app.cluster.failed(&buckets).await {
                Some(wait) => wait,
                None => app.auth.guard.failed(&key, ip),
            };
            Err(match counted {
                Some(wait) => refused(wait),
                None => wrong(),
            })
        }
    }
}

/// Sign out: end the session of the cookie, and clear it.
///
/// JWTs handed out at sign-in stay valid until they expire (`auth.account_token_seconds`).
#[utoipa::path(
    delete, path = "/v1/sessions/current", tag = ME,
    responses((status = 204, description = "Signed out (also when no session was open)")),
    security(())
)]
pub(super) async fn sign_out(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    if let Some(secret) = accounts::cookie(&headers) {
        app.store.delete_session(&accounts::digest(secret)).await?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&accounts::clear_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// The caller: its subject and role, which decide what the web app shows, and its account.
#[utoipa::path(
    get, path = "/v1/me", tag = ME,
    responses((status = 200, description = "The caller", body = Me), Refusals),
    security(("bearer" = []))
)]
pub(super) async fn me(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let cookie =
        !headers.contains_key(header::AUTHORIZATION) && accounts::cookie(&headers).is_some();
    let (who, account, csrf): (Identity, Option<Account>, Option<String>) = if cookie {
        let (who, account, secret) = signed_in(&app, &headers).await?;
        (who, Some(account), Some(accounts::csrf(&secret)))
    } else {
        let who = authenticate(&app, &headers).await?;
        let account = match who.subject.strip_prefix(Account::SUBJECT_PREFIX) {
            Some(id) => match uuid::Uuid::try_parse(id) {
                Ok(id) => app.store.account(id).await?,
                Err(_) => None,
            },
            None => None,
        };
        (who, account, None)
    };
    let mut r = Json(Me {
        role: who.role.as_str().to_owned(),
        subject: who.subject,
        account: account.as_ref().map(Profile::from),
        csrf,
    })
    .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Make a single-use invitation code (admins).
#[utoipa::path(
    post, path = "/v1/invites", tag = ME, request_body = NewInvite,
    responses(
        (status = 201, description = "The code, shown once", body = Invite),
        Malformed,
        (status = 403, description = "Only admins invite", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 422, description = "days is out of range", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn invite(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers).await?;
    require(&who, Role::Admin, "inviting")?;
    let new: NewInvite = json_body(&raw)?;
    let days = new.days.unwrap_or(7);
    if !(1..=90).contains(&days) {
        return Err(Problem::unprocessable("bad-days", "days must be 1 to 90"));
    }
    let code = crate::auth::random_b64(18);
    let now = util::now_ms();
    let expires = now + i64::from(days) * 86_400_000;
    app.store
        .create_invite(&accounts::digest(&code), &who.subject, expires, now)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Invite {
            code,
            expires_at: util::rfc3339(expires),
        }),
    )
        .into_response())
}
