//! The control API for playlists: CRUD, track order, duplication and playback as one stream.
//!
//! Who may do what: artists create playlists and manage their own, admins manage all, and every
//! role reads public playlists (and their own). Another caller's private playlist answers 404, so
//! its existence is not revealed. Every change bumps the playlist's version; its `ETag` is made
//! from it, and a change sent with a stale `If-Match` answers 412.

mod common;
mod crud;
mod entries;

use crate::app::App;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(in crate::http) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(crud::create, crud::list))
        .routes(routes!(crud::show, crud::update, crud::remove))
        .routes(routes!(entries::replace_tracks, entries::append_track))
        .routes(routes!(entries::move_entry, entries::remove_entry))
        .routes(routes!(crud::duplicate))
}
