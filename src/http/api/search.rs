//! Discovery: `GET /v1/search` (search-as-you-type and browsing of public tracks, playlists,
//! channels and artists, plus the caller's own) and `GET /v1/public/artists/{handle}` (an
//! artist's page). Anyone may call them; a credential adds the caller's own items.

use crate::app::App;
use crate::auth::accounts;
use crate::http::access::authenticate;
use crate::http::openapi::{ProblemDoc, JSON_PROBLEM, PUBLIC};
use crate::http::problem::Problem;
use crate::store::{Account, Hit, Search, SearchKind, SearchSort, Track};
use crate::util;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes.
pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(artist))
}

/// The most words a query is split into.
const MAX_TERMS: usize = 8;

/// A query's words as the indexes hold them: lowercase, accents folded, split at anything that
/// is not a letter or a digit; at most 8 words of at most 40 characters.
pub fn terms(q: &str) -> Vec<String> {
    let folded: String = q
        .chars()
        .flat_map(accounts::fold)
        .flat_map(char::to_lowercase)
        .collect();
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(40).collect())
        .take(MAX_TERMS)
        .collect()
}

/// What to search.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words, each matched as the start of a word in titles, artists, albums, genres, names
    /// and descriptions, accents and case ignored. Empty: browse.
    pub q: Option<String>,
    /// `track`, `playlist`, `channel` or `artist`; absent: the first results of each.
    pub kind: Option<String>,
    /// `relevance` (the default; newest first when browsing), `newest` or `plays` (most played
    /// in the last 30 days).
    pub sort: Option<String>,
    /// 1 to 50 (20 by default; 5 a kind without `kind`).
    pub limit: Option<i64>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// One result.
#[derive(Serialize, ToSchema)]
pub struct SearchItem {
    /// `track`, `playlist`, `channel` or `artist`.
    pub kind: &'static str,
    /// Its id (an artist's handle).
    pub id: String,
    /// Title, or the artist's name.
    pub title: String,
    /// The artist of a track, or the description's first line.
    pub subtitle: String,
    /// Covers: one for a track, up to four for a playlist or a channel (a mosaic).
    pub covers: Vec<String>,
    /// Length, for a ready track.
    pub duration_seconds: Option<f64>,
    /// Whether anyone may play it.
    pub public: bool,
    /// Whether the caller owns it.
    pub mine: bool,
    /// The shareable page (`/play/…`, or `/a/{handle}` for an artist).
    pub page_url: String,
}

/// A page of results.
#[derive(Serialize, ToSchema)]
pub struct SearchPage {
    /// In the asked order.
    pub items: Vec<SearchItem>,
    /// Pass as `cursor` for the next page; null on the last (and without `kind`).
    pub next_cursor: Option<String>,
}

/// A track's cover URL, if it has a cover.
pub fn track_cover(app: &App, t: &Track) -> Option<String> {
    t.cover
        .as_deref()
        .map(|d| format!("{}{}", app.public_url, crate::layout::cover_url(t.id, d)))
}

