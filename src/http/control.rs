//! The control API for tracks: upload, status, listing, deletion, progress events and playback
//! URLs. Every route takes `Authorization: Bearer <API key or JWT>`.
//!
//! Who may do what: artists upload and manage their own tracks, admins (and API keys) manage all,
//! and every role may ask for playback of a ready track.

use super::access::{authenticate, require};
use super::idempotency;
use super::openapi::{ProblemDoc, Refusals, TRACKS};
use super::Problem;
use crate::auth::{Identity, Role};
use crate::server::App;
use crate::store::{Rendition, Status, Track, TrackId};
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, WriteMultipart};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(upload, list))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .routes(routes!(show, remove))
        .routes(routes!(events))
        .routes(routes!(playback))
        .routes(routes!(retry))
}

fn parse_id(id: &str) -> Result<TrackId, Problem> {
    id.parse()
        .map_err(|_| Problem::not_found(format!("no track {id}")))
}

/// The track named by a path and its caller, who must be able to manage it (`manage`) or only to
/// know of it; 401, 403 or 404 otherwise.
async fn find_track(
    app: &App,
    headers: &HeaderMap,
    id: &str,
    manage: bool,
) -> Result<(Track, Identity), Problem> {
    let who = authenticate(app, headers)?;
    let id = parse_id(id)?;
    let t = app
        .store
        .track(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no track {id}")))?;
    if manage && !who.manages(&t.owner) {
        return Err(Problem::forbidden(format!(
            "track {id} belongs to another artist"
        )));
    }
    Ok((t, who))
}

/// Unix milliseconds as RFC 3339.
pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
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
    /// The uploaded file's name.
    pub filename: String,
    /// The upload's content type.
    pub content_type: String,
    /// Size of the original.
    pub size_bytes: i64,
    /// Where it is in its life.
    pub status: Status,
    /// Packaging progress, 0 to 1.
    pub progress: f64,
    /// Why it failed.
    pub error: Option<String>,
    /// Loudness, duration and format analysis of the published package.
    #[schema(value_type = Option<Object>)]
    pub analysis: Option<Value>,
    /// What was wrong with the upload but did not stop it playing (malformed tags, a cut-off
    /// end, damaged packets skipped), from the analysis; empty until it is packaged.
    pub warnings: Vec<String>,
    /// Published renditions.
    pub renditions: Vec<Rendition>,
    /// Listener sessions seen recently on this node.
    pub listeners: u64,
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
}

/// The view of a track.
pub(super) async fn view(app: &App, t: &Track) -> Result<TrackView, Problem> {
    let renditions = if t.status == Status::Ready {
        app.store.renditions(t.id).await?
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
    let id = t.id.to_string();
    Ok(TrackView {
        links: TrackLinks {
            this: format!("/v1/tracks/{id}"),
            events: format!("/v1/tracks/{id}/events"),
            playback: format!("/v1/tracks/{id}/playback"),
        },
        id,
        owner: t.owner.clone(),
        title: t.title.clone(),
        filename: t.filename.clone(),
        content_type: t.content_type.clone(),
        size_bytes: t.size_bytes,
        status: t.status,
        progress: (t.progress * 1000.0).round() / 1000.0,
        error: t.error.clone(),
        analysis,
        warnings,
        renditions,
        listeners: app.listeners.count(t.id, Instant::now()) as u64,
        created_at: rfc3339(t.created_at),
        updated_at: rfc3339(t.updated_at),
    })
}

/// Upload options.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UploadQuery {
    /// Title; defaults to the file name without its extension.
    title: Option<String>,
    /// File name, whose extension is a decoding hint for raw uploads.
    filename: Option<String>,
}

/// An upload on its way to storage.
struct Incoming {
    filename: String,
    content_type: String,
    title: Option<String>,
    size: u64,
}

