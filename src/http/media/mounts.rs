//! Icecast-compatible listening: `GET /listen/{channel}.mp3|.aac|.opus`, the progressive mounts
//! radio players, smart speakers and directories read, with the playlist files that name them
//! (`.m3u`, `.pls`). Icecast 2.4 is the reference for what a player sees:
//!
//! - `icy-*` headers from the channel, `Cache-Control: no-cache`, no length; with
//!   `Icy-MetaData: 1` (MP3 and AAC), `icy-metaint: 16000` and a `StreamTitle` block every
//!   16 000 bytes, the empty block when the title is unchanged;
//! - a burst of the last `live.burst_bytes` at once, from a frame boundary;
//! - `Range` is ignored: 200 with the stream (iOS asks `bytes=0-1` and drops ICY after a 206);
//! - HTTP/1.0 clients get a close-delimited body, HTTP/1.1 chunked, HTTP/2 frames; `HEAD` the
//!   headers alone.
//!
//! A public channel's mounts need no token, so their URLs are permanent. A private channel's
//! need `?token=`: a listener token (up to a year, revocable) or a playback token of the
//! channel; the stream ends when it expires or is revoked. Without either, the station's
//! `live.listener_auth_url` may admit the listener, as Icecast's URL authentication does.

use crate::app::App;
use crate::auth::Scope;
use crate::http::answer::{forbidden, token_of};
use crate::http::problem::Problem;
use crate::listen::Closer;
use crate::live::mount::{Format, Reader};
use crate::live::Channel;
use crate::store::{self, ChannelId};
use crate::util;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use veza_hls::{IcyWriter, ICY_METAINT};

pub(in crate::http) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/listen/{file}", get(listen))
        .route("/status-json.xsl", get(status_json))
}

/// When this process started, for `server_start`.
static STARTED: std::sync::OnceLock<i64> = std::sync::OnceLock::new();

/// `GET /status-json.xsl`: Icecast 2.4's status document, which directories and station tools
/// read. One `source` per mount of each public channel on the air here: an object when there is
/// one, a list when there are more, absent when there is none, as Icecast writes it.
async fn status_json(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let started = *STARTED.get_or_init(util::now_ms);
    let base = base_url(&app, &headers);
    let mut sources = Vec::new();
    for ch in app.live.all_running() {
        let Ok(Some(row)) = app.store.channel(ch.id).await else {
            continue;
        };
        if !row.public {
            continue;
        }
        let status = ch.status();
        let name = row.slug.clone().unwrap_or_else(|| row.id.to_string());
        let title = status.now_playing.as_ref().map(|n| n.title.clone());
        let genre = status.source.as_ref().and_then(|s| s.genre.clone());
        let since = status.started_at.clone();
        for f in Format::ALL {
            let Some(m) = ch.mounts.get(f) else { continue };
            let kbps = match f {
                Format::Mp3 => ch.mounts.mp3_bitrate / 1000,
                Format::Aac => ch.rendition_kbps("aac-"),
                Format::Opus => ch.rendition_kbps("opus-"),
            };
            sources.push(serde_json::json!({
                "audio_info": format!("channels=2;samplerate=48000;bitrate={kbps}"),
                "bitrate": kbps,
                "channels": 2,
                "samplerate": 48000,
                "genre": genre.clone().unwrap_or_default(),
                "listener_peak": m.peak(),
                "listeners": m.listeners(),
                "listenurl": format!("{base}/listen/{name}.{}", f.extension()),
                "server_description": row.description,
                "server_name": row.title,
                "server_type": f.content_type(),
                "server_url": app.public_url.clone(),
                "stream_start": since.as_deref().map(rfc2822),
                "stream_start_iso8601": since,
                "title": title,
                "dummy": null,
            }));
        }
    }
    let host = base
        .split_once("://")
        .map_or(base.as_str(), |(_, h)| h)
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut icestats = serde_json::json!({
        "admin": "",
        "host": host,
        "location": "",
        "server_id": concat!("veza-stream ", env!("CARGO_PKG_VERSION")),
        "server_start": rfc2822(&util::rfc3339(started)),
        "server_start_iso8601": util::rfc3339(started),
    });
    match sources.len() {
        0 => {}
        1 => icestats["source"] = sources.remove(0),
        _ => icestats["source"] = serde_json::Value::Array(sources),
    }
    (
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        serde_json::json!({ "icestats": icestats }).to_string(),
    )
        .into_response()
}

/// An RFC 3339 time as Icecast's `stream_start` writes it (RFC 2822).
fn rfc2822(rfc3339: &str) -> String {
    humantime::parse_rfc3339_weak(rfc3339)
        .map(|t| httpdate::fmt_http_date(t).replace("GMT", "+0000"))
        .unwrap_or_default()
}

