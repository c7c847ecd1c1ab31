//! The tus 1.0.0 protocol itself: its headers, metadata and version negotiation.

use crate::app::App;
use crate::auth::Identity;
use crate::http::access::authenticate;
use crate::http::problem::Problem;
use crate::store::TrackId;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::time::{Duration, UNIX_EPOCH};

pub(crate) const VERSION: &str = "1.0.0";
pub(crate) const EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration,checksum";
pub(crate) const OFFSET_TYPE: &str = "application/offset+octet-stream";

/// Every tus answer carries `Tus-Resumable`.
pub(crate) async fn tus_headers(mut r: Response) -> Response {
    r.headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(VERSION));
    r
}

pub(crate) fn h(name: &'static str, value: impl ToString) -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static(name),
        HeaderValue::from_str(&value.to_string()).unwrap_or(HeaderValue::from_static("")),
    )
}

pub(crate) fn expires_header(ms: i64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

/// `Tus-Resumable` must name the version this server speaks: the 412 (with `Tus-Version`) when
/// it does not.
pub(crate) fn refuse_version(headers: &HeaderMap) -> Option<Response> {
    match headers.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(VERSION) => None,
        _ => {
            let mut r = Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "tus-version",
                "Unsupported tus version",
                "send Tus-Resumable: 1.0.0",
            )
            .into_response();
            r.headers_mut()
                .insert("tus-version", HeaderValue::from_static(VERSION));
            Some(r)
        }
    }
}

/// Who sends a tus request that speaks our version: the answer to give otherwise (401, 403 or
/// 412).
#[allow(clippy::result_large_err)] // The handlers answer with the refusal as it is.
pub(crate) async fn caller(app: &App, headers: &HeaderMap) -> Result<Identity, Response> {
    let who = authenticate(app, headers)
        .await
        .map_err(IntoResponse::into_response)?;
    match refuse_version(headers) {
        Some(r) => Err(r),
        None => Ok(who),
    }
}

pub(crate) fn header_i64(headers: &HeaderMap, name: &str) -> Result<Option<i64>, Problem> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| Problem::bad_request(format!("{name} must be a non-negative integer"))),
    }
}

/// One value of `Upload-Metadata` (`key base64,key base64`), decoded.
pub(crate) fn metadata_value(metadata: &str, key: &str) -> Option<String> {
    metadata.split(',').find_map(|pair| {
        let mut it = pair.trim().splitn(2, ' ');
        (it.next()? == key).then(|| {
            let v = it.next().unwrap_or("");
            B64.decode(v.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default()
        })
    })
}

pub(crate) fn check_metadata(metadata: &str) -> Result<(), Problem> {
    if metadata.len() > 4096 {
        return Err(Problem::bad_request(
            "Upload-Metadata is limited to 4096 bytes",
        ));
    }
    for pair in metadata.split(',').filter(|p| !p.trim().is_empty()) {
        let mut it = pair.trim().splitn(2, ' ');
        let key = it.next().unwrap_or("");
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(Problem::bad_request(
                "Upload-Metadata keys must be ASCII without spaces or commas",
            ));
        }
        if let Some(v) = it.next() {
            if B64.decode(v.trim()).is_err() {
                return Err(Problem::bad_request(format!(
                    "Upload-Metadata value of {key} is not base64"
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn track_headers(track: TrackId) -> [(HeaderName, HeaderValue); 1] {
    [h("veza-track", crate::layout::track_api(track))]
}
