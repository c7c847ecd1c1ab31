//! The control API for live channels: CRUD, stream keys, playback and live state.
//!
//! Who may do what: artists create channels and manage their own, admins manage all, and every
//! role reads public channels (and its own). A stream key is shown once, when the channel is
//! created or the key rotated; the store keeps only its SHA-256.

mod actions;
mod crud;
mod listen_tokens;
mod views;

pub(crate) use actions::sign;
pub(crate) use views::{
    check_playlist, parse_id, view, visible, ChannelPlayback, ChannelView, ListenersView,
    NowPlayingView,
};

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
        .routes(routes!(listen_tokens::create, listen_tokens::list))
        .routes(routes!(listen_tokens::revoke))
}

/// A channel whose station (programme, recordings) the caller may change: its owner or an
/// admin. `If-Match` is the station resource's own, checked by its handler.
pub(crate) async fn writable_station(
    app: &App,
    headers: &axum::http::HeaderMap,
    id: &str,
) -> Result<(crate::auth::Identity, crate::store::Channel), crate::http::problem::Problem> {
    let who = crate::http::access::authenticate(app, headers).await?;
    let c = visible(app, &who, id).await?;
    if !who.manages(&c.owner) {
        return Err(crate::http::problem::Problem::forbidden(format!(
            "channel {} belongs to {}",
            c.id, c.owner
        )));
    }
    Ok((who, c))
}
