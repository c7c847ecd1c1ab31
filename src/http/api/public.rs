//! Public items: tracks, playlists and channels their owners made `public` play on their
//! `/play/{kind}/{id}` pages for anyone, signed in or not.
//!
//! The page asks `POST /v1/public/{kinds}/{id}/playback` for a short-lived playback token (no
//! credential), a public channel's page follows its live state at
//! `GET /v1/public/channels/{id}/events`, and link previews fetch the cover art at
//! `GET /v1/public/{kinds}/{id}/cover`. The page itself carries Open Graph tags ([`card`]).
//! A private or unknown item answers 404 everywhere, the same answer, so that ids cannot be
//! probed for.

use super::channels::{
    sign as sign_channel, view as channel_view, ChannelPlayback, ListenersView, NowPlayingView,
};
use super::playback::{sign_playlist, sign_track, PlaylistPlayback, TrackPlayback};
use super::station::follow;
use crate::app::App;
use crate::http::answer::{immutable, object, published};
use crate::http::body::ListQuery;
use crate::http::openapi::{ProblemDoc, JSON_PROBLEM, PUBLIC};
use crate::http::problem::Problem;
use crate::store::{Channel, ChannelId, Entry, Playlist, PlaylistFilter, Track, TrackId};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(in crate::http) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(track))
        .routes(routes!(playlist))
        .routes(routes!(channel))
        .routes(routes!(channels))
        .routes(routes!(channel_events))
        .routes(routes!(track_cover))
        .routes(routes!(playlist_cover))
        .routes(routes!(channel_cover))
}

/// What a public page shows of its item, with the playback it signs.
#[derive(Serialize, ToSchema)]
pub struct PublicItem<P> {
    /// `track`, `playlist` or `channel`.
    pub kind: &'static str,
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its description (empty for tracks).
    pub description: String,
    /// Length in seconds (tracks and playlists).
    pub duration_seconds: Option<f64>,
    /// Cover art, when the item has some.
    pub cover_url: Option<String>,
    /// The shareable page.
    pub page_url: String,
    /// Signed URLs, valid for `auth.public_playback_ttl_seconds` past the item's length.
    pub playback: P,
}

fn missing(kind: &str, id: &str) -> Problem {
    Problem::not_found(format!("no public {kind} {id}"))
}

async fn public_track(app: &App, id: &str) -> Result<Track, Problem> {
    let found = match id.parse() {
        Ok(id) => app.store.track(id).await?,
        Err(_) => None,
    };
    found
        .filter(|t| t.public)
        .ok_or_else(|| missing("track", id))
}

async fn public_playlist(app: &App, id: &str) -> Result<(Playlist, Vec<Entry>), Problem> {
    let found = match id.parse() {
        Ok(id) => app.store.playlist(id).await?,
        Err(_) => None,
    };
    found
        .filter(|(p, _)| p.public)
        .ok_or_else(|| missing("playlist", id))
}

async fn public_channel(app: &App, id: &str) -> Result<Channel, Problem> {
    let found = match id.parse() {
        Ok(id) => app.store.channel(id).await?,
        Err(_) => None,
    };
    found
        .filter(|c| c.public)
        .ok_or_else(|| missing("channel", id))
}

/// A token's life: the public TTL, past the end of what it plays.
fn ttl(app: &App, duration: Option<f64>) -> u64 {
    app.config.auth.public_playback_ttl_seconds + duration.map_or(0, |d| d.ceil() as u64)
}

/// The first cover among `tracks`, as the track that has it.
async fn first_cover(app: &App, tracks: Vec<TrackId>) -> Option<TrackId> {
    for id in tracks.into_iter().take(20) {
        if let Ok(Some(t)) = app.store.track(id).await {
            if t.cover.is_some() || cover_name(&t).is_some() {
                return Some(id);
            }
        }
    }
    None
}

