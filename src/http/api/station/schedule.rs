//! A channel's programme: `GET` and `PUT` (with `If-Match`), and the resolved timeline.

use super::{readable, timeline_entry, TimelineEntry};
use crate::app::App;
use crate::http::api::channels::{check_playlist, writable_station};
use crate::http::body::json_body;
use crate::http::openapi::{
    Malformed, NoChannel, NotOwner, ProblemDoc, Refusals, CHANNELS, JSON_PROBLEM,
};
use crate::http::problem::Problem;
use crate::live::station::{Doc, Order, Play, Programme};
use crate::store::Channel;
use crate::util;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// A channel's programme with its version.
#[derive(Serialize, ToSchema)]
pub struct ScheduleView {
    /// The programme.
    #[serde(flatten)]
    pub doc: Doc,
    /// Bumped by every `PUT`; the `ETag` is made from it (0: none was ever set).
    pub version: i64,
}

fn schedule_etag(version: i64) -> String {
    format!("\"s{version}\"")
}

fn answer(status: StatusCode, v: ScheduleView) -> Response {
    let tag = schedule_etag(v.version);
    let mut r = (status, Json(v)).into_response();
    if let Ok(t) = HeaderValue::from_str(&tag) {
        r.headers_mut().insert(header::ETAG, t);
    }
    r
}

/// The stored programme, or the empty one of a channel that has none.
async fn stored(app: &App, c: &Channel) -> Result<(Doc, i64), Problem> {
    Ok(match app.store.schedule(c.id).await? {
        Some((doc, version)) => (
            serde_json::from_str(&doc)
                .map_err(|e| Problem::unavailable("the stored programme", &e))?,
            version,
        ),
        None => (
            Doc {
                timezone: "UTC".into(),
                default_playlist_id: None,
                slots: Vec::new(),
                events: Vec::new(),
            },
            0,
        ),
    })
}

/// The channel's programme: weekly slots in its time zone, one-off events, and the default
/// playlist. A channel that never had one answers an empty programme at version 0.
#[utoipa::path(
    get, path = "/v1/channels/{id}/schedule", tag = CHANNELS,
    params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The programme", body = ScheduleView, headers(("ETag" = String))),
        NoChannel,
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn show(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let c = readable(&app, &headers, &id).await?;
    let (doc, version) = stored(&app, &c).await?;
    Ok(answer(StatusCode::OK, ScheduleView { doc, version }))
}

