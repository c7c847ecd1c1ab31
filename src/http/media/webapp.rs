//! The web app (`web/`), built into `web/dist` by `npm --prefix web run build` and embedded in
//! the binary: `/` and the app's own pages answer its page, `/app/*` its script, styles and
//! source map. Built without `web/dist`, the binary answers `/` with a page that says how to
//! build the app (the control API works the same either way).
//!
//! On embedded defaults (no `auth.api_keys` configured), `POST /app/dev-sign-in` hands the
//! development API key to a page loaded from loopback, from the same origin: the one-click
//! sign-in of a fresh install. Anywhere else it answers 404.

use crate::app::App;
use crate::http::problem::Problem;
use crate::http::public;
use crate::util;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(rust_embed::Embed)]
#[folder = "web/dist/"]
#[allow_missing = true]
struct Assets;

/// The app's routes.
pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(home))
        .route("/play/{kind}/{id}", get(play))
        .route("/embed/{kind}/{id}", get(play))
        .route("/a/{handle}", get(home))
        .route("/app/{*file}", get(asset))
        .route(crate::http::browser::DEV_SIGN_IN, post(dev_sign_in))
}

/// Shown at `/` when the binary was built without the web app.
const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Veza Stream</title></head><body><h1>Veza Stream</h1><p>The web app is not built into \
this binary. Build it with <code>npm --prefix web ci &amp;&amp; npm --prefix web run build</code>, \
then build the server again.</p><p>The control API is at <code>/v1/tracks</code>, \
<code>/v1/playlists</code> and <code>/v1/channels</code>; its description at \
<a href=\"/openapi.json\">/openapi.json</a>.</p></body></html>";

/// The app's page at `/`.
async fn home() -> Response {
    page(StatusCode::OK, None)
}

/// A public item's page (or its embed player, framed by other sites), with the item's Open
/// Graph tags and oEmbed link for link previews. An item that is
/// not public (or does not exist) gets the page with 404: it may still be its owner's, who is
/// signed in, and the app asks the API with the owner's credential.
async fn play(State(app): State<Arc<App>>, Path((kind, id)): Path<(String, String)>) -> Response {
    match public::card(&app, &kind, &id).await {
        Some(card) => page(StatusCode::OK, Some(card.head())),
        None => page(StatusCode::NOT_FOUND, None),
    }
}

fn page(status: StatusCode, head: Option<String>) -> Response {
    let Some(f) = Assets::get("index.html") else {
        return (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            NOT_BUILT,
        )
            .into_response();
    };
    let html = String::from_utf8_lossy(&f.data);
    let html = match head {
        Some(h) => html.replacen("<title>Veza Stream</title>\n", &h, 1),
        None => html.into_owned(),
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

/// One of the app's files, revalidated by its content hash (`ETag`), since its name has none.
async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(f) = Assets::get(&file) else {
        return Problem::not_found("no such file of the web app").into_response();
    };
    let etag = format!("\"{}\"", util::hex(&f.metadata.sha256_hash()[..16]));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            r.headers_mut().insert(header::ETAG, v);
        }
        return r;
    }
    // Release builds embed the files: serve the static bytes without copying them.
    let mut r = match f.data {
        std::borrow::Cow::Borrowed(b) => axum::body::Bytes::from_static(b).into_response(),
        std::borrow::Cow::Owned(v) => v.into_response(),
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&file)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    r
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("map") | Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// The development sign-in: the development API key, to a loopback peer asking for a loopback
/// `Host` from the same origin, on embedded defaults ([`crate::http::browser`] keeps CORS off it).
async fn dev_sign_in(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    match &app.dev_api_key {
        Some(key)
            if peer.ip().is_loopback() && crate::http::browser::may_sign_in(&headers, &uri) =>
        {
            Json(serde_json::json!({ "credential": key, "role": "admin" })).into_response()
        }
        _ => Problem::not_found(
            "the development sign-in works only on embedded defaults, from this machine",
        )
        .into_response(),
    }
}
