//! The tus routes: discovery, creation (with upload), offset, PATCH and termination.

use super::protocol::*;
use super::write::*;
use crate::app::App;
use crate::auth::Role;
use crate::http::access::require;
use crate::http::body::too_large;
use crate::http::idempotency;
use crate::http::openapi::{ProblemDoc, Refusals, JSON_PROBLEM, UPLOADS};
use crate::http::problem::Problem;
use crate::store::Upload;
use crate::util;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// What this server supports of tus.
#[utoipa::path(
    options, path = "/v1/uploads", tag = UPLOADS,
    responses((status = 204, description = "tus capabilities", headers(
        ("Tus-Version" = String), ("Tus-Extension" = String), ("Tus-Max-Size" = i64), ("Tus-Checksum-Algorithm" = String))))
)]
pub(crate) async fn options(State(app): State<Arc<App>>) -> Response {
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
pub(crate) async fn create(
    State(app): State<Arc<App>>,
    req: Request,
) -> Result<Response, Response> {
    let headers = req.headers().clone();
    let who = caller(&app, &headers).await?;
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
            out.push(("veza-track".to_string(), crate::layout::track_api(t)));
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
pub(crate) async fn head(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let who = caller(&app, &headers).await?;
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
pub(crate) async fn patch(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, Response> {
    let headers = req.headers().clone();
    let who = caller(&app, &headers).await?;
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
pub(crate) async fn terminate(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let who = caller(&app, &headers).await?;
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