/// The kernel send buffer of a progressive listener's connection: 4 s at 128 kb/s.
const LISTENER_SEND_BUFFER: usize = 64 << 10;

/// Progressive listeners of every channel on this node.
static LISTENERS: AtomicUsize = AtomicUsize::new(0);

/// What a `/listen/` file names.
enum Wanted {
    Mount(Format),
    M3u,
    Pls,
}

async fn listen(
    State(app): State<Arc<App>>,
    Path(file): Path<String>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    closer: Option<axum::Extension<Closer>>,
) -> Response {
    let Some((name, ext)) = file.rsplit_once('.') else {
        return no_mount(&file);
    };
    let wanted = match ext {
        "m3u" => Wanted::M3u,
        "pls" => Wanted::Pls,
        e => match Format::from_extension(e) {
            Some(f) => Wanted::Mount(f),
            None => return no_mount(&file),
        },
    };
    let row = match channel_row(&app, name).await {
        Ok(Some(row)) => row,
        Ok(None) => return no_mount(&file),
        Err(r) => return r,
    };
    let token = token_of(&uri);
    let access = match admit(&app, &row, token).await {
        Ok(a) => a,
        // Icecast's URL authentication, for a listener who brings no token.
        Err(refused) => {
            let url = &app.config.live.listener_auth_url;
            if url.is_empty() || token.is_some_and(|t| !t.is_empty()) {
                return refused;
            }
            match url_auth(&app, url, &file, &uri, &headers, client).await {
                Ok(a) => a,
                Err(r) => return r,
            }
        }
    };
    let format = match wanted {
        Wanted::M3u => return playlist_file(&app, &headers, &row, name, token, false),
        Wanted::Pls => return playlist_file(&app, &headers, &row, name, token, true),
        Wanted::Mount(f) => f,
    };
    let ch = match running(&app, row.id, &uri).await {
        Ok(ch) => ch,
        Err(r) => return r,
    };
    let Some(mount) = ch.mounts.get(format) else {
        return Problem::not_found(format!(
            "channel {} has no {} rendition, so no .{} mount",
            row.id,
            format.extension(),
            format.extension()
        ))
        .into_response();
    };
    let cfg = &app.config.live;
    let per_channel = match row.max_listeners {
        0 => cfg.max_listeners_per_channel,
        n => n as usize,
    };
    if LISTENERS.load(Ordering::Acquire) >= cfg.max_listeners
        || (per_channel > 0 && ch.mounts.listeners() >= per_channel)
    {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too-many-listeners",
            "Too many listeners",
            "this stream has as many listeners as it takes: try again shortly",
        )
        .retry_after(10)
        .into_response();
    }
    // Icecast offers ICY metadata for MP3 and AAC; Ogg carries its titles in the stream.
    let icy = format != Format::Opus
        && headers
            .get("icy-metadata")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().parse::<u32>().is_ok_and(|n| n > 0));
    let mut r = Response::new(Body::empty());
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::EXPIRES,
        HeaderValue::from_static("Mon, 26 Jul 1997 05:00:00 GMT"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    icy_headers(h, &app, &row, format, ch.as_ref());
    if icy {
        h.insert("icy-metaint", HeaderValue::from(ICY_METAINT as u64));
    }
    if method == Method::HEAD {
        return r;
    }
    // The kernel keeps at most this much for the listener beyond its queue, so one that stops
    // reading is found behind within a bounded number of bytes (and 10 000 listeners do not
    // each get a socket buffer autotuned to megabytes).
    let close = match closer {
        Some(axum::Extension(c)) => {
            c.limit_send_buffer(LISTENER_SEND_BUFFER);
            c.token()
        }
        None => CancellationToken::new(),
    };
    let reader = mount.listen(close);
    let body = Listener {
        reader,
        icy: icy.then(|| IcyWriter::new(ICY_METAINT)),
        mount: mount.clone(),
        _count: Counted::new(),
        _tuned: ch.audience.tune_in(
            headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok()),
        ),
    };
    let until = access.expires.map(|e| {
        let left = e.saturating_sub(util::now_secs());
        tokio::time::Instant::now() + Duration::from_secs(left)
    });
    *r.body_mut() = Body::from_stream(body.stream(until, access.revoked));
    r
}

/// Who may listen, and until when.
pub(super) struct Access {
    /// Unix seconds: the token's expiry.
    expires: Option<u64>,
    /// Cancelled when the listener token is revoked.
    revoked: Option<CancellationToken>,
}

impl Access {
    /// For as long as the listener stays.
    fn open() -> Access {
        Access {
            expires: None,
            revoked: None,
        }
    }
}

/// Listener tokens in use on this node, by id: revoking one ends its streams at once.
static IN_USE: std::sync::LazyLock<dashmap::DashMap<u128, CancellationToken>> =
    std::sync::LazyLock::new(dashmap::DashMap::new);

