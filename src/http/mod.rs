//! `http`: the routers. The control API under `/v1` (`api/`, described at `/openapi.json`), media
//! delivery and ingest at the edge (`media/`: HLS under `/hls`, WHEP and WHIP, Icecast's
//! `/admin/metadata`, the web app), and operations (`/healthz`, `/readyz`, `/metrics`). What both
//! halves use sits beside them: problems, answers, bodies, access, idempotency, the OpenAPI
//! document. Errors are RFC 9457 problem documents ([`Problem`]).

mod access;
mod answer;
mod api;
pub use api::station::events::relay as relay_channel;
mod body;
mod browser;
mod idempotency;
mod media;
mod openapi;
mod problem;
pub mod semantics;

use api::tracks::{self, upload};
use api::{
    accounts, channels, events, oembed, playback, playlists, public, search, signin, station, tus,
};
use media::{delivery, icecast_admin, live, mounts, stitch, ts, webapp, webrtc};

pub use openapi::ApiDoc;
pub use problem::Problem;

use crate::app::App;
use crate::util;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use std::time::Instant;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi;
use utoipa_axum::routes;

/// The whole HTTP surface.
pub fn router(app: Arc<App>) -> Router {
    let cors = cors(&app.config.server.cors_origins);
    let (api, doc) = control_api();
    let doc = Arc::new(doc);
    Router::new()
        .merge(api.layer(axum::middleware::from_fn(access::csrf)).layer(
            axum::middleware::from_fn_with_state(app.clone(), access::limit_ip),
        ))
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .merge(delivery::routes())
        .merge(stitch::routes())
        .merge(live::routes())
        .merge(mounts::routes())
        .merge(ts::routes())
        .merge(icecast_admin::routes())
        .merge(webrtc::routes().layer(axum::middleware::from_fn_with_state(
            app.clone(),
            access::limit_ip,
        )))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(webapp::routes())
        .fallback(|| async { Problem::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "this route does not take that method",
            )
        })
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            std::time::Duration::from_secs_f64(app.config.server.body_idle_timeout_seconds),
        ))
        .layer(axum::middleware::map_response(problems_only))
        .layer(axum::middleware::from_fn_with_state(app.clone(), observe))
        .layer(cors)
        .layer(axum::middleware::from_fn(webrtc::accept_post))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            tus::discovery,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            browser::headers,
        ))
        .with_state(app)
}

/// The control API's routes and their OpenAPI document.
fn control_api() -> (Router<Arc<App>>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = utoipa_axum::router::OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(upload::upload, tracks::list))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .merge(tracks::routes())
        .merge(playback::routes())
        .merge(playlists::routes())
        .merge(tus::routes())
        .merge(events::routes())
        .merge(channels::routes())
        .merge(public::routes())
        .merge(station::routes())
        .merge(accounts::routes())
        .merge(search::routes())
        .merge(signin::routes())
        .merge(oembed::routes())
        .split_for_parts();
    // Handlers in different modules share names (`list`, `show`): prefix each operation id with
    // its tag so that ids are unique, as OpenAPI requires.
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
            &mut item.head,
            &mut item.options,
        ]
        .into_iter()
        .flatten()
        {
            let tag = op
                .tags
                .as_ref()
                .and_then(|t| t.first())
                .cloned()
                .unwrap_or_default();
            if let Some(id) = &op.operation_id {
                op.operation_id = Some(format!("{tag}_{id}"));
            }
        }
    }
    (router, doc)
}

/// The OpenAPI document of the control API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    control_api().1
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::RANGE,
            header::IF_NONE_MATCH,
            header::IF_RANGE,
            header::IF_MATCH,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("tus-resumable"),
            HeaderName::from_static("upload-length"),
            HeaderName::from_static("upload-metadata"),
            HeaderName::from_static("upload-offset"),
            HeaderName::from_static("upload-checksum"),
            HeaderName::from_static("x-http-method-override"),
        ])
        .expose_headers([
            header::CONTENT_LENGTH,
            header::CONTENT_RANGE,
            header::ETAG,
            header::ACCEPT_RANGES,
            header::LOCATION,
            header::RETRY_AFTER,
            HeaderName::from_static("tus-resumable"),
            HeaderName::from_static("tus-version"),
            HeaderName::from_static("tus-extension"),
            HeaderName::from_static("tus-max-size"),
            HeaderName::from_static("upload-offset"),
            HeaderName::from_static("upload-length"),
            HeaderName::from_static("upload-expires"),
            HeaderName::from_static("veza-track"),
            HeaderName::from_static("idempotent-replayed"),
            header::LINK,
            HeaderName::from_static("accept-patch"),
            HeaderName::from_static("accept-post"),
        ])
        .max_age(std::time::Duration::from_secs(86400))
}

