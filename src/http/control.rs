//! The control API: upload, track status, listing, deletion, progress events and playback URLs.
//! Every route takes `Authorization: Bearer <api key>`.

use super::Problem;
use crate::server::App;
use crate::store::{Status, Track, TrackId};
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, WriteMultipart};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/v1/tracks",
            post(upload)
                .get(list)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/v1/tracks/{id}", get(show).delete(remove))
        .route("/v1/tracks/{id}/events", get(events))
        .route("/v1/tracks/{id}/playback", post(playback))
}

fn authorize(app: &App, headers: &HeaderMap) -> Result<(), Problem> {
    let h = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if app.api_keys.check(h) {
        Ok(())
    } else {
        Err(Problem::unauthorized())
    }
}

fn parse_id(id: &str) -> Result<TrackId, Problem> {
    id.parse()
        .map_err(|_| Problem::not_found(format!("no track {id}")))
}

/// The track named by a path, for an authorized caller; 401 or 404 otherwise.
async fn find_track(app: &App, headers: &HeaderMap, id: &str) -> Result<Track, Problem> {
    authorize(app, headers)?;
    let id = parse_id(id)?;
    app.store
        .track(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no track {id}")))
}

fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// The JSON view of a track.
pub(super) async fn view(app: &App, t: &Track) -> Result<Value, Problem> {
    let renditions = if t.status == Status::Ready {
        app.store.renditions(t.id).await?
    } else {
        Vec::new()
    };
    let analysis: Value = t
        .analysis
        .as_deref()
        .and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or(Value::Null);
    let id = t.id.to_string();
    Ok(json!({
        "id": id,
        "title": t.title,
        "filename": t.filename,
        "content_type": t.content_type,
        "size_bytes": t.size_bytes,
        "status": t.status,
        "progress": (t.progress * 1000.0).round() / 1000.0,
        "error": t.error,
        "analysis": analysis,
        "renditions": renditions,
        "listeners": app.listeners.count(t.id, Instant::now()),
        "created_at": rfc3339(t.created_at),
        "updated_at": rfc3339(t.updated_at),
        "links": {
            "self": format!("/v1/tracks/{id}"),
            "events": format!("/v1/tracks/{id}/events"),
            "playback": format!("/v1/tracks/{id}/playback"),
        },
    }))
}

#[derive(Deserialize)]
struct UploadQuery {
    title: Option<String>,
    filename: Option<String>,
}

/// An upload on its way to storage.
struct Incoming {
    filename: String,
    content_type: String,
    title: Option<String>,
    size: u64,
}

async fn upload(
    State(app): State<Arc<App>>,
    Query(q): Query<UploadQuery>,
    req: Request,
) -> Result<Response, Problem> {
    authorize(&app, req.headers())?;
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
            let size = store_stream(&app, &key, stream, limit).await?;
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
        let size = store_stream(&app, &key, stream, limit).await?;
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
        title: title.chars().take(500).collect(),
        filename: incoming.filename.chars().take(255).collect(),
        content_type: incoming.content_type.chars().take(255).collect(),
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
    tracing::info!(track = %id, bytes = incoming.size, "upload queued");
    let body = view(&app, &track).await?;
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/v1/tracks/{id}"))],
        Json(body),
    )
        .into_response())
}

fn too_large(limit: u64) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "upload-too-large",
        "Upload too large",
        format!("uploads are limited to {limit} bytes"),
    )
}

/// Streams a body into one object, part by part. Over `limit`, or on any error, the multipart upload
/// is aborted so no partial object remains.
async fn store_stream(
    app: &App,
    key: &str,
    mut body: impl Stream<Item = Result<Bytes, Problem>> + Unpin,
    limit: u64,
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
async fn drain<E>(body: impl Stream<Item = Result<Bytes, E>> + Unpin) {
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

async fn show(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, Problem> {
    let t = find_track(&app, &headers, &id).await?;
    Ok(Json(view(&app, &t).await?))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

async fn list(
    State(app): State<Arc<App>>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, Problem> {
    authorize(&app, &headers)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Problem::bad_request("limit must be between 1 and 200"));
    }
    let before = match q.cursor.as_deref() {
        Some(c) => Some(
            c.parse::<TrackId>()
                .map_err(|_| Problem::bad_request("cursor is not one this server issued"))?,
        ),
        None => None,
    };
    // One more than asked tells whether another page exists.
    let mut rows = app.store.tracks(before, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let mut items = Vec::with_capacity(rows.len());
    for t in &rows {
        items.push(view(&app, t).await?);
    }
    let next = more
        .then(|| rows.last().map(|t| t.id.to_string()))
        .flatten();
    Ok(Json(json!({ "items": items, "next_cursor": next })))
}

async fn remove(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    authorize(&app, &headers)?;
    let id = parse_id(&id)?;
    let t = app
        .store
        .delete_track(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no track {id}")))?;
    if let Some((_, cancel)) = app.running.remove(&id) {
        cancel.cancel();
    }
    app.published.invalidate(&id);
    app.listeners.forget(id);
    app.storage.delete(&t.original_key).await?;
    // Every attempt's prefix, published or not; a worker elsewhere still writing removes its own
    // staging prefix when its publish finds the track gone.
    app.storage.delete_prefix(&format!("tracks/{id}")).await?;
    tracing::info!(track = %id, "track deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn events(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let id = find_track(&app, &headers, &id).await?.id;
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

async fn playback(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, Problem> {
    let t = find_track(&app, &headers, &id).await?;
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
    Ok(Json(json!({
        "master_url": format!("{base}/master.m3u8?token={token}"),
        "waveform_url": format!("{base}/waveform.json?token={token}"),
        "masters": masters,
        "token": token,
        "expires_at": rfc3339(expires as i64 * 1000),
    })))
}