/// Ends this node's streams opened with listener token `id` (it was revoked).
pub(crate) fn revoked(id: uuid::Uuid) {
    if let Some((_, t)) = IN_USE.remove(&id.as_u128()) {
        t.cancel();
    }
}

/// Admits a listener of `row`'s mounts (or TS HLS). A public channel's are open. A private
/// channel's take a listener token (revocable, up to a year) or a playback token of the channel.
pub(super) async fn admit(
    app: &App,
    row: &store::Channel,
    token: Option<&str>,
) -> Result<Access, Response> {
    if row.public {
        return Ok(Access::open());
    }
    let now = util::now_secs();
    let tokens = &app.auth.tokens;
    if let Some(Scope::Listen(_)) = token.and_then(crate::auth::Tokens::scope_of) {
        let grant = tokens
            .verify(token, Scope::Listen(row.id), now)
            .map_err(forbidden)?;
        let id = uuid::Uuid::from_u128(grant.session);
        let stored = app
            .store
            .listen_token(id)
            .await
            .map_err(|e| Problem::from(e).into_response())?;
        return match stored {
            Some(t) if t.channel_id == row.id && t.revoked_at.is_none() => Ok(Access {
                expires: Some(grant.expires),
                revoked: Some(IN_USE.entry(grant.session).or_default().clone()),
            }),
            _ => Err(Problem::new(
                StatusCode::FORBIDDEN,
                "token-revoked",
                "Forbidden",
                "this listener token has been revoked",
            )
            .into_response()),
        };
    }
    let g = tokens
        .verify(token, Scope::Channel(row.id), now)
        .map_err(forbidden)?;
    Ok(Access {
        expires: Some(g.expires),
        revoked: None,
    })
}

/// Icecast's URL authentication (`listener_add`) of a listener without a token: a form POST
/// naming the mount (with the query, where paywalls put their credentials), the client's
/// address and user agent. A `200` with `icecast-auth-user: 1` admits; any other answer
/// refuses (403); none within 5 s is 503.
async fn url_auth(
    app: &App,
    url: &str,
    file: &str,
    uri: &Uri,
    headers: &HeaderMap,
    client: SocketAddr,
) -> Result<Access, Response> {
    static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let http = HTTP.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with default TLS")
    });
    let mount = match uri.query() {
        Some(q) => format!("/listen/{file}?{q}"),
        None => format!("/listen/{file}"),
    };
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let public = app.public_url.clone();
    let (server, port) = public
        .split_once("://")
        .map_or(public.as_str(), |(_, h)| h)
        .rsplit_once(':')
        .map_or((public.as_str(), "80"), |(h, p)| (h, p));
    let form = [
        ("action", "listener_add"),
        ("server", server),
        ("port", port),
        ("client", &client.port().to_string()),
        ("mount", &mount),
        ("user", ""),
        ("pass", ""),
        ("ip", &client.ip().to_string()),
        ("agent", agent),
    ];
    let r = match http.post(url).form(&form).send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "listener authentication failed");
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "listener-auth-unavailable",
                "Service Unavailable",
                "the station's listener authentication did not answer: try again shortly",
            )
            .retry_after(5)
            .into_response());
        }
    };
    let admitted = r.status() == StatusCode::OK
        && r.headers()
            .get("icecast-auth-user")
            .is_some_and(|v| v.as_bytes().trim_ascii() == b"1");
    if !admitted {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "listener-refused",
            "Forbidden",
            "the station's listener authentication refused this request",
        )
        .into_response());
    }
    Ok(Access::open())
}

/// The channel a mount name gives: its id, or its slug.
pub(super) async fn channel_row(app: &App, name: &str) -> Result<Option<store::Channel>, Response> {
    let found = match ChannelId::parse_canonical(name) {
        Some(id) => app.store.channel(id).await,
        None => app.store.channel_by_slug(name).await,
    };
    found.map_err(|e| Problem::from(e).into_response())
}

/// The running channel, a redirect to the node that runs it, or 404 when it is off the air.
pub(super) async fn running(app: &App, id: ChannelId, uri: &Uri) -> Result<Arc<Channel>, Response> {
    if let Some(ch) = app.live.running(id) {
        return Ok(ch);
    }
    Err(super::live::not_here(
        app,
        id,
        uri,
        format!("channel {id} is not on the air: no source is live and it has no auto-DJ"),
        10,
    )
    .await)
}

fn no_mount(file: &str) -> Response {
    Problem::not_found(format!(
        "no mount {file:?}: mounts are /listen/{{channel}}.mp3, .aac or .opus, and .m3u or .pls, where {{channel}} is a channel id or slug"
    ))
    .into_response()
}

