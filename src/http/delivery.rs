//! HLS delivery: `/hls/tracks/{id}/…`, what players and CDNs fetch.
//!
//! Order of checks, cheapest first: the path shape, the track id, the playback token (HMAC, no
//! store), then the published-track cache (the store only on a miss), then the object (the hot
//! cache, storage on a miss). Refusals before the store use static bodies and allocate nothing.
//!
//! Segments and init segments are immutable: each packaging attempt writes under its own prefix,
//! so the object key identifies the bytes and the ETag is a hash of the key. They answer Range
//! (206/416), HEAD and `If-None-Match` (304). Playlists are rewritten on the way out so that every
//! URI carries the token: AVPlayer sends no headers and does not carry query strings over to
//! relative URIs.

use super::problem::static_problem;
use super::semantics::{hex, none_match, range, with_token};
use crate::auth::{Scope, TokenError};
use crate::server::{App, Object, Published};
use crate::store::{Status, TrackId};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;

pub(super) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/hls/tracks/{id}/{file}", get(top))
        .route("/hls/tracks/{id}/{rendition}/{file}", get(nested))
        .route("/hls/tracks/{id}/{rendition}/{at}/{file}", get(shifted))
}

/// The shift of a retimed path segment, `t<ticks>`: canonical decimal (no sign, no leading zero),
/// above 0, so each retimed object has exactly one URL and one cache key.
pub(super) fn parse_shift(at: &str) -> Option<u64> {
    let digits = at.strip_prefix('t')?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

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
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Playlist,
    Media,
    Json,
    Image(&'static str),
}

fn top_kind(file: &str) -> Option<Kind> {
    match file {
        "master.m3u8" | "master_aac.m3u8" | "master_opus.m3u8" | "master_flac.m3u8" => {
            Some(Kind::Playlist)
        }
        "waveform.json" => Some(Kind::Json),
        "cover.jpg" => Some(Kind::Image("image/jpeg")),
        "cover.png" => Some(Kind::Image("image/png")),
        _ => None,
    }
}

fn nested_kind(file: &str) -> Option<Kind> {
    if file == "index.m3u8" {
        return Some(Kind::Playlist);
    }
    if file == "init.mp4" {
        return Some(Kind::Media);
    }
    let n = file.strip_prefix("seg_")?.strip_suffix(".m4s")?;
    (!n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit())).then_some(Kind::Media)
}