/// Upload a track, as the raw body (`Content-Type: audio/*`) or as `multipart/form-data` with a
/// `file` field (and optionally `title`). Answers 202: packaging runs in the background.
#[utoipa::path(
    post, path = "/v1/tracks", tag = TRACKS, params(UploadQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for the same key and body")),
    request_body(content(
        (Vec<u8> = "audio/flac"), (Vec<u8> = "audio/mpeg"), (Vec<u8> = "audio/wav"),
        (Vec<u8> = "application/octet-stream"),
    )),
    responses(
        (status = 202, description = "Queued for packaging", body = TrackView),
        (status = 400, description = "Empty or malformed upload", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Listeners cannot upload", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Over server.max_upload_bytes", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not audio or multipart", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Idempotency-Key reused for another body", body = ProblemDoc, content_type = "application/problem+json"),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn upload(
    State(app): State<Arc<App>>,
    Query(q): Query<UploadQuery>,
    req: Request,
) -> Result<Response, Problem> {
    let who = authenticate(&app, req.headers())?;
    require(&who, Role::Artist, "uploading")?;
    let idem = idempotency::key(req.headers())?;
    let mut digest = Sha256::new();
    let limit = app.config.server.max_upload_bytes;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let declared: Option<u64> = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > limit) {
        // A client that asked `Expect: 100-continue` has sent nothing yet: answer at once. One that
        // is already sending gets a bounded drain first, so its 413 is not lost to a reset.
        let expects = req.headers().contains_key(header::EXPECT);
        if !expects && declared.is_some_and(|n| n - limit <= DRAIN_BYTES) {
            drain(req.into_body().into_data_stream()).await;
        }
        return Err(too_large(limit));
    }
    let id = TrackId::new();
    let key = format!("originals/{id}");
    let incoming = if content_type.starts_with("multipart/form-data") {
        let mut form = Multipart::from_request(req, &app)
            .await
            .map_err(|e| Problem::bad_request(e.body_text()))?;
        let mut title = q.title.clone();
        let mut found = None;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| Problem::bad_request(e.body_text()))?
        {
            if field.file_name().is_none() && field.name() == Some("title") {
                title = Some(
                    field
                        .text()
                        .await
                        .map_err(|e| Problem::bad_request(e.body_text()))?,
                );
                continue;
            }
            if field.file_name().is_none() && field.name() != Some("file") {
                continue;
            }
            let filename = field
                .file_name()
                .map(str::to_owned)
                .or(q.filename.clone())
                .unwrap_or_else(|| "upload".into());
            let ct = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned();
            let stream = field.map(|r| r.map_err(|e| Problem::bad_request(e.body_text())));
            let size = store_stream(&app, &key, stream, limit, &mut digest).await?;
            found = Some(Incoming {
                filename,
                content_type: ct,
                title: title.clone(),
                size,
            });
            break;
        }
        found.ok_or_else(|| Problem::bad_request("the form has no file field"))?
    } else if content_type.starts_with("audio/")
        || content_type.starts_with("application/octet-stream")
        || content_type.starts_with("application/ogg")
        || content_type.starts_with("video/")
    {
        let filename = q
            .filename
            .clone()
            .unwrap_or_else(|| format!("upload.{}", extension_for(&content_type)));
        let stream = req
            .into_body()
            .into_data_stream()
            .map(|r| r.map_err(|e| Problem::bad_request(format!("reading the body: {e}"))));
        let size = store_stream(&app, &key, stream, limit, &mut digest).await?;
        Incoming {
            filename,
            content_type,
            title: q.title.clone(),
            size,
        }
    } else {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "send the file as the body with Content-Type audio/*, or as multipart/form-data with a `file` field",
        ));
    };
    if incoming.size == 0 {
        app.storage.delete(&key).await?;
        return Err(Problem::bad_request("the upload is empty"));
    }
    let fingerprint = {
        digest.update(incoming.title.as_deref().unwrap_or("").as_bytes());
        digest.update([0]);
        digest.update(incoming.filename.as_bytes());
        idempotency::fingerprint("POST", "/v1/tracks", &digest.finalize())
    };
    if let Some(k) = &idem {
        match idempotency::replay(&app, &who, k, &fingerprint).await {
            Ok(None) => {}
            other => {
                // Seen before: the copy just stored is not needed.
                let _ = app.storage.delete(&key).await;
                return other.map(|r| r.expect("Some: None is handled above"));
            }
        }
    }
    let title = incoming
        .title
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| {
            std::path::Path::new(&incoming.filename)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| incoming.filename.clone())
        });
    let now = App::now_ms();
    let track = Track {
        id,
        owner: who.subject.clone(),
        title: printable(&title, 500),
        filename: printable(&incoming.filename, 255),
        content_type: printable(&incoming.content_type, 255),
        size_bytes: incoming.size as i64,
        original_key: key.clone(),
        status: Status::Queued,
        progress: 0.0,
        error: None,
        analysis: None,
        media_prefix: None,
        created_at: now,
        updated_at: now,
    };
    if let Err(e) = app
        .store
        .create_track(&track, &uuid::Uuid::new_v4().to_string(), now)
        .await
    {
        // No row points at the original: remove it.
        let _ = app.storage.delete(&key).await;
        return Err(e.into());
    }
    app.wake.notify_waiters();
    tracing::info!(track = %id, bytes = incoming.size, owner = %who.subject, "upload queued");
    let body = serde_json::to_value(view(&app, &track).await?).expect("views serialise");
    let headers = [("location".to_string(), format!("/v1/tracks/{id}"))];
    if let Some(k) = &idem {
        idempotency::remember(
            &app,
            &who,
            k,
            &fingerprint,
            StatusCode::ACCEPTED,
            &headers,
            Some(&body),
        )
        .await;
    }
    Ok(idempotency::respond(
        StatusCode::ACCEPTED,
        &headers,
        Some(&body),
    ))
}

