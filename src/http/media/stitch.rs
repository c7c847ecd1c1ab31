//! Playlist delivery: `/hls/playlists/{id}/…`, a whole playlist as one HLS stream.
//!
//! Nothing is re-encoded. The media playlists stitch the tracks' own published media playlists
//! with [`veza_hls::render_stitched`]: every track after the first opens with
//! `EXT-X-DISCONTINUITY` and its own `EXT-X-MAP`, and every `EXTINF` is kept, so the stream lasts
//! exactly the sum of its tracks.
//!
//! The stream is also one decode timeline: each track after the first is served retimed, its
//! segments shifted by the decode length (priming plus samples, the `mdhd` duration of its init)
//! of the tracks before it, so `tfdt` runs on without a step back at a join. Its init is the
//! stored one: its edit list states the priming from the track's first sample, as hls.js and
//! Chromium read it together (see `veza_hls::retime_segment`). The retimed segments live at
//! `/hls/tracks/{id}/{rendition}/t{shift}/seg_NNNNN.m4s`, keyed by the shift: a track's place in a
//! playlist names them, and a CDN caches them like the stored ones. URIs carry the playlist
//! token itself, which track delivery accepts for the playlist's tracks, so a stitched media
//! playlist is rendered once per state of the playlist and a request only substitutes its token.
//!
//! Only renditions every playable track has are offered. Entries whose track is deleted, failed or
//! not ready are left out. What a playlist stitches (its playable tracks and their common
//! renditions) is cached for five seconds, like a track's published state, so a warm request
//! reads no database; changes made on this node drop the entry at once.

use crate::app::App;
use crate::auth::{Scope, TokenError};
use crate::catalog::{Stitch, Template};
use crate::http::answer::{
    etag_of, forbidden, not_found, object, playlist_answer, published, token_of,
};
use crate::http::problem::Problem;
use crate::layout::{family, FAMILIES};
use crate::store::PlaylistId;
use crate::util;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use veza_hls::{parse_media, render_multivariant, render_stitched, Variant};

pub(in crate::http) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/hls/playlists/{id}/{file}", get(master))
        .route("/hls/playlists/{id}/{rendition}/{file}", get(media))
}

/// The token, checked against the playlist: its grant, or why it is refused (`None`: no such
/// playlist id).
fn check(
    app: &App,
    id: &str,
    uri: &Uri,
) -> Result<(PlaylistId, crate::auth::Grant), Option<TokenError>> {
    let pid = PlaylistId::parse_canonical(id).ok_or(None)?;
    let token = token_of(uri);
    app.auth
        .tokens
        .verify(token, Scope::Playlist(pid), util::now_secs())
        .map(|g| (pid, g))
        .map_err(Some)
}

fn refusal(e: Option<TokenError>) -> Response {
    e.map_or_else(not_found, forbidden)
}

/// What the playlist stitches, from the catalog.
async fn load(app: &App, pid: PlaylistId) -> Result<Option<Arc<Stitch>>, Problem> {
    Ok(app.catalog.stitch(pid).await?)
}

fn playlist_response(app: &App, text: String, headers: &HeaderMap) -> Response {
    let tag = etag_of(&[text.as_bytes()]);
    playlist_answer(app, &tag, headers, false, || text)
}

