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
/// Tag of the live channel routes.
pub const CHANNELS: &str = "channels";
/// Tag of the routes public pages use without credentials.
pub const PUBLIC: &str = "public";
/// Tag of the caller's own routes.
pub const ME: &str = "me";
/// The media type of every error answer (RFC 9457).
pub const JSON_PROBLEM: &str = "application/problem+json";

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

// The refusals many operations share, each written once: a route lists them by name beside its
// own rows, and the document shows the same row wherever one is named.

/// 403: The caller may read it but does not own it.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only its derived description is used.
pub enum NotOwner {
    /// Not the owner
    #[response(status = 403, content_type = "application/problem+json")]
    NotOwner(ProblemDoc),
}

/// 400: The body is not the JSON the operation takes.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only its derived description is used.
pub enum Malformed {
    /// Malformed body
    #[response(status = 400, content_type = "application/problem+json")]
    Malformed(ProblemDoc),
}

/// 412: Someone changed it since the caller read it.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only its derived description is used.
pub enum Stale {
    /// If-Match names an older version
    #[response(status = 412, content_type = "application/problem+json")]
    Stale(ProblemDoc),
}

/// 404: No track with this id that the caller may see.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only its derived description is used.
pub enum NoTrack {
    /// No such track
    #[response(status = 404, content_type = "application/problem+json")]
    NoTrack(ProblemDoc),
}

/// 403: The track belongs to another artist.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only its derived description is used.
pub enum OthersTrack {
    /// Another artist's track
    #[response(status = 403, content_type = "application/problem+json")]
    OthersTrack(ProblemDoc),
}

/// 404: No playlist with this id.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only its derived description is used.
pub enum NoPlaylist {
    /// No such playlist
    #[response(status = 404, content_type = "application/problem+json")]
    NoPlaylist(ProblemDoc),
}

/// 404: No channel with this id.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only its derived description is used.
pub enum NoChannel {
    /// No such channel
    #[response(status = 404, content_type = "application/problem+json")]
    NoChannel(ProblemDoc),
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
        (name = "channels", description = "Live channels: stream keys, auto-DJ, live state and playback"),
        (name = "public", description = "Public tracks, playlists and channels, for anyone: short-lived playback, live state and cover art"),
        (name = "me", description = "Accounts, sign-in and who the credential is"),
    )
)]
pub struct ApiDoc;

/// Where a track is in its life (the document of [`crate::store::TrackStatus`], which serialises to
/// these names).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = Status)]
#[allow(dead_code)] // A document only: responses serialise `store::TrackStatus` itself.
pub enum StatusDoc {
    /// Uploaded, waiting for a worker.
    Queued,
    /// A worker is packaging it.
    Processing,
    /// Published: playable.
    Ready,
    /// Failed for good; `error` says why.
    Failed,
}

/// A published rendition.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Rendition)]
pub struct RenditionView {
    /// `opus-96`, `aac-128`, `flac`: also its directory in the package.
    pub name: String,
    /// RFC 6381 codecs string.
    pub codecs: String,
    /// Hz.
    pub sample_rate: i64,
    /// Channel count.
    pub channels: i64,
    /// Peak bit rate.
    pub bandwidth: i64,
    /// Average bit rate.
    pub average_bandwidth: i64,
    /// Number of media segments.
    pub segments: i64,
}

impl From<crate::store::Rendition> for RenditionView {
    fn from(r: crate::store::Rendition) -> RenditionView {
        RenditionView {
            name: r.name,
            codecs: r.codecs,
            sample_rate: r.sample_rate,
            channels: r.channels,
            bandwidth: r.bandwidth,
            average_bandwidth: r.average_bandwidth,
            segments: r.segments,
        }
    }
}
