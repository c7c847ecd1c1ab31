//! WHEP (draft-ietf-wish-whep) and WHIP (RFC 9725): WebRTC playback of a live channel, and
//! going live over WebRTC.
//!
//! `POST /whep/{channel}` takes a listener's SDP offer and `Authorization: Bearer <channel
//! playback token>` (or `?token=`); `POST /whip/{channel}` a publisher's offer and `Bearer
//! <stream key>`. Both answer 201 with the SDP answer, the session's URL in `Location`, its
//! `ETag` and one `Link` per configured STUN/TURN server. `PATCH` on the session URL takes
//! trickle-ICE fragments (204); `DELETE` ends the session (200). Both need the credential the
//! session was created with. `OPTIONS` (answered by the CORS
//! layer) carries `Accept-Post` on the endpoints and `Accept-Patch` on sessions. The session
//! URL's last segment is 128 random bits: it is the capability.

use crate::app::App;
use crate::auth::{Scope, TokenError};
use crate::http::answer::token_of;
use crate::http::Problem;
use crate::live::{Admission, GoLiveError, KeyRefused, SourceInfo, StartError};
use crate::store::ChannelId;
use crate::util;
use crate::webrtc::wire::{self, Direction, OfferError};
use crate::webrtc::{OpenError, Opened, Peer, SessionId};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SDP: &str = "application/sdp";
const TRICKLE: &str = "application/trickle-ice-sdpfrag";

pub(in crate::http) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/whep/{channel}", post(offer))
        .route("/whip/{channel}", post(publish))
        .route(
            "/whep/{channel}/{session}",
            patch(
                |a: State<Arc<App>>, p: SessionPath, u: Uri, h: HeaderMap, b: Bytes| {
                    trickle("whep", a, p, u, h, b)
                },
            )
            .delete(|a: State<Arc<App>>, p: SessionPath, u: Uri, h: HeaderMap| {
                end("whep", a, p, u, h)
            }),
        )
        .route(
            "/whip/{channel}/{session}",
            patch(
                |a: State<Arc<App>>, p: SessionPath, u: Uri, h: HeaderMap, b: Bytes| {
                    trickle("whip", a, p, u, h, b)
                },
            )
            .delete(|a: State<Arc<App>>, p: SessionPath, u: Uri, h: HeaderMap| {
                end("whip", a, p, u, h)
            }),
        )
}

/// `{channel}/{session}` of a session resource.
type SessionPath = Path<(String, String)>;

/// The media type of a request, without parameters.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The playback token: `Authorization: Bearer`, or the `token` query parameter.
fn token<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::auth::bearer)
        .or_else(|| token_of(uri))
}

/// 415 for a body that is not the media type the route takes.
fn unsupported_type(detail: &'static str) -> Response {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        detail,
    )
    .into_response()
}

fn token_problem(e: TokenError) -> Response {
    match e {
        TokenError::Missing => Problem::new(
            StatusCode::UNAUTHORIZED,
            "token-missing",
            "Unauthorized",
            "send Authorization: Bearer <channel playback token>",
        )
        .into_response(),
        TokenError::Expired => Problem::forbidden("the playback token has expired").into_response(),
        TokenError::WrongScope => {
            Problem::forbidden("the playback token is for another channel").into_response()
        }
        _ => Problem::forbidden("the playback token is invalid").into_response(),
    }
}

fn parse_session(s: &str) -> Option<SessionId> {
    (s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then(|| u128::from_str_radix(s, 16).ok())
    .flatten()
}

async fn offer(
    State(app): State<Arc<App>>,
    Path(channel): Path<String>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(id) = ChannelId::parse_canonical(&channel) else {
        return Problem::not_found("no such channel").into_response();
    };
    let grant =
        match app
            .auth
            .tokens
            .verify(token(&headers, &uri), Scope::Channel(id), util::now_secs())
        {
            Ok(g) => g,
            Err(e) => return token_problem(e),
        };
    if media_type(&headers) != SDP {
        return unsupported_type("a WHEP offer is application/sdp");
    }
    let Ok(sdp) = std::str::from_utf8(&body) else {
        return Problem::bad_request("the offer is not UTF-8").into_response();
    };
    let checked = match wire::check_offer(sdp, Direction::Recv) {
        Ok(c) => c,
        Err(e) => return offer_problem(e),
    };
    let Some(ch) = app.live.get(id) else {
        if let Some(lease) = app.live.elsewhere(id).await {
            let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("{}{}", lease.url, uri)) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
        match app.store.channel(id).await {
            Ok(Some(_)) => {}
            Ok(None) => return Problem::not_found("no such channel").into_response(),
            Err(e) => return Problem::unavailable("the metadata store", &e).into_response(),
        }
        return Problem::conflict(
            "channel-offline",
            "Channel offline",
            format!("channel {id} is not on the air; try again when it is"),
        )
        .retry_after(5)
        .into_response();
    };
    if !ch.has_opus() {
        return Problem::conflict(
            "channel-without-opus",
            "No Opus rendition",
            format!(
                "channel {id} encodes no Opus rendition, which WebRTC carries; add one (opus-128)"
            ),
        )
        .into_response();
    }
    let until = Duration::from_secs(grant.expires.saturating_sub(util::now_secs()));
    let peer = Peer {
        ufrag: checked.ufrag,
        credential: token(&headers, &uri).unwrap_or_default(),
        client: client.ip(),
    };
    match app.webrtc.open_whep(ch, sdp, peer, Instant::now() + until) {
        Ok(o) => created(
            &app,
            crate::layout::whep_session(id, &format!("{:032x}", o.id)),
            o,
        ),
        Err(e) => open_problem(e),
    }
}

/// 429 for an address that sent too many wrong stream keys.
pub(in crate::http) fn key_blocked(left: Duration) -> Response {
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-key-failures",
        "Too many wrong stream keys",
        "this address sent too many wrong stream keys; try again later",
    )
    .retry_after(left.as_secs().max(1))
    .into_response()
}