/// Up to four covers of the tracks `ids` names, in order.
async fn mosaic(app: &App, ids: Vec<crate::store::TrackId>) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids.into_iter().take(12) {
        if let Ok(Some(t)) = app.store.track(id).await {
            if let Some(c) = track_cover(app, &t) {
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        if out.len() == 4 {
            break;
        }
    }
    out
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(140).collect()
}

/// Each hit as the API shows it.
async fn items(
    app: &App,
    hits: Vec<Hit>,
    viewer: Option<&str>,
) -> Result<Vec<SearchItem>, Problem> {
    let mine = |owner: &str| viewer == Some(owner);
    let mut out = Vec::with_capacity(hits.len());
    for hit in hits {
        out.push(match hit {
            Hit::Track(t) => SearchItem {
                kind: "track",
                id: t.id.to_string(),
                subtitle: match &t.meta.artist {
                    Some(a) => a.clone(),
                    None => owner_name(app, &t.owner).await,
                },
                covers: track_cover(app, &t).into_iter().collect(),
                duration_seconds: t.duration_seconds(),
                public: t.public,
                mine: mine(&t.owner),
                page_url: format!("{}/play/track/{}", app.public_url, t.id),
                title: t.title,
            },
            Hit::Playlist(p) => {
                let entries = app
                    .store
                    .playlist(p.id)
                    .await?
                    .map(|(_, e)| e)
                    .unwrap_or_default();
                SearchItem {
                    kind: "playlist",
                    id: p.id.to_string(),
                    subtitle: first_line(&p.description),
                    covers: mosaic(app, entries.iter().map(|e| e.track_id).collect()).await,
                    duration_seconds: None,
                    public: p.public,
                    mine: mine(&p.owner),
                    page_url: format!("{}/play/playlist/{}", app.public_url, p.id),
                    title: p.title,
                }
            }
            Hit::Channel(c) => {
                let entries = match c.playlist_id {
                    Some(p) => app
                        .store
                        .playlist(p)
                        .await?
                        .map(|(_, e)| e)
                        .unwrap_or_default(),
                    None => Vec::new(),
                };
                SearchItem {
                    kind: "channel",
                    id: c.id.to_string(),
                    subtitle: first_line(&c.description),
                    covers: mosaic(app, entries.iter().map(|e| e.track_id).collect()).await,
                    duration_seconds: None,
                    public: c.public,
                    mine: mine(&c.owner),
                    page_url: format!("{}/play/channel/{}", app.public_url, c.id),
                    title: c.title,
                }
            }
            Hit::Artist(a) => SearchItem {
                kind: "artist",
                id: a.handle.clone(),
                subtitle: format!("@{}", a.handle),
                covers: Vec::new(),
                duration_seconds: None,
                public: true,
                mine: mine(&a.subject()),
                page_url: format!("{}/a/{}", app.public_url, a.handle),
                title: a.display_name,
            },
        });
    }
    Ok(out)
}

/// The name shown for an owner: a local account's display name, else nothing (a platform
/// subject or an API key is not a name to show listeners).
pub async fn owner_name(app: &App, owner: &str) -> String {
    let Some(id) = owner
        .strip_prefix(Account::SUBJECT_PREFIX)
        .and_then(|id| uuid::Uuid::try_parse(id).ok())
    else {
        return String::new();
    };
    match app.store.account(id).await {
        Ok(Some(a)) => a.display_name,
        _ => String::new(),
    }
}

fn kind_of(kind: &str) -> Result<SearchKind, Problem> {
    match kind {
        "track" => Ok(SearchKind::Track),
        "playlist" => Ok(SearchKind::Playlist),
        "channel" => Ok(SearchKind::Channel),
        "artist" => Ok(SearchKind::Artist),
        _ => Err(Problem::bad_request(
            "kind is track, playlist, channel or artist",
        )),
    }
}

/// Search, or browse (no `q`), public tracks, playlists, channels and artists, and the caller's
/// own: words match the start of words, accents and case ignored.
#[utoipa::path(
    get, path = "/v1/search", tag = PUBLIC, params(SearchQuery),
    responses(
        (status = 200, description = "A page of results", body = SearchPage),
        (status = 400, description = "Bad kind, sort, limit or cursor, or a query over 200 characters", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 401, description = "A credential was sent and is not valid", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 429, description = "Over a rate limit", body = ProblemDoc, content_type = JSON_PROBLEM),
    ),
    security((), ("bearer" = []))
)]
async fn search(
    State(app): State<Arc<App>>,
    Query(q): Query<SearchQuery>,
    headers: HeaderMap,
) -> Result<Json<SearchPage>, Problem> {
    let who = if crate::http::access::has_credential(&headers) {
        Some(authenticate(&app, &headers).await?)
    } else {
        None
    };
    let text = q.q.unwrap_or_default();
    if text.chars().count() > 200 {
        return Err(Problem::bad_request("q is at most 200 characters"));
    }
    let sort = match q.sort.as_deref().unwrap_or("relevance") {
        "relevance" => SearchSort::Relevance,
        "newest" => SearchSort::Newest,
        "plays" => SearchSort::Plays,
        _ => return Err(Problem::bad_request("sort is relevance, newest or plays")),
    };
    let kinds = match q.kind.as_deref() {
        Some(k) => vec![kind_of(k)?],
        None => vec![
            SearchKind::Track,
            SearchKind::Artist,
            SearchKind::Playlist,
            SearchKind::Channel,
        ],
    };
    let one = kinds.len() == 1;
    let limit = q.limit.unwrap_or(if one { 20 } else { 5 });
    if !(1..=50).contains(&limit) {
        return Err(Problem::bad_request("limit is 1 to 50"));
    }
    let offset = match q.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=10_000).contains(n))
            .ok_or_else(|| Problem::bad_request("cursor is not one this server gave"))?,
    };
    let words = terms(&text);
    let viewer = who.as_ref().map(|w| w.subject.as_str());
    let mut all = Vec::new();
    let mut next_cursor = None;
    for kind in kinds {
        let hits = app
            .store
            .search(&Search {
                kind,
                terms: &words,
                viewer,
                owner: None,
                sort,
                offset,
                limit: limit + 1,
                now: util::now_ms(),
            })
            .await?;
        let more = hits.len() as i64 > limit;
        let hits: Vec<Hit> = hits.into_iter().take(limit as usize).collect();
        if one && more {
            next_cursor = Some((offset + limit).to_string());
        }
        all.extend(items(&app, hits, viewer).await?);
    }
    Ok(Json(SearchPage {
        items: all,
        next_cursor,
    }))
}

