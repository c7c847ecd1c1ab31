//! `/openapi.json`: the OpenAPI 3.1 description of the control API, generated from the handlers'
//! annotations (utoipa), so it cannot drift from the routes.

use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Tag of the track routes.
pub const TRACKS: &str = "tracks";
/// Tag of the playlist routes.
pub const PLAYLISTS: &str = "playlists";
/// Tag of the resumable-upload routes.
pub const UPLOADS: &str = "uploads";
/// Tag of the event routes.
pub const EVENTS: &str = "events";

/// An RFC 9457 problem document, the body of every error.
#[derive(Serialize, ToSchema)]
pub struct ProblemDoc {
    /// `https://veza.stream/problems/<kind>`, stable per kind of error.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
}

/// The refusals every authenticated operation may give, listed once.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only its derived description is used.
pub enum Refusals {
    /// No valid credentials: no `Authorization`, an unknown API key, or an invalid or expired JWT.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(ProblemDoc),
    /// Over a rate limit; `Retry-After` says when to try again.
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(ProblemDoc),
}

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A service API key, or a JWT whose role claim is admin, artist or listener",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document's fixed parts; the paths come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Veza Stream control API",
        description = "Tracks, playlists, resumable uploads and events. Errors are RFC 9457 problem documents.",
    ),
    modifiers(&Bearer),
    components(schemas(ProblemDoc)),
    tags(
        (name = "tracks", description = "Upload, inspect, delete and play tracks"),
        (name = "playlists", description = "Playlists, their order, and gapless playback as one stream"),
        (name = "uploads", description = "Resumable uploads (tus 1.0.0)"),
        (name = "events", description = "The event outbox: dead letters and replay (admins)"),
    )
)]
pub struct ApiDoc;
