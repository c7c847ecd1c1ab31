//! What a channel does besides CRUD: rotate its stream key and sign playback URLs (its live
//! state as server-sent events is the station's, `station/events.rs`).

use super::views::*;
use crate::app::App;
use crate::http::access::authenticate;
use crate::http::openapi::{NoChannel, NotOwner, ProblemDoc, Refusals, CHANNELS, JSON_PROBLEM};
use crate::http::problem::Problem;
use crate::live::new_key;
use crate::rendition::Rendition;
use crate::store::Channel;
use crate::util;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::json;
use std::sync::Arc;

/// Rotate the stream key. A source connected with the old key is dropped at once.
#[utoipa::path(
    post, path = "/v1/channels/{id}/stream-key", tag = CHANNELS, params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 200, description = "The new key, shown once", body = StreamKey),
        NotOwner,
        NoChannel,
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn rotate(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<StreamKey>, Problem> {
    let (_, old) = writable(&app, &headers, &id).await?;
    let (key, key_hash) = new_key();
    let mut c = old.clone();
    c.key_hash = key_hash;
    let c = save(&app, &old, c).await?;
    Ok(Json(StreamKey {
        stream_key: key,
        ingest_url: format!("{}{}", app.ingest_url, crate::layout::channel_ingest(c.id)),
    }))
}

/// Signed LL-HLS URLs of a channel, whatever its state: players keep polling an offline
/// channel's playlist until it goes on air.
#[utoipa::path(
    post, path = "/v1/channels/{id}/playback", tag = CHANNELS, params(("id" = String, Path, description = "Channel id")),
    responses(
        (status = 200, description = "Signed URLs", body = ChannelPlayback),
        (status = 404, description = "No such channel visible to this caller", body = ProblemDoc, content_type = JSON_PROBLEM),
        Refusals,
    ),
    security(("bearer" = []))
)]
pub(super) async fn playback(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ChannelPlayback>, Problem> {
    let who = authenticate(&app, &headers).await?;
    let c = visible(&app, &who, &id).await?;
    Ok(Json(sign(&app, &c, app.config.auth.playback_ttl_seconds)))
}

/// A channel's LL-HLS (and WHEP) URLs, signed for `ttl` seconds.
pub(crate) fn sign(app: &App, c: &Channel, ttl: u64) -> ChannelPlayback {
    let signed = app
        .auth
        .tokens
        .playback(&app.public_url, c.id, util::now_secs(), ttl);
    let mut masters = serde_json::Map::new();
    let mut whep_url = None;
    for name in renditions_of(app, c) {
        if name.starts_with("opus-") {
            whep_url = Some(format!(
                "{}{}",
                app.public_url,
                crate::layout::channel_whep(c.id)
            ));
        }
        if let Ok(r) = Rendition::parse_live(&name) {
            let f = r.family();
            masters
                .entry(f)
                .or_insert_with(|| json!(signed.url(&crate::layout::master_of(f))));
        }
    }
    ChannelPlayback {
        master_url: signed.url(crate::layout::MASTER),
        masters,
        expires_at: util::rfc3339(signed.expires as i64 * 1000),
        token: signed.token,
        whep_url,
    }
}
