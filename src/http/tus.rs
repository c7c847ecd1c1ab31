//! Resumable uploads: tus 1.0.0 (<https://tus.io/protocols/resumable-upload>) under `/v1/uploads`,
//! with the creation, creation-with-upload, termination, expiration and checksum (sha256)
//! extensions.
//!
//! Each PATCH is stored as its own object, `uploads/<id>/<offset>`, and the upload's offset moves
//! in the store with a compare-and-set, so any node can take the next PATCH and two racing PATCHes
//! cannot both land. A PATCH cut off mid-body keeps what arrived (unless it carried a checksum,
//! which cannot be checked on a part), so the client resumes from there. When the offset reaches
//! the length the pieces are joined into the track's original and the track is queued, in the
//! same transaction that marks the upload complete. Unfinished uploads are removed after
//! `limits.upload_expiration_seconds`.

use super::access::{authenticate, require};
use super::body::{drain, too_large};
use super::idempotency;
use super::openapi::{ProblemDoc, Refusals, JSON_PROBLEM, UPLOADS};
use super::problem::Problem;
use crate::app::App;
use crate::auth::{Identity, Role};
use crate::storage::PutError;
use crate::store::{Track, TrackId, Upload};
use crate::util;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration,checksum";
const OFFSET_TYPE: &str = "application/offset+octet-stream";

pub(super) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(options, create))
        .routes(routes!(head, patch, terminate))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::map_response(tus_headers))
}

/// Every tus answer carries `Tus-Resumable`.
async fn tus_headers(mut r: Response) -> Response {
    r.headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(VERSION));
    r
}

fn h(name: &'static str, value: impl ToString) -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static(name),
        HeaderValue::from_str(&value.to_string()).unwrap_or(HeaderValue::from_static("")),
    )
}

fn expires_header(ms: i64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

/// `Tus-Resumable` must name the version this server speaks: the 412 (with `Tus-Version`) when
/// it does not.
fn refuse_version(headers: &HeaderMap) -> Option<Response> {
    match headers.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(VERSION) => None,
        _ => {
            let mut r = Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "tus-version",
                "Unsupported tus version",
                "send Tus-Resumable: 1.0.0",
            )
            .into_response();
            r.headers_mut()
                .insert("tus-version", HeaderValue::from_static(VERSION));
            Some(r)
        }
    }
}

fn header_i64(headers: &HeaderMap, name: &str) -> Result<Option<i64>, Problem> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| Problem::bad_request(format!("{name} must be a non-negative integer"))),
    }
}

/// One value of `Upload-Metadata` (`key base64,key base64`), decoded.
fn metadata_value(metadata: &str, key: &str) -> Option<String> {
    metadata.split(',').find_map(|pair| {
        let mut it = pair.trim().splitn(2, ' ');
        (it.next()? == key).then(|| {
            let v = it.next().unwrap_or("");
            B64.decode(v.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default()
        })
    })
}

fn check_metadata(metadata: &str) -> Result<(), Problem> {
    if metadata.len() > 4096 {
        return Err(Problem::bad_request(
            "Upload-Metadata is limited to 4096 bytes",
        ));
    }
    for pair in metadata.split(',').filter(|p| !p.trim().is_empty()) {
        let mut it = pair.trim().splitn(2, ' ');
        let key = it.next().unwrap_or("");
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(Problem::bad_request(
                "Upload-Metadata keys must be ASCII without spaces or commas",
            ));
        }
        if let Some(v) = it.next() {
            if B64.decode(v.trim()).is_err() {
                return Err(Problem::bad_request(format!(
                    "Upload-Metadata value of {key} is not base64"
                )));
            }
        }
    }
    Ok(())
}