/// Turns the plain-text refusals of axum's extractors (a malformed query string, a body over the
/// limit) into problem documents, so that every error answer is RFC 9457.
async fn problems_only(r: Response) -> Response {
    let status = r.status();
    // The web app's page of an item that is not public is HTML for a person, with 404.
    let is_problem_or_page = r.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(b"application/problem+json")
            || v.as_bytes().starts_with(b"text/html")
    });
    if !(status.is_client_error() || status.is_server_error()) || is_problem_or_page {
        return r;
    }
    let (parts, body) = r.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .unwrap_or_default();
    let detail = String::from_utf8_lossy(&text).trim().to_string();
    let (kind, title) = match status {
        StatusCode::BAD_REQUEST => ("bad-request", "Bad request"),
        StatusCode::PAYLOAD_TOO_LARGE => ("too-large", "Request body too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", "Unsupported media type"),
        StatusCode::UNPROCESSABLE_ENTITY => ("unprocessable", "Unprocessable request"),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", "Method not allowed"),
        StatusCode::NOT_FOUND => ("not-found", "Not found"),
        s if s.is_server_error() => ("internal", "Internal error"),
        _ => ("error", "Error"),
    };
    let detail = if detail.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else if let Some(rest) = detail.strip_prefix("Failed to deserialize query string: ") {
        query_detail(rest)
    } else {
        detail
    };
    let mut out = Problem::new(status, kind, title, detail).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// axum's refusal of a query string (`field: serde's message`), said in the request's terms.
fn query_detail(rest: &str) -> String {
    let (field, message) = rest.split_once(": ").unwrap_or(("", rest));
    let what = if message.contains("invalid digit") || message.contains("number too large") {
        "must be a whole number".to_string()
    } else if let Some(r) = message.strip_prefix("unknown variant ") {
        match r.split_once(", expected ") {
            Some((v, expected)) => format!("may not be {v}: it takes {expected}"),
            None => format!("may not be {r}"),
        }
    } else {
        format!("is not valid ({message})")
    };
    if field.is_empty() {
        format!("the query string {what}")
    } else {
        format!("`{field}` in the query string {what}")
    }
}

/// Counts every request by route template, protocol and status, and times it; runs it in its
/// trace span, continuing the caller's `traceparent`, and answers with `traceresponse`.
async fn observe(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    use tracing::Instrument;
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", |p| p.as_str());
    let protocol = crate::telemetry::protocol(req.version());
    let span = crate::telemetry::server_span(&req, route);
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    crate::telemetry::record_status(&span, status.as_u16());
    if let Some(v) = crate::telemetry::traceresponse(&span) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("traceresponse"), v);
    }
    app.metrics
        .requests
        .with_label_values(&[route, status.as_str(), protocol])
        .inc();
    app.metrics
        .latency
        .with_label_values(&[route, protocol])
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the store and the storage both answer within two seconds each.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    match readiness(&app).await {
        Ok(()) => "ready\n".into_response(),
        Err(p) => p.into_response(),
    }
}

/// What `/readyz` checks: a write to the store (a full disk or a failing device answers reads
/// still) and a request to the storage, two seconds each.
async fn readiness(app: &App) -> Result<(), Problem> {
    let limit = std::time::Duration::from_secs(2);
    match tokio::time::timeout(limit, app.store.probe_write(util::now_ms())).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Problem::unavailable("metadata store", &e)),
        Err(e) => return Err(Problem::unavailable("metadata store", &e)),
    }
    match tokio::time::timeout(limit, app.storage.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Problem::unavailable("object storage", &e)),
        Err(e) => return Err(Problem::unavailable("object storage", &e)),
    }
    Ok(())
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let m = &app.metrics;
    match app.store.job_counts().await {
        Ok(c) => {
            m.jobs_queued.set(c.queued);
            m.jobs_running.set(c.running);
            m.jobs_failed.set(c.failed);
            let waited = c.oldest_due.map_or(0, |due| (util::now_ms() - due).max(0));
            m.job_queue_lag.set(waited as f64 / 1000.0);
        }
        Err(e) => tracing::debug!(error = %e, "job counts for /metrics"),
    }
    m.listeners
        .set(app.catalog.listeners.sweep(Instant::now()) as i64);
    m.open_connections
        .set(crate::listen::open_connections() as i64);
    m.ready.set(i64::from(readiness(&app).await.is_ok()));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_errors_are_said_in_the_requests_terms() {
        assert_eq!(
            super::query_detail("limit: invalid digit found in string"),
            "`limit` in the query string must be a whole number"
        );
        assert_eq!(
            super::query_detail(
                "scope: unknown variant `x`, expected one of `mine`, `public`, `all`"
            ),
            "`scope` in the query string may not be `x`: it takes one of `mine`, `public`, `all`"
        );
    }
}
