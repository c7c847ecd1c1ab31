//! The control API for live channels: CRUD, stream keys, playback and live state.
//!
//! Who may do what: artists create channels and manage their own, admins manage all, and every
//! role reads public channels (and its own). A stream key is shown once, when the channel is
//! created or the key rotated; the store keeps only its SHA-256.

mod actions;
mod crud;
mod listen_tokens;
mod views;

pub(crate) use actions::{follow, sign};
pub(crate) use views::{view, ChannelPlayback, ListenersView, NowPlayingView};

use crate::app::App;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(in crate::http) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(crud::create, crud::list))
        .routes(routes!(crud::show, crud::update, crud::remove))
        .routes(routes!(actions::rotate))
        .routes(routes!(actions::playback))
        .routes(routes!(actions::events))
        .routes(routes!(listen_tokens::create, listen_tokens::list))
        .routes(routes!(listen_tokens::revoke))
}
