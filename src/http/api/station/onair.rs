//! What went on air (`history`), the one now-playing document web players and directory widgets
//! read (`nowplaying`, after AzuraCast's NowPlaying API), and the recorded shows.

use super::{owned, readable, TimelineEntry};
use crate::app::App;
use crate::http::api::channels::{view, ListenersView};
use crate::http::body::ListQuery;
use crate::http::openapi::{NoChannel, ProblemDoc, Refusals, CHANNELS, JSON_PROBLEM, PUBLIC};
use crate::http::problem::Problem;
use crate::live::station::Kind;
use crate::store::{Channel, HistoryItem, Recording};
use crate::util::{self, rfc3339};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// One item that went on air.
#[derive(Serialize, ToSchema)]
pub struct HistoryView {
    /// Its id (the cursor of the next page).
    pub id: String,
    /// `track`, `event`, `interstitial` or `live`.
    pub kind: String,
    /// Its title.
    pub title: String,
    /// Its artist, when known (a live source's `Artist - Title`).
    pub artist: Option<String>,
    /// The track, for the auto-DJ's items.
    pub track_id: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339; absent while on air.
    pub ended_at: Option<String>,
    /// Listeners when it started.
    pub listeners: i64,
}

impl From<HistoryItem> for HistoryView {
    fn from(h: HistoryItem) -> HistoryView {
        HistoryView {
            id: h.id.to_string(),
            kind: h.kind,
            title: h.title,
            artist: h.artist,
            track_id: h.track_id.map(|t| t.to_string()),
            started_at: rfc3339(h.started_at),
            ended_at: h.ended_at.map(rfc3339),
            listeners: h.listeners,
        }
    }
}

