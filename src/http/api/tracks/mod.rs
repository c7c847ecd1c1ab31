//! The control API for tracks: status, listing, renaming and sharing, retry, deletion and
//! progress events. Every route takes `Authorization: Bearer <API key or JWT>`.
//!
//! Who may do what: artists upload and manage their own tracks, admins (and API keys) manage all,
//! and every role may ask for playback of a ready track.

mod cover;
pub(in crate::http) mod upload;

use super::fields::{check_title, Visibility};
use super::lookup::find_track;
use crate::app::App;
use crate::auth::Role;
use crate::http::access::{authenticate, require};
use crate::http::body::{json_body, ListQuery};
use crate::http::openapi::{
    Malformed, NoTrack, OthersTrack, ProblemDoc, Refusals, RenditionView, StatusDoc, TRACKS,
};
use crate::http::problem::Problem;
use crate::store::{Track, TrackId, TrackSort, TrackStatus};
use crate::util::{self, rfc3339};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(in crate::http) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(show, update, remove))
        .routes(routes!(events))
        .routes(routes!(retry))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(cover::put_cover, cover::delete_cover))
                .layer(axum::extract::DefaultBodyLimit::max(
                    cover::MAX_COVER_BYTES + 1,
                )),
        )
        .routes(routes!(cover::image))
}

/// A track as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackView {
    /// Track id (UUIDv7).
    pub id: String,
    /// Subject of the uploader.
    pub owner: String,
    /// Title.
    pub title: String,
    /// Where the title came from: `given` at upload, `file` (the file name), `tags` or `edited`.
    pub title_source: String,
    /// The artist as credited (from the tags, or edited).
    pub artist: Option<String>,
    /// Album.
    pub album: Option<String>,
    /// Year of release.
    pub year: Option<i64>,
    /// Genre.
    pub genre: Option<String>,
    /// Position on its album.
    pub track_number: Option<i64>,
    /// Its cover (a JPEG of at most 600 pixels a side), from the file's art or uploaded; null
    /// when it has none. Immutable: a new cover has a new URL.
    pub cover_url: Option<String>,
    /// Length of the published audio.
    pub duration_seconds: Option<f64>,
    /// The uploaded file's name.
    pub filename: String,
    /// The upload's content type.
    pub content_type: String,
    /// Size of the original.
    pub size_bytes: i64,
    /// Where it is in its life.
    #[schema(value_type = StatusDoc)]
    pub status: TrackStatus,
    /// Packaging progress, 0 to 1.
    pub progress: f64,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether `POST …/retry` can queue it again: a failed track whose original is still
    /// stored. A track rejected for its content (its original removed) must be uploaded again.
    pub retryable: bool,
    /// Loudness, duration and format analysis of the published package.
    #[schema(value_type = Option<Object>)]
    pub analysis: Option<Value>,
    /// What was wrong with the upload but did not stop it playing (malformed tags, a cut-off
    /// end, damaged packets skipped), from the analysis; empty until it is packaged.
    pub warnings: Vec<String>,
    /// Published renditions.
    pub renditions: Vec<RenditionView>,
    /// Listener sessions seen recently on this node.
    pub listeners: u64,
    /// `public` tracks play on their page (`links.page`) without sign-in.
    pub visibility: Visibility,
    /// The waveform (BBC audiowaveform JSON, version 2) of a ready track, signed for
    /// `auth.playback_ttl_seconds`: what a library draws in its rows.
    pub waveform_url: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Related resources.
    pub links: TrackLinks,
}

/// Links of a track.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackLinks {
    /// This track.
    #[serde(rename = "self")]
    pub this: String,
    /// Progress events (SSE).
    pub events: String,
    /// Playback URLs.
    pub playback: String,
    /// The shareable web page, which plays the track signed out once it is public.
    pub page: String,
}

