//! Finding a resource as the caller may see it: the one rule, for every handler that takes a
//! track or a playlist by id, of what answers 401, 403 or 404.

use crate::app::App;
use crate::auth::{Identity, Role};
use crate::http::access::authenticate;
use crate::http::problem::Problem;
use crate::store::{Entry, Playlist, PlaylistId, Track, TrackId};
use axum::http::HeaderMap;

/// A track id from a path: 404 when it is not one.
pub(crate) fn track_id(id: &str) -> Result<TrackId, Problem> {
    id.parse()
        .map_err(|_| Problem::not_found(format!("no track {id}")))
}

/// A playlist id from a path: 404 when it is not one.
pub(crate) fn playlist_id(id: &str) -> Result<PlaylistId, Problem> {
    id.parse()
        .map_err(|_| Problem::not_found(format!("no playlist {id}")))
}

/// The track named by a path and its caller, who must be able to manage it (`manage`) or only to
/// know of it; 401, 403 or 404 otherwise.
pub(in crate::http) async fn find_track(
    app: &App,
    headers: &HeaderMap,
    id: &str,
    manage: bool,
) -> Result<(Track, Identity), Problem> {
    let who = authenticate(app, headers).await?;
    let id = track_id(id)?;
    let t = app
        .store
        .track(id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no track {id}")))?;
    if manage && !who.manages(&t.owner) {
        return Err(Problem::forbidden(format!(
            "track {id} belongs to another artist"
        )));
    }
    Ok((t, who))
}

/// A playlist the caller may see, with its entries; 404 when it may not.
pub(crate) async fn visible(
    app: &App,
    who: &Identity,
    id: &str,
) -> Result<(Playlist, Vec<Entry>), Problem> {
    let id = playlist_id(id)?;
    match app.store.playlist(id).await? {
        Some((p, e)) if p.public || who.role == Role::Admin || who.subject == p.owner => Ok((p, e)),
        _ => Err(Problem::not_found(format!("no playlist {id}"))),
    }
}