/// An upload the caller owns (or any, for admins); 404 otherwise, 410 once expired.
async fn owned(app: &App, who: &Identity, id: &str) -> Result<Upload, Problem> {
    let gone = || Problem::not_found(format!("no upload {id}"));
    if uuid::Uuid::try_parse(id).is_err() {
        return Err(gone());
    }
    let u = app.store.upload(id).await?.ok_or_else(gone)?;
    if !(who.role == Role::Admin || who.subject == u.owner) {
        return Err(gone());
    }
    if u.track_id.is_none() && u.expires_at < util::now_ms() {
        return Err(Problem::new(
            StatusCode::GONE,
            "upload-expired",
            "Upload expired",
            format!("upload {id} expired; start a new one"),
        ));
    }
    Ok(u)
}

/// What a PATCH body left behind.
struct Piece {
    bytes: u64,
    /// The client went away before the end.
    cut: bool,
}

/// Streams a PATCH body into one object of at most `room` bytes. A body cut short is kept when
/// `keep_partial`; otherwise nothing remains.
async fn store_piece(
    app: &App,
    key: &str,
    body: Body,
    room: u64,
    keep_partial: bool,
    digest: &mut Sha256,
) -> Result<Piece, Problem> {
    let mut stream = body.into_data_stream();
    let metrics = &app.metrics;
    let put = app
        .storage
        .put_stream(key, &mut stream, room, keep_partial, &mut |c| {
            metrics.upload_bytes.inc_by(c.len() as u64);
            digest.update(c);
        })
        .await;
    match put {
        Ok(p) => Ok(Piece {
            bytes: p.bytes,
            cut: p.cut.is_some(),
        }),
        Err(PutError::TooLarge) => {
            drain(&mut stream).await;
            Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "upload-overflow",
                "Past Upload-Length",
                "the body runs past the declared Upload-Length",
            ))
        }
        Err(PutError::Storage(e)) => Err(e.into()),
    }
}

/// Writes a PATCH (or creation-with-upload) body at `u.offset` and moves the offset. Returns the
/// new offset.
async fn append(app: &App, u: &Upload, headers: &HeaderMap, body: Body) -> Result<i64, Problem> {
    let checksum = match headers.get("upload-checksum") {
        None => None,
        Some(v) => {
            let v = v.to_str().unwrap_or("");
            let (alg, sum) = v.split_once(' ').unwrap_or((v, ""));
            if alg != "sha256" {
                return Err(Problem::bad_request(
                    "Upload-Checksum: only sha256 is supported (Tus-Checksum-Algorithm)",
                ));
            }
            Some(
                B64.decode(sum.trim())
                    .map_err(|_| Problem::bad_request("Upload-Checksum is not base64"))?,
            )
        }
    };
    let key = crate::layout::upload_piece(&u.id, u.offset);
    let mut digest = Sha256::new();
    let room = (u.length - u.offset) as u64;
    let piece = store_piece(app, &key, body, room, checksum.is_none(), &mut digest).await?;
    if let Some(want) = checksum {
        if piece.cut || digest.finalize().as_slice() != want.as_slice() {
            let _ = app.storage.delete(&key).await;
            return Err(Problem::new(
                StatusCode::from_u16(460).expect("460 is a valid status"),
                "checksum-mismatch",
                "Checksum mismatch",
                "the body does not match Upload-Checksum; it was discarded",
            ));
        }
    }
    if piece.bytes == 0 {
        return Ok(u.offset);
    }
    let to = u.offset + piece.bytes as i64;
    if !app.store.advance_upload(&u.id, u.offset, to).await? {
        let _ = app.storage.delete(&key).await;
        return Err(Problem::conflict(
            "offset-mismatch",
            "Offset mismatch",
            "another request moved this upload meanwhile; HEAD it and resume",
        ));
    }
    if piece.cut {
        tracing::info!(upload = %u.id, offset = to, "upload cut off; kept what arrived");
    }
    Ok(to)
}