async fn top(
    State(app): State<Arc<App>>,
    Path((id, file)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(kind) = top_kind(&file) else {
        return not_found();
    };
    let at = Where {
        rendition: None,
        shift: None,
    };
    serve(&app, &id, at, &file, kind, &method, &uri, &headers).await
}

async fn nested(
    State(app): State<Arc<App>>,
    Path((id, rendition, file)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(kind) = nested_kind(&file) else {
        return not_found();
    };
    let at = Where {
        rendition: Some(&rendition),
        shift: None,
    };
    serve(&app, &id, at, &file, kind, &method, &uri, &headers).await
}

/// A media segment moved `t<ticks>` later on the decode timeline, for playlists played as one
/// stream (see `stitch`). Derived on the fly from the stored segment and kept in the hot cache;
/// as immutable as the segment it comes from.
async fn shifted(
    State(app): State<Arc<App>>,
    Path((id, rendition, at, file)): Path<(String, String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    // Only media segments are retimed: the stored init serves every place in a playlist.
    let (Some(shift), Some(Kind::Media), true) =
        (parse_shift(&at), nested_kind(&file), file != "init.mp4")
    else {
        return not_found();
    };
    let at = Where {
        rendition: Some(&rendition),
        shift: Some(shift),
    };
    serve(&app, &id, at, &file, Kind::Media, &method, &uri, &headers).await
}

/// Where a file lies: at the package's top, or in a rendition, possibly retimed.
#[derive(Clone, Copy)]
struct Where<'a> {
    rendition: Option<&'a str>,
    shift: Option<u64>,
}

/// The `token` query parameter, borrowed from the URI.
pub(super) fn token_of(uri: &Uri) -> Option<&str> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    app: &App,
    id: &str,
    at: Where<'_>,
    file: &str,
    kind: Kind,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    let Some(track) = TrackId::parse_canonical(id) else {
        return not_found();
    };
    let token = token_of(uri);
    let grant = match verify_for_track(app, token, track).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let published = match published(app, track).await {
        Ok(Some(p)) => p,
        Ok(None) => return not_found(),
        Err(r) => return r,
    };
    if let Some(r) = at.rendition {
        if !published.renditions.iter().any(|n| n == r) {
            return not_found();
        }
    }
    app.listeners.touch(track, grant.session, Instant::now());
    let key = match at.rendition {
        Some(r) => format!("{}/{r}/{file}", published.prefix),
        None => format!("{}/{file}", published.prefix),
    };
    let obj = match at.shift {
        None => object(app, key).await,
        Some(shift) => retimed(app, key, shift).await,
    };
    let obj = match obj {
        Ok(o) => o,
        Err(r) => return r,
    };
    let head = method == Method::HEAD;
    match kind {
        Kind::Playlist => {
            // The body is a function of the stored playlist and the token, so a hash of the two is
            // a strong validator for it.
            let token = token.unwrap_or_default();
            let tag = etag_of(&[obj.etag.as_bytes(), token.as_bytes()]);
            // `token` passed verification, so it is made of URL-safe characters only.
            playlist_answer(app, &tag, headers, head, || {
                with_token(&String::from_utf8_lossy(&obj.data), token)
            })
        }
        Kind::Json => {
            let mut r = immutable(app, obj, "application/json", head, headers);
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            r
        }
        Kind::Image(ct) => immutable(app, obj, ct, head, headers),
        Kind::Media => immutable(app, obj, "audio/mp4", head, headers),
    }
}

/// A track token for `track`, or a playlist token of a playlist that plays it: the stitched
/// playlists carry the playlist's own token on every URI, so they are rendered once and a
/// request only substitutes its token.
async fn verify_for_track(
    app: &App,
    token: Option<&str>,
    track: TrackId,
) -> Result<crate::auth::Grant, Response> {
    let now = App::now_secs();
    let Some(Scope::Playlist(pid)) = token.and_then(crate::auth::Tokens::scope_of) else {
        return app.tokens.verify(token, track, now).map_err(forbidden);
    };
    let grant = app
        .tokens
        .verify(token, Scope::Playlist(pid), now)
        .map_err(forbidden)?;
    match super::stitch::load(app, pid).await {
        Ok(Some(s)) if s.tracks.contains(&track) => Ok(grant),
        Ok(_) => Err(forbidden(crate::auth::TokenError::WrongScope)),
        Err(p) => Err(p.into_response()),
    }
}

/// The published state of a track, cached for a few seconds.
pub(super) async fn published(
    app: &App,
    track: TrackId,
) -> Result<Option<Arc<Published>>, Response> {
    if let Some(p) = app.published.get(&track) {
        return Ok(p);
    }
    let t = match app.store.track(track).await {
        Ok(t) => t,
        Err(e) => return Err(super::Problem::from(e).into_response()),
    };
    let p = match t {
        Some(t) if t.status == Status::Ready => match t.media_prefix {
            Some(prefix) => {
                let renditions = match app.store.renditions(track).await {
                    Ok(r) => r.into_iter().map(|r| r.name).collect(),
                    Err(e) => return Err(super::Problem::from(e).into_response()),
                };
                Some(Arc::new(Published { prefix, renditions }))
            }
            None => None,
        },
        _ => None,
    };
    app.published.insert(track, p.clone());
    Ok(p)
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
        Err(e) => Err(super::Problem::from(e).into_response()),
    }
}

/// The media segment under `key` moved `shift` ticks later, from the hot cache or derived from
/// the stored segment.
async fn retimed(app: &App, key: String, shift: u64) -> Result<Object, Response> {
    let shifted_key = format!("{key}@t{shift}");
    if let Some(o) = app.objects.get(&shifted_key) {
        app.metrics.cache_hits.inc();
        return Ok(o);
    }
    let stored = object(app, key).await?;
    let data = veza_hls::retime_segment(&stored.data, shift).map_err(|e| {
        super::Problem::from(crate::store::Error::Corrupt(format!(
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

fn immutable(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_file_names_are_served() {
        assert!(nested_kind("seg_00012.m4s").is_some());
        assert!(nested_kind("seg_.m4s").is_none());
        assert!(nested_kind("seg_1.m4s.bak").is_none());
        assert!(nested_kind("..").is_none());
        assert!(top_kind("analysis.json").is_none());
        assert!(top_kind("master.m3u8").is_some());
    }

    #[test]
    fn shifts_have_one_spelling() {
        assert_eq!(parse_shift("t48000"), Some(48_000));
        for bad in [
            "t0",
            "t048000",
            "t",
            "48000",
            "t-1",
            "t+1",
            "t1e3",
            "t99999999999999999999",
        ] {
            assert_eq!(parse_shift(bad), None, "{bad}");
        }
    }
}
