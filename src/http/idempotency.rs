//! `Idempotency-Key` on the POSTs that create something (draft-ietf-httpapi-idempotency-key-header).
//!
//! The first request with a key runs and its response is stored under (subject, key) with a
//! fingerprint of the method, path and body. A later request with the same key and fingerprint
//! gets the stored response again (with `Idempotent-Replayed: true`) and creates nothing; the same
//! key with another request is refused with 422. Keys live `limits.idempotency_ttl_seconds`.

use super::problem::Problem;
use crate::app::App;
use crate::auth::Identity;
use crate::store::Idempotent;
use crate::util;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The `Idempotency-Key` of a request, if it sent one.
pub fn key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let k = v
        .to_str()
        .ok()
        .map(|s| s.trim().trim_matches('"'))
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or_else(|| {
            Problem::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
        })?;
    Ok(Some(k.to_owned()))
}

/// A fingerprint of a request: SHA-256 over the method, the path and a digest of the body.
pub fn fingerprint(method: &str, path: &str, body_digest: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body_digest);
    crate::util::hex(&h.finalize())
}

/// The stored response for `key`: `Ok(Some)` to replay, `Ok(None)` when the key is new, 422 when
/// it was used for another request.
pub async fn replay(
    app: &App,
    who: &Identity,
    key: &str,
    fingerprint: &str,
) -> Result<Option<Response>, Problem> {
    let Some(stored) = app.store.idempotent(&who.subject, key).await? else {
        return Ok(None);
    };
    if stored.fingerprint != fingerprint {
        return Err(Problem::unprocessable(
            "idempotency-key-reused",
            "this Idempotency-Key was used for a different request",
        ));
    }
    let saved: Value = serde_json::from_str(&stored.body).unwrap_or(Value::Null);
    let mut headers = Vec::new();
    if let Some(list) = saved.get("headers").and_then(Value::as_array) {
        for pair in list {
            if let (Some(n), Some(v)) = (
                pair.get(0).and_then(Value::as_str),
                pair.get(1).and_then(Value::as_str),
            ) {
                headers.push((n.to_owned(), v.to_owned()));
            }
        }
    }
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut r = respond(status, &headers, saved.get("body").filter(|b| !b.is_null()));
    r.headers_mut().insert(
        HeaderName::from_static("idempotent-replayed"),
        HeaderValue::from_static("true"),
    );
    Ok(Some(r))
}

/// Stores a response for `key`. A failure to store is logged: the change itself has been made.
pub async fn remember(
    app: &App,
    who: &Identity,
    key: &str,
    fingerprint: &str,
    status: StatusCode,
    headers: &[(String, String)],
    body: Option<&Value>,
) {
    let saved = json!({ "headers": headers, "body": body });
    let record = Idempotent {
        fingerprint: fingerprint.to_owned(),
        status: status.as_u16(),
        body: saved.to_string(),
    };
    if let Err(e) = app
        .store
        .remember(&who.subject, key, &record, util::now_ms())
        .await
    {
        tracing::warn!(error = %e, "storing an idempotent response");
    }
}

/// A response from its parts.
pub fn respond(status: StatusCode, headers: &[(String, String)], body: Option<&Value>) -> Response {
    let mut r = match body {
        Some(b) => (status, Json(b.clone())).into_response(),
        None => status.into_response(),
    };
    for (n, v) in headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(n.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(n, v);
        }
    }
    r
}

/// Runs a create under `Idempotency-Key`, when one was sent.
pub async fn idempotent_create<F>(
    app: &App,
    who: &Identity,
    headers: &HeaderMap,
    path: &str,
    raw: &[u8],
    create: F,
) -> Result<Response, Problem>
where
    F: std::future::Future<Output = Result<Response, Problem>>,
{
    let Some(key) = key(headers)? else {
        return create.await;
    };
    let fp = fingerprint("POST", path, &Sha256::digest(raw));
    if let Some(r) = replay(app, who, &key, &fp).await? {
        return Ok(r);
    }
    let r = create.await?;
    let status = r.status();
    let keep: Vec<(String, String)> = [header::LOCATION, header::ETAG]
        .iter()
        .filter_map(|h| {
            r.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(|v| (h.as_str().to_owned(), v.to_owned()))
        })
        .collect();
    let (parts, b) = r.into_parts();
    let bytes = axum::body::to_bytes(b, 1 << 24)
        .await
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    remember(app, who, &key, &fp, status, &keep, Some(&json)).await;
    Ok(Response::from_parts(parts, axum::body::Body::from(bytes)))
}