/// A client-supplied name made storable: control characters (NUL above all, which PostgreSQL's
/// text refuses) removed, at most `max` characters.
pub(super) fn printable(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

pub(super) fn too_large(limit: u64) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload-too-large",
        "Upload too large",
        format!("uploads are limited to {limit} bytes"),
    )
}

/// Streams a body into one object, part by part, hashing it into `digest`. Over `limit`, or on any
/// error, the multipart upload is aborted so no partial object remains.
pub(super) async fn store_stream(
    app: &App,
    key: &str,
    mut body: impl Stream<Item = Result<Bytes, Problem>> + Unpin,
    limit: u64,
    digest: &mut Sha256,
) -> Result<u64, Problem> {
    let upload = app.storage.inner().put_multipart(&Key::from(key)).await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, 5 << 20);
    let mut size = 0u64;
    let outcome: Result<(), Problem> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            app.metrics.upload_bytes.inc_by(chunk.len() as u64);
            if size > limit {
                drain(&mut body).await;
                return Err(too_large(limit));
            }
            digest.update(&chunk);
            writer.wait_for_capacity(2).await?;
            writer.put(chunk);
        }
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => {
            writer.finish().await?;
            Ok(size)
        }
        Err(e) => {
            let _ = writer.abort().await;
            let _ = app.storage.delete(key).await;
            Err(e)
        }
    }
}

/// How much of an over-limit body is read and discarded before answering 413.
const DRAIN_BYTES: u64 = 16 << 20;

/// Reads and discards up to [`DRAIN_BYTES`] of a refused body, for at most five seconds. Closing a
/// socket with unread data makes the kernel send a reset, which can destroy the 413 before the
/// client reads it (the reason for nginx's lingering close).
pub(super) async fn drain<E>(body: impl Stream<Item = Result<Bytes, E>> + Unpin) {
    let mut body = body;
    let mut read = 0u64;
    let deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(deadline);
    while read <= DRAIN_BYTES {
        tokio::select! {
            chunk = body.next() => match chunk {
                Some(Ok(c)) => read += c.len() as u64,
                _ => return,
            },
            _ = &mut deadline => return,
        }
    }
}