fn open_problem(e: OpenError) -> Response {
    match e {
        OpenError::Full => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webrtc-full",
            "Too many WebRTC sessions",
            "this node holds live.max_webrtc_sessions sessions; try again later (or listen over LL-HLS)",
        )
        .retry_after(5)
        .into_response(),
        OpenError::TooManyConnecting => Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "webrtc-connecting",
            "Too many sessions connecting",
            "this address or credential already has as many sessions connecting as it may; \
             finish or DELETE them, or try again shortly",
        )
        .retry_after(5)
        .into_response(),
        OpenError::Offer(e) => Problem::unprocessable(
            "unsupported-offer",
            format!("the offer cannot be answered: {e}"),
        )
        .into_response(),
    }
}

/// `POST /whip/{channel}`: a publisher goes live. Authorised by the channel's stream key; the
/// channel starts here if it is not running (or is refused with 409 naming the node that runs
/// it), and the publisher becomes its one source, as an Icecast source does.
async fn publish(
    State(app): State<Arc<App>>,
    Path(channel): Path<String>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let unauthorized = |detail: &'static str| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            detail,
        )
        .into_response()
    };
    let Some(id) = ChannelId::parse_canonical(&channel) else {
        return Problem::not_found("no such channel").into_response();
    };
    let Some(key) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::auth::bearer)
    else {
        return unauthorized("send Authorization: Bearer <stream key>");
    };
    if media_type(&headers) != SDP {
        return unsupported_type("a WHIP offer is application/sdp");
    }
    let Ok(sdp) = std::str::from_utf8(&body) else {
        return Problem::bad_request("the offer is not UTF-8").into_response();
    };
    let row = match app
        .live
        .check_key(&app.auth.limits, id, key, client.ip(), "whip")
        .await
    {
        Ok(row) => row,
        Err(Admission::NoChannel) => return Problem::not_found("no such channel").into_response(),
        Err(Admission::Store(e)) => {
            return Problem::unavailable("the metadata store", &e).into_response()
        }
        Err(Admission::Key(KeyRefused::Wrong)) => {
            return unauthorized("the stream key is wrong or was rotated")
        }
        Err(Admission::Key(KeyRefused::Blocked(left))) => return key_blocked(left),
    };
    let checked = match wire::check_offer(sdp, Direction::Send) {
        Ok(c) => c,
        Err(e) => return offer_problem(e),
    };
    let info = SourceInfo {
        client: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| "WHIP".to_string(), |ua| format!("WHIP {ua}")),
        codec: "audio/opus (WebRTC)".into(),
        bitrate: 0,
        connected_at: util::rfc3339(util::now_ms()),
        name: None,
        description: None,
        genre: None,
        public: None,
    };
    let hash = crate::live::key_hash(key);
    match app.live.go_live(&row, &hash, info).await {
        Ok((ch, source)) => match app.webrtc.open_whip(
            ch,
            sdp,
            Peer {
                ufrag: checked.ufrag,
                credential: key,
                client: client.ip(),
            },
            source,
        ) {
            Ok(o) => created(
                &app,
                crate::layout::whip_session(id, &format!("{:032x}", o.id)),
                o,
            ),
            Err(e) => open_problem(e),
        },
        Err(GoLiveError::Start(StartError::Elsewhere(lease))) => Problem::conflict(
            "channel-elsewhere",
            "Channel runs on another node",
            format!(
                "channel {id} is live on node {} at {}; publish there",
                lease.node, lease.url
            ),
        )
        .into_response(),
        Err(GoLiveError::Start(StartError::Failed(e))) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            format!("the channel could not start: {e}"),
        )
        .into_response(),
        Err(GoLiveError::Busy) => Problem::conflict(
            "source-busy",
            "A source is live",
            "another source is live on this channel; one source at a time",
        )
        .into_response(),
        Err(GoLiveError::Restarting) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            "the channel is restarting; try again",
        )
        .retry_after(1)
        .into_response(),
    }
}

