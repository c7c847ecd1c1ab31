//! Channel CRUD: create (idempotent, with its stream key shown once), list, show, update and
//! delete.

use super::super::fields::Visibility;
use super::views::*;
use crate::app::App;
use crate::auth::Role;
use crate::http::access::{authenticate, list_scope, require};
use crate::http::body::{json_body, ListQuery};
use crate::http::idempotency::idempotent_create;
use crate::http::openapi::{
    Malformed, NoChannel, NotOwner, ProblemDoc, Refusals, CHANNELS, JSON_PROBLEM,
};
use crate::http::problem::Problem;
use crate::live::new_key;
use crate::store::{Channel, ChannelId, StationSettings, TrackSort};
use crate::util;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;

/// Create a channel (artists and admins). The answer holds the stream key, shown only here.
#[utoipa::path(
    post, path = "/v1/channels", tag = CHANNELS, request_body = NewChannel,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for the same key and body")),
    responses(
        (status = 201, description = "Created", body = ChannelView, headers(("ETag" = String), ("Location" = String))),
        Malformed,
        (status = 403, description = "Listeners cannot create channels", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 409, description = "The slug is another channel's", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 422, description = "Bad field, unknown playlist, or Idempotency-Key reused", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn create(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers).await?;
    require(&who, Role::Artist, "creating a channel")?;
    let new: NewChannel = json_body(&raw)?;
    idempotent_create(&app, &who, &headers, "/v1/channels", &raw, async {
        let (title, description) = texts(&new.title, &new.description)?;
        let renditions = match &new.renditions {
            Some(r) => check_renditions(r)?,
            None => Vec::new(),
        };
        let playlist_id = check_playlist(&app, &who, new.playlist_id.as_deref()).await?;
        let slug = new.slug.as_deref().map(check_slug).transpose()?;
        let mp3_kbps = check_mp3_kbps(new.mp3_kbps.unwrap_or(0))?;
        let relay_url = new.relay_url.as_deref().map(check_relay_url).transpose()?;
        let mut station = StationSettings::default();
        check_station(
            &app,
            &who,
            &mut station,
            new.crossfade_seconds,
            new.silence_threshold_dbfs,
            new.record_live,
            new.interstitial.clone().map(Some),
        )
        .await?;
        let (key, key_hash) = new_key();
        let now = util::now_ms();
        let c = Channel {
            id: ChannelId::new(),
            owner: who.subject.clone(),
            title,
            description,
            slug,
            mp3_kbps,
            max_listeners: new.max_listeners.unwrap_or(0),
            relay_url,
            station,
            public: new.visibility == Some(Visibility::Public),
            playlist_id,
            shuffle: new.shuffle,
            renditions,
            key_hash,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        app.store.create_channel(&c, now).await?;
        app.outbox.notify();
        Ok(answer(
            StatusCode::CREATED,
            view(&app, &c, Some(key)).await,
            true,
        ))
    })
    .await
}

/// Which channels a listing shows.
#[derive(Deserialize, IntoParams)]
pub struct ChannelScope {
    /// `mine` (the default for artists and admins), `public` (the default for listeners) or `all`
    /// (admins).
    pub scope: Option<String>,
    /// Page size, 1 to 100 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `date` (the default), `title` or `plays` (listening).
    pub sort: Option<String>,
    /// `desc` (the default, but for `title`) or `asc`.
    pub order: Option<String>,
}

/// Channels, newest first unless `sort` says otherwise, with their live state.
#[utoipa::path(
    get, path = "/v1/channels", tag = CHANNELS, params(ChannelScope),
    responses(
        (status = 200, description = "A page of channels", body = ChannelPage),
        (status = 400, description = "Bad scope, limit or cursor", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 403, description = "scope=all is for admins", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn list(
    State(app): State<Arc<App>>,
    Query(q): Query<ChannelScope>,
    headers: HeaderMap,
) -> Result<Json<ChannelPage>, Problem> {
    let who = authenticate(&app, &headers).await?;
    let filter = list_scope(&who, q.scope.as_deref(), "listing every channel")?;
    let page = ListQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let (sort, descending) = ListQuery::order(
        q.sort.as_deref(),
        q.order.as_deref(),
        &[TrackSort::Date, TrackSort::Title, TrackSort::Plays],
    )?;
    let (rows, next_cursor) = if sort == TrackSort::Date && descending {
        let before = page.cursor::<ChannelId>()?;
        let rows = app.store.channels(filter, before, limit + 1).await?;
        ListQuery::page(rows, limit, |c| c.id.to_string())
    } else {
        // Other orders page by position: `o<offset>`.
        let offset = page.offset()?;
        let rows = app
            .store
            .sorted_channels(filter, sort, descending, offset, limit + 1)
            .await?;
        ListQuery::page_at(rows, limit, offset)
    };
    let mut items = Vec::with_capacity(rows.len());
    for c in &rows {
        items.push(view(&app, c, None).await);
    }
    Ok(Json(ChannelPage { items, next_cursor }))
}

/// One channel with its live state: state, source, now playing, listeners.
#[utoipa::path(
    get, path = "/v1/channels/{id}", tag = CHANNELS, params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The channel", body = ChannelView, headers(("ETag" = String))),
        (status = 404, description = "No such channel visible to this caller", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn show(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers).await?;
    let c = visible(&app, &who, &id).await?;
    Ok(answer(StatusCode::OK, view(&app, &c, None).await, false))
}

/// Change a channel's details, auto-DJ or renditions (`If-Match` optional). A running channel
/// whose auto-DJ or renditions change restarts.
#[utoipa::path(
    patch, path = "/v1/channels/{id}", tag = CHANNELS, request_body = ChannelPatch,
    params(("id" = String, Path, description = "Channel id"), ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    responses(
        (status = 200, description = "Updated", body = ChannelView, headers(("ETag" = String))),
        Malformed,
        NotOwner,
        NoChannel,
        (status = 409, description = "The slug is another channel's", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 412, description = "Changed since the ETag sent", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 422, description = "Bad field or unknown playlist", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn update(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Problem> {
    let (who, old) = writable(&app, &headers, &id).await?;
    let patch: ChannelPatch = json_body(&raw)?;
    let mut c = old.clone();
    let (title, description) = texts(
        patch.title.as_deref().unwrap_or(&old.title),
        patch.description.as_deref().unwrap_or(&old.description),
    )?;
    c.title = title;
    c.description = description;
    if let Some(v) = patch.visibility {
        c.public = v == Visibility::Public;
    }
    if let Some(p) = &patch.playlist_id {
        c.playlist_id = check_playlist(&app, &who, p.as_deref()).await?;
    }
    if let Some(s) = patch.shuffle {
        c.shuffle = s;
    }
    if let Some(r) = &patch.renditions {
        c.renditions = check_renditions(r)?;
    }
    if let Some(slug) = &patch.slug {
        c.slug = slug.as_deref().map(check_slug).transpose()?;
    }
    if let Some(k) = patch.mp3_kbps {
        c.mp3_kbps = check_mp3_kbps(k)?;
    }
    if let Some(n) = patch.max_listeners {
        c.max_listeners = n;
    }
    if let Some(r) = &patch.relay_url {
        c.relay_url = r.as_deref().map(check_relay_url).transpose()?;
    }
    check_station(
        &app,
        &who,
        &mut c.station,
        patch.crossfade_seconds,
        patch.silence_threshold_dbfs,
        patch.record_live,
        patch.interstitial.clone(),
    )
    .await?;
    let c = save(&app, &old, c).await?;
    Ok(answer(StatusCode::OK, view(&app, &c, None).await, false))
}

/// Delete a channel: its source is dropped and its listeners see the stream end.
#[utoipa::path(
    delete, path = "/v1/channels/{id}", tag = CHANNELS, params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 204, description = "Deleted"),
        NotOwner,
        NoChannel,
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn remove(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let (_, c) = writable(&app, &headers, &id).await?;
    app.live.stop(c.id);
    match app.store.delete_channel(c.id, util::now_ms()).await? {
        Some(_) => {
            app.outbox.notify();
            // Its programme, history and statistics go with it; its recorded shows stay, as
            // the tracks they became.
            if let Err(e) = app.store.forget_station(c.id).await {
                tracing::warn!(channel = %c.id, error = %e, "forgetting a deleted channel's station data failed");
            }
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(Problem::not_found(format!("no channel {}", c.id))),
    }
}
