//! Listener tokens: what a private channel's owner hands to a smart speaker, a directory or a
//! paying listener, so that a mount URL works for up to a year (a playback token lasts minutes).
//! Each opens the channel's progressive mounts only, and is revoked on its own: new connections
//! with it are refused, and this node's streams opened with it end at once.

use super::views::{mount_urls, writable};
use crate::app::App;
use crate::auth::Scope;
use crate::http::body::json_body;
use crate::http::openapi::{Malformed, NoChannel, NotOwner, Refusals, CHANNELS};
use crate::http::problem::Problem;
use crate::store::ListenToken;
use crate::util;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// The longest a listener token lasts: a year.
pub const MAX_TTL_SECONDS: u64 = 365 * 24 * 3600;

/// `POST /v1/channels/{id}/listen-tokens`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewListenToken {
    /// Seconds it lasts: 60 to 31 536 000 (a year).
    pub ttl_seconds: u64,
    /// What it is for (`kitchen speaker`, `TuneIn`): up to 200 characters (control characters
    /// are dropped).
    #[serde(default)]
    pub label: String,
}

/// A listener token as its channel's owner sees it.
#[derive(Serialize, ToSchema)]
pub struct ListenTokenView {
    /// Its id (`DELETE /v1/channels/{id}/listen-tokens/{token_id}` revokes it).
    pub id: String,
    /// What it is for.
    pub label: String,
    /// Who made it.
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
    /// RFC 3339, once revoked.
    pub revoked_at: Option<String>,
    /// The token, for `?token=`: only in the answer that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The channel's mounts and playlist files with the token in their query: only in the
    /// answer that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub mounts: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ListenTokenView {
    fn of(t: &ListenToken) -> ListenTokenView {
        ListenTokenView {
            id: t.id.to_string(),
            label: t.label.clone(),
            created_by: t.created_by.clone(),
            created_at: util::rfc3339(t.created_at),
            expires_at: util::rfc3339(t.expires_at),
            revoked_at: t.revoked_at.map(util::rfc3339),
            token: None,
            mounts: None,
        }
    }
}

/// A channel's listener tokens.
#[derive(Serialize, ToSchema)]
pub struct ListenTokenList {
    /// Newest first, revoked ones included until they expire.
    pub items: Vec<ListenTokenView>,
}

/// Make a listener token for a channel's mounts (its owner or an admin). The token is shown only
/// in this answer.
#[utoipa::path(
    post, path = "/v1/channels/{id}/listen-tokens", tag = CHANNELS, request_body = NewListenToken,
    params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 201, description = "Created, with the token and the mount URLs that carry it", body = ListenTokenView, headers(("Location" = String))),
        Malformed,
        NotOwner,
        NoChannel,
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn create(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Problem> {
    let (who, c) = writable(&app, &headers, &id).await?;
    let new: NewListenToken = json_body(&raw)?;
    if !(60..=MAX_TTL_SECONDS).contains(&new.ttl_seconds) {
        return Err(Problem::unprocessable(
            "invalid-field",
            format!("ttl_seconds takes 60 to {MAX_TTL_SECONDS} (a year)"),
        ));
    }
    if new.label.chars().count() > 200 {
        return Err(Problem::unprocessable(
            "invalid-field",
            "label takes up to 200 characters",
        ));
    }
    let label = util::clean_text(&new.label, 200);
    let now = util::now_ms();
    let t = ListenToken {
        id: uuid::Uuid::now_v7(),
        channel_id: c.id,
        label,
        created_by: who.subject.clone(),
        created_at: now,
        expires_at: now + new.ttl_seconds as i64 * 1000,
        revoked_at: None,
    };
    app.store.create_listen_token(&t).await?;
    let token = app.auth.tokens.sign(
        Scope::Listen(c.id),
        t.id.as_u128(),
        (t.expires_at / 1000) as u64,
    );
    let mut mounts = mount_urls(&app, &c);
    for url in mounts.values_mut() {
        if let Some(u) = url.as_str() {
            *url = format!("{u}?token={token}").into();
        }
    }
    let mut view = ListenTokenView::of(&t);
    view.token = Some(token);
    view.mounts = Some(mounts);
    let mut r = (StatusCode::CREATED, Json(view)).into_response();
    let location = format!("/v1/channels/{}/listen-tokens/{}", c.id, t.id);
    if let Ok(l) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, l);
    }
    Ok(r)
}

/// A channel's listener tokens, without the tokens themselves.
#[utoipa::path(
    get, path = "/v1/channels/{id}/listen-tokens", tag = CHANNELS,
    params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 200, description = "Its tokens, newest first", body = ListenTokenList),
        NotOwner,
        NoChannel,
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn list(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ListenTokenList>, Problem> {
    let (_, c) = writable(&app, &headers, &id).await?;
    let now = util::now_ms();
    let items = app
        .store
        .listen_tokens(c.id)
        .await?
        .iter()
        .filter(|t| t.expires_at > now)
        .map(ListenTokenView::of)
        .collect();
    Ok(Json(ListenTokenList { items }))
}

/// Revoke a listener token: connections with it are refused, and this node's streams opened
/// with it end at once.
#[utoipa::path(
    delete, path = "/v1/channels/{id}/listen-tokens/{token_id}", tag = CHANNELS,
    params(("id" = String, Path, description = "Channel id"), ("token_id" = String, Path, description = "Listener token id")),
    responses(
        (status = 204, description = "Revoked"),
        NotOwner,
        (status = 404, description = "No such channel, or no such live token of it", body = crate::http::openapi::ProblemDoc, content_type = crate::http::openapi::JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn revoke(
    State(app): State<Arc<App>>,
    Path((id, token_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let (_, c) = writable(&app, &headers, &id).await?;
    let missing =
        || Problem::not_found(format!("channel {} has no listener token {token_id}", c.id));
    let tid = uuid::Uuid::try_parse(&token_id).map_err(|_| missing())?;
    if !app
        .store
        .revoke_listen_token(c.id, tid, util::now_ms())
        .await?
    {
        return Err(missing());
    }
    crate::http::media::mounts::revoked(tid);
    Ok(StatusCode::NO_CONTENT)
}