/// Joins a complete upload's pieces into a track and queues it. Returns the track id.
async fn complete(app: &App, u: &Upload) -> Result<TrackId, Problem> {
    if let Some(t) = u.track_id {
        return Ok(t);
    }
    let prefix = crate::layout::upload(&u.id);
    let pieces = app.storage.list(&prefix).await?;
    let id = TrackId::new();
    let original = crate::layout::original(id);
    let keys: Vec<String> = pieces.iter().map(|(k, _)| k.clone()).collect();
    let size = app.storage.concat(&keys, &original).await?;
    if size != u.length as u64 {
        let _ = app.storage.delete(&original).await;
        return Err(Problem::unavailable(
            "upload store",
            &format!("upload {} holds {size} of {} bytes", u.id, u.length),
        ));
    }
    let filename = metadata_value(&u.metadata, "filename")
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "upload".into());
    let title = metadata_value(&u.metadata, "title");
    let content_type = metadata_value(&u.metadata, "filetype")
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "application/octet-stream".into());
    let now = util::now_ms();
    let track = Track::queued(
        id,
        &u.owner,
        original.clone(),
        &filename,
        &content_type,
        title.as_deref(),
        u.length,
        now,
    );
    let job = uuid::Uuid::new_v4().to_string();
    match app.store.complete_upload(&u.id, &track, &job, now).await {
        Ok(true) => {}
        Ok(false) => {
            // Another request completed it first: use its track.
            let _ = app.storage.delete(&original).await;
            return app
                .store
                .upload(&u.id)
                .await?
                .and_then(|u| u.track_id)
                .ok_or_else(|| Problem::not_found(format!("no upload {}", u.id)));
        }
        Err(e) => {
            let _ = app.storage.delete(&original).await;
            return Err(e.into());
        }
    }
    app.queue.notify();
    if let Err(e) = app.storage.delete_prefix(&prefix).await {
        tracing::warn!(upload = %u.id, error = %e, "removing joined upload pieces");
    }
    tracing::info!(upload = %u.id, track = %id, bytes = u.length, "resumable upload complete");
    Ok(id)
}

fn track_headers(track: TrackId) -> [(HeaderName, HeaderValue); 1] {
    [h("veza-track", format!("/v1/tracks/{track}"))]
}

/// Answers tus discovery (`OPTIONS /v1/uploads`) ahead of the CORS layer, which would take any
/// OPTIONS for a preflight. A real preflight carries `Access-Control-Request-Method` and goes on.
pub async fn discovery(
    State(app): State<Arc<App>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    if req.method() == axum::http::Method::OPTIONS
        && req.uri().path() == "/v1/uploads"
        && !req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return tus_headers(options(State(app)).await).await;
    }
    next.run(req).await
}

/// What this server supports of tus.
#[utoipa::path(
    options, path = "/v1/uploads", tag = UPLOADS,
    responses((status = 204, description = "tus capabilities", headers(
        ("Tus-Version" = String), ("Tus-Extension" = String), ("Tus-Max-Size" = i64), ("Tus-Checksum-Algorithm" = String))))
)]
async fn options(State(app): State<Arc<App>>) -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            h("tus-version", VERSION),
            h("tus-extension", EXTENSIONS),
            h("tus-max-size", app.config.server.max_upload_bytes),
            h("tus-checksum-algorithm", "sha256"),
        ],
    )
        .into_response()
}

