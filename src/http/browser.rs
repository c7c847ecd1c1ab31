//! What browsers are told about every response, and who may use the development sign-in.
//!
//! Every response says `X-Content-Type-Options: nosniff` (a segment or an error is never run as
//! script or styles) and `Referrer-Policy: strict-origin-when-cross-origin` (signed URLs carry
//! their token in the query, which must not leak to other sites). HTML pages, the app's, also
//! get a `Content-Security-Policy` that allows only what the app loads, nothing inline, and
//! forbids framing; the embed players (`/embed/…`) may be framed by any site.
//!
//! `POST /app/dev-sign-in` hands out an admin key, so it is the one route that no other web
//! origin may read: it gets no CORS headers (its preflight finds none either), and it answers
//! only a same-origin request (an `Origin` naming the `Host` it was sent to, or none) whose
//! `Host` is a loopback name, so that a page on another origin, or a DNS-rebinding name that
//! resolves to 127.0.0.1, gets 404.

use crate::app::App;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

/// The development sign-in's path.
pub const DEV_SIGN_IN: &str = "/app/dev-sign-in";

/// The app's sources of content. hls.js plays through Media Source Extensions (`blob:` media),
/// probes text-track support with a `data:` cue file and may run its demuxer in a worker made
/// from a `blob:`; covers and the favicon are images
/// from here or `data:`; the API, playlists and WHEP are fetched from here or from
/// `server.public_url` when that names another origin (a CDN).
fn policy(public_origin: Option<&str>, framed_by_anyone: bool) -> String {
    let connect = match public_origin {
        Some(o) => format!("'self' {o}"),
        None => "'self'".into(),
    };
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; \
         img-src 'self' data: blob: {connect_media}; media-src 'self' blob: data: {connect_media}; \
         connect-src {connect}; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; \
         form-action 'self'; frame-ancestors {ancestors}",
        connect_media = public_origin.unwrap_or(""),
        ancestors = if framed_by_anyone { "*" } else { "'none'" },
    )
    .replace("  ", " ")
    .replace(" ;", ";")
}

/// The origin (`scheme://host[:port]`) of a URL.
fn origin_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest
        .find('/')
        .map_or(url.len(), |i| url.len() - rest.len() + i);
    Some(&url[..end])
}

/// Adds the browser headers to every response; strips CORS from the development sign-in.
pub async fn headers(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let sign_in = req.uri().path() == DEV_SIGN_IN;
    let embed = req.uri().path().starts_with("/embed/");
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if html {
        let csp = policy(
            origin_of(&app.public_url).filter(|o| !is_loopback_origin(o)),
            embed,
        );
        if let Ok(v) = HeaderValue::from_str(&csp) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        if !embed {
            h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        }
    }
    if sign_in {
        let cors: Vec<_> = h
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for k in cors {
            h.remove(k);
        }
    }
    response
}

/// Whether a page's origin is this server's own public origin on loopback (then `'self'`
/// already covers it in the browser that loaded the page from there).
fn is_loopback_origin(origin: &str) -> bool {
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| is_loopback_host(authority))
}

/// Whether a `Host` value (`name[:port]`) names this machine's loopback interface.
fn is_loopback_host(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a request may take the development key: its `Host` (or HTTP/2 `:authority`) is a
/// loopback name and its `Origin`, when it sends one, is the same origin.
pub fn may_sign_in(headers: &HeaderMap, uri: &axum::http::Uri) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("\0"));
    same_origin_loopback(host, origin)
}

fn same_origin_loopback(host: Option<&str>, origin: Option<&str>) -> bool {
    let Some(host) = host.filter(|h| is_loopback_host(h)) else {
        return false;
    };
    match origin {
        None => true,
        Some(o) => o
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(
        host: Option<&'a str>,
        origin: Option<&'a str>,
    ) -> (Option<&'a str>, Option<&'a str>) {
        (host, origin)
    }

    fn ok((host, origin): (Option<&str>, Option<&str>)) -> bool {
        same_origin_loopback(host, origin)
    }

    #[test]
    fn only_a_same_origin_loopback_request_signs_in() {
        assert!(ok(req(Some("127.0.0.1:8080"), None)));
        assert!(ok(req(
            Some("localhost:8080"),
            Some("http://localhost:8080")
        )));
        assert!(ok(req(Some("[::1]:8080"), Some("http://[::1]:8080"))));
        // Another loopback origin (another port), another site, a rebinding name, no Host.
        assert!(!ok(req(
            Some("127.0.0.1:8080"),
            Some("http://127.0.0.1:9999")
        )));
        assert!(!ok(req(
            Some("127.0.0.1:8080"),
            Some("https://evil.example")
        )));
        assert!(!ok(req(Some("rebind.evil.example:8080"), None)));
        assert!(!ok(req(Some("127.0.0.1:8080"), Some("null"))));
        assert!(!ok(req(None, None)));
    }

    #[test]
    fn the_policy_allows_a_cdn_origin_for_media_and_nothing_else_new() {
        let own = policy(None, false);
        assert!(own.contains("connect-src 'self';"), "{own}");
        assert!(own.contains("media-src 'self' blob: data:;"), "{own}");
        assert!(own.contains("style-src 'self';"), "nothing inline: {own}");
        assert!(own.ends_with("frame-ancestors 'none'"), "{own}");
        let cdn = policy(origin_of("https://cdn.example/veza"), false);
        assert!(
            cdn.contains("connect-src 'self' https://cdn.example;"),
            "{cdn}"
        );
        assert!(cdn.contains("img-src 'self' data: blob: https://cdn.example;"));
        let embed = policy(None, true);
        assert!(embed.ends_with("frame-ancestors *"), "{embed}");
        assert_eq!(
            origin_of("http://127.0.0.1:8080"),
            Some("http://127.0.0.1:8080")
        );
    }
}
