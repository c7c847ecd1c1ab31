//! A track's cover: `PUT /v1/tracks/{id}/cover` (a JPEG, PNG or WebP, checked and resized, see
//! [`crate::cover`]), `DELETE` to remove it, and `GET /v1/covers/{track}/{digest}.jpg`, the
//! image itself.
//!
//! A cover's URL names its digest, so it never changes content: it is cached for a year and
//! immutable, and a new cover is a new URL. The digest (256 bits of the image's hash) is what
//! makes the URL hard to guess: anyone who has it may load the image, as with the covers of
//! other music services, which an `<img>` loads without credentials.

use super::{view, TrackView};
use crate::app::App;
use crate::http::answer::{immutable, object};
use crate::http::api::lookup::find_track;
use crate::http::openapi::{NoTrack, OthersTrack, ProblemDoc, Refusals, JSON_PROBLEM, TRACKS};
use crate::http::problem::Problem;
use crate::store::TrackId;
use crate::util;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

/// The largest cover upload taken.
pub const MAX_COVER_BYTES: usize = 20 << 20;

/// Set a track's cover (its owner and admins): a JPEG, PNG or WebP of at most 20 MiB and 8192
/// pixels a side, stored as a JPEG of at most 600 pixels a side.
#[utoipa::path(
    put, path = "/v1/tracks/{id}/cover", tag = TRACKS,
    params(("id" = String, Path, description = "Track id")),
    request_body(content = Vec<u8>, description = "The image", content_type = "image/jpeg"),
    responses(
        (status = 200, description = "The track with its new cover_url", body = TrackView),
        OthersTrack,
        NoTrack,
        (status = 413, description = "Over 20 MiB", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 415, description = "Not a JPEG, PNG or WebP", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 422, description = "The image does not decode, or is over 8192 pixels a side", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn put_cover(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<TrackView>, Problem> {
    let (t, _) = find_track(&app, &headers, &id, true).await?;
    if body.len() > MAX_COVER_BYTES {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Payload too large",
            "a cover is at most 20 MiB",
        ));
    }
    let cover = tokio::task::spawn_blocking(move || crate::cover::normalise(&body))
        .await
        .map_err(|e| Problem::unavailable("cover thread", &e))?
        .map_err(|e| match e {
            crate::cover::Error::Format => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-image",
                "Unsupported image",
                "a cover must be a JPEG, PNG or WebP image",
            ),
            other => Problem::unprocessable("unreadable-image", other.to_string()),
        })?;
    app.storage
        .put(
            &crate::layout::cover(t.id, &cover.digest),
            cover.jpeg.into(),
        )
        .await?;
    let old = t.cover.clone();
    let t = crate::store::Track {
        cover: Some(cover.digest.clone()),
        ..t
    };
    save(&app, &t).await?;
    if let Some(old) = old.filter(|o| *o != cover.digest) {
        forget(&app, t.id, &old).await;
    }
    Ok(Json(view(&app, &t).await?))
}

/// Remove a track's cover.
#[utoipa::path(
    delete, path = "/v1/tracks/{id}/cover", tag = TRACKS,
    params(("id" = String, Path, description = "Track id")),
    responses(
        (status = 200, description = "The track, without a cover", body = TrackView),
        OthersTrack,
        NoTrack,
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn delete_cover(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<TrackView>, Problem> {
    let (t, _) = find_track(&app, &headers, &id, true).await?;
    let old = t.cover.clone();
    let t = crate::store::Track { cover: None, ..t };
    save(&app, &t).await?;
    if let Some(old) = old {
        forget(&app, t.id, &old).await;
    }
    Ok(Json(view(&app, &t).await?))
}

/// Removes a replaced cover from storage and this node's hot cache. Best effort: a left-over
/// image is only space.
async fn forget(app: &App, track: TrackId, digest: &str) {
    let key = crate::layout::cover(track, digest);
    let _ = app.storage.delete(&key).await;
    app.objects.invalidate(&key);
}

/// Writes a track's editable fields.
pub(super) async fn save(app: &App, t: &crate::store::Track) -> Result<(), Problem> {
    if app.store.update_track(t, util::now_ms()).await? {
        app.catalog.invalidate(t.id);
        Ok(())
    } else {
        Err(Problem::not_found(format!("no track {}", t.id)))
    }
}

/// A cover image. Its URL comes from a track's `cover_url`.
#[utoipa::path(
    get, path = "/v1/covers/{track}/{file}", tag = TRACKS,
    params(
        ("track" = String, Path, description = "Track id"),
        ("file" = String, Path, description = "`{digest}.jpg`"),
    ),
    responses(
        (status = 200, description = "The JPEG", content_type = "image/jpeg"),
        (status = 304, description = "Not modified"),
        (status = 404, description = "No such cover", body = ProblemDoc, content_type = JSON_PROBLEM),
    ),
    security(())
)]
pub(super) async fn image(
    State(app): State<Arc<App>>,
    Path((track, file)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let none = || Problem::not_found("no such cover").into_response();
    let Some(digest) = file.strip_suffix(".jpg") else {
        return none();
    };
    let hex = digest.len() == 64
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let Some(id) = TrackId::parse_canonical(&track).filter(|_| hex) else {
        return none();
    };
    match object(&app, crate::layout::cover(id, digest)).await {
        Ok(obj) => {
            let mut r = immutable(&app, obj, "image/jpeg", method == Method::HEAD, &headers);
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            );
            r
        }
        Err(r) => r,
    }
}