async fn master(
    State(app): State<Arc<App>>,
    Path((id, file)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some(wanted) = crate::layout::parse_master(&file) else {
        return not_found();
    };
    let (pid, _) = match check(&app, &id, &uri) {
        Ok(g) => g,
        Err(e) => return refusal(e),
    };
    let stitch = match load(&app, pid).await {
        Ok(Some(s)) => s,
        Ok(None) => return not_found(),
        Err(p) => return p.into_response(),
    };
    let renditions = &stitch.renditions;
    let family_of_master = match wanted {
        Some(f) => f,
        None => match FAMILIES
            .into_iter()
            .find(|f| renditions.iter().any(|r| family(&r.name) == *f))
        {
            Some(f) => f,
            None => return not_found(),
        },
    };
    let token = token_of(&uri).unwrap_or_default();
    let variants: Vec<Variant> = renditions
        .iter()
        .filter(|r| family(&r.name) == family_of_master)
        .map(|r| Variant {
            name: r.name.clone(),
            uri: format!("{}/index.m3u8?token={token}", r.name),
            bandwidth: r.bandwidth as u64,
            average_bandwidth: r.average_bandwidth as u64,
            codecs: r.codecs.clone(),
            channels: r.channels as u16,
        })
        .collect();
    if variants.is_empty() {
        return not_found();
    }
    playlist_response(&app, render_multivariant(&variants), &headers)
}

async fn media(
    State(app): State<Arc<App>>,
    Path((id, rendition, file)): Path<(String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if file != "index.m3u8" {
        return not_found();
    }
    let (pid, _) = match check(&app, &id, &uri) {
        Ok(g) => g,
        Err(e) => return refusal(e),
    };
    let stitch = match load(&app, pid).await {
        Ok(Some(s)) => s,
        Ok(None) => return not_found(),
        Err(p) => return p.into_response(),
    };
    let cached = stitch.media.lock().get(&rendition).cloned();
    let template = match cached {
        Some(t) => t,
        None => match render(&app, &stitch, &rendition).await {
            Ok(t) => {
                let t = Arc::new(t);
                stitch.media.lock().insert(rendition.clone(), t.clone());
                t
            }
            Err(r) => return r,
        },
    };
    // The token passed verification: URL-safe characters only.
    let token = token_of(&uri).unwrap_or_default();
    let tag = etag_of(&[template.tag.as_bytes(), token.as_bytes()]);
    playlist_answer(&app, &tag, &headers, false, || template.fill(token))
}

/// The stitched media playlist of one rendition, with the token's places marked. Every URI
/// carries the playlist token, which opens the files of the playlist's tracks (see
/// `delivery::verify_for_track`).
async fn render(app: &App, stitch: &Stitch, rendition: &str) -> Result<Template, Response> {
    let mark = Template::MARK;
    let mut parts = Vec::new();
    // The end of the previous track on the decode timeline: (ticks, timescale).
    let mut end: Option<(u64, u32)> = None;
    for &track in &stitch.tracks {
        let p = match published(app, track).await? {
            Some(p) => p,
            // Deleted or re-packaged since the store was read: leave it out.
            None => continue,
        };
        if !p.renditions.iter().any(|r| r == rendition) {
            return Err(not_found());
        }
        let obj = object(app, format!("{}/{rendition}/index.m3u8", p.prefix)).await?;
        let Some(mut part) = parse_media(&String::from_utf8_lossy(&obj.data)) else {
            return Err(Problem::from(crate::store::Error::Corrupt(format!(
                "the published playlist of track {track} cannot be read"
            )))
            .into_response());
        };
        let init = object(app, format!("{}/{rendition}/init.mp4", p.prefix)).await?;
        let timing = veza_hls::timing(&init.data).map_err(|e| {
            Problem::from(crate::store::Error::Corrupt(format!(
                "the init segment of track {track} cannot be read: {e}"
            )))
            .into_response()
        })?;
        // Where this track starts on the stream's decode timeline, in its own timescale (tracks
        // of one rate, the usual case, add up exactly).
        let shift = match end {
            None => 0,
            Some((ticks, ts)) if ts == timing.timescale => ticks,
            Some((ticks, ts)) => {
                let t = u128::from(timing.timescale);
                ((u128::from(ticks) * t + u128::from(ts) / 2) / u128::from(ts)) as u64
            }
        };
        end = Some((shift + timing.decode_len, timing.timescale));
        // From /hls/playlists/{pid}/{rendition}/ up to /hls/, then into the track's own files,
        // retimed to its place unless it starts the stream.
        let base = crate::layout::track_from_stitched(track, rendition);
        part.map_uri = format!("{base}/{}?token={mark}", part.map_uri);
        let at = if shift == 0 {
            String::new()
        } else {
            format!("t{shift}/")
        };
        for s in &mut part.segments {
            s.uri = format!("{base}/{at}{}?token={mark}", s.uri);
        }
        parts.push(part);
    }
    if parts.is_empty() {
        return Err(not_found());
    }
    let text = render_stitched(&parts);
    app.metrics.stitch_renders.inc();
    let tag = etag_of(&[text.as_bytes()]);
    Ok(Template::new(&text, tag))
}
