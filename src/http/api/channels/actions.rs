//! What a channel does besides CRUD: rotate its stream key, sign playback URLs, and stream its
//! live state as server-sent events.

use super::views::*;
use crate::app::App;
use crate::http::access::authenticate;
use crate::http::openapi::{NoChannel, NotOwner, ProblemDoc, Refusals, CHANNELS, JSON_PROBLEM};
use crate::http::problem::Problem;
use crate::live::new_key;
use crate::live::ChannelEvent;
use crate::rendition::Rendition;
use crate::store::Channel;
use crate::util;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Rotate the stream key. A source connected with the old key is dropped at once.
#[utoipa::path(
    post, path = "/v1/channels/{id}/stream-key", tag = CHANNELS, params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The new key, shown once", body = StreamKey),
        NotOwner,
        NoChannel,
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn rotate(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<StreamKey>, Problem> {
    let (_, old) = writable(&app, &headers, &id).await?;
    let (key, key_hash) = new_key();
    let mut c = old.clone();
    c.key_hash = key_hash;
    let c = save(&app, &old, c).await?;
    Ok(Json(StreamKey {
        stream_key: key,
        ingest_url: format!("{}{}", app.ingest_url, crate::layout::channel_ingest(c.id)),
    }))
}

/// Signed LL-HLS URLs of a channel, whatever its state: players keep polling an offline
/// channel's playlist until it goes on air.
#[utoipa::path(
    post, path = "/v1/channels/{id}/playback", tag = CHANNELS, params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 200, description = "Signed URLs", body = ChannelPlayback),
        (status = 404, description = "No such channel visible to this caller", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn playback(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ChannelPlayback>, Problem> {
    let who = authenticate(&app, &headers)?;
    let c = visible(&app, &who, &id).await?;
    Ok(Json(sign(&app, &c, app.config.auth.playback_ttl_seconds)))
}

/// A channel's LL-HLS (and WHEP) URLs, signed for `ttl` seconds.
pub(crate) fn sign(app: &App, c: &Channel, ttl: u64) -> ChannelPlayback {
    let signed = app
        .auth
        .tokens
        .playback(&app.public_url, c.id, util::now_secs(), ttl);
    let mut masters = serde_json::Map::new();
    let mut whep_url = None;
    for name in renditions_of(app, c) {
        if name.starts_with("opus-") {
            whep_url = Some(format!(
                "{}{}",
                app.public_url,
                crate::layout::channel_whep(c.id)
            ));
        }
        if let Ok(r) = Rendition::parse_live(&name) {
            let f = r.family();
            masters
                .entry(f)
                .or_insert_with(|| json!(signed.url(&crate::layout::master_of(f))));
        }
    }
    ChannelPlayback {
        master_url: signed.url(crate::layout::MASTER),
        masters,
        expires_at: util::rfc3339(signed.expires as i64 * 1000),
        token: signed.token,
        whep_url,
    }
}

/// The channel's live state as server-sent events: `state`, `now_playing` and `listeners`.
/// The stream opens with a `state` event (and `now_playing` when something plays), and waits
/// for the channel to go on air when it is offline.
#[utoipa::path(
    get, path = "/v1/channels/{id}/events", tag = CHANNELS, params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 200, description = "text/event-stream of state, now_playing and listeners events", content_type = "text/event-stream"),
        (status = 404, description = "No such channel visible to this caller", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn events(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let who = authenticate(&app, &headers)?;
    let c = visible(&app, &who, &id).await?;
    Ok(follow(app, &c).await)
}

/// The live-state event stream of a channel the caller may see.
pub(crate) async fn follow(app: Arc<App>, c: &Channel) -> Response {
    let id = c.id;
    // Running here, the follower opens with its state; otherwise the stored state says whether
    // it is on air on another node.
    let opening = match app.live.running(id) {
        Some(_) => Vec::new(),
        None => vec![sse(&ChannelEvent::State {
            state: view(&app, c, None).await.state,
            source: None,
        })],
    };
    let live_app = app.clone();
    let follow = futures::stream::unfold(
        None,
        move |rx: Option<tokio::sync::broadcast::Receiver<ChannelEvent>>| {
            let app = live_app.clone();
            async move {
                let mut rx = rx;
                loop {
                    if app.shutdown.is_cancelled() {
                        return None;
                    }
                    let Some(r) = rx.as_mut() else {
                        // Not followed yet: once the channel runs on this node, say how it is
                        // (what it announced while starting went to nobody), then follow it.
                        let Some(ch) = app.live.running(id) else {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        };
                        let rx = Some(ch.subscribe());
                        let now = ch.status();
                        let mut events = vec![sse(&ChannelEvent::State {
                            state: now.state,
                            source: now.source,
                        })];
                        if let Some(np) = now.now_playing {
                            events.push(sse(&ChannelEvent::NowPlaying(np)));
                        }
                        return Some((events, rx));
                    };
                    match r.recv().await {
                        Ok(e) => return Some((vec![sse(&e)], rx)),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            rx = None;
                            let off = ChannelEvent::State {
                                state: crate::live::State::Offline,
                                source: None,
                            };
                            return Some((vec![sse(&off)], rx));
                        }
                    }
                }
            }
        },
    )
    .flat_map(futures::stream::iter);
    let stream = futures::stream::iter(opening)
        .chain(follow)
        .map(Ok::<_, std::convert::Infallible>)
        .take_until(app.shutdown.clone().cancelled_owned());
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn sse(e: &ChannelEvent) -> Event {
    let name = match e {
        ChannelEvent::State { .. } => "state",
        ChannelEvent::NowPlaying(_) => "now_playing",
        ChannelEvent::Listeners(_) => "listeners",
    };
    Event::default()
        .event(name)
        .data(serde_json::to_string(e).unwrap_or_default())
}
