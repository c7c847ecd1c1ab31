//! Who is calling the control API, and how often.
//!
//! `Authorization: Bearer <credential>` carries either a service API key (an admin) or a JWT
//! ([`crate::auth::jwt`]). Rates are limited per client IP before anything else, and per subject
//! once the caller is known ([`crate::auth::Limiters`]), answering 429 with `Retry-After`.

use super::problem::Problem;
use crate::app::App;
use crate::auth::{Identity, JwtError, Role};
use crate::store::PlaylistFilter;
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
        if let Err(wait) = app.auth.limits.check_ip(addr.ip()) {
            return too_many(wait, "client address").into_response();
        }
    }
    next.run(req).await
}

/// The caller of a control request: an API key or a valid JWT, within its rate limit.
pub fn authenticate(app: &App, headers: &HeaderMap) -> Result<Identity, Problem> {
    let h = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let identity = if let Some(key_id) = app.auth.api_keys.check(h) {
        Identity::service(key_id)
    } else {
        let token = h
            .and_then(crate::auth::bearer)
            .ok_or_else(Problem::unauthorized)?;
        match app.auth.jwt.verify(token) {
            Ok(i) => i,
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
    if let Err(wait) = app.auth.limits.check_subject(&identity.subject) {
        return Err(too_many(wait, "subject"));
    }
    Ok(identity)
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

/// Who a credential is.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The JWT's `sub`, or `key:<key id>` for an API key.
    pub subject: String,
    /// `listener`, `artist` or `admin`: what the caller may do.
    pub role: String,
}

/// The caller's subject and role, which decide what the web app shows.
#[utoipa::path(
    get, path = "/v1/me", tag = super::openapi::ME,
    responses((status = 200, description = "The caller", body = Me), super::openapi::Refusals),
    security(("bearer" = []))
)]
pub(super) async fn me(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<axum::Json<Me>, Problem> {
    let who = authenticate(&app, &headers)?;
    Ok(axum::Json(Me {
        role: who.role.as_str().to_owned(),
        subject: who.subject,
    }))
}
