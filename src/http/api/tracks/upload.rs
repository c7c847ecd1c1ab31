//! `POST /v1/tracks`: an upload, as the raw body or as a multipart form, streamed into storage
//! and queued for packaging.

use super::{view, TrackView};
use crate::app::App;
use crate::auth::Role;
use crate::http::access::{authenticate, require};
use crate::http::body::{drain, too_large, DRAIN_BYTES};
use crate::http::idempotency;
use crate::http::openapi::{ProblemDoc, Refusals, TRACKS};
use crate::http::problem::Problem;
use crate::storage::{Put, PutError};
use crate::store::{Track, TrackId};
use crate::util;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use utoipa::IntoParams;

/// Upload options.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(in crate::http) struct UploadQuery {
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
pub(in crate::http) async fn upload(
    State(app): State<Arc<App>>,
    Query(q): Query<UploadQuery>,
    req: Request,
) -> Result<Response, Problem> {
    let who = match authenticate(&app, req.headers())
        .await
        .and_then(|w| require(&w, Role::Artist, "uploading").map(|_| w))
    {
        Ok(w) => w,
        Err(p) => {
            // A refused client is usually sending its body already: read it (bounded) before
            // answering, so the refusal is not lost to a reset and the connection stays usable
            // for its next request (a client's pool reuses it).
            let small = req
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|n| n <= DRAIN_BYTES);
            if small && !req.headers().contains_key(header::EXPECT) {
                drain(req.into_body().into_data_stream()).await;
            }
            return Err(p);
        }
    };
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
    let key = crate::layout::original(id);
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
    let now = util::now_ms();
    let track = Track::queued(
        id,
        &who.subject,
        key,
        &incoming.filename,
        &incoming.content_type,
        incoming.title.as_deref(),
        incoming.size as i64,
        now,
    );
    app.catalog.queue_upload(&track, &app.queue, now).await?;
    tracing::info!(track = %id, bytes = incoming.size, owner = %who.subject, "upload queued");
    let body = serde_json::to_value(view(&app, &track).await?).expect("views serialise");
    let headers = [("location".to_string(), crate::layout::track_api(id))];
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

/// Streams a body into one object, part by part, hashing it into `digest`. Over `limit`, or on any
/// error, the multipart upload is aborted so no partial object remains.
pub(in crate::http) async fn store_stream(
    app: &App,
    key: &str,
    mut body: impl Stream<Item = Result<Bytes, Problem>> + Unpin + Send,
    limit: u64,
    digest: &mut Sha256,
) -> Result<u64, Problem> {
    let metrics = &app.metrics;
    let put = app
        .storage
        .put_stream(key, &mut body, limit, false, &mut |c| {
            metrics.upload_bytes.inc_by(c.len() as u64);
            digest.update(c);
        })
        .await;
    match put {
        Ok(Put { cut: Some(e), .. }) => Err(e),
        Ok(p) => Ok(p.bytes),
        Err(PutError::TooLarge) => {
            drain(&mut body).await;
            Err(too_large(limit))
        }
        Err(PutError::Storage(e)) => Err(e.into()),
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