/// Replace the channel's programme (`If-Match` with the `ETag` last read, optional). Slots may
/// not overlap; every playlist and track must be one the caller may use. The auto-DJ follows the
/// new programme within two seconds, at its next item (an event, at its instant).
#[utoipa::path(
    put, path = "/v1/channels/{id}/schedule", tag = CHANNELS, request_body = Doc,
    params(("id" = String, Path, description = "Channel id"), ("If-Match" = Option<String>, Header, description = "The ETag last read")),
    responses(
        (status = 200, description = "The programme as stored", body = ScheduleView, headers(("ETag" = String))),
        Malformed,
        NotOwner,
        NoChannel,
        (status = 412, description = "Changed since the ETag sent", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 422, description = "Overlapping slots, a bad field, or an unknown playlist or track", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn put(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, Problem> {
    let (who, c) = writable_station(&app, &headers, &id).await?;
    let doc: Doc = json_body(&raw)?;
    let programme = doc
        .parse(Order::of_shuffle(c.shuffle))
        .map_err(|e| Problem::unprocessable("invalid-schedule", e.to_string()))?;
    for p in programme.playlists() {
        check_playlist(&app, &who, Some(&p.to_string())).await?;
    }
    for (i, e) in programme.events.iter().enumerate() {
        if let Play::Track(t) = e.play {
            let ok = app
                .store
                .track(t)
                .await?
                .is_some_and(|row| row.public || who.manages(&row.owner));
            if !ok {
                return Err(Problem::unprocessable(
                    "unknown-track",
                    format!("events[{i}].track_id: no track {t} visible to you"),
                ));
            }
        }
    }
    let expected = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) if v == "*" => None,
        Some(v) => {
            let v = v.to_str().unwrap_or_default();
            let n = v
                .strip_prefix("\"s")
                .and_then(|v| v.strip_suffix('"'))
                .and_then(|v| v.parse::<i64>().ok())
                .ok_or_else(|| {
                    Problem::precondition_failed(format!("{v} is not this programme's ETag"))
                })?;
            Some(n)
        }
    };
    let text =
        serde_json::to_string(&doc).map_err(|e| Problem::unavailable("the programme", &e))?;
    match app
        .store
        .put_schedule(c.id, &text, expected, util::now_ms())
        .await?
    {
        Some(version) => Ok(answer(StatusCode::OK, ScheduleView { doc, version })),
        None => Err(Problem::precondition_failed(format!(
            "the programme of channel {} changed meanwhile; fetch it again",
            c.id
        ))),
    }
}

/// How far the timeline looks.
#[derive(Deserialize, IntoParams)]
pub struct Hours {
    /// 1 to 168 (default 24).
    pub hours: Option<u32>,
}

/// What plays when.
#[derive(Serialize, ToSchema)]
pub struct Upcoming {
    /// The programme's time zone.
    pub timezone: String,
    /// From now, by start.
    pub items: Vec<TimelineEntry>,
}

/// The resolved timeline from now: slots, the default between them, and events cutting them
/// for as long as their playlist or track lasts.
#[utoipa::path(
    get, path = "/v1/channels/{id}/schedule/upcoming", tag = CHANNELS,
    params(("id" = String, Path, description = "Channel id"), Hours),
    responses(
        (status = 200, description = "The timeline", body = Upcoming),
        (status = 400, description = "hours out of range", body = ProblemDoc, content_type = JSON_PROBLEM),
        NoChannel,
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn upcoming(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<Hours>,
    headers: HeaderMap,
) -> Result<Json<Upcoming>, Problem> {
    let hours = q.hours.unwrap_or(24);
    if !(1..=168).contains(&hours) {
        return Err(Problem::bad_request("hours must be between 1 and 168"));
    }
    let c = readable(&app, &headers, &id).await?;
    let now = util::now_ms();
    let p = crate::live::autodj_programme(app.store.as_ref(), &c).await;
    let items = timeline(&app, &p, now, now + i64::from(hours) * 3_600_000).await;
    Ok(Json(Upcoming {
        timezone: p.tz.name().into(),
        items,
    }))
}

/// A channel's programme as a timeline over [from, to).
pub(super) async fn timeline(app: &App, p: &Programme, from: i64, to: i64) -> Vec<TimelineEntry> {
    // Events last as long as what they play, read once each.
    let mut lengths = std::collections::HashMap::new();
    for (_, e) in p.events_between(from, to) {
        let ms = match e.play {
            Play::Track(t) => match app.store.track(t).await {
                Ok(Some(t)) => t.duration_seconds().map(|s| (s * 1000.0) as i64),
                _ => None,
            },
            Play::Playlist(pl) => {
                let tracks = crate::live::ready_tracks(app.store.as_ref(), pl).await;
                let all: Option<f64> = tracks.iter().map(|t| t.duration_seconds()).sum();
                all.map(|s| (s * 1000.0) as i64)
            }
        };
        lengths.insert(e.at, ms);
    }
    let mut entries: Vec<TimelineEntry> = p
        .upcoming(from, to, &|e| lengths.get(&e.at).copied().flatten())
        .into_iter()
        .map(timeline_entry)
        .collect();
    // Each entry named by what it plays, each name read once.
    let mut names: std::collections::HashMap<String, Option<String>> = Default::default();
    for e in &mut entries {
        let key = e.track_id.clone().or_else(|| e.playlist_id.clone());
        let Some(key) = key else { continue };
        if !names.contains_key(&key) {
            let name = if e.track_id.is_some() {
                match key.parse() {
                    Ok(t) => app.store.track(t).await.ok().flatten().map(|t| t.title),
                    Err(_) => None,
                }
            } else {
                match key.parse() {
                    Ok(p) => app
                        .store
                        .playlist(p)
                        .await
                        .ok()
                        .flatten()
                        .map(|(p, _)| p.title),
                    Err(_) => None,
                }
            };
            names.insert(key.clone(), name);
        }
        e.title = names.get(&key).cloned().flatten();
    }
    entries
}