/// An artist's page.
#[derive(Serialize, ToSchema)]
pub struct ArtistPage {
    /// The name shown.
    pub display_name: String,
    /// The page is `/a/{handle}`.
    pub handle: String,
    /// Public tracks, newest first (at most 100).
    pub tracks: Vec<SearchItem>,
    /// Public playlists.
    pub playlists: Vec<SearchItem>,
    /// Public channels.
    pub channels: Vec<SearchItem>,
}

/// An artist's public tracks, playlists and channels.
#[utoipa::path(
    get, path = "/v1/public/artists/{handle}", tag = PUBLIC,
    params(("handle" = String, Path, description = "The artist's handle")),
    responses(
        (status = 200, description = "The artist", body = ArtistPage),
        (status = 404, description = "No such artist", body = ProblemDoc, content_type = JSON_PROBLEM),
        (status = 429, description = "Over the client address's rate limit", body = ProblemDoc, content_type = JSON_PROBLEM),
    ),
    security(())
)]
async fn artist(
    State(app): State<Arc<App>>,
    Path(handle): Path<String>,
) -> Result<Json<ArtistPage>, Problem> {
    let a = app
        .store
        .account_by_handle(&handle)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no artist {handle}")))?;
    let owner = a.subject();
    let mut lists = Vec::new();
    for kind in [SearchKind::Track, SearchKind::Playlist, SearchKind::Channel] {
        let hits = app
            .store
            .search(&Search {
                kind,
                terms: &[],
                viewer: None,
                owner: Some(&owner),
                sort: SearchSort::Newest,
                offset: 0,
                limit: 100,
                now: util::now_ms(),
            })
            .await?;
        lists.push(items(&app, hits, None).await?);
    }
    let channels = lists.pop().unwrap_or_default();
    let playlists = lists.pop().unwrap_or_default();
    let tracks = lists.pop().unwrap_or_default();
    Ok(Json(ArtistPage {
        display_name: a.display_name,
        handle: a.handle,
        tracks,
        playlists,
        channels,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_fold_like_the_indexes() {
        assert_eq!(terms("Zoë  KEATING!"), ["zoe", "keating"]);
        assert_eq!(terms("  "), Vec::<String>::new());
        assert_eq!(terms("\"a\"* OR b:*"), ["a", "or", "b"]);
        assert_eq!(terms(&"w ".repeat(20)).len(), 8);
    }
}
