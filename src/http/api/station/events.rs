//! A channel's live state as server-sent events, for its pages and for directory widgets:
//! `state`, `now_playing` and `listeners`, each followed by the whole now-playing document.

use super::onair::nowplaying_json;
use crate::app::App;
use crate::http::access::authenticate;
use crate::http::api::channels::{view, visible};
use crate::http::openapi::{ProblemDoc, Refusals, CHANNELS, JSON_PROBLEM};
use crate::http::problem::Problem;
use crate::live::ChannelEvent;
use crate::store::Channel;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// The channel's live state as server-sent events: `state`, `now_playing` and `listeners`, each
/// followed by `nowplaying`, the whole now-playing document
/// (`/v1/public/channels/{id}/nowplaying`).
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
    let who = authenticate(&app, &headers).await?;
    let c = visible(&app, &who, &id).await?;
    Ok(follow(app, &c).await)
}

/// Publishes a channel's events, each with its now-playing document, to the followers on the
/// other nodes (through the cluster), until the channel stops.
pub async fn relay(app: Arc<App>, ch: Arc<crate::live::Channel>) {
    let mut rx = ch.subscribe();
    let id = ch.id;
    loop {
        let received = tokio::select! {
            r = rx.recv() => r,
            // A stopped channel's sender may live on (its last playlist is still answered).
            _ = ch.stopped.cancelled() => Err(tokio::sync::broadcast::error::RecvError::Closed),
        };
        let (e, last) = match received {
            Ok(e) => (e, false),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => (
                ChannelEvent::State {
                    state: crate::live::State::Offline,
                    source: None,
                },
                true,
            ),
        };
        let doc = match app.store.channel(id).await {
            Ok(Some(row)) => nowplaying_json(&app, &row).await.to_string(),
            _ => String::new(),
        };
        let payload = serde_json::json!({
            "event": event_name(&e),
            "data": serde_json::to_string(&e).unwrap_or_default(),
            "nowplaying": doc,
        });
        app.cluster
            .publish_channel(&id.to_string(), &payload.to_string())
            .await;
        if last {
            return;
        }
    }
}

/// The events of a channel that runs on another node, as its node relays them.
fn remote(
    rx: tokio::sync::broadcast::Receiver<Arc<str>>,
) -> impl futures::Stream<Item = Vec<Event>> {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(payload) => {
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(&payload) else {
                        continue;
                    };
                    let (Some(name), Some(data)) = (v["event"].as_str(), v["data"].as_str()) else {
                        continue;
                    };
                    let mut events = vec![Event::default().event(name).data(data)];
                    if let Some(doc) = v["nowplaying"].as_str().filter(|d| !d.is_empty()) {
                        events.push(Event::default().event("nowplaying").data(doc));
                    }
                    return Some((events, rx));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// The live-state event stream of a channel the caller may see.
pub(crate) async fn follow(app: Arc<App>, c: &Channel) -> Response {
    let id = c.id;
    // Not running here, with Redis: the node running it relays its events (the stored state
    // opens the stream, as below).
    if app.live.running(id).is_none() {
        if let Some(rx) = app.cluster.follow_channel(&id.to_string()) {
            let opening = vec![
                sse(&ChannelEvent::State {
                    state: view(&app, c, None).await.state,
                    source: None,
                }),
                nowplaying(&app, c).await,
            ];
            let stream = futures::stream::iter(vec![opening])
                .chain(remote(rx))
                .flat_map(futures::stream::iter)
                .map(Ok::<_, std::convert::Infallible>)
                .take_until(app.shutdown.clone().cancelled_owned());
            return Sse::new(stream)
                .keep_alive(KeepAlive::default())
                .into_response();
        }
    }
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
    let row = c.clone();
    let follow = futures::stream::unfold(
        None,
        move |rx: Option<tokio::sync::broadcast::Receiver<ChannelEvent>>| {
            let app = live_app.clone();
            let row = row.clone();
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
                        events.push(nowplaying(&app, &row).await);
                        return Some((events, rx));
                    };
                    match r.recv().await {
                        Ok(e) => return Some((vec![sse(&e), nowplaying(&app, &row).await], rx)),
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

/// The `nowplaying` event: the whole now-playing document, after every change.
async fn nowplaying(app: &App, c: &Channel) -> Event {
    let doc = nowplaying_json(app, c).await;
    Event::default().event("nowplaying").data(doc.as_str())
}

fn event_name(e: &ChannelEvent) -> &'static str {
    match e {
        ChannelEvent::State { .. } => "state",
        ChannelEvent::NowPlaying(_) => "now_playing",
        ChannelEvent::Listeners(_) => "listeners",
    }
}

fn sse(e: &ChannelEvent) -> Event {
    Event::default()
        .event(event_name(e))
        .data(serde_json::to_string(e).unwrap_or_default())
}
