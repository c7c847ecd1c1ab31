//! What the playlist routes share: the API's views of playlists and entries, request bodies,
//! and the checks every route makes (visibility, ownership, versions, limits).

use crate::app::App;
use crate::auth::Identity;
use crate::http::problem::Problem;
use crate::store::{Entry, Playlist, Track, TrackId, TrackStatus};
use crate::util;
use crate::util::rfc3339;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

pub(crate) use super::super::fields::{check_description, check_title, etag, Visibility};
pub(crate) use super::super::lookup::visible;

pub(crate) const MAX_ENTRIES: usize = 1000;

/// One entry as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    /// Stable id of this entry (a track may appear twice).
    pub entry_id: String,
    /// The track.
    pub track_id: String,
    /// The track's title; null once it is deleted.
    pub title: Option<String>,
    /// `queued`, `processing`, `ready`, `failed`, or `deleted`.
    pub status: String,
    /// Whether playback includes it (ready tracks only).
    pub playable: bool,
    /// Length of a ready track.
    pub duration_seconds: Option<f64>,
    /// The track's artist, when it has one.
    pub artist: Option<String>,
    /// The track's cover, when it has one.
    pub cover_url: Option<String>,
}

/// A playlist as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaylistView {
    /// Playlist id (UUIDv7).
    pub id: String,
    /// Subject of the owner.
    pub owner: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Who may read it.
    pub visibility: Visibility,
    /// Bumped by every change; `ETag` is `"v<version>"`.
    pub version: i64,
    /// The entries in order.
    pub entries: Vec<EntryView>,
    /// Up to four different covers of its tracks, in order: a mosaic.
    pub covers: Vec<String>,
    /// Entries that playback plays.
    pub playable_count: u64,
    /// Total length of the playable entries.
    pub duration_seconds: f64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A playlist in a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaylistSummary {
    /// Playlist id.
    pub id: String,
    /// Owner.
    pub owner: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Who may read it.
    pub visibility: Visibility,
    /// Version.
    pub version: i64,
    /// RFC 3339.
    pub updated_at: String,
    /// How many entries it holds.
    pub track_count: usize,
    /// Up to four different covers of its tracks: a mosaic.
    pub covers: Vec<String>,
}

/// A page of playlists.
#[derive(Serialize, ToSchema)]
pub struct PlaylistPage {
    /// Newest first.
    pub items: Vec<PlaylistSummary>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// A new playlist.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlaylist {
    /// 1 to 200 characters.
    pub title: String,
    /// Up to 5000 characters.
    #[serde(default)]
    pub description: String,
    /// Default `private`.
    pub visibility: Option<Visibility>,
    /// Initial entries, in order.
    #[serde(default)]
    pub track_ids: Vec<String>,
}

/// Changes to a playlist's fields; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaylistPatch {
    /// 1 to 200 characters.
    pub title: Option<String>,
    /// Up to 5000 characters.
    pub description: Option<String>,
    /// Who may read it.
    pub visibility: Option<Visibility>,
}

/// The whole new order.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackOrder {
    /// Track ids in order. Entries whose track stays keep their entry ids, first come first.
    pub track_ids: Vec<String>,
}

/// A track to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEntry {
    /// The track.
    pub track_id: String,
    /// Where, counted from 0; default: at the end.
    #[schema(minimum = 0)]
    pub position: Option<u64>,
}

/// Where an entry goes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Move {
    /// The new position, counted from 0; past the end means last.
    #[schema(minimum = 0)]
    pub position: u64,
}

/// Options of a copy.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct DuplicateOptions {
    /// Title of the copy; default: the original's with " (copy)".
    pub title: Option<String>,
}

/// Which playlists to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListScope {
    /// `mine` (default for artists and admins), `public` (default for listeners) or `all`
    /// (admins).
    pub scope: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `date` (the default), `title`, `duration` or `plays`.
    pub sort: Option<String>,
    /// `desc` (the default, but for `title`) or `asc`.
    pub order: Option<String>,
}

/// A playlist the caller may change, checked against `If-Match`. Returns the version to
/// compare-and-set against.
pub(crate) async fn writable(
    app: &App,
    who: &Identity,
    headers: &HeaderMap,
    id: &str,
) -> Result<(Playlist, Vec<Entry>), Problem> {
    let (p, e) = visible(app, who, id).await?;
    if !who.manages(&p.owner) {
        return Err(Problem::forbidden(format!(
            "playlist {} belongs to {}",
            p.id, p.owner
        )));
    }
    if let Some(want) = headers.get(header::IF_MATCH) {
        let want = want.to_str().unwrap_or("");
        let current = etag(p.version);
        let ok = want.trim() == "*"
            || want
                .split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == current);
        if !ok {
            return Err(Problem::precondition_failed(format!(
                "the playlist is at {current}; fetch it again and retry"
            )));
        }
    }
    Ok((p, e))
}

