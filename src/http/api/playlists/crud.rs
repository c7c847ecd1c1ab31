//! Playlist CRUD: create (idempotent), list, show, update (with `If-Match`), delete and
//! duplicate.

use super::common::*;
use crate::app::App;
use crate::auth::Role;
use crate::http::access::{authenticate, list_scope, require};
use crate::http::body::{json_body, ListQuery};
use crate::http::idempotency::idempotent_create;
use crate::http::openapi::{
    Malformed, NoPlaylist, NotOwner, ProblemDoc, Refusals, Stale, JSON_PROBLEM, PLAYLISTS,
};
use crate::http::problem::Problem;
use crate::store::{Entry, Playlist, PlaylistId, TrackSort};
use crate::util;
use crate::util::rfc3339;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use std::sync::Arc;

/// Create a playlist (artists and admins).
#[utoipa::path(
    post, path = "/v1/playlists", tag = PLAYLISTS, request_body = NewPlaylist,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for the same key and body")),
    responses(
        (status = 201, description = "Created", body = PlaylistView, headers(("ETag" = String), ("Location" = String))),
        Malformed,
        (status = 403, description = "Listeners cannot create playlists", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 422, description = "Bad field, unknown track, or Idempotency-Key reused", body = ProblemDoc, content_type = JSON_PROBLEM),
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
    require(&who, Role::Artist, "creating a playlist")?;
    let new: NewPlaylist = json_body(&raw)?;
    idempotent_create(&app, &who, &headers, "/v1/playlists", &raw, async {
        if new.track_ids.len() > MAX_ENTRIES {
            return Err(too_many());
        }
        let title = check_title(&new.title)?;
        let description = check_description(&new.description)?;
        let ids = resolve(&app, &who, &new.track_ids).await?;
        let now = util::now_ms();
        let p = Playlist {
            id: PlaylistId::new(),
            owner: who.subject.clone(),
            title,
            description,
            public: new.visibility == Some(Visibility::Public),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let entries: Vec<Entry> = ids
            .into_iter()
            .map(|track_id| Entry {
                id: uuid::Uuid::new_v4(),
                track_id,
            })
            .collect();
        app.store.create_playlist(&p, &entries, now).await?;
        app.outbox.notify();
        respond(&app, StatusCode::CREATED, &p, &entries).await
    })
    .await
}

/// Playlists, newest first.
#[utoipa::path(
    get, path = "/v1/playlists", tag = PLAYLISTS, params(ListScope),
    responses(
        (status = 200, description = "A page of playlists", body = PlaylistPage),
        (status = 400, description = "Bad scope, limit or cursor", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 403, description = "scope=all is for admins", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn list(
    State(app): State<Arc<App>>,
    Query(q): Query<ListScope>,
    headers: HeaderMap,
) -> Result<Json<PlaylistPage>, Problem> {
    let who = authenticate(&app, &headers).await?;
    let filter = list_scope(&who, q.scope.as_deref(), "listing every playlist")?;
    let page = ListQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = page.limit()?;
    let (sort, descending) = ListQuery::order(
        q.sort.as_deref(),
        q.order.as_deref(),
        &[
            TrackSort::Date,
            TrackSort::Title,
            TrackSort::Duration,
            TrackSort::Plays,
        ],
    )?;
    let (rows, next_cursor) = if sort == TrackSort::Date && descending {
        let before = page.cursor::<PlaylistId>()?;
        let rows = app.store.playlists(filter, before, limit + 1).await?;
        ListQuery::page(rows, limit, |p| p.id.to_string())
    } else {
        // Other orders page by position: `o<offset>`.
        let offset = page.offset()?;
        let rows = app
            .store
            .sorted_playlists(filter, sort, descending, offset, limit + 1)
            .await?;
        ListQuery::page_at(rows, limit, offset)
    };
    let mut items = Vec::with_capacity(rows.len());
    for p in rows {
        let entries = app
            .store
            .playlist(p.id)
            .await?
            .map(|(_, e)| e)
            .unwrap_or_default();
        let covers = view(&app, &p, &entries).await?.covers;
        items.push(PlaylistSummary {
            id: p.id.to_string(),
            visibility: Visibility::of(p.public),
            owner: p.owner,
            title: p.title,
            description: p.description,
            version: p.version,
            updated_at: rfc3339(p.updated_at),
            track_count: entries.len(),
            covers,
        });
    }
    Ok(Json(PlaylistPage { items, next_cursor }))
}

/// One playlist with its entries. Public ones are readable by every role.
#[utoipa::path(
    get, path = "/v1/playlists/{id}", tag = PLAYLISTS, params(("id" = String, Path, description = "Playlist id")),
    responses(
        (status = 200, description = "The playlist", body = PlaylistView, headers(("ETag" = String))),
        (status = 404, description = "No such playlist visible to this caller", body = ProblemDoc, content_type = JSON_PROBLEM),
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
    let (p, e) = visible(&app, &who, &id).await?;
    respond(&app, StatusCode::OK, &p, &e).await
}

/// Change the title, description or visibility.
#[utoipa::path(
    patch, path = "/v1/playlists/{id}", tag = PLAYLISTS, request_body = PlaylistPatch,
    params(("id" = String, Path, description = "Playlist id"), ("If-Match" = Option<String>, Header, description = "The ETag this change is based on")),
    responses(
        (status = 200, description = "Updated", body = PlaylistView, headers(("ETag" = String))),
        Malformed,
        NotOwner,
        NoPlaylist,
        Stale,
        (status = 422, description = "Bad field", body = ProblemDoc, content_type = JSON_PROBLEM),
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
    let who = authenticate(&app, &headers).await?;
    let (mut p, e) = writable(&app, &who, &headers, &id).await?;
    let patch: PlaylistPatch = json_body(&raw)?;
    if let Some(t) = &patch.title {
        p.title = check_title(t)?;
    }
    if let Some(d) = &patch.description {
        p.description = check_description(d)?;
    }
    if let Some(v) = patch.visibility {
        p.public = v == Visibility::Public;
    }
    let expected = p.version;
    let p = save(&app, p, None, expected).await?;
    respond(&app, StatusCode::OK, &p, &e).await
}

/// Delete a playlist.
#[utoipa::path(
    delete, path = "/v1/playlists/{id}", tag = PLAYLISTS,
    params(("id" = String, Path, description = "Playlist id"), ("If-Match" = Option<String>, Header, description = "The ETag this change is based on")),
    responses(
        (status = 204, description = "Deleted"),
        NotOwner,
        NoPlaylist,
        Stale,
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn remove(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let who = authenticate(&app, &headers).await?;
    let (p, _) = writable(&app, &who, &headers, &id).await?;
    let expected = headers.contains_key(header::IF_MATCH).then_some(p.version);
    if !app
        .store
        .delete_playlist(p.id, expected, util::now_ms())
        .await?
    {
        return Err(Problem::precondition_failed(
            "the playlist changed while this request ran; fetch it again and retry",
        ));
    }
    app.catalog.invalidate_playlist(p.id);
    app.outbox.notify();
    Ok(StatusCode::NO_CONTENT)
}

/// Copy a playlist the caller can see into a new private one it owns, in one transaction.
#[utoipa::path(
    post, path = "/v1/playlists/{id}/duplicate", tag = PLAYLISTS, request_body(content = Option<DuplicateOptions>),
    params(("id" = String, Path, description = "Playlist id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for the same key and body")),
    responses(
        (status = 201, description = "The copy", body = PlaylistView, headers(("ETag" = String), ("Location" = String))),
        Malformed,
        (status = 403, description = "Listeners cannot own playlists", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 404, description = "No such playlist visible to this caller", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 422, description = "Bad title or Idempotency-Key reused", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn duplicate(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers).await?;
    require(&who, Role::Artist, "duplicating a playlist")?;
    let path = format!("/v1/playlists/{id}/duplicate");
    idempotent_create(&app, &who, &headers, &path, &raw, async {
        let (src, entries) = visible(&app, &who, &id).await?;
        let opts: DuplicateOptions = json_body(&raw)?;
        let title = match opts.title {
            Some(t) => check_title(&t)?,
            None => check_title(&format!(
                "{} (copy)",
                src.title.chars().take(193).collect::<String>()
            ))?,
        };
        let now = util::now_ms();
        let p = Playlist {
            id: PlaylistId::new(),
            owner: who.subject.clone(),
            title,
            description: src.description.clone(),
            public: false,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let copy: Vec<Entry> = entries
            .iter()
            .map(|e| Entry {
                id: uuid::Uuid::new_v4(),
                track_id: e.track_id,
            })
            .collect();
        app.store.create_playlist(&p, &copy, now).await?;
        app.outbox.notify();
        respond(&app, StatusCode::CREATED, &p, &copy).await
    })
    .await
}
