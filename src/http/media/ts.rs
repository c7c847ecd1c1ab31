//! Plain HLS in MPEG-TS for the devices that play no fragmented MP4 (Sonos, Alexa, set-top
//! boxes): `GET /hls/live/{channel}/master_ts.m3u8`, its media playlist `ts/index.m3u8` and its
//! segments `ts/seg_{n}.ts`, about 6 s each, from the AAC rendition's frames.
//!
//! Who may read them is who may listen to the channel's mounts: anyone for a public channel (the
//! URL is permanent, as speakers and directories need), a listener token or a playback token of
//! the channel for a private one, carried into every URI of the playlists.

use super::mounts::{admit, channel_row, running};
use crate::app::App;
use crate::http::answer::{immutable, token_of};
use crate::http::problem::Problem;
use crate::live::ts::TsStream;
use crate::live::Channel;
use crate::objects::Object;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

pub(in crate::http) fn routes() -> Router<Arc<App>> {
    // Static segments win over the LL-HLS routes' `{file}` and `{rendition}` at the same place.
    Router::new()
        .route("/hls/live/{channel}/master_ts.m3u8", get(master))
        .route("/hls/live/{channel}/ts/{file}", get(file))
}

/// The channel's TS rendition, checked for access, with the query its URIs carry.
async fn open(
    app: &App,
    id: &str,
    uri: &Uri,
) -> Result<(Arc<Channel>, Arc<TsStream>, String, bool), Response> {
    let none = || Problem::not_found(format!("no channel {id}")).into_response();
    let row = channel_row(app, id).await?.ok_or_else(none)?;
    let token = token_of(uri).filter(|t| !t.is_empty());
    admit(app, &row, token).await?;
    let ch = running(app, row.id, uri).await?;
    let Some(ts) = ch.mounts.ts.clone() else {
        return Err(Problem::not_found(format!(
            "channel {} has no AAC rendition, so no MPEG-TS HLS",
            row.id
        ))
        .into_response());
    };
    let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
    Ok((ch, ts, query, row.public))
}

fn answer(
    body: impl Into<bytes::Bytes>,
    content_type: &'static str,
    cache: String,
    head: bool,
) -> Response {
    let body: bytes::Bytes = body.into();
    let len = body.len();
    let mut r = if head {
        Response::new(axum::body::Body::empty())
    } else {
        Response::new(axum::body::Body::from(body))
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

fn scope(public: bool) -> &'static str {
    if public {
        "public"
    } else {
        "private"
    }
}

/// `master_ts.m3u8`: one variant, AAC-LC in TS.
async fn master(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    uri: Uri,
    method: Method,
) -> Response {
    let (_, ts, query, public) = match open(&app, &id, &uri).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let text = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"mp4a.40.2\"\n\
         ts/index.m3u8{query}\n",
        // MPEG-TS costs about 13 % over the AAC (packet and PES headers, stuffing, tables).
        u64::from(ts.bitrate) * 5 / 4,
        u64::from(ts.bitrate) * 23 / 20,
    );
    answer(
        text.into_bytes(),
        "application/vnd.apple.mpegurl",
        format!("{}, max-age=10", scope(public)),
        method == Method::HEAD,
    )
}

/// `ts/index.m3u8` and `ts/seg_{n}.ts`.
async fn file(
    State(app): State<Arc<App>>,
    Path((id, file)): Path<(String, String)>,
    uri: Uri,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let (ch, ts, query, public) = match open(&app, &id, &uri).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let head = method == Method::HEAD;
    if file == "index.m3u8" {
        return match ts.playlist(&query) {
            Some(text) => answer(
                text.into_bytes(),
                "application/vnd.apple.mpegurl",
                // Half a segment: a CDN never holds a playlist past the next segment.
                format!("{}, max-age=3", scope(public)),
                head,
            ),
            None => Problem::new(
                axum::http::StatusCode::NOT_FOUND,
                "channel-starting",
                "Not Found",
                "the channel's first MPEG-TS segment is not complete yet: try again in a few seconds",
            )
            .retry_after(6)
            .into_response(),
        };
    }
    let segment = file
        .strip_prefix("seg_")
        .and_then(|f| f.strip_suffix(".ts"))
        .and_then(|n| n.parse::<u64>().ok());
    let Some(n) = segment else {
        return Problem::not_found(format!("no file {file}: ts/ holds index.m3u8 and seg_N.ts"))
            .into_response();
    };
    match ts.segment(n) {
        // A segment never changes once published, and its number is never reused: cached for
        // good, with its ETag and byte ranges, as a CDN wants.
        Some(data) => {
            let etag = HeaderValue::from_str(&format!("\"{}-ts-{n}\"", ch.id))
                .expect("a quoted id and number");
            immutable(&app, Object { data, etag }, "video/mp2t", head, &headers)
        }
        None => Problem::not_found(format!(
            "segment {n} is not (or no longer) in the channel's window"
        ))
        .into_response(),
    }
}