/// A page of history.
#[derive(Serialize, ToSchema)]
pub struct HistoryPage {
    /// Newest first.
    pub items: Vec<HistoryView>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// What went on air, newest first: tracks, events, interstitials and live shows with each title
/// their source sent. Public channels' history needs no credentials.
#[utoipa::path(
    get, path = "/v1/channels/{id}/history", tag = CHANNELS,
    params(("id" = String, Path, description = "Channel id"), ListQuery),
    responses(
        (status = 200, description = "A page of history", body = HistoryPage),
        (status = 400, description = "Bad limit or cursor", body = ProblemDoc, content_type = JSON_PROBLEM),
        NoChannel,
        Refusals,
    ),
    security((), ("bearer" = []))
)]
pub(super) async fn history(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Json<HistoryPage>, Problem> {
    let c = readable(&app, &headers, &id).await?;
    let limit = q.limit()?;
    let before = q.cursor::<uuid::Uuid>()?;
    let rows = app.store.history(c.id, before, limit + 1).await?;
    let (rows, next_cursor) = ListQuery::page(rows, limit, |h| h.id.to_string());
    Ok(Json(HistoryPage {
        items: rows.into_iter().map(HistoryView::from).collect(),
        next_cursor,
    }))
}

/// What plays now, with its place in the track.
#[derive(Serialize, ToSchema)]
pub struct OnAir {
    /// `track`, `event`, `interstitial` or `live`.
    pub kind: Kind,
    /// Its title.
    pub title: String,
    /// Its artist, when known.
    pub artist: Option<String>,
    /// The track, for the auto-DJ's items.
    pub track_id: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    /// Seconds since it started.
    pub elapsed: f64,
    /// The track's length, seconds (tracks only).
    pub duration: Option<f64>,
    /// Seconds left (tracks only).
    pub remaining: Option<f64>,
    /// The track's cover, when it has one.
    pub cover_url: Option<String>,
}

/// The live source, as listeners see it.
#[derive(Serialize, ToSchema)]
pub struct LiveView {
    /// Whether a source is on air.
    pub is_live: bool,
    /// Its `ice-name`.
    pub streamer_name: Option<String>,
    /// RFC 3339, when it connected.
    pub broadcast_start: Option<String>,
}

/// Listeners now.
#[derive(Serialize, ToSchema)]
pub struct ListenerCounts {
    /// Every protocol.
    pub total: u64,
    /// By protocol and mount.
    #[serde(flatten)]
    pub by_protocol: ListenersView,
}

/// The station in a now-playing document.
#[derive(Serialize, ToSchema)]
pub struct StationView {
    /// Channel id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Its slug.
    pub slug: Option<String>,
    /// Its plain MP3 stream, for players and directories.
    pub listen_url: Option<String>,
    /// Every way to listen in a player: the progressive mounts and the `.m3u` and `.pls`
    /// playlists naming them (a private channel's need a listener token).
    #[schema(value_type = Object)]
    pub mounts: serde_json::Map<String, serde_json::Value>,
}

/// The one document a web player or a directory widget reads: what plays, what comes next,
/// what played, listeners and live state. The channel's SSE stream pushes it as `nowplaying` on
/// every change.
#[derive(Serialize, ToSchema)]
pub struct NowPlayingDoc {
    /// The station.
    pub station: StationView,
    /// `offline`, `live` or `autodj`.
    pub state: String,
    /// The live source.
    pub live: LiveView,
    /// What plays now.
    pub now_playing: Option<OnAir>,
    /// What the programme plays next.
    pub playing_next: Option<TimelineEntry>,
    /// The last 10 items before the one on air, newest first.
    pub song_history: Vec<HistoryView>,
    /// Listeners now.
    pub listeners: ListenerCounts,
    /// RFC 3339.
    pub updated_at: String,
}

/// A channel's last now-playing document as JSON, with what it was made from and when: every
/// SSE follower of a channel gets the same one, made once per change.
type Made = (String, Instant, Arc<String>);

static DOCS: std::sync::LazyLock<dashmap::DashMap<crate::store::ChannelId, Made>> =
    std::sync::LazyLock::new(dashmap::DashMap::new);

/// How long a document is reused while nothing it shows changed (`elapsed` moves on).
const REUSE: Duration = Duration::from_secs(5);

/// The now-playing document of a channel as JSON, shared by its followers.
pub(crate) async fn nowplaying_json(app: &App, c: &Channel) -> Arc<String> {
    let v = view(app, c, None).await;
    let key = serde_json::to_string(&(
        &v.state,
        v.now_playing.as_ref().map(|n| (&n.title, &n.since)),
        v.source.as_ref().map(|s| &s.connected_at),
        (
            v.listeners.hls,
            v.listeners.webrtc,
            v.listeners.mp3,
            v.listeners.aac,
            v.listeners.opus,
        ),
        v.version,
    ))
    .unwrap_or_default();
    if let Some(m) = DOCS.get(&c.id) {
        if m.0 == key && m.1.elapsed() < REUSE {
            return m.2.clone();
        }
    }
    let doc = Arc::new(serde_json::to_string(&made(app, c, v).await).unwrap_or_default());
    DOCS.insert(c.id, (key, Instant::now(), doc.clone()));
    // Channels deleted or gone quiet do not stay: the map holds what was asked for lately.
    if DOCS.len() > 10_000 {
        DOCS.retain(|_, m| m.1.elapsed() < REUSE);
    }
    doc
}

/// The now-playing document of a channel.
pub(crate) async fn nowplaying_doc(app: &App, c: &Channel) -> NowPlayingDoc {
    let v = view(app, c, None).await;
    made(app, c, v).await
}

async fn made(app: &App, c: &Channel, v: crate::http::api::channels::ChannelView) -> NowPlayingDoc {
    let now = util::now_ms();
    let mut since_ms = now;
    let now_playing = match &v.now_playing {
        Some(np) => {
            let started = chrono::DateTime::parse_from_rfc3339(&np.since)
                .map_or(now, |t| t.timestamp_millis());
            since_ms = started;
            let track = match np.track_id.as_deref().and_then(|t| t.parse().ok()) {
                Some(t) => app.store.track(t).await.ok().flatten(),
                None => None,
            };
            let duration = track.as_ref().and_then(|t| t.duration_seconds());
            let elapsed = ((now - started).max(0) as f64) / 1000.0;
            let (artist, title) = crate::live::artist_and_title(np.kind, &np.title);
            // A track's own artist, when its tags or its owner gave one.
            let artist = artist.or_else(|| track.as_ref().and_then(|t| t.meta.artist.clone()));
            let cover_url = track
                .as_ref()
                .and_then(|t| crate::http::api::search::track_cover(app, t));
            Some(OnAir {
                cover_url,
                kind: np.kind,
                title,
                artist,
                track_id: np.track_id.clone(),
                started_at: np.since.clone(),
                elapsed,
                duration,
                remaining: duration.map(|d| (d - elapsed).max(0.0)),
            })
        }
        None => None,
    };
    let history = app
        .store
        .history(c.id, None, 11)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|h| h.started_at < since_ms || v.now_playing.is_none())
        .take(10)
        .map(HistoryView::from)
        .collect();
    let programme = crate::live::autodj_programme(app.store.as_ref(), c).await;
    let next = super::schedule::timeline(app, &programme, now, now + 7 * 24 * 3_600_000)
        .await
        .into_iter()
        .nth(1);
    let l = &v.listeners;
    let total = l.hls + l.webrtc + l.mp3 + l.aac + l.opus;
    NowPlayingDoc {
        station: StationView {
            id: v.id.clone(),
            title: v.title.clone(),
            slug: v.slug.clone(),
            listen_url: v
                .mounts
                .get("mp3")
                .and_then(|u| u.as_str())
                .map(str::to_string),
            mounts: v.mounts.clone(),
        },
        state: v.state.as_str().into(),
        live: LiveView {
            is_live: v.source.is_some(),
            streamer_name: v.source.as_ref().and_then(|s| s.name.clone()),
            broadcast_start: v.source.as_ref().map(|s| s.connected_at.clone()),
        },
        now_playing,
        playing_next: next,
        song_history: history,
        listeners: ListenerCounts {
            total,
            by_protocol: ListenersView {
                hls: l.hls,
                webrtc: l.webrtc,
                mp3: l.mp3,
                aac: l.aac,
                opus: l.opus,
            },
        },
        updated_at: rfc3339(now),
    }
}