/// Stores a change made against `expected`; 412 when another change won meanwhile.
pub(crate) async fn save(
    app: &App,
    mut p: Playlist,
    entries: Option<&[Entry]>,
    expected: i64,
) -> Result<Playlist, Problem> {
    let now = util::now_ms();
    p.version = expected + 1;
    p.updated_at = now;
    if !app
        .store
        .update_playlist(&p, entries, expected, now)
        .await?
    {
        return Err(Problem::precondition_failed(
            "the playlist changed while this request ran; fetch it again and retry",
        ));
    }
    app.catalog.invalidate_playlist(p.id);
    app.outbox.notify();
    Ok(p)
}

/// Resolves track ids a caller adds: each must be the caller's own (in any state; an admin
/// manages every track), or another's that is ready and public. Another owner's private track
/// answers as a track that does not exist.
pub(crate) async fn resolve(
    app: &App,
    who: &Identity,
    ids: &[String],
) -> Result<Vec<TrackId>, Problem> {
    let mut out = Vec::with_capacity(ids.len());
    let mut seen: HashMap<TrackId, ()> = HashMap::new();
    for raw in ids {
        let id: TrackId = raw.parse().map_err(|_| {
            Problem::unprocessable("unknown-track", format!("{raw} is not a track id"))
        })?;
        if seen.insert(id, ()).is_none() {
            match app.store.track(id).await? {
                Some(t)
                    if who.manages(&t.owner) || (t.status == TrackStatus::Ready && t.public) => {}
                _ => {
                    return Err(Problem::unprocessable(
                        "unknown-track",
                        format!("no track {id} that this caller may add"),
                    ))
                }
            }
        }
        out.push(id);
    }
    Ok(out)
}

pub(crate) fn too_many() -> Problem {
    Problem::unprocessable(
        "playlist-too-long",
        format!("a playlist holds at most {MAX_ENTRIES} entries"),
    )
}

pub(crate) async fn view(
    app: &App,
    p: &Playlist,
    entries: &[Entry],
) -> Result<PlaylistView, Problem> {
    let tracks = app.catalog.tracks_of(entries).await?;
    let mut views = Vec::with_capacity(entries.len());
    let (mut playable_count, mut duration) = (0u64, 0.0);
    for e in entries {
        let t = tracks.get(&e.track_id).and_then(Option::as_ref);
        let playable = t.is_some_and(|t| t.status == TrackStatus::Ready);
        let secs = t.filter(|_| playable).and_then(Track::duration_seconds);
        if playable {
            playable_count += 1;
            duration += secs.unwrap_or(0.0);
        }
        views.push(EntryView {
            entry_id: e.id.to_string(),
            track_id: e.track_id.to_string(),
            title: t.map(|t| t.title.clone()),
            status: t.map_or("deleted", |t| t.status.as_str()).to_owned(),
            playable,
            duration_seconds: secs,
            artist: t.and_then(|t| t.meta.artist.clone()),
            cover_url: t.and_then(|t| crate::http::api::search::track_cover(app, t)),
        });
    }
    // The playlist's mosaic: its first four different covers.
    let mut covers: Vec<String> = Vec::new();
    for c in views.iter().filter_map(|v| v.cover_url.clone()) {
        if covers.len() < 4 && !covers.contains(&c) {
            covers.push(c);
        }
    }
    Ok(PlaylistView {
        id: p.id.to_string(),
        owner: p.owner.clone(),
        title: p.title.clone(),
        description: p.description.clone(),
        visibility: Visibility::of(p.public),
        version: p.version,
        entries: views,
        covers,
        playable_count,
        duration_seconds: (duration * 1e6).round() / 1e6,
        created_at: rfc3339(p.created_at),
        updated_at: rfc3339(p.updated_at),
    })
}

/// A playlist response with its `ETag`.
pub(crate) async fn respond(
    app: &App,
    status: StatusCode,
    p: &Playlist,
    entries: &[Entry],
) -> Result<Response, Problem> {
    let v = view(app, p, entries).await?;
    let mut r = (status, Json(v)).into_response();
    r.headers_mut().insert(
        header::ETAG,
        HeaderValue::from_str(&etag(p.version)).expect("digits in quotes"),
    );
    if status == StatusCode::CREATED {
        r.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_str(&format!("/v1/playlists/{}", p.id)).expect("uuid path"),
        );
    }
    Ok(r)
}