/// The track whose cover stands for a playlist: its first track with one.
async fn playlist_cover_track(app: &App, entries: &[Entry]) -> Option<TrackId> {
    first_cover(app, entries.iter().map(|e| e.track_id).collect()).await
}

/// The track whose cover stands for a channel: that of its auto-DJ playlist.
async fn channel_cover_track(app: &App, c: &Channel) -> Option<TrackId> {
    let (_, entries) = app.store.playlist(c.playlist_id?).await.ok()??;
    playlist_cover_track(app, &entries).await
}

/// The cover's file name in a track's package, from its analysis.
fn cover_name(t: &Track) -> Option<String> {
    let a: serde_json::Value = serde_json::from_str(t.analysis.as_deref()?).ok()?;
    let name = a.get("cover")?.as_str()?;
    matches!(name, "cover.jpg" | "cover.png").then(|| name.to_owned())
}

fn cover_url(app: &App, kinds: &str, id: impl std::fmt::Display) -> String {
    format!("{}/v1/public/{kinds}/{id}/cover", app.public_url)
}

fn page_url(app: &App, kind: &str, id: impl std::fmt::Display) -> String {
    format!("{}/play/{kind}/{id}", app.public_url)
}

/// A public channel as directories and station lists show it.
#[derive(Serialize, ToSchema)]
pub struct DirectoryChannel {
    /// Channel id.
    pub id: String,
    /// The slug its mounts are named by, when it has one.
    pub slug: Option<String>,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// `offline`, `live` or `autodj`.
    #[schema(value_type = String)]
    pub state: crate::live::State,
    /// What plays now.
    pub now_playing: Option<NowPlayingView>,
    /// Listeners by protocol.
    pub listeners: ListenersView,
    /// When it went on air, RFC 3339.
    pub started_at: Option<String>,
    /// Its Icecast-style mounts and playlist files by format: permanent URLs, no token.
    #[schema(value_type = Object)]
    pub mounts: serde_json::Map<String, serde_json::Value>,
    /// Its shareable page.
    pub page_url: String,
}

/// A page of public channels.
#[derive(Serialize, ToSchema)]
pub struct DirectoryPage {
    /// Newest first.
    pub items: Vec<DirectoryChannel>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// Public channels, newest first, with their mounts and now-playing: what a directory, a station
/// list or a widget needs, with no credential.
#[utoipa::path(
    get, path = "/v1/public/channels", tag = PUBLIC, params(ListQuery),
    responses(
        (status = 200, description = "A page of public channels", body = DirectoryPage),
        (status = 400, description = "Bad limit or cursor", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 429, description = "Over the client address's rate limit", body = ProblemDoc, content_type = JSON_PROBLEM),
    ),
    security(())
)]
async fn channels(
    State(app): State<Arc<App>>,
    Query(page): Query<ListQuery>,
) -> Result<Json<DirectoryPage>, Problem> {
    let limit = page.limit()?;
    let before = page.cursor::<ChannelId>()?;
    let rows = app
        .store
        .channels(PlaylistFilter::Public, before, limit + 1)
        .await?;
    let (rows, next_cursor) = ListQuery::page(rows, limit, |c| c.id.to_string());
    let mut items = Vec::with_capacity(rows.len());
    for c in &rows {
        let v = channel_view(&app, c, None).await;
        items.push(DirectoryChannel {
            page_url: page_url(&app, "channel", c.id),
            id: v.id,
            slug: v.slug,
            title: v.title,
            description: v.description,
            state: v.state,
            now_playing: v.now_playing,
            listeners: v.listeners,
            started_at: v.started_at,
            mounts: v.mounts,
        });
    }
    Ok(Json(DirectoryPage { items, next_cursor }))
}

