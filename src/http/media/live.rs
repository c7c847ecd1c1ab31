//! LL-HLS delivery of live channels under `/hls/live/{channel}/` (draft-pantos-hls-rfc8216bis,
//! Apple's Low-Latency HLS): multivariant playlists per codec family, media playlists with
//! blocking reload, delta updates, preload hints and rendition reports, and the parts, segments
//! and init segments themselves. Every URI carries the channel-scoped playback token.
//!
//! A request for a channel that runs on another node is redirected (307) to it. A bad token is
//! refused before anything is looked up, so a request for a channel that does not exist costs a
//! MAC check and allocates nothing that stays.

use crate::app::App;
use crate::auth::Scope;
use crate::http::answer::{forbidden, immutable, token_of};
use crate::http::problem::Problem;
use crate::http::semantics::with_token;
use crate::live::{Channel, Output, Protocol, PART_TARGET};
use crate::objects::Object;
use crate::store::ChannelId;
use crate::util;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use veza_hls::{advance_parts, decide, parse_query, render_multivariant, Decision, Edge, Variant};

pub(in crate::http) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/hls/live/{channel}/{file}", get(top))
        .route("/hls/live/{channel}/{rendition}/{file}", get(nested))
}

/// The channel a request may read: token checked, then the local channel, or a redirect to the
/// node that runs it, or 404 when it is off the air.
async fn channel(
    app: &App,
    id: &str,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(Arc<Channel>, String), Response> {
    let id = ChannelId::parse_canonical(id)
        .ok_or_else(|| Problem::not_found("no such channel").into_response())?;
    let token = token_of(uri);
    let grant = app
        .auth
        .tokens
        .verify(token, Scope::Channel(id), util::now_secs())
        .map_err(forbidden)?;
    let Some(ch) = app.live.get(id) else {
        return Err(not_here(app, id, uri, format!("channel {id} is not on the air"), 2).await);
    };
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    ch.seen(grant.session, Protocol::Hls, agent);
    Ok((ch, token.unwrap_or_default().to_string()))
}

/// The answer for a channel that does not run here: 307 to the node holding its lease, or 404
/// `channel-offline` with `Retry-After: retry`.
pub(in crate::http) async fn not_here(
    app: &App,
    id: ChannelId,
    uri: &Uri,
    detail: String,
    retry: u64,
) -> Response {
    if let Some(lease) = app.live.elsewhere(id).await {
        let to = format!(
            "{}{}",
            lease.url,
            uri.path_and_query().map_or("", |p| p.as_str())
        );
        let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
        if let Ok(v) = HeaderValue::from_str(&to) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return r;
    }
    Problem::new(
        StatusCode::NOT_FOUND,
        "channel-offline",
        "Channel offline",
        detail,
    )
    .retry_after(retry)
    .into_response()
}

async fn top(
    State(app): State<Arc<App>>,
    Path((id, file)): Path<(String, String)>,
    uri: Uri,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let (ch, token) = match channel(&app, &id, &uri, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(family) = crate::layout::parse_master(&file) else {
        return Problem::not_found("no such file").into_response();
    };
    let variants: Vec<Variant> = ch
        .outputs
        .iter()
        .filter(|o| family.is_none_or(|f| f == o.rendition.family()))
        .map(|o| Variant {
            name: o.name.clone(),
            uri: format!("{}/index.m3u8", o.name),
            bandwidth: u64::from(o.rendition.bitrate()) * 11 / 10,
            average_bandwidth: u64::from(o.rendition.bitrate()),
            codecs: o.rendition.codecs_attr().into(),
            channels: o.channels,
        })
        .collect();
    if variants.is_empty() {
        return Problem::not_found("this channel has no rendition of that family").into_response();
    }
    let text = with_token(&render_multivariant(&variants), &token);
    playlist(text, "public, max-age=10", method == Method::HEAD)
}

async fn nested(
    State(app): State<Arc<App>>,
    Path((id, rendition, file)): Path<(String, String, String)>,
    uri: Uri,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let (ch, token) = match channel(&app, &id, &uri, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(out) = ch.output(&rendition).cloned() else {
        return Problem::not_found("no such rendition").into_response();
    };
    let head = method == Method::HEAD;
    if file == "index.m3u8" {
        return media_playlist(
            &app,
            &ch,
            &out,
            uri.query().unwrap_or_default(),
            &token,
            head,
        )
        .await;
    }
    if file == "init.mp4" {
        let tag = crate::http::answer::etag_of(&[
            ch.id.to_string().as_bytes(),
            out.name.as_bytes(),
            &out.init,
        ]);
        return media(&app, out.init.clone(), &tag, "video/mp4", head, &headers);
    }
    if let Some((msn, index)) = part_name(&file) {
        return part(&app, &ch, &out, msn, index, head, &headers).await;
    }
    if let Some(msn) = file
        .strip_prefix("seg_")
        .and_then(|f| f.strip_suffix(".m4s"))
        .and_then(decimal)
    {
        let w = out.window();
        return match w.segment(msn) {
            Some(s) => {
                let tag = format!("\"{}-{}-s{msn}\"", ch.id.0.simple(), out.name);
                media(
                    &app,
                    s.data.clone(),
                    &tag,
                    "video/iso.segment",
                    head,
                    &headers,
                )
            }
            None => {
                Problem::not_found(format!("segment {msn} is not in the window")).into_response()
            }
        };
    }
    Problem::not_found("no such file").into_response()
}

/// `part_{msn}_{index}.m4s`.
fn part_name(file: &str) -> Option<(u64, u32)> {
    let rest = file.strip_prefix("part_")?.strip_suffix(".m4s")?;
    let (msn, index) = rest.split_once('_')?;
    Some((decimal(msn)?, u32::try_from(decimal(index)?).ok()?))
}

fn decimal(s: &str) -> Option<u64> {
    if s.is_empty()
        || s.len() > 19
        || !s.bytes().all(|b| b.is_ascii_digit())
        || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

async fn part(
    app: &App,
    ch: &Channel,
    out: &Output,
    msn: u64,
    index: u32,
    head: bool,
    headers: &HeaderMap,
) -> Response {
    let mut w = out.window();
    if w.part(msn, index).is_none() && !w.ended {
        // The preload-hinted part (4.4.5.3): held until it is published, as a blocked playlist
        // reload is. Anything further ahead is not there.
        if w.preload_hint(ch.parts_per_segment) == Some((msn, index))
            && out
                .wait(
                    Edge { msn, part: index },
                    Duration::from_secs_f64(PART_TARGET * 3.0 + 0.5),
                )
                .await
        {
            w = out.window();
        }
    }
    match w.part(msn, index) {
        Some(p) => {
            let tag = format!("\"{}-{}-p{msn}.{index}\"", ch.id.0.simple(), out.name);
            media(
                app,
                p.data.clone(),
                &tag,
                "video/iso.segment",
                head,
                headers,
            )
        }
        None => {
            Problem::not_found(format!("part {msn}.{index} is not in the window")).into_response()
        }
    }
}

fn media(
    app: &App,
    data: bytes::Bytes,
    tag: &str,
    content_type: &'static str,
    head: bool,
    headers: &HeaderMap,
) -> Response {
    let etag = HeaderValue::from_str(tag).unwrap_or(HeaderValue::from_static("\"x\""));
    immutable(app, Object { data, etag }, content_type, head, headers)
}

fn playlist(text: String, cache: &'static str, head: bool) -> Response {
    let len = text.len();
    let mut r = if head {
        Response::new(axum::body::Body::empty())
    } else {
        Response::new(axum::body::Body::from(text))
    };
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.apple.mpegurl"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

async fn media_playlist(
    app: &App,
    ch: &Channel,
    out: &Output,
    query: &str,
    token: &str,
    head: bool,
) -> Response {
    let (req, skip) = match parse_query(query) {
        Ok(q) => q,
        Err(e) => return Problem::bad_request(e).into_response(),
    };
    let blocking = req.msn.is_some();
    match decide(
        out.edge(),
        req,
        ch.parts_per_segment,
        advance_parts(PART_TARGET),
    ) {
        Decision::BadRequest(why) => return Problem::bad_request(why).into_response(),
        Decision::Now if !blocking => {
            // A request without delivery directives (a player's first load, a plain HLS
            // reload) is answered as the next part is published, so that the edge it shows is
            // fresh: a player starts PART-HOLD-BACK behind that edge, and an edge up to a part
            // old would put it up to a part further back for the whole session.
            let w = out.window();
            if let Some((msn, part)) = w.preload_hint(ch.parts_per_segment).filter(|_| !w.ended) {
                let limit = Duration::from_secs_f64(PART_TARGET + 0.2);
                out.wait(Edge { msn, part }, limit).await;
            }
        }
        Decision::Now => {}
        Decision::Wait(want) => {
            // 6.2.5.2: hold the request until the part exists; after three target durations
            // without it, answer 503.
            let limit = Duration::from_secs(3 * u64::from(crate::live::TARGET_DURATION));
            let released = out.wait(want, limit).await;
            if released {
                app.metrics
                    .live_release
                    .observe(out.since_publish().as_secs_f64());
            }
            if !released && !out.window().ended {
                return Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "part-not-ready",
                    "Part not ready",
                    format!("part {}.{} did not appear in time", want.msn, want.part),
                )
                .retry_after(1)
                .into_response();
            }
        }
    }
    // Whatever the playlist shows besides this window: the other renditions' edges and the
    // now-playing date ranges.
    let mut stamp: Vec<u64> = ch
        .outputs
        .iter()
        .filter(|o| o.name != out.name)
        .flat_map(|o| {
            o.edge()
                .map_or([u64::MAX; 2], |e| [e.msn, u64::from(e.part)])
        })
        .collect();
    stamp.push(ch.dateranges_version());
    let rendered = out.playlist(skip, stamp, |w| crate::live::render_media(ch, out, w, skip));
    // Blocking responses are unique URLs whose content never changes: cacheable for a while
    // (Apple, "Enabling Low-Latency HLS": six part-target-sized... as for any segment). Plain
    // reloads live about one part.
    let cache = if blocking {
        "public, max-age=6"
    } else {
        "public, max-age=1"
    };
    playlist(rendered.fill(&format!("token={token}")), cache, head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names_are_canonical() {
        assert_eq!(part_name("part_12_3.m4s"), Some((12, 3)));
        assert_eq!(part_name("part_012_3.m4s"), None);
        assert_eq!(part_name("part_12.m4s"), None);
        assert_eq!(part_name("part_1_99999999999.m4s"), None);
    }
}
