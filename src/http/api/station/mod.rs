//! A channel as a station: its programme (`schedule.rs`), what went on air and what plays now
//! (`onair.rs`), its recorded shows, and its listener statistics with the tracks' plays
//! (`stats.rs`). A public channel's history, now-playing and timeline are readable without
//! credentials, as directory widgets and web players read them.

pub(crate) mod events;
mod onair;
mod schedule;
mod stats;

pub(crate) use events::follow;

use crate::app::App;
use crate::auth::Role;
use crate::http::access::authenticate;
use crate::http::api::channels::{parse_id, visible};
use crate::http::problem::Problem;
use crate::live::station::{Entry, EntryKind};
use crate::store::Channel;
use crate::util::rfc3339;
use axum::http::HeaderMap;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(in crate::http) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(events::events))
        .routes(routes!(schedule::show, schedule::put))
        .routes(routes!(schedule::upcoming))
        .routes(routes!(onair::history))
        .routes(routes!(onair::nowplaying))
        .routes(routes!(onair::recordings))
        .routes(routes!(stats::channel))
        .routes(routes!(stats::track))
}

/// A channel the caller may read: any public one, even without credentials; a private one for
/// its owner and admins.
pub(super) async fn readable(app: &App, headers: &HeaderMap, id: &str) -> Result<Channel, Problem> {
    if !crate::http::access::has_credential(headers) {
        let id = parse_id(id)?;
        return match app.store.channel(id).await? {
            Some(c) if c.public => Ok(c),
            Some(_) => Err(Problem::unauthorized()),
            None => Err(Problem::not_found(format!("no channel {id}"))),
        };
    }
    let who = authenticate(app, headers).await?;
    visible(app, &who, id).await
}

/// A channel whose private figures (statistics, recordings) the caller may read: its owner or
/// an admin.
pub(super) async fn owned(app: &App, headers: &HeaderMap, id: &str) -> Result<Channel, Problem> {
    let who = authenticate(app, headers).await?;
    let c = visible(app, &who, id).await?;
    if who.role != Role::Admin && who.subject != c.owner {
        return Err(Problem::forbidden(format!(
            "channel {} belongs to {}",
            c.id, c.owner
        )));
    }
    Ok(c)
}

/// One stretch of the programme's timeline.
#[derive(Serialize, ToSchema, Clone)]
pub struct TimelineEntry {
    /// `slot`, `default` or `event`.
    pub kind: EntryKind,
    /// RFC 3339.
    pub start: String,
    /// RFC 3339; absent for an event whose length is not known.
    pub end: Option<String>,
    /// The slot's index in the programme.
    pub slot: Option<usize>,
    /// The playlist.
    pub playlist_id: Option<String>,
    /// The track (an event of one track).
    pub track_id: Option<String>,
    /// What it plays, by name: the playlist's title, or the track's.
    pub title: Option<String>,
}

pub(super) fn timeline_entry(e: Entry) -> TimelineEntry {
    TimelineEntry {
        kind: e.kind,
        start: rfc3339(e.start),
        end: e.end.map(rfc3339),
        slot: e.slot,
        playlist_id: e.playlist.map(|p| p.to_string()),
        track_id: e.track.map(|t| t.to_string()),
        title: None,
    }
}