/// A file extension for a content type, used as the decoder's hint when no file name is given.
fn extension_for(content_type: &str) -> &'static str {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    match essence {
        "audio/flac" | "audio/x-flac" => "flac",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/wav" | "audio/wave" | "audio/x-wav" | "audio/vnd.wave" => "wav",
        "audio/aiff" | "audio/x-aiff" => "aiff",
        "audio/ogg" | "application/ogg" | "audio/vorbis" => "ogg",
        "audio/opus" => "opus",
        "audio/mp4" | "audio/m4a" | "audio/x-m4a" | "audio/aac" => "m4a",
        "audio/webm" | "video/webm" => "webm",
        "audio/x-matroska" | "video/x-matroska" => "mkv",
        "audio/x-caf" => "caf",
        _ => "bin",
    }
}

/// One track: status, progress, analysis and renditions. Its owner and admins only.
#[utoipa::path(
    get, path = "/v1/tracks/{id}", tag = TRACKS, params(("id" = String, Path, description = "Track id")),
    responses(
        (status = 200, description = "The track", body = TrackView),
        (status = 403, description = "Another artist's track", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such track", body = ProblemDoc, content_type = "application/problem+json"),
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
        (status = 403, description = "Another artist's track", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such track", body = ProblemDoc, content_type = "application/problem+json"),
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
    if t.status != Status::Failed {
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
    if !app.store.retry_track(t.id, App::now_ms()).await? {
        return Err(Problem::conflict(
            "not-failed",
            "Track is not failed",
            format!("track {} changed state meanwhile", t.id),
        ));
    }
    app.wake.notify_one();
    app.published.invalidate(&t.id);
    tracing::info!(track = %t.id, "track queued again");
    let t = app
        .store
        .track(t.id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no track {}", t.id)))?;
    Ok((StatusCode::ACCEPTED, Json(view(&app, &t).await?)).into_response())
}

/// Pagination.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The page size, checked.
    pub fn limit(&self) -> Result<i64, Problem> {
        let limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(Problem::bad_request("limit must be between 1 and 200"));
        }
        Ok(limit)
    }

    /// Cuts the `limit + 1` rows a query fetched down to one page, with the cursor of the next
    /// page when there is one.
    pub fn page<T>(
        mut rows: Vec<T>,
        limit: i64,
        id: impl Fn(&T) -> String,
    ) -> (Vec<T>, Option<String>) {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = if more { rows.last().map(id) } else { None };
        (rows, next)
    }

    /// The cursor, parsed as the id type it was made from.
    pub fn cursor<T: std::str::FromStr>(&self) -> Result<Option<T>, Problem> {
        self.cursor
            .as_deref()
            .map(|c| {
                c.parse::<T>()
                    .map_err(|_| Problem::bad_request("cursor is not one this server issued"))
            })
            .transpose()
    }
}

/// A page of tracks.
#[derive(Serialize, ToSchema)]
pub struct TrackPage {
    /// Newest first.
    pub items: Vec<TrackView>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Tracks, newest first: all of them for admins, their own for artists.
#[utoipa::path(
    get, path = "/v1/tracks", tag = TRACKS, params(ListQuery),
    responses(
        (status = 200, description = "A page of tracks", body = TrackPage),
        (status = 400, description = "Bad limit or cursor", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Listeners cannot list tracks", body = ProblemDoc, content_type = "application/problem+json"),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn list(
    State(app): State<Arc<App>>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Json<TrackPage>, Problem> {
    let who = authenticate(&app, &headers)?;
    require(&who, Role::Artist, "listing tracks")?;
    let limit = q.limit()?;
    let before = q.cursor::<TrackId>()?;
    let owner = (who.role != Role::Admin).then_some(who.subject.as_str());
    // One more than asked tells whether another page exists.
    let rows = app.store.tracks(before, limit + 1, owner).await?;
    let (rows, next_cursor) = ListQuery::page(rows, limit, |t| t.id.to_string());
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
        (status = 403, description = "Another artist's track", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such track", body = ProblemDoc, content_type = "application/problem+json"),
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
    if let Some((_, cancel)) = app.running.remove(&id) {
        cancel.cancel();
    }
    // Objects first, then rows: on a full disk the store needs the space the objects free to
    // write its own deletion, and a DELETE that fails half way is simply sent again.
    app.storage.delete(&t.original_key).await?;
    let package = format!("tracks/{id}");
    app.storage.delete_prefix(&package).await?;
    let t = app
        .store
        .delete_track(id, App::now_ms())
        .await?
        .ok_or_else(|| Problem::not_found(format!("no track {id}")))?;
    app.events_wake.notify_one();
    app.published.invalidate(&id);
    app.listeners.forget(id);
    // Whatever an attempt published between the two; a worker elsewhere still writing removes
    // its own staging prefix when its publish finds the track gone.
    app.storage.delete_prefix(&package).await?;
    tracing::info!(track = %id, original = %t.original_key, "track deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Progress as server-sent events: `progress` until the track is ready or failed, or `deleted`.
#[utoipa::path(
    get, path = "/v1/tracks/{id}/events", tag = TRACKS, params(("id" = String, Path, description = "Track id")),
    responses(
        (status = 200, description = "An event stream of `progress` events (data: id, status, progress, error) and a final `deleted` event when the track goes", content_type = "text/event-stream", body = SseEvent),
        (status = 403, description = "Another artist's track", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such track", body = ProblemDoc, content_type = "application/problem+json"),
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
    let state = (app.clone(), None::<(Status, i64)>, false);
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

/// Signed playback URLs for a ready track.
#[derive(Serialize, ToSchema)]
pub struct TrackPlayback {
    /// The multivariant playlist of every rendition.
    pub master_url: String,
    /// BBC audiowaveform JSON (version 2).
    pub waveform_url: String,
    /// One multivariant playlist per codec family (`aac`, `opus`, `flac`).
    #[schema(value_type = Object)]
    pub masters: serde_json::Map<String, Value>,
    /// The playback token in the URLs.
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// Playback URLs, signed for `auth.playback_ttl_seconds`. Any role may play a ready track.
#[utoipa::path(
    post, path = "/v1/tracks/{id}/playback", tag = TRACKS, params(("id" = String, Path, description = "Track id")),
    responses(
        (status = 200, description = "Signed URLs", body = TrackPlayback),
        (status = 404, description = "No such track", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Not ready yet, or failed", body = ProblemDoc, content_type = "application/problem+json"),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn playback(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<TrackPlayback>, Problem> {
    let (t, _) = find_track(&app, &headers, &id, false).await?;
    let id = t.id;
    if t.status != Status::Ready {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "track-not-ready",
            "Track not ready",
            format!("track {id} is {}", t.status.as_str()),
        ));
    }
    let expires = App::now_secs() + app.config.auth.playback_ttl_seconds;
    let session = u128::from_be_bytes(rand::random());
    let token = app.tokens.sign(id, session, expires);
    let base = format!("{}/hls/tracks/{id}", app.public_url);
    let renditions = app.store.renditions(id).await?;
    let mut masters = serde_json::Map::new();
    for (codec, file) in [
        ("aac", "master_aac.m3u8"),
        ("opus", "master_opus.m3u8"),
        ("flac", "master_flac.m3u8"),
    ] {
        if renditions.iter().any(|r| r.name.starts_with(codec)) {
            masters.insert(codec.into(), json!(format!("{base}/{file}?token={token}")));
        }
    }
    Ok(Json(TrackPlayback {
        master_url: format!("{base}/master.m3u8?token={token}"),
        waveform_url: format!("{base}/waveform.json?token={token}"),
        masters,
        expires_at: rfc3339(expires as i64 * 1000),
        token,
    }))
}