/// Playback of a public track, for anyone.
#[utoipa::path(
    post, path = "/v1/public/tracks/{id}/playback", tag = PUBLIC,
    params(("id" = String, Path, description = "Track id")),
    responses(
        (status = 200, description = "The track and its signed URLs", body = PublicItem<TrackPlayback>),
        (status = 404, description = "No public track with this id", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 409, description = "Not ready yet, or failed", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 429, description = "Over the client address's rate limit", body = ProblemDoc, content_type = JSON_PROBLEM),
    ),
    security(())
)]
async fn track(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<PublicItem<TrackPlayback>>, Problem> {
    let t = public_track(&app, &id).await?;
    let duration = t.duration_seconds();
    let playback = sign_track(&app, &t, ttl(&app, duration)).await?;
    Ok(Json(PublicItem {
        kind: "track",
        id: t.id.to_string(),
        title: t.title.clone(),
        description: String::new(),
        duration_seconds: duration,
        cover_url: (t.cover.is_some() || cover_name(&t).is_some())
            .then(|| cover_url(&app, "tracks", t.id)),
        page_url: page_url(&app, "track", t.id),
        playback,
    }))
}

/// Playback of a public playlist as one gapless stream, for anyone.
#[utoipa::path(
    post, path = "/v1/public/playlists/{id}/playback", tag = PUBLIC,
    params(("id" = String, Path, description = "Playlist id")),
    responses(
        (status = 200, description = "The playlist and its signed URL", body = PublicItem<PlaylistPlayback>),
        (status = 404, description = "No public playlist with this id", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 409, description = "No entry is playable", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 429, description = "Over the client address's rate limit", body = ProblemDoc, content_type = JSON_PROBLEM),
    ),
    security(())
)]
async fn playlist(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<PublicItem<PlaylistPlayback>>, Problem> {
    let (p, entries) = public_playlist(&app, &id).await?;
    // The stream's length is known once it is signed; sign for the longest it can be.
    let tracks = app.catalog.tracks_of(&entries).await?;
    let longest: f64 = tracks
        .values()
        .flatten()
        .filter_map(Track::duration_seconds)
        .sum();
    let playback = sign_playlist(&app, &p, &entries, ttl(&app, Some(longest))).await?;
    let cover = playlist_cover_track(&app, &entries)
        .await
        .map(|_| cover_url(&app, "playlists", p.id));
    Ok(Json(PublicItem {
        kind: "playlist",
        id: p.id.to_string(),
        title: p.title.clone(),
        description: p.description.clone(),
        duration_seconds: Some(playback.duration_seconds),
        cover_url: cover,
        page_url: page_url(&app, "playlist", p.id),
        playback,
    }))
}

/// Playback of a public channel (LL-HLS, and WHEP when it has Opus), for anyone. Live has no
/// end: the page asks again before `expires_at`.
#[utoipa::path(
    post, path = "/v1/public/channels/{id}/playback", tag = PUBLIC,
    params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The channel and its signed URLs", body = PublicItem<ChannelPlayback>),
        (status = 404, description = "No public channel with this id", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 429, description = "Over the client address's rate limit", body = ProblemDoc, content_type = JSON_PROBLEM),
    ),
    security(())
)]
async fn channel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<PublicItem<ChannelPlayback>>, Problem> {
    let c = public_channel(&app, &id).await?;
    let cover = channel_cover_track(&app, &c).await;
    Ok(Json(PublicItem {
        kind: "channel",
        id: c.id.to_string(),
        title: c.title.clone(),
        description: c.description.clone(),
        duration_seconds: None,
        cover_url: cover.map(|_| cover_url(&app, "channels", c.id)),
        page_url: page_url(&app, "channel", c.id),
        playback: sign_channel(&app, &c, ttl(&app, None)),
    }))
}

/// A public channel's live state as server-sent events, as `/v1/channels/{id}/events` sends
/// them: `state`, `now_playing` and `listeners`.
#[utoipa::path(
    get, path = "/v1/public/channels/{id}/events", tag = PUBLIC,
    params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 200, description = "text/event-stream of state, now_playing and listeners events", content_type = "text/event-stream"),
        (status = 404, description = "No public channel with this id", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 429, description = "Over the client address's rate limit", body = ProblemDoc, content_type = JSON_PROBLEM),
    ),
    security(())
)]
async fn channel_events(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let c = public_channel(&app, &id).await?;
    Ok(follow(app, &c).await)
}

