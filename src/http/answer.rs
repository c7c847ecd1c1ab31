//! Answers shared by track and playlist delivery: refusals with static bodies, objects from the
//! hot cache, playlists with their validators, and immutable media with Range and 304.

use super::problem::{static_problem, Problem};
use super::semantics::{none_match, range};
use crate::app::App;
use crate::auth::TokenError;
use crate::catalog::Published;
use crate::objects::Object;
use crate::store::TrackId;
use crate::util::hex;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::sync::Arc;

const NOT_FOUND: &str = r#"{"type":"https://veza.stream/problems/not-found","title":"Not found","status":404,"detail":"no such track or file"}"#;

pub(super) fn forbidden(e: TokenError) -> Response {
    let body = match e {
        TokenError::Missing => {
            r#"{"type":"https://veza.stream/problems/token-missing","title":"Forbidden","status":403,"detail":"a playback token is required"}"#
        }
        TokenError::Expired => {
            r#"{"type":"https://veza.stream/problems/token-expired","title":"Forbidden","status":403,"detail":"the playback token has expired"}"#
        }
        TokenError::WrongScope => {
            r#"{"type":"https://veza.stream/problems/token-scope","title":"Forbidden","status":403,"detail":"the playback token is for another track"}"#
        }
        TokenError::UnknownKey => {
            r#"{"type":"https://veza.stream/problems/token-key","title":"Forbidden","status":403,"detail":"the playback token's key is unknown or retired"}"#
        }
        _ => {
            r#"{"type":"https://veza.stream/problems/token-invalid","title":"Forbidden","status":403,"detail":"the playback token is invalid"}"#
        }
    };
    static_problem(StatusCode::FORBIDDEN, body)
}

pub(super) fn not_found() -> Response {
    static_problem(StatusCode::NOT_FOUND, NOT_FOUND)
}

/// What a request asks for.
/// The `token` query parameter, borrowed from the URI.
pub(super) fn token_of(uri: &Uri) -> Option<&str> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
}

/// The published state of a track, from the catalog.
pub(super) async fn published(
    app: &App,
    track: TrackId,
) -> Result<Option<Arc<Published>>, Response> {
    app.catalog
        .published(track)
        .await
        .map_err(|e| Problem::from(e).into_response())
}

/// One object, from the hot cache or storage.
pub(super) async fn object(app: &App, key: String) -> Result<Object, Response> {
    if let Some(o) = app.objects.get(&key) {
        app.metrics.cache_hits.inc();
        return Ok(o);
    }
    app.metrics.cache_misses.inc();
    match app.storage.get(&key).await {
        Ok(data) => {
            let o = Object {
                etag: HeaderValue::from_str(&etag(&key)).expect("hex in quotes"),
                data,
            };
            app.objects.insert(key, o.clone());
            Ok(o)
        }
        Err(object_store::Error::NotFound { .. }) => Err(not_found()),
        Err(e) => Err(Problem::from(e).into_response()),
    }
}

/// The media segment under `key` moved `shift` ticks later, from the hot cache or derived from
/// the stored segment.
pub(super) async fn retimed(app: &App, key: String, shift: u64) -> Result<Object, Response> {
    let shifted_key = format!("{key}@t{shift}");
    if let Some(o) = app.objects.get(&shifted_key) {
        app.metrics.cache_hits.inc();
        return Ok(o);
    }
    let stored = object(app, key).await?;
    let data = veza_hls::retime_segment(&stored.data, shift).map_err(|e| {
        Problem::from(crate::store::Error::Corrupt(format!(
            "{shifted_key} cannot be retimed: {e}"
        )))
        .into_response()
    })?;
    let o = Object {
        etag: HeaderValue::from_str(&etag(&shifted_key)).expect("hex in quotes"),
        data: Bytes::from(data),
    };
    app.objects.insert(shifted_key, o.clone());
    Ok(o)
}

/// A VOD playlist answer: 304 when `If-None-Match` names `tag`, otherwise the text `body` makes;
/// either way the ETag and the short `delivery.playlist_max_age_seconds` (playlists change when a
/// track is re-packaged or a playlist edited).
pub(super) fn playlist_answer(
    app: &App,
    tag: &str,
    headers: &HeaderMap,
    head: bool,
    body: impl FnOnce() -> String,
) -> Response {
    let mut r = if none_match(headers, tag) {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = body_response(app, StatusCode::OK, Bytes::from(body()), head);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/vnd.apple.mpegurl"),
        );
        r
    };
    let h = r.headers_mut();
    h.insert(
        header::ETAG,
        HeaderValue::from_str(tag).expect("hex in quotes"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!(
            "public, max-age={}",
            app.config.delivery.playlist_max_age_seconds
        ))
        .unwrap_or(HeaderValue::from_static("no-cache")),
    );
    r
}

fn body_response(app: &App, status: StatusCode, body: Bytes, head: bool) -> Response {
    let len = body.len();
    let mut r = if head {
        Response::new(Body::empty())
    } else {
        app.metrics.bytes_out.inc_by(len as u64);
        Response::new(Body::from(body))
    };
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

/// A strong validator: the bytes under a key never change.
fn etag(key: &str) -> String {
    etag_of(&[key.as_bytes()])
}

/// A quoted ETag: the first 128 bits of SHA-256 over `parts`.
pub(super) fn etag_of(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for p in parts {
        hasher.update(p);
    }
    format!("\"{}\"", hex(&hasher.finalize()[..16]))
}

pub(super) fn immutable(
    app: &App,
    obj: Object,
    content_type: &'static str,
    head: bool,
    headers: &HeaderMap,
) -> Response {
    let Object {
        data,
        etag: tag_value,
    } = obj;
    let tag = tag_value.to_str().unwrap_or_default();
    let len = data.len() as u64;
    let mut r = if none_match(headers, tag) {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let if_range_ok = headers
            .get(header::IF_RANGE)
            .map(|v| v.to_str().ok() == Some(tag))
            .unwrap_or(true);
        match range(headers, len).filter(|_| if_range_ok) {
            None => body_response(app, StatusCode::OK, data, head),
            Some(Ok((start, end))) => {
                let mut r = body_response(
                    app,
                    StatusCode::PARTIAL_CONTENT,
                    data.slice(start as usize..=end as usize),
                    head,
                );
                r.headers_mut().insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes {start}-{end}/{len}"))
                        .expect("ASCII digits"),
                );
                r
            }
            Some(Err(())) => {
                let mut r = static_problem(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    r#"{"type":"https://veza.stream/problems/range-not-satisfiable","title":"Range not satisfiable","status":416,"detail":"the range starts past the end"}"#,
                );
                r.headers_mut().insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{len}")).expect("ASCII digits"),
                );
                return r;
            }
        }
    };
    let h = r.headers_mut();
    h.insert(header::ETAG, tag_value.clone());
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if r.status() != StatusCode::NOT_MODIFIED {
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    r
}
