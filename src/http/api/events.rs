//! Admin access to the event outbox: list events (dead letters above all) and replay one by id.

use crate::app::App;
use crate::auth::Role;
use crate::http::access::{authenticate, require};
use crate::http::openapi::{ProblemDoc, Refusals, EVENTS};
use crate::http::problem::Problem;
use crate::store::OutboxEvent;
use crate::util;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(in crate::http) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(replay))
}

/// An event as stored in the outbox.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    /// Event id (UUIDv7): receivers deduplicate on it.
    pub id: String,
    /// `track.ready`, `track.failed`, `track.deleted`, `playlist.created`, `playlist.updated`,
    /// `playlist.deleted`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Destinations that acknowledged it.
    pub delivered_to: Vec<String>,
    /// The last delivery failure.
    pub last_error: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// The event's data.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<OutboxEvent> for EventView {
    fn from(e: OutboxEvent) -> EventView {
        EventView {
            data: serde_json::from_str(&e.data).unwrap_or_default(),
            id: e.id,
            kind: e.kind,
            state: e.state,
            attempts: e.attempts,
            delivered_to: e.delivered,
            last_error: e.last_error,
            created_at: util::rfc3339(e.created_at),
        }
    }
}

/// Which events.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Filter {
    /// `pending`, `delivered` or `dead`; default: all.
    state: Option<String>,
    /// At most this many, newest first (1 to 500, default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// A list of events.
#[derive(Serialize, ToSchema)]
pub struct EventList {
    /// Newest first.
    pub items: Vec<EventView>,
}

/// Events in the outbox, newest first (admins).
#[utoipa::path(
    get, path = "/v1/events", tag = EVENTS, params(Filter),
    responses(
        (status = 200, description = "Events", body = EventList),
        (status = 400, description = "Bad state or limit", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Admins only", body = ProblemDoc, content_type = "application/problem+json"),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn list(
    State(app): State<Arc<App>>,
    Query(f): Query<Filter>,
    headers: HeaderMap,
) -> Result<Json<EventList>, Problem> {
    let who = authenticate(&app, &headers).await?;
    require(&who, Role::Admin, "reading events")?;
    let state = f.state.as_deref();
    if !matches!(state, None | Some("pending" | "delivered" | "dead")) {
        return Err(Problem::bad_request("state is pending, delivered or dead"));
    }
    let limit = f.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::bad_request("limit must be between 1 and 500"));
    }
    let items = app.store.events(state, limit).await?;
    Ok(Json(EventList {
        items: items.into_iter().map(EventView::from).collect(),
    }))
}

/// Send an event again to every destination, whatever its state (admins). Receivers see the same
/// event id.
#[utoipa::path(
    post, path = "/v1/events/{id}/replay", tag = EVENTS, params(("id" = String, Path, description = "Event id")),
    responses(
        (status = 202, description = "Queued for delivery"),
        (status = 403, description = "Admins only", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such event", body = ProblemDoc, content_type = "application/problem+json"),
        Refusals,
    ),
    security(("bearer" = []))
)]
async fn replay(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let who = authenticate(&app, &headers).await?;
    require(&who, Role::Admin, "replaying events")?;
    if uuid::Uuid::try_parse(&id).is_err() || !app.store.replay_event(&id, util::now_ms()).await? {
        return Err(Problem::not_found(format!("no event {id}")));
    }
    app.outbox.notify();
    Ok(StatusCode::ACCEPTED)
}