/// A public channel's now-playing document, for anyone: what plays (with elapsed and remaining
/// for tracks), what comes next, the last 10 items, listeners by protocol and live state.
#[utoipa::path(
    get, path = "/v1/public/channels/{id}/nowplaying", tag = PUBLIC,
    params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The now-playing document", body = NowPlayingDoc),
        (status = 404, description = "No public channel with this id", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 429, description = "Over the client address's rate limit", body = ProblemDoc, content_type = JSON_PROBLEM),
    ),
    security(())
)]
pub(super) async fn nowplaying(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<NowPlayingDoc>, Problem> {
    let c = match id.parse() {
        Ok(id) => app.store.channel(id).await?,
        Err(_) => None,
    }
    .filter(|c| c.public)
    .ok_or_else(|| Problem::not_found(format!("no public channel {id}")))?;
    Ok(Json(nowplaying_doc(&app, &c).await))
}

/// A recorded live show.
#[derive(Serialize, ToSchema)]
pub struct RecordingView {
    /// Its id.
    pub id: String,
    /// The show's name and date.
    pub title: String,
    /// `recording`, `published` or `failed`.
    pub state: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// The track it became: replayable on demand once ready.
    pub track_id: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub ended_at: Option<String>,
    /// Seconds recorded.
    pub seconds: f64,
}

impl From<Recording> for RecordingView {
    fn from(r: Recording) -> RecordingView {
        RecordingView {
            id: r.id.to_string(),
            title: r.title,
            state: r.state,
            reason: r.reason,
            track_id: r.track_id.map(|t| t.to_string()),
            started_at: rfc3339(r.started_at),
            ended_at: r.ended_at.map(rfc3339),
            seconds: r.seconds,
        }
    }
}

/// A page of recordings.
#[derive(Serialize, ToSchema)]
pub struct RecordingPage {
    /// Newest first.
    pub items: Vec<RecordingView>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// The channel's recorded live shows (its owner and admins).
#[utoipa::path(
    get, path = "/v1/channels/{id}/recordings", tag = CHANNELS,
    params(("id" = String, Path, description = "Channel id"), ListQuery),
    responses(
        (status = 200, description = "A page of recordings", body = RecordingPage),
        (status = 400, description = "Bad limit or cursor", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 403, description = "Another artist's channel", body = ProblemDoc, content_type = JSON_PROBLEM),
        NoChannel,
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn recordings(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Json<RecordingPage>, Problem> {
    let c = owned(&app, &headers, &id).await?;
    let limit = q.limit()?;
    let before = q.cursor::<uuid::Uuid>()?;
    let rows = app.store.recordings(c.id, before, limit + 1).await?;
    let (rows, next_cursor) = ListQuery::page(rows, limit, |r| r.id.to_string());
    Ok(Json(RecordingPage {
        items: rows.into_iter().map(RecordingView::from).collect(),
        next_cursor,
    }))
}