/// Create a resumable upload (tus creation), optionally with its first bytes
/// (creation-with-upload). Metadata keys: `filename`, `filetype`, `title`.
#[utoipa::path(
    post, path = "/v1/uploads", tag = UPLOADS,
    params(
        ("Tus-Resumable" = String, Header, description = "1.0.0"),
        ("Upload-Length" = i64, Header, description = "Total size in bytes"),
        ("Upload-Metadata" = Option<String>, Header, description = "key base64,key base64"),
        ("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for the same key and request"),
    ),
    request_body(content = Option<Vec<u8>>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 201, description = "Created", headers(("Location" = String), ("Upload-Offset" = i64), ("Upload-Expires" = String))),
        (status = 400, description = "Missing or bad Upload-Length or metadata", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 403, description = "Listeners cannot upload", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 412, description = "Unsupported Tus-Resumable", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 413, description = "Over Tus-Max-Size", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 422, description = "Idempotency-Key reused", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn create(State(app): State<Arc<App>>, req: Request) -> Result<Response, Response> {
    let headers = req.headers().clone();
    let who = authenticate(&app, &headers).map_err(IntoResponse::into_response)?;
    if let Some(r) = refuse_version(&headers) {
        return Err(r);
    }
    let run = async {
        require(&who, Role::Artist, "uploading")?;
        if headers.contains_key("upload-defer-length") {
            return Err(Problem::bad_request(
                "Upload-Defer-Length is not supported; send Upload-Length",
            ));
        }
        let length = header_i64(&headers, "upload-length")?
            .ok_or_else(|| Problem::bad_request("Upload-Length is required"))?;
        let limit = app.config.server.max_upload_bytes;
        if length as u64 > limit {
            return Err(too_large(limit));
        }
        if length == 0 {
            return Err(Problem::bad_request("the upload is empty"));
        }
        let metadata = headers
            .get("upload-metadata")
            .map(|v| v.to_str().map(str::to_owned))
            .transpose()
            .map_err(|_| Problem::bad_request("Upload-Metadata must be ASCII"))?
            .unwrap_or_default();
        check_metadata(&metadata)?;
        let idem = idempotency::key(&headers)?;
        let fp = idempotency::fingerprint(
            "POST",
            "/v1/uploads",
            &Sha256::digest(format!("{length}\n{metadata}")),
        );
        if let Some(k) = &idem {
            if let Some(r) = idempotency::replay(&app, &who, k, &fp).await? {
                return Ok(r);
            }
        }
        let now = util::now_ms();
        let mut u = Upload {
            id: uuid::Uuid::new_v4().to_string(),
            owner: who.subject.clone(),
            length,
            offset: 0,
            metadata,
            track_id: None,
            created_at: now,
            expires_at: now + app.config.limits.upload_expiration_seconds as i64 * 1000,
        };
        app.store.create_upload(&u).await?;
        let with_body = headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes() == OFFSET_TYPE.as_bytes());
        let mut track = None;
        if with_body {
            u.offset = append(&app, &u, &headers, req.into_body()).await?;
            if u.offset == u.length {
                track = Some(complete(&app, &u).await?);
            }
        }
        let mut out = vec![
            ("location".to_string(), format!("/v1/uploads/{}", u.id)),
            ("upload-expires".to_string(), expires_header(u.expires_at)),
            ("upload-offset".to_string(), u.offset.to_string()),
        ];
        if let Some(t) = track {
            out.push(("veza-track".to_string(), format!("/v1/tracks/{t}")));
        }
        if let Some(k) = &idem {
            idempotency::remember(&app, &who, k, &fp, StatusCode::CREATED, &out, None).await;
        }
        Ok(idempotency::respond(StatusCode::CREATED, &out, None))
    };
    run.await.map_err(IntoResponse::into_response)
}

/// Where an upload stands.
#[utoipa::path(
    head, path = "/v1/uploads/{id}", tag = UPLOADS,
    params(("id" = String, Path, description = "Upload id"), ("Tus-Resumable" = String, Header, description = "1.0.0")),
    responses(
        (status = 200, description = "Its offset and length", headers(("Upload-Offset" = i64), ("Upload-Length" = i64), ("Upload-Expires" = String))),
        (status = 404, description = "No such upload"),
        (status = 410, description = "Expired"),
        (status = 412, description = "Unsupported Tus-Resumable"),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn head(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let who = authenticate(&app, &headers).map_err(IntoResponse::into_response)?;
    if let Some(r) = refuse_version(&headers) {
        return Err(r);
    }
    let u = owned(&app, &who, &id)
        .await
        .map_err(IntoResponse::into_response)?;
    let mut r = (
        StatusCode::OK,
        [
            h("upload-offset", u.offset),
            h("upload-length", u.length),
            h("cache-control", "no-store"),
        ],
    )
        .into_response();
    if !u.metadata.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&u.metadata) {
            r.headers_mut().insert("upload-metadata", v);
        }
    }
    match u.track_id {
        Some(t) => r.headers_mut().extend(track_headers(t)),
        None => {
            let (n, v) = h("upload-expires", expires_header(u.expires_at));
            r.headers_mut().insert(n, v);
        }
    }
    Ok(r)
}