/// Answers a track's cover art: cached for an hour only, since its owner may stop sharing it.
async fn cover_of(
    app: &App,
    track: Option<TrackId>,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let none = || Problem::not_found("this item has no cover art").into_response();
    let Some(id) = track else {
        return none();
    };
    let Ok(Some(t)) = app.store.track(id).await else {
        return none();
    };
    // An uploaded or normalised cover, else the art a track packaged before covers were
    // normalised carries in its package.
    let key = match (&t.cover, cover_name(&t)) {
        (Some(digest), _) => crate::layout::cover(t.id, digest),
        (None, Some(name)) => match published(app, id).await {
            Ok(Some(p)) => format!("{}/{name}", p.prefix),
            _ => return none(),
        },
        (None, None) => return none(),
    };
    let name = key.clone();
    let obj = match object(app, key).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let ct = if name.ends_with(".png") {
        "image/png"
    } else {
        "image/jpeg"
    };
    let mut r = immutable(app, obj, ct, method == Method::HEAD, headers);
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// A public track's cover art (JPEG or PNG), for link previews.
#[utoipa::path(
    get, path = "/v1/public/tracks/{id}/cover", tag = PUBLIC,
    params(("id" = String, Path, description = "Track id")),
    responses(
        (status = 200, description = "The image", content_type = "image/jpeg"),
        (status = 404, description = "No public track with cover art", body = ProblemDoc, content_type = JSON_PROBLEM),
    ),
    security(())
)]
async fn track_cover(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    match public_track(&app, &id).await {
        Ok(t) => cover_of(&app, Some(t.id), &method, &headers).await,
        Err(p) => p.into_response(),
    }
}

/// A public playlist's cover: that of its first track with one.
#[utoipa::path(
    get, path = "/v1/public/playlists/{id}/cover", tag = PUBLIC,
    params(("id" = String, Path, description = "Playlist id")),
    responses(
        (status = 200, description = "The image", content_type = "image/jpeg"),
        (status = 404, description = "No public playlist with cover art", body = ProblemDoc, content_type = JSON_PROBLEM),
    ),
    security(())
)]
async fn playlist_cover(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    match public_playlist(&app, &id).await {
        Ok((_, entries)) => {
            let t = playlist_cover_track(&app, &entries).await;
            cover_of(&app, t, &method, &headers).await
        }
        Err(p) => p.into_response(),
    }
}

/// A public channel's cover: that of the first track of its auto-DJ playlist with one.
#[utoipa::path(
    get, path = "/v1/public/channels/{id}/cover", tag = PUBLIC,
    params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The image", content_type = "image/jpeg"),
        (status = 404, description = "No public channel with cover art", body = ProblemDoc, content_type = JSON_PROBLEM),
    ),
    security(())
)]
async fn channel_cover(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    match public_channel(&app, &id).await {
        Ok(c) => {
            let t = channel_cover_track(&app, &c).await;
            cover_of(&app, t, &method, &headers).await
        }
        Err(p) => p.into_response(),
    }
}

/// What a link preview shows of a public item: the page's Open Graph tags.
pub struct Card {
    /// `og:type`.
    pub kind: &'static str,
    /// `og:title`.
    pub title: String,
    /// `og:description`.
    pub description: String,
    /// `og:url`.
    pub url: String,
    /// `og:image`.
    pub image: Option<String>,
    /// The subject that owns the item.
    pub owner: String,
}

