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

use crate::app::App;
use crate::auth::Scope;
use crate::http::answer::{
    etag_of, forbidden, immutable, not_found, object, playlist_answer, published, retimed, token_of,
};
use crate::http::problem::Problem;
use crate::http::semantics::with_token;
use crate::store::TrackId;
use crate::util;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use std::time::Instant;

pub(in crate::http) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/hls/tracks/{id}/{file}", get(top))
        .route("/hls/tracks/{id}/{rendition}/{file}", get(nested))
        .route("/hls/tracks/{id}/{rendition}/{at}/{file}", get(shifted))
}

/// The shift of a retimed path segment, `t<ticks>`: canonical decimal (no sign, no leading zero),
/// above 0, so each retimed object has exactly one URL and one cache key.
pub(in crate::http) fn parse_shift(at: &str) -> Option<u64> {
    let digits = at.strip_prefix('t')?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Playlist,
    Media,
    Json,
    Image(&'static str),
}

fn top_kind(file: &str) -> Option<Kind> {
    match file {
        f if crate::layout::parse_master(f).is_some() => Some(Kind::Playlist),
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
    // Fetching the waveform or the cover (a library page drawing its rows) is not listening.
    if matches!(kind, Kind::Playlist | Kind::Media) {
        app.catalog
            .listeners
            .touch(track, grant.session, Instant::now());
    }
    // A media segment (not the init segment) counts towards a play.
    if matches!(kind, Kind::Media) && file.starts_with("seg") && *method != Method::HEAD {
        app.catalog
            .listeners
            .fetched(track, grant.session, app.config.packaging.segment_seconds);
    }
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
    let now = util::now_secs();
    let Some(Scope::Playlist(pid)) = token.and_then(crate::auth::Tokens::scope_of) else {
        return app.auth.tokens.verify(token, track, now).map_err(forbidden);
    };
    let grant = app
        .auth
        .tokens
        .verify(token, Scope::Playlist(pid), now)
        .map_err(forbidden)?;
    match app.catalog.stitch(pid).await {
        Ok(Some(s)) if s.tracks.contains(&track) => Ok(grant),
        Ok(_) => Err(forbidden(crate::auth::TokenError::WrongScope)),
        Err(e) => Err(Problem::from(e).into_response()),
    }
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