/// The view of a track.
pub(in crate::http) async fn view(app: &App, t: &Track) -> Result<TrackView, Problem> {
    let renditions = if t.status == TrackStatus::Ready {
        app.store
            .renditions(t.id)
            .await?
            .into_iter()
            .map(RenditionView::from)
            .collect()
    } else {
        Vec::new()
    };
    let analysis: Option<Value> = t
        .analysis
        .as_deref()
        .and_then(|a| serde_json::from_str(a).ok());
    let warnings = analysis
        .as_ref()
        .and_then(|a| a.get("warnings"))
        .and_then(Value::as_array)
        .map(|w| {
            w.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    // Unknown while storage is out: offered, and the retry itself answers.
    let retryable = t.status == TrackStatus::Failed
        && app.storage.exists(&t.original_key).await.unwrap_or(true);
    let id = t.id.to_string();
    Ok(TrackView {
        links: TrackLinks {
            events: format!("{}/events", crate::layout::track_api(t.id)),
            playback: format!("{}/playback", crate::layout::track_api(t.id)),
            this: crate::layout::track_api(t.id),
            page: format!("{}/play/track/{}", app.public_url, t.id),
        },
        id,
        owner: t.owner.clone(),
        title: t.title.clone(),
        title_source: t.title_source.clone(),
        artist: t.meta.artist.clone(),
        album: t.meta.album.clone(),
        year: t.meta.year,
        genre: t.meta.genre.clone(),
        track_number: t.meta.track_number,
        cover_url: t
            .cover
            .as_deref()
            .map(|d| format!("{}{}", app.public_url, crate::layout::cover_url(t.id, d))),
        duration_seconds: t.duration_seconds(),
        filename: t.filename.clone(),
        content_type: t.content_type.clone(),
        size_bytes: t.size_bytes,
        status: t.status,
        progress: (t.progress * 1000.0).round() / 1000.0,
        error: t.error.clone(),
        retryable,
        analysis,
        warnings,
        renditions,
        listeners: app.catalog.listeners.count(t.id, Instant::now()) as u64,
        visibility: Visibility::of(t.public),
        waveform_url: (t.status == TrackStatus::Ready).then(|| {
            app.auth
                .tokens
                .playback(
                    &app.public_url,
                    t.id,
                    util::now_secs(),
                    app.config.auth.playback_ttl_seconds,
                )
                .url("waveform.json")
        }),
        created_at: rfc3339(t.created_at),
        updated_at: rfc3339(t.updated_at),
    })
}

/// One track: status, progress, analysis and renditions. Its owner and admins only.
#[utoipa::path(
    get, path = "/v1/tracks/{id}", tag = TRACKS, params(("id" = String, Path, description = "Track id")),
    responses(
        (status = 200, description = "The track", body = TrackView),
        OthersTrack,
        NoTrack,
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn show(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<TrackView>, Problem> {
    let (t, _) = find_track(&app, &headers, &id, true).await?;
    Ok(Json(view(&app, &t).await?))
}

/// Queue a `failed` track again. Failures that are not the input's fault (storage, I/O, an
/// encoder refusal or panic) keep the original, so after the last attempt the owner or an admin
/// can retry once the cause is fixed. Answers 202 with the track, now `queued`.
#[utoipa::path(
    post, path = "/v1/tracks/{id}/retry", tag = TRACKS, params(("id" = String, Path, description = "Track id")),
    responses(
        (status = 202, description = "Queued again, with a fresh count of attempts", body = TrackView),
        OthersTrack,
        NoTrack,
        (status = 409, description = "The track is not failed, or its original was rejected and removed", body = ProblemDoc, content_type = "application/problem+json"),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn retry(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let (t, _) = find_track(&app, &headers, &id, true).await?;
    if t.status != TrackStatus::Failed {
        return Err(Problem::conflict(
            "not-failed",
            "Track is not failed",
            format!(
                "track {} is {}; only a failed track is retried",
                t.id,
                t.status.as_str()
            ),
        ));
    }
    if !app.storage.exists(&t.original_key).await? {
        return Err(Problem::conflict(
            "original-gone",
            "Original removed",
            format!(
                "track {} was rejected for its content ({}) and its original removed; upload it again",
                t.id,
                t.error.as_deref().unwrap_or("no reason recorded")
            ),
        ));
    }
    if !app.catalog.retry(t.id, &app.queue, util::now_ms()).await? {
        return Err(Problem::conflict(
            "not-failed",
            "Track is not failed",
            format!("track {} changed state meanwhile", t.id),
        ));
    }
    tracing::info!(track = %t.id, "track queued again");
    let t = app
        .store
        .track(t.id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no track {}", t.id)))?;
    Ok((StatusCode::ACCEPTED, Json(view(&app, &t).await?)).into_response())
}

/// What a track's owner may change. A field left out stays; `null` (or `""`) clears the
/// optional ones.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackPatch {
    /// 1 to 200 characters.
    pub title: Option<String>,
    /// `public` shares the track: its page plays it for anyone, signed in or not.
    pub visibility: Option<Visibility>,
    /// At most 200 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub artist: Option<Option<String>>,
    /// At most 200 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub album: Option<Option<String>>,
    /// 1000 to 2999.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub year: Option<Option<i64>>,
    /// At most 100 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub genre: Option<Option<String>>,
    /// 1 to 9999.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub track_number: Option<Option<i64>>,
}

/// A field that is present, as `Some(value)`, `null` included: with `#[serde(default)]`, an
/// absent field stays `None`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// An optional text field: trimmed, empty as none, at most `max` characters, no control
/// characters.
fn optional_text(field: &str, v: Option<String>, max: usize) -> Result<Option<String>, Problem> {
    let Some(v) = v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(Problem::unprocessable(
            "invalid-field",
            format!("{field} must be at most {max} characters, none of them control characters"),
        ));
    }
    Ok(Some(v))
}

/// An optional number within `range`.
fn optional_number(
    field: &str,
    v: Option<i64>,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, Problem> {
    match v {
        Some(n) if !range.contains(&n) => Err(Problem::unprocessable(
            "invalid-field",
            format!("{field} must be {} to {}", range.start(), range.end()),
        )),
        v => Ok(v),
    }
}

/// Edit a track's title, artist, album, year, genre and track number, or share it
/// (`visibility: public`) or stop sharing it.
#[utoipa::path(
    patch, path = "/v1/tracks/{id}", tag = TRACKS, request_body = TrackPatch,
    params(("id" = String, Path, description = "Track id")),
    responses(
        (status = 200, description = "Updated", body = TrackView),
        Malformed,
        OthersTrack,
        NoTrack,
        (status = 422, description = "Bad field", body = ProblemDoc, content_type = "application/problem+json"),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn update(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Json<TrackView>, Problem> {
    let (mut t, _) = find_track(&app, &headers, &id, true).await?;
    let patch: TrackPatch = json_body(&raw)?;
    if let Some(title) = &patch.title {
        t.title = check_title(title)?;
        t.title_source = "edited".into();
    }
    t.public = patch
        .visibility
        .map_or(t.public, |v| v == Visibility::Public);
    if let Some(v) = patch.artist {
        t.meta.artist = optional_text("artist", v, 200)?;
    }
    if let Some(v) = patch.album {
        t.meta.album = optional_text("album", v, 200)?;
    }
    if let Some(v) = patch.genre {
        t.meta.genre = optional_text("genre", v, 100)?;
    }
    if let Some(v) = patch.year {
        t.meta.year = optional_number("year", v, 1000..=2999)?;
    }
    if let Some(v) = patch.track_number {
        t.meta.track_number = optional_number("track_number", v, 1..=9999)?;
    }
    cover::save(&app, &t).await?;
    let t = app
        .store
        .track(t.id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no track {}", t.id)))?;
    Ok(Json(view(&app, &t).await?))
}

/// A page of tracks.
#[derive(Serialize, ToSchema)]
pub struct TrackPage {
    /// Newest first.
    pub items: Vec<TrackView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// How a track list is ordered.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrackOrder {
    /// `date` (the default), `title`, `duration` or `plays`.
    pub sort: Option<String>,
    /// `desc` (the default, but for `title`) or `asc`.
    pub order: Option<String>,
}

/// Tracks, newest first unless `sort` says otherwise: all of them for admins, their own for
/// artists.
#[utoipa::path(
    get, path = "/v1/tracks", tag = TRACKS, params(ListQuery, TrackOrder),
    responses(
        (status = 200, description = "A page of tracks", body = TrackPage),
        (status = 400, description = "Bad limit or cursor", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Listeners cannot list tracks", body = ProblemDoc, content_type = "application/problem+json"),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(in crate::http) async fn list(
    State(app): State<Arc<App>>,
    Query(q): Query<ListQuery>,
    Query(o): Query<TrackOrder>,
    headers: HeaderMap,
) -> Result<Json<TrackPage>, Problem> {
    let who = authenticate(&app, &headers).await?;
    require(&who, Role::Artist, "listing tracks")?;
    let limit = q.limit()?;
    let owner = (who.role != Role::Admin).then_some(who.subject.as_str());
    let (sort, descending) = ListQuery::order(
        o.sort.as_deref(),
        o.order.as_deref(),
        &[
            TrackSort::Date,
            TrackSort::Title,
            TrackSort::Duration,
            TrackSort::Plays,
        ],
    )?;
    let (rows, next_cursor) = if sort == TrackSort::Date && descending {
        // Newest first pages by id, so uploads meanwhile never shift a page.
        let before = q.cursor::<TrackId>()?;
        // One more than asked tells whether another page exists.
        let rows = app.store.tracks(before, limit + 1, owner).await?;
        ListQuery::page(rows, limit, |t| t.id.to_string())
    } else {
        // Other orders page by position: `o<offset>`.
        let offset = q.offset()?;
        let rows = app
            .store
            .sorted_tracks(owner, sort, descending, offset, limit + 1)
            .await?;
        ListQuery::page_at(rows, limit, offset)
    };
    let mut items = Vec::with_capacity(rows.len());
    for t in &rows {
        items.push(view(&app, t).await?);
    }
    Ok(Json(TrackPage { items, next_cursor }))
}

/// Delete a track, its original and its package. Playlists keep their entries, shown as deleted.
#[utoipa::path(
    delete, path = "/v1/tracks/{id}", tag = TRACKS, params(("id" = String, Path, description = "Track id")),
    responses(
        (status = 204, description = "Deleted"),
        OthersTrack,
        NoTrack,
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn remove(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let (t, _) = find_track(&app, &headers, &id, true).await?;
    let id = t.id;
    let t = app
        .catalog
        .delete_track(&t, &app.queue, &app.outbox, util::now_ms())
        .await?
        .ok_or_else(|| Problem::not_found(format!("no track {id}")))?;
    tracing::info!(track = %id, original = %t.original_key, "track deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Progress as server-sent events: `progress` until the track is ready or failed, or `deleted`.
#[utoipa::path(
    get, path = "/v1/tracks/{id}/events", tag = TRACKS, params(("id" = String, Path, description = "Track id")),
    responses(
        (status = 200, description = "An event stream of `progress` events (data: id, status, progress, error) and a final `deleted` event when the track goes", content_type = "text/event-stream", body = SseEvent),
        OthersTrack,
        NoTrack,
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn events(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let id = find_track(&app, &headers, &id, true).await?.0.id;
    // Polls the store rather than listening to this node's workers, so it reports jobs running on
    // any node.
    let state = (app.clone(), None::<(TrackStatus, i64)>, false);
    let stream = futures::stream::unfold(state, move |(app, last, done)| async move {
        if done {
            return None;
        }
        loop {
            let t = match app.store.track(id).await {
                Ok(Some(t)) => t,
                Ok(None) => {
                    let ev = Event::default()
                        .event("deleted")
                        .data(json!({"id": id.to_string()}).to_string());
                    return Some((Ok::<_, std::convert::Infallible>(ev), (app, last, true)));
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let now = (t.status, (t.progress * 1000.0) as i64);
            if Some(now) != last {
                let data = json!({
                    "id": id.to_string(),
                    "status": t.status,
                    "progress": (t.progress * 1000.0).round() / 1000.0,
                    "error": t.error,
                });
                let ev = Event::default().event("progress").data(data.to_string());
                return Some((Ok(ev), (app, Some(now), t.status.is_final())));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = app.shutdown.cancelled() => return None,
            }
        }
    });
    let stream = stream.take_until(app.shutdown.clone().cancelled_owned());
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// One server-sent event as the stream carries it.
#[derive(Serialize, ToSchema)]
pub struct SseEvent {
    /// `progress` or `deleted`.
    pub event: Option<String>,
    /// JSON: `{"id", "status", "progress", "error"}`.
    pub data: Option<String>,
    /// Unused.
    pub id: Option<String>,
    /// Unused.
    pub retry: Option<i64>,
}
