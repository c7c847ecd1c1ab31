//! Resumable uploads: tus 1.0.0 (<https://tus.io/protocols/resumable-upload>) under `/v1/uploads`,
//! with the creation, creation-with-upload, termination, expiration and checksum (sha256)
//! extensions.
//!
//! Each PATCH is stored as its own object, `uploads/<id>/<offset>`, and the upload's offset moves
//! in the store with a compare-and-set, so any node can take the next PATCH and two racing PATCHes
//! cannot both land. A PATCH cut off mid-body keeps what arrived (unless it carried a checksum,
//! which cannot be checked on a part), so the client resumes from there. When the offset reaches
//! the length the pieces are joined into the track's original and the track is queued, in the
//! same transaction that marks the upload complete. Unfinished uploads are removed after
//! `limits.upload_expiration_seconds`.

mod handlers;
mod protocol;
mod write;

use crate::app::App;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::Response;
use handlers::options;
use protocol::tus_headers;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(in crate::http) fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(handlers::options, handlers::create))
        .routes(routes!(
            handlers::head,
            handlers::patch,
            handlers::terminate
        ))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::map_response(tus_headers))
}

/// Answers tus discovery (`OPTIONS /v1/uploads`) ahead of the CORS layer, which would take any
/// OPTIONS for a preflight. A real preflight carries `Access-Control-Request-Method` and goes on.
pub async fn discovery(
    State(app): State<Arc<App>>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    if req.method() == axum::http::Method::OPTIONS
        && req.uri().path() == "/v1/uploads"
        && !req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return tus_headers(options(State(app)).await).await;
    }
    next.run(req).await
}
