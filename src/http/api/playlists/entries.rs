//! A playlist's entries: replace them all, append one, move or remove one.

use super::common::*;
use crate::app::App;
use crate::http::access::authenticate;
use crate::http::body::json_body;
use crate::http::idempotency::idempotent_create;
use crate::http::openapi::{
    Malformed, NoPlaylist, NotOwner, ProblemDoc, Refusals, Stale, JSON_PROBLEM, PLAYLISTS,
};
use crate::http::problem::Problem;
use crate::store::Entry;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::sync::Arc;

/// Replace the whole track order.
#[utoipa::path(
    put, path = "/v1/playlists/{id}/tracks", tag = PLAYLISTS, request_body = TrackOrder,
    params(("id" = String, Path, description = "Playlist id"), ("If-Match" = Option<String>, Header, description = "The ETag this change is based on")),
    responses(
        (status = 200, description = "Updated", body = PlaylistView, headers(("ETag" = String))),
        Malformed,
        NotOwner,
        NoPlaylist,
        Stale,
        (status = 422, description = "Unknown track or too many entries", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn replace_tracks(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers).await?;
    let (p, old) = writable(&app, &who, &headers, &id).await?;
    let order: TrackOrder = json_body(&raw)?;
    if order.track_ids.len() > MAX_ENTRIES {
        return Err(too_many());
    }
    let ids = resolve(&app, &who, &order.track_ids).await?;
    // Entries of tracks that stay keep their ids, first come first.
    let mut pool: Vec<Option<&Entry>> = old.iter().map(Some).collect();
    let entries: Vec<Entry> = ids
        .into_iter()
        .map(|track_id| {
            let reused = pool
                .iter_mut()
                .find(|e| e.is_some_and(|e| e.track_id == track_id))
                .and_then(Option::take);
            Entry {
                id: reused.map_or_else(uuid::Uuid::new_v4, |e| e.id),
                track_id,
            }
        })
        .collect();
    let expected = p.version;
    let p = save(&app, p, Some(&entries), expected).await?;
    respond(&app, StatusCode::OK, &p, &entries).await
}

/// Add one track, at the end or at a position.
#[utoipa::path(
    post, path = "/v1/playlists/{id}/tracks", tag = PLAYLISTS, request_body = NewEntry,
    params(("id" = String, Path, description = "Playlist id"), ("If-Match" = Option<String>, Header, description = "The ETag this change is based on"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for the same key and body")),
    responses(
        (status = 201, description = "Added", body = PlaylistView, headers(("ETag" = String))),
        Malformed,
        NotOwner,
        NoPlaylist,
        Stale,
        (status = 422, description = "Unknown track, too many entries, or Idempotency-Key reused", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn append_track(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers).await?;
    let path = format!("/v1/playlists/{id}/tracks");
    idempotent_create(&app, &who, &headers, &path, &raw, async {
        let (p, mut entries) = writable(&app, &who, &headers, &id).await?;
        let add: NewEntry = json_body(&raw)?;
        if entries.len() >= MAX_ENTRIES {
            return Err(too_many());
        }
        let track_id = resolve(&app, &who, std::slice::from_ref(&add.track_id)).await?[0];
        let at = add
            .position
            .map_or(entries.len(), |n| (n.min(entries.len() as u64)) as usize);
        entries.insert(
            at,
            Entry {
                id: uuid::Uuid::new_v4(),
                track_id,
            },
        );
        let expected = p.version;
        let p = save(&app, p, Some(&entries), expected).await?;
        respond(&app, StatusCode::CREATED, &p, &entries).await
    })
    .await
}

fn find_entry(entries: &[Entry], entry: &str) -> Result<usize, Problem> {
    entries
        .iter()
        .position(|e| e.id.to_string() == entry)
        .ok_or_else(|| Problem::not_found(format!("no entry {entry} in this playlist")))
}

/// Move one entry.
#[utoipa::path(
    patch, path = "/v1/playlists/{id}/tracks/{entry_id}", tag = PLAYLISTS, request_body = Move,
    params(("id" = String, Path, description = "Playlist id"), ("entry_id" = String, Path, description = "Entry id"),
        ("If-Match" = Option<String>, Header, description = "The ETag this change is based on")),
    responses(
        (status = 200, description = "Moved", body = PlaylistView, headers(("ETag" = String))),
        Malformed,
        NotOwner,
        (status = 404, description = "No such playlist or entry", body = ProblemDoc, content_type = JSON_PROBLEM),
        Stale,
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn move_entry(
    State(app): State<Arc<App>>,
    Path((id, entry)): Path<(String, String)>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers).await?;
    let (p, mut entries) = writable(&app, &who, &headers, &id).await?;
    let to: Move = json_body(&raw)?;
    let from = find_entry(&entries, &entry)?;
    let e = entries.remove(from);
    let at = (to.position.min(entries.len() as u64)) as usize;
    entries.insert(at, e);
    let expected = p.version;
    let p = save(&app, p, Some(&entries), expected).await?;
    respond(&app, StatusCode::OK, &p, &entries).await
}

/// Remove one entry.
#[utoipa::path(
    delete, path = "/v1/playlists/{id}/tracks/{entry_id}", tag = PLAYLISTS,
    params(("id" = String, Path, description = "Playlist id"), ("entry_id" = String, Path, description = "Entry id"),
        ("If-Match" = Option<String>, Header, description = "The ETag this change is based on")),
    responses(
        (status = 200, description = "Removed", body = PlaylistView, headers(("ETag" = String))),
        NotOwner,
        (status = 404, description = "No such playlist or entry", body = ProblemDoc, content_type = JSON_PROBLEM),
        Stale,
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn remove_entry(
    State(app): State<Arc<App>>,
    Path((id, entry)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers).await?;
    let (p, mut entries) = writable(&app, &who, &headers, &id).await?;
    let at = find_entry(&entries, &entry)?;
    entries.remove(at);
    let expected = p.version;
    let p = save(&app, p, Some(&entries), expected).await?;
    respond(&app, StatusCode::OK, &p, &entries).await
}