/// The `icy-*` headers Icecast sends from the source's `ice-*` ones; here, from the channel.
fn icy_headers(h: &mut HeaderMap, app: &App, row: &store::Channel, f: Format, ch: &Channel) {
    let text = |s: &str| HeaderValue::from_str(&util::clean_text(s, 256)).ok();
    if let Some(v) = text(&row.title) {
        h.insert("icy-name", v);
    }
    if let Some(v) = text(&row.description) {
        h.insert("icy-description", v);
    }
    let genre = ch.status().source.and_then(|s| s.genre).unwrap_or_default();
    if let Some(v) = text(&genre) {
        h.insert("icy-genre", v);
    }
    if let Ok(v) = HeaderValue::from_str(&app.public_url) {
        h.insert("icy-url", v);
    }
    let kbps = match f {
        Format::Mp3 => ch.mounts.mp3_bitrate / 1000,
        Format::Aac => ch.rendition_kbps("aac-"),
        Format::Opus => ch.rendition_kbps("opus-"),
    };
    h.insert("icy-br", HeaderValue::from(kbps));
    h.insert(
        "icy-pub",
        HeaderValue::from_static(if row.public { "1" } else { "0" }),
    );
    h.insert(
        "ice-audio-info",
        HeaderValue::from_str(&format!(
            "ice-samplerate=48000;ice-bitrate={kbps};ice-channels=2"
        ))
        .expect("ASCII"),
    );
}

/// `.m3u` or `.pls`: the channel's mounts, for players that open playlist files.
fn playlist_file(
    app: &App,
    headers: &HeaderMap,
    row: &store::Channel,
    name: &str,
    token: Option<&str>,
    pls: bool,
) -> Response {
    let base = base_url(app, headers);
    let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
    let formats: Vec<Format> = Format::ALL
        .into_iter()
        .filter(|f| match app.live.running(row.id) {
            Some(ch) => ch.mounts.get(*f).is_some(),
            None => true,
        })
        .collect();
    let urls: Vec<String> = formats
        .iter()
        .map(|f| format!("{base}/listen/{name}.{}{query}", f.extension()))
        .collect();
    let title = util::clean_text(&row.title, 256).replace(['\r', '\n'], " ");
    let (body, content_type) = if pls {
        let mut s = String::from("[playlist]\n");
        for (i, u) in urls.iter().enumerate() {
            let n = i + 1;
            s += &format!("File{n}={u}\nTitle{n}={title}\nLength{n}=-1\n");
        }
        s += &format!("NumberOfEntries={}\nVersion=2\n", urls.len());
        (s, "audio/x-scpls")
    } else {
        let mut s = String::from("#EXTM3U\n");
        for u in &urls {
            s += &format!("#EXTINF:-1,{title}\n{u}\n");
        }
        (s, "audio/x-mpegurl")
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        body,
    )
        .into_response()
}

/// The URL players reach this server at: `server.public_url`, or the request's `Host`.
fn base_url(app: &App, headers: &HeaderMap) -> String {
    if !app.config.server.public_url.is_empty() {
        return app.config.public_url();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()));
    match host {
        Some(h) => format!("http://{h}"),
        None => app.public_url.clone(),
    }
}

/// Counts a progressive listener on this node while it lives.
struct Counted;

impl Counted {
    fn new() -> Counted {
        LISTENERS.fetch_add(1, Ordering::AcqRel);
        Counted
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        LISTENERS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One listener's response body.
struct Listener {
    reader: Reader,
    icy: Option<IcyWriter>,
    mount: Arc<crate::live::mount::Mount>,
    _count: Counted,
    /// Counted by player family in the channel's statistics while connected.
    _tuned: crate::live::audience::Tuned,
}

impl Listener {
    /// The body: the mount's bytes, with ICY blocks when asked, until the stream ends, the
    /// listener falls behind, or `until` (a token's expiry) passes.
    fn stream(
        self,
        until: Option<tokio::time::Instant>,
        revoked: Option<CancellationToken>,
    ) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
        let revoked = revoked.unwrap_or_default();
        futures::stream::unfold(self, move |mut l| {
            let revoked = revoked.clone();
            async move {
                let next = match until {
                    Some(at) => tokio::select! {
                        b = l.reader.next() => b,
                        _ = tokio::time::sleep_until(at) => None,
                        _ = revoked.cancelled() => None,
                    },
                    None => l.reader.next().await,
                }?;
                let out = match l.icy.as_mut() {
                    None => next,
                    Some(w) => {
                        let mount = l.mount.clone();
                        let mut out = Vec::with_capacity(next.len() + 64);
                        w.write(&next, &|| mount.title(), &mut out);
                        Bytes::from(out)
                    }
                };
                Some((Ok(out), l))
            }
        })
    }
}