impl Card {
    /// The tags, HTML-escaped, for the page's `<head>`.
    pub fn head(&self) -> String {
        let mut h = format!("<title>{} · Veza Stream</title>\n", escape(&self.title));
        // oEmbed discovery (oEmbed 1.0, section 4): the page names its own oEmbed document.
        if let Some((base, _)) = self.url.split_once("/play/") {
            h.push_str(&format!(
                "  <link rel=\"alternate\" type=\"application/json+oembed\" \
                 href=\"{}\" title=\"{}\">\n",
                escape(&format!(
                    "{base}/oembed?format=json&url={}",
                    crate::util::percent_encode(&self.url)
                )),
                escape(&self.title)
            ));
        }
        let mut meta = |p: &str, v: &str| {
            h.push_str(&format!(
                "  <meta property=\"{p}\" content=\"{}\">\n",
                escape(v)
            ));
        };
        meta("og:site_name", "Veza Stream");
        meta("og:type", self.kind);
        meta("og:title", &self.title);
        if !self.description.is_empty() {
            meta("og:description", &self.description);
        }
        meta("og:url", &self.url);
        if let Some(i) = &self.image {
            meta("og:image", i);
        }
        h.push_str(&format!(
            "  <meta name=\"twitter:card\" content=\"{}\">\n",
            if self.image.is_some() {
                "summary_large_image"
            } else {
                "summary"
            }
        ));
        h
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The card of a public item (`kind` as in the page URL); None when it is not public.
pub async fn card(app: &App, kind: &str, id: &str) -> Option<Card> {
    match kind {
        "track" => {
            let t = public_track(app, id).await.ok()?;
            let d = t.duration_seconds().map_or(String::new(), |d| {
                format!("{}:{:02}", (d / 60.0) as u64, (d % 60.0) as u64)
            });
            Some(Card {
                kind: "music.song",
                description: if d.is_empty() {
                    String::new()
                } else {
                    format!("Track · {d}")
                },
                url: page_url(app, kind, t.id),
                image: (t.cover.is_some() || cover_name(&t).is_some())
                    .then(|| cover_url(app, "tracks", t.id)),
                owner: t.owner,
                title: t.title,
            })
        }
        "playlist" => {
            let (p, entries) = public_playlist(app, id).await.ok()?;
            let image = playlist_cover_track(app, &entries)
                .await
                .map(|_| cover_url(app, "playlists", p.id));
            Some(Card {
                kind: "music.playlist",
                description: if p.description.is_empty() {
                    format!("Playlist · {} tracks", entries.len())
                } else {
                    p.description
                },
                url: page_url(app, kind, p.id),
                image,
                owner: p.owner,
                title: p.title,
            })
        }
        "channel" => {
            let c = public_channel(app, id).await.ok()?;
            let image = channel_cover_track(app, &c)
                .await
                .map(|_| cover_url(app, "channels", c.id));
            Some(Card {
                kind: "music.radio_station",
                description: if c.description.is_empty() {
                    "Live channel".to_owned()
                } else {
                    c.description
                },
                url: page_url(app, kind, c.id),
                image,
                owner: c.owner,
                title: c.title,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_tags_escape_what_owners_typed() {
        let c = Card {
            kind: "music.song",
            title: "Rock & \"Roll\" <live>".into(),
            description: String::new(),
            url: "http://127.0.0.1:8080/play/track/x".into(),
            image: None,
            owner: "alice".into(),
        };
        let h = c.head();
        assert!(h.contains(
            "<meta property=\"og:title\" content=\"Rock &amp; &quot;Roll&quot; &lt;live&gt;\">"
        ));
        assert!(h.contains("<title>Rock &amp; &quot;Roll&quot; &lt;live&gt; · Veza Stream</title>"));
        assert!(!h.contains("og:description"), "no empty description");
        assert!(h.contains("twitter:card\" content=\"summary\""));
        assert!(h.contains(
            "href=\"http://127.0.0.1:8080/oembed?format=json&amp;url=http%3A%2F%2F127.0.0.1%3A8080%2Fplay%2Ftrack%2Fx\""
        ));
    }
}