/// 201 with the answer, its `Location`, `ETag`, `Accept-Patch` and the ICE servers' `Link`s.
fn created(app: &App, location: String, opened: Opened) -> Response {
    let mut r = (StatusCode::CREATED, opened.answer).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDP));
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&opened.etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::HeaderName::from_static("accept-patch"),
        HeaderValue::from_static(TRICKLE),
    );
    for url in app.webrtc.ice_servers() {
        if let Ok(v) = HeaderValue::from_str(&format!("<{url}>; rel=\"ice-server\"")) {
            h.append(header::LINK, v);
        }
    }
    r
}

fn offer_problem(e: OfferError) -> Response {
    match e {
        OfferError::Malformed(d) => Problem::bad_request(d).into_response(),
        OfferError::Unsupported(d) => {
            Problem::unprocessable("unsupported-offer", d).into_response()
        }
    }
}

/// What a WHEP endpoint accepts, on every OPTIONS answer (the CORS layer answers OPTIONS
/// itself, so this wraps it).
pub(in crate::http) async fn accept_post(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    let ours = req.method() == axum::http::Method::OPTIONS
        && (path.starts_with("/whep/") || path.starts_with("/whip/"));
    let endpoint = ours && path.matches('/').count() == 2;
    let session = ours && path.matches('/').count() == 3;
    let mut r = next.run(req).await;
    if endpoint {
        r.headers_mut().insert(
            header::HeaderName::from_static("accept-post"),
            HeaderValue::from_static(SDP),
        );
    }
    if session {
        r.headers_mut().insert(
            header::HeaderName::from_static("accept-patch"),
            HeaderValue::from_static(TRICKLE),
        );
    }
    r
}

/// The session a PATCH or DELETE names, when it is open, of `kind`, and belongs to the channel
/// in the URL; and only for the credential that opened it (the listener's playback token, as
/// `Bearer` or `?token=`; the publisher's stream key): 401 without one, 403 with another.
fn session_of(
    app: &App,
    kind: &str,
    (channel, session): (&str, &str),
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<SessionId, Problem> {
    let found = ChannelId::parse_canonical(channel).zip(parse_session(session));
    let s = match found {
        Some((id, s))
            if app
                .webrtc
                .owner(s)
                .is_some_and(|(k, c)| k == kind && c == id) =>
        {
            s
        }
        _ => return Err(Problem::not_found("no such WebRTC session")),
    };
    let Some(credential) = token(headers, uri) else {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "send the credential the session was created with (Authorization: Bearer)",
        ));
    };
    if !app.webrtc.opened_with(s, credential) {
        return Err(Problem::forbidden(
            "the session was created with another credential",
        ));
    }
    Ok(s)
}

fn no_session() -> Response {
    Problem::not_found("no such WebRTC session").into_response()
}

async fn trickle(
    kind: &'static str,
    State(app): State<Arc<App>>,
    Path((channel, session)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let s = match session_of(&app, kind, (&channel, &session), &headers, &uri) {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    if media_type(&headers) != TRICKLE {
        return unsupported_type("a session PATCH is application/trickle-ice-sdpfrag");
    }
    let etag = app.webrtc.etag_of(s).unwrap_or_default();
    if let Some(want) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        if want != "*" && want != etag {
            return Problem::precondition_failed("the session's ICE credentials have changed")
                .into_response();
        }
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return Problem::bad_request("the fragment is not UTF-8").into_response();
    };
    let frag = match wire::parse_fragment(text) {
        Ok(f) => f,
        Err(d) => return Problem::bad_request(d).into_response(),
    };
    // New credentials ask for an ICE restart, which this server does not do (the WHIP rule for
    // a server that supports trickle ICE but not restarts: 422).
    if frag.ufrag.is_some() && frag.ufrag != app.webrtc.remote_ufrag_of(s) {
        return Problem::unprocessable(
            "ice-restart-unsupported",
            "ICE restarts are not supported; start a new session",
        )
        .into_response();
    }
    let mut candidates = Vec::new();
    for c in &frag.candidates {
        match str0m::Candidate::from_sdp_string(c) {
            Ok(c) => candidates.push(c),
            Err(_) => {
                return Problem::bad_request(format!("not an ICE candidate: {c}")).into_response()
            }
        }
    }
    if !app.webrtc.trickle(s, candidates) {
        return no_session();
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn end(
    kind: &'static str,
    State(app): State<Arc<App>>,
    Path((channel, session)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match session_of(&app, kind, (&channel, &session), &headers, &uri) {
        Ok(s) if app.webrtc.close(s) => StatusCode::OK.into_response(),
        Ok(_) => no_session(),
        Err(p) => p.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_32_lowercase_hex_digits() {
        assert_eq!(parse_session(&format!("{:032x}", 7u128)), Some(7));
        assert_eq!(parse_session(&format!("{:032X}", 0xabu128)), None);
        assert_eq!(parse_session("7"), None);
        assert_eq!(parse_session(&"g".repeat(32)), None);
        assert_eq!(parse_session("+0000000000000000000000000000007"), None);
    }
}
