//! Playback: signed URLs for a ready track or a playable playlist. Both sign through
//! [`crate::auth::Tokens::playback`]; the token scopes what it opens.

use super::lookup::find_track;
use super::lookup::visible;
use crate::app::App;
use crate::http::access::authenticate;
use crate::http::openapi::{NoTrack, ProblemDoc, Refusals, PLAYLISTS, TRACKS};
use crate::http::problem::Problem;
use crate::layout::{family, master_of, FAMILIES, MASTER};
use crate::store::{Entry, Playlist, Track, TrackStatus};
use crate::util::{self, rfc3339};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(in crate::http) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(track))
        .routes(routes!(playlist))
}

/// Signed playback URLs for a ready track.
#[derive(Serialize, ToSchema)]
pub struct TrackPlayback {
    /// The multivariant playlist of every rendition.
    pub master_url: String,
    /// BBC audiowaveform JSON (version 2).
    pub waveform_url: String,
    /// One multivariant playlist per codec family (`aac`, `opus`, `flac`).
    #[schema(value_type = Object)]
    pub masters: serde_json::Map<String, Value>,
    /// The playback token in the URLs.
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// Playback URLs, signed for `auth.playback_ttl_seconds`. Any role may play a ready public
/// track; a private one plays for its owner and admins (others get 404).
#[utoipa::path(
    post, path = "/v1/tracks/{id}/playback", tag = TRACKS, params(("id" = String, Path, description = "Track id")),
    responses(
        (status = 200, description = "Signed URLs", body = TrackPlayback),
        NoTrack,
        (status = 409, description = "Not ready yet, or failed", body = ProblemDoc, content_type = "application/problem+json"),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn track(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<TrackPlayback>, Problem> {
    let (t, who) = find_track(&app, &headers, &id, false).await?;
    // A private track plays for its owner and admins only (others learn nothing of it); the
    // platform mints tokens for anyone else it lets listen.
    if !t.public && !who.manages(&t.owner) {
        return Err(Problem::not_found(format!("no track {}", t.id)));
    }
    Ok(Json(
        sign_track(&app, &t, app.config.auth.playback_ttl_seconds).await?,
    ))
}

/// Playback URLs of a ready track, signed for `ttl` seconds; 409 when it is not ready.
pub(in crate::http) async fn sign_track(
    app: &App,
    t: &Track,
    ttl: u64,
) -> Result<TrackPlayback, Problem> {
    let id = t.id;
    if t.status != TrackStatus::Ready {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "track-not-ready",
            "Track not ready",
            format!("track {id} is {}", t.status.as_str()),
        ));
    }
    let signed = app
        .auth
        .tokens
        .playback(&app.public_url, id, util::now_secs(), ttl);
    let renditions = app.store.renditions(id).await?;
    let mut masters = serde_json::Map::new();
    for f in FAMILIES {
        if renditions.iter().any(|r| family(&r.name) == f) {
            masters.insert(f.into(), json!(signed.url(&master_of(f))));
        }
    }
    Ok(TrackPlayback {
        master_url: signed.url(MASTER),
        waveform_url: signed.url("waveform.json"),
        masters,
        expires_at: rfc3339(signed.expires as i64 * 1000),
        token: signed.token,
    })
}

/// Where each track starts in the stitched stream.
#[derive(Serialize, ToSchema)]
pub struct Chapter {
    /// The entry.
    pub entry_id: String,
    /// Its track.
    pub track_id: String,
    /// The track's title, for a now-playing display.
    pub title: String,
    /// Start in the stream.
    pub start_seconds: f64,
    /// Length.
    pub duration_seconds: f64,
}

/// An entry playback leaves out.
#[derive(Serialize, ToSchema)]
pub struct Skipped {
    /// The entry.
    pub entry_id: String,
    /// Its track.
    pub track_id: String,
    /// `deleted`, `failed`, `queued`, `processing`, or `private` (another owner's track that is
    /// not public: it never plays through this playlist).
    pub status: String,
}

/// A signed URL that plays a whole playlist as one HLS stream.
#[derive(Serialize, ToSchema)]
pub struct PlaylistPlayback {
    /// The multivariant playlist (AAC when every track has it).
    pub master_url: String,
    /// One multivariant playlist per codec family every track has.
    #[schema(value_type = Object)]
    pub masters: serde_json::Map<String, serde_json::Value>,
    /// The playback token in the URLs.
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
    /// Sum of the played tracks' lengths.
    pub duration_seconds: f64,
    /// The tracks played, in order.
    pub chapters: Vec<Chapter>,
    /// Entries left out because their track is not playable.
    pub skipped: Vec<Skipped>,
}

/// Play a playlist as one gapless HLS stream. Entries whose track is deleted, failed or not ready
/// yet are left out and listed in `skipped`.
#[utoipa::path(
    post, path = "/v1/playlists/{id}/playback", tag = PLAYLISTS, params(("id" = String, Path, description = "Playlist id")),
    responses(
        (status = 200, description = "Signed URL", body = PlaylistPlayback),
        (status = 404, description = "No such playlist visible to this caller", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "No entry is playable", body = ProblemDoc, content_type = "application/problem+json"),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn playlist(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<PlaylistPlayback>, Problem> {
    let who = authenticate(&app, &headers).await?;
    let (p, entries) = visible(&app, &who, &id).await?;
    Ok(Json(
        sign_playlist(&app, &p, &entries, app.config.auth.playback_ttl_seconds).await?,
    ))
}

/// Playback of a playlist as one stream, signed for `ttl` seconds; 409 when no entry plays.
pub(in crate::http) async fn sign_playlist(
    app: &App,
    p: &Playlist,
    entries: &[Entry],
    ttl: u64,
) -> Result<PlaylistPlayback, Problem> {
    let tracks = app.catalog.tracks_of(entries).await?;
    let (mut chapters, mut skipped, mut start) = (Vec::new(), Vec::new(), 0.0);
    for e in entries {
        match tracks.get(&e.track_id).and_then(Option::as_ref) {
            Some(t) if crate::catalog::plays_in(t, &p.owner) => {
                let d = t.duration_seconds().unwrap_or(0.0);
                chapters.push(Chapter {
                    entry_id: e.id.to_string(),
                    track_id: e.track_id.to_string(),
                    title: t.title.clone(),
                    start_seconds: (start * 1e6_f64).round() / 1e6,
                    duration_seconds: d,
                });
                start += d;
            }
            t => skipped.push(Skipped {
                entry_id: e.id.to_string(),
                track_id: e.track_id.to_string(),
                status: match t {
                    None => "deleted",
                    Some(t) if t.status == TrackStatus::Ready => "private",
                    Some(t) => t.status.as_str(),
                }
                .to_owned(),
            }),
        }
    }
    if chapters.is_empty() {
        return Err(Problem::conflict(
            "playlist-not-playable",
            "Nothing to play",
            format!("no entry of playlist {} is a ready track", p.id),
        ));
    }
    let families = match app.catalog.stitch(p.id).await? {
        Some(s) => s.families(),
        None => Vec::new(),
    };
    let signed = app
        .auth
        .tokens
        .playback(&app.public_url, p.id, util::now_secs(), ttl);
    let mut masters = serde_json::Map::new();
    for f in families {
        masters.insert(f.to_string(), signed.url(&master_of(f)).into());
    }
    Ok(PlaylistPlayback {
        master_url: signed.url(MASTER),
        masters,
        expires_at: rfc3339(signed.expires as i64 * 1000),
        token: signed.token,
        duration_seconds: (start * 1e6).round() / 1e6,
        chapters,
        skipped,
    })
}
