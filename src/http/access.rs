//! Who is calling the control API, and how often.
//!
//! `Authorization: Bearer <credential>` carries either a service API key (an admin) or a JWT
//! ([`crate::auth::jwt`]). Without it, the web app's session cookie names a local account
//! ([`crate::auth::accounts`]); a state-changing request made with the cookie must carry the
//! session's `X-CSRF-Token` ([`csrf`]). Rates are limited per client IP before anything else, and
//! per subject once the caller is known ([`crate::auth::Limiters`]), answering 429 with
//! `Retry-After`.

use super::problem::Problem;
use crate::app::App;
use crate::auth::{accounts, Identity, JwtError, Role};
use crate::store::{Account, PlaylistFilter};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

fn too_many(wait: std::time::Duration, whom: &str) -> Problem {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
        format!("the request rate of this {whom} is over its limit; retry in {secs} s"),
    )
    .retry_after(secs.max(1))
}

/// Middleware on `/v1`, WHEP and WHIP: the per-IP limit.
pub async fn limit_ip(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        let l = &app.config.limits;
        let ip = addr.ip();
        let shared = match l.per_ip_per_minute {
            0 => Some(Ok(())),
            n => app.cluster.take(&format!("ip:{ip}"), n, l.burst).await,
        };
        if let Err(wait) = shared.unwrap_or_else(|| app.auth.limits.check_ip(ip)) {
            return too_many(wait, "client address").into_response();
        }
    }
    next.run(req).await
}

/// Middleware on `/v1`: a state-changing request authenticated by the session cookie (no
/// `Authorization`) must carry its session's CSRF token, which another site cannot know. The
/// routes that take no credential are exempt, as the cookie authenticates nothing there: the
/// public pages' (`/v1/public/…`), signing in and making an account (a browser may still hold
/// an ended session's cookie).
pub async fn csrf(req: Request, next: Next) -> Response {
    let safe = matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    let path = req.uri().path();
    let open = path.starts_with("/v1/public/")
        || (*req.method() == axum::http::Method::POST
            && (path == "/v1/sessions" || path == "/v1/accounts"));
    let h = req.headers();
    if !safe && !open && !h.contains_key(header::AUTHORIZATION) {
        if let Some(secret) = accounts::cookie(h) {
            let given = h
                .get(accounts::CSRF_HEADER)
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            if !crate::auth::constant_time_eq(given, accounts::csrf(secret).as_bytes()) {
                return Problem::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "Forbidden",
                    "this request was made with the session cookie but without its X-CSRF-Token \
                     header (from the sign-in answer or GET /v1/me)",
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

/// Whether a request carries a credential (`Authorization`, or the session cookie): a route
/// open to anyone then answers as that caller.
pub fn has_credential(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION) || accounts::cookie(headers).is_some()
}

/// The caller of a control request: an API key, a valid JWT or a signed-in session, within its
/// rate limit.
pub async fn authenticate(app: &App, headers: &HeaderMap) -> Result<Identity, Problem> {
    let h = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let identity = if h.is_none() && accounts::cookie(headers).is_some() {
        signed_in(app, headers).await?.0
    } else if let Some(key_id) = app.auth.api_keys.check(h) {
        Identity::service(key_id)
    } else {
        let token = h
            .and_then(crate::auth::bearer)
            .ok_or_else(Problem::unauthorized)?;
        match app.auth.jwt.verify(token) {
            Ok(i) => {
                if crate::auth::jwt::jti(token).is_some_and(|j| app.cluster.is_revoked(&j)) {
                    return Err(Problem::new(
                        StatusCode::UNAUTHORIZED,
                        "token-revoked",
                        "Unauthorized",
                        "this token was revoked",
                    ));
                }
                i
            }
            Err(JwtError::NoRole(claim)) => {
                return Err(Problem::forbidden(format!(
                    "the token's {claim} claim names no role of admin, artist or listener"
                )))
            }
            Err(e) => {
                return Err(Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid-token",
                    "Unauthorized",
                    e.to_string(),
                ))
            }
        }
    };
    let l = &app.config.limits;
    let shared = match l.per_subject_per_minute {
        0 => Some(Ok(())),
        n => {
            let key = format!("subject:{}", identity.subject);
            app.cluster.take(&key, n, l.burst).await
        }
    };
    if let Err(wait) = shared.unwrap_or_else(|| app.auth.limits.check_subject(&identity.subject)) {
        return Err(too_many(wait, "subject"));
    }
    Ok(identity)
}

/// The account of the session cookie, its identity and the session's secret.
pub async fn signed_in(
    app: &App,
    headers: &HeaderMap,
) -> Result<(Identity, Account, String), Problem> {
    let secret = accounts::cookie(headers).ok_or_else(Problem::unauthorized)?;
    let ended = || {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "session-ended",
            "Unauthorized",
            "this session has ended: sign in again",
        )
    };
    let (_, account) = app
        .store
        .session(&accounts::digest(secret), crate::util::now_ms())
        .await?
        .ok_or_else(ended)?;
    let role = Role::parse(&account.role).unwrap_or(Role::Listener);
    let who = Identity {
        subject: account.subject(),
        role,
    };
    Ok((who, account, secret.to_owned()))
}

/// Refuses callers weaker than `role`.
pub fn require(who: &Identity, role: Role, what: &str) -> Result<(), Problem> {
    if who.role >= role {
        Ok(())
    } else {
        Err(Problem::forbidden(format!(
            "{what} needs the {} role; this caller is a {}",
            role.as_str(),
            who.role.as_str()
        )))
    }
}

/// What a listing shows for `scope` (`mine`, `public` or `all`; by default `public` for listeners
/// and `mine` for the rest). `all` is for admins; `what` names the listing in the refusal.
pub fn list_scope<'a>(
    who: &'a Identity,
    scope: Option<&str>,
    what: &str,
) -> Result<PlaylistFilter<'a>, Problem> {
    let scope = scope.unwrap_or(if who.role == Role::Listener {
        "public"
    } else {
        "mine"
    });
    match scope {
        "mine" => Ok(PlaylistFilter::Owner(&who.subject)),
        "public" => Ok(PlaylistFilter::Public),
        "all" => {
            require(who, Role::Admin, what)?;
            Ok(PlaylistFilter::All)
        }
        _ => Err(Problem::bad_request("scope is mine, public or all")),
    }
}