/// Append bytes at `Upload-Offset`. The last PATCH queues the track; `Veza-Track` names it.
#[utoipa::path(
    patch, path = "/v1/uploads/{id}", tag = UPLOADS,
    params(
        ("id" = String, Path, description = "Upload id"),
        ("Tus-Resumable" = String, Header, description = "1.0.0"),
        ("Upload-Offset" = i64, Header, description = "Where these bytes go: the current offset"),
        ("Upload-Checksum" = Option<String>, Header, description = "sha256 <base64 digest of this body>"),
    ),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "Stored", headers(("Upload-Offset" = i64), ("Veza-Track" = String))),
        (status = 400, description = "Bad header", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 404, description = "No such upload", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 409, description = "Upload-Offset is not the current offset", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 410, description = "Expired", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 412, description = "Unsupported Tus-Resumable", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 413, description = "Past Upload-Length", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 415, description = "Not application/offset+octet-stream", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 460, description = "Checksum mismatch", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn patch(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, Response> {
    let headers = req.headers().clone();
    let who = authenticate(&app, &headers).map_err(IntoResponse::into_response)?;
    if let Some(r) = refuse_version(&headers) {
        return Err(r);
    }
    let run = async {
        if headers
            .get(header::CONTENT_TYPE)
            .is_none_or(|v| v.as_bytes() != OFFSET_TYPE.as_bytes())
        {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "PATCH bodies are application/offset+octet-stream",
            ));
        }
        let offset = header_i64(&headers, "upload-offset")?
            .ok_or_else(|| Problem::bad_request("Upload-Offset is required"))?;
        let mut u = owned(&app, &who, &id).await?;
        if offset != u.offset {
            return Err(Problem::conflict(
                "offset-mismatch",
                "Offset mismatch",
                format!("the upload is at offset {}, not {offset}", u.offset),
            ));
        }
        if u.track_id.is_none() && u.offset < u.length {
            u.offset = append(&app, &u, &headers, req.into_body()).await?;
        }
        let mut r = (StatusCode::NO_CONTENT, [h("upload-offset", u.offset)]).into_response();
        if u.offset == u.length {
            // Also reached by an empty PATCH at the end, which retries a join that failed.
            let track = complete(&app, &u).await?;
            r.headers_mut().extend(track_headers(track));
        } else {
            let (n, v) = h("upload-expires", expires_header(u.expires_at));
            r.headers_mut().insert(n, v);
        }
        Ok(r)
    };
    run.await.map_err(IntoResponse::into_response)
}

/// Abandon an upload and remove what it stored (tus termination).
#[utoipa::path(
    delete, path = "/v1/uploads/{id}", tag = UPLOADS,
    params(("id" = String, Path, description = "Upload id"), ("Tus-Resumable" = String, Header, description = "1.0.0")),
    responses(
        (status = 204, description = "Terminated"),
        (status = 404, description = "No such upload", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 410, description = "Expired", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 412, description = "Unsupported Tus-Resumable", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn terminate(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let who = authenticate(&app, &headers).map_err(IntoResponse::into_response)?;
    if let Some(r) = refuse_version(&headers) {
        return Err(r);
    }
    let run = async {
        let u = owned(&app, &who, &id).await?;
        app.store.delete_upload(&u.id).await?;
        app.storage
            .delete_prefix(&crate::layout::upload(&u.id))
            .await?;
        Ok::<_, Problem>(StatusCode::NO_CONTENT.into_response())
    };
    run.await.map_err(IntoResponse::into_response)
}
