//! Icecast's metadata update, `GET /admin/metadata?mount=/ingest/{id}&mode=updinfo&song=…`,
//! which BUTT, Mixxx, Liquidsoap and ffmpeg-based tools send to set the title of a live mount.
//! Authorised with the source's own Basic credentials (`source:<stream key>`); answered with
//! Icecast's XML.

use crate::app::App;
use crate::icecast::{head::basic, song};
use crate::live::{check_stream_key, KeyRefused};
use crate::store::ChannelId;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

pub(in crate::http) fn routes() -> Router<Arc<App>> {
    Router::new().route("/admin/metadata", get(metadata))
}

#[derive(Deserialize)]
struct Update {
    mount: Option<String>,
    mode: Option<String>,
    song: Option<String>,
    title: Option<String>,
    artist: Option<String>,
}

fn xml(status: StatusCode, ok: bool, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\"?>\n<iceresponse><message>{}</message><return>{}</return></iceresponse>\n",
        message.replace('&', "&amp;").replace('<', "&lt;"),
        u8::from(ok)
    );
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, "text/xml".parse().expect("static"));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"Icecast2 Server\"".parse().expect("static"),
        );
    }
    r
}

async fn metadata(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Query(q): Query<Update>,
    headers: HeaderMap,
) -> Response {
    let mount = q.mount.unwrap_or_default();
    let Some(id) = mount
        .strip_prefix("/ingest/")
        .and_then(ChannelId::parse_canonical)
    else {
        return xml(StatusCode::BAD_REQUEST, false, "No such mountpoint");
    };
    if q.mode.as_deref() != Some("updinfo") {
        return xml(StatusCode::BAD_REQUEST, false, "mode must be updinfo");
    }
    let creds = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(basic);
    let row = match app.store.channel(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return xml(StatusCode::NOT_FOUND, false, "No such mountpoint"),
        Err(_) => {
            return xml(
                StatusCode::SERVICE_UNAVAILABLE,
                false,
                "Metadata store unavailable",
            )
        }
    };
    let Some((_, key)) = creds.filter(|(user, _)| user == "source") else {
        return xml(StatusCode::UNAUTHORIZED, false, "Authentication Required");
    };
    match check_stream_key(
        &app.auth.limits,
        client.ip(),
        id,
        &key,
        &row.key_hash,
        "metadata",
    ) {
        Ok(()) => {}
        Err(KeyRefused::Wrong) => {
            return xml(StatusCode::UNAUTHORIZED, false, "Authentication Required")
        }
        Err(KeyRefused::Blocked(left)) => {
            let mut r = xml(
                StatusCode::TOO_MANY_REQUESTS,
                false,
                "Too many wrong stream keys from this address",
            );
            if let Ok(v) = left.as_secs().max(1).to_string().parse() {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
    }
    let Some(song) = q
        .song
        .or_else(|| song(q.artist.as_deref(), q.title.as_deref()))
    else {
        return xml(StatusCode::BAD_REQUEST, false, "No metadata given");
    };
    match app.live.running(id) {
        Some(ch) if ch.set_title(song) => xml(StatusCode::OK, true, "Metadata update successful"),
        _ => xml(StatusCode::BAD_REQUEST, false, "Source is not connected"),
    }
}
