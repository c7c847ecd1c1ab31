//! `icecast`: the Icecast source protocol on `/ingest/{channel}`. [`sniff`] tells the accept
//! loop which connections are sources; [`serve`] then owns the connection: it reads the head,
//! authenticates `source:<stream key>`, starts the channel here (or refuses with 409 naming the
//! node that runs it), answers as Icecast 2.4 does, and decodes the body into the channel until
//! the source closes, stalls or is dropped.
//!
//! Statuses follow Icecast 2.4: 401 with `WWW-Authenticate` for a wrong key, 403 for a missing
//! or unsupported content type and for a mount already in use. Every refusal carries an RFC 9457
//! problem document.

pub mod head;
pub mod relay;

pub use head::sniff;

use crate::auth::Auth;
use crate::live::Live;
use crate::live::{
    key_hash, Admission, GoLiveError, KeyRefused, SourceInfo, StartError, ToStereo48,
};
use crate::metrics::Metrics;
use crate::store::ChannelId;
use crate::util;
use head::{Dechunk, Head, HeadError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use veza_codecs::{Limits, OggTitles, PushDecoder, Tags};

/// Bytes a source may send without any of them decoding before it counts as sustained garbage:
/// 8 s at 128 kb/s, and well past a decoder's probe (16 KiB) and reserve (up to 68 KiB).
const GARBAGE_BYTES: usize = 128 << 10;

/// Bytes handed to a source's decoder at a time.
const DECODE_PIECE: usize = 2 << 10;

/// The now-playing line of a title and an artist, as Icecast shows it: `Artist - Title`, or
/// whichever of the two is given.
pub fn song(artist: Option<&str>, title: Option<&str>) -> Option<String> {
    let artist = artist.map(str::trim).filter(|a| !a.is_empty());
    let title = title.map(str::trim).filter(|t| !t.is_empty());
    match (artist, title) {
        (Some(a), Some(t)) => Some(format!("{a} - {t}")),
        (None, Some(x)) | (Some(x), None) => Some(x.to_string()),
        (None, None) => None,
    }
}

/// A refusal: status, reason phrase, problem type, detail and extra headers.
struct Refusal {
    status: u16,
    reason: &'static str,
    kind: &'static str,
    detail: String,
    headers: Vec<(&'static str, String)>,
}

impl Refusal {
    fn new(
        status: u16,
        reason: &'static str,
        kind: &'static str,
        detail: impl Into<String>,
    ) -> Refusal {
        Refusal {
            status,
            reason,
            kind,
            detail: detail.into(),
            headers: Vec::new(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let body = util::problem_json(self.kind, self.reason, self.status, &self.detail);
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nServer: veza-stream\r\nContent-Type: application/problem+json\r\nContent-Length: {}\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: strict-origin-when-cross-origin\r\nConnection: close\r\n",
            self.status,
            self.reason,
            body.len()
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(body.as_bytes());
        out
    }
}

/// What the Icecast source port needs: the live channels sources go live on, the stream-key
/// failure limits, the metrics, and how long a source may send nothing.
pub struct Ingest {
    /// This node's live channels.
    pub live: Arc<Live>,
    /// The rate limiters (`limits.stream_key_failures_per_minute`).
    pub auth: Arc<Auth>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// `live.source_timeout_seconds`.
    pub source_timeout: Duration,
}

/// Serves one source connection to its end.
/// The connection is plain TCP or TLS over it.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(app: Arc<Ingest>, tcp: S, addr: SocketAddr) {
    // A source's connection is one trace: connecting, taking over, dropping.
    let span = tracing::info_span!(
        "live source",
        otel.name = "live source",
        otel.kind = "server",
        client.address = %addr.ip(),
    );
    tracing::Instrument::instrument(source(app, tcp, addr), span).await
}

async fn source<S: AsyncRead + AsyncWrite + Unpin>(app: Arc<Ingest>, mut tcp: S, addr: SocketAddr) {
    let timeout = app.source_timeout;
    let mut buf = Vec::with_capacity(4096);
    let head = match read_head(&mut tcp, &mut buf, timeout).await {
        Ok(h) => h,
        Err(r) => {
            app.metrics
                .live_sources
                .with_label_values(&["refused"])
                .inc();
            let _ = tcp.write_all(&r.bytes()).await;
            return;
        }
    };
    let body_start = buf.split_off(head.len);
    let outcome = match admit(&app, &head, addr).await {
        Ok(admitted) => run(&app, &mut tcp, head, admitted, body_start, addr).await,
        Err(r) => {
            let _ = tcp.write_all(&r.bytes()).await;
            "refused"
        }
    };
    app.metrics.live_sources.with_label_values(&[outcome]).inc();
    let _ = tcp.shutdown().await;
}

async fn read_head<S: AsyncRead + Unpin>(
    tcp: &mut S,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Result<Head, Refusal> {
    let deadline = Instant::now() + timeout;
    loop {
        match head::parse(buf) {
            Ok(h) => return Ok(h),
            Err(HeadError::Incomplete) => {}
            Err(HeadError::TooLarge) => {
                return Err(Refusal::new(
                    431,
                    "Request Header Fields Too Large",
                    "head-too-large",
                    "the request head is over 16 KiB",
                ))
            }
            Err(HeadError::TooManyFields) => {
                return Err(Refusal::new(
                    431,
                    "Request Header Fields Too Large",
                    "head-too-large",
                    format!(
                        "the request head has over {} header fields",
                        head::MAX_FIELDS
                    ),
                ))
            }
            Err(HeadError::Malformed(why)) => {
                return Err(Refusal::new(400, "Bad Request", "bad-request", why))
            }
            Err(HeadError::Method) => {
                let mut r = Refusal::new(
                    405,
                    "Method Not Allowed",
                    "method-not-allowed",
                    "a source sends PUT or SOURCE",
                );
                r.headers.push(("Allow", "PUT, SOURCE".into()));
                return Err(r);
            }
            Err(HeadError::NotFound) => {
                return Err(Refusal::new(
                    404,
                    "Not Found",
                    "not-found",
                    "sources go to /ingest/{channel_id}",
                ))
            }
        }
        let mut chunk = [0u8; 2048];
        let n = match tokio::time::timeout_at(deadline.into(), tcp.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Err(Refusal::new(
                    400,
                    "Bad Request",
                    "bad-request",
                    "the connection closed in the head",
                ))
            }
            Ok(Ok(n)) => n,
            Err(_) => {
                return Err(Refusal::new(
                    408,
                    "Request Timeout",
                    "timeout",
                    "the request head did not arrive in time",
                ))
            }
        };
        buf.extend_from_slice(&chunk[..n]);
    }
}

struct Admitted {
    channel: Arc<crate::live::Channel>,
    source: u64,
    pcm: tokio::sync::mpsc::Sender<crate::live::Pcm48>,
    drop: tokio_util::sync::CancellationToken,
    format: &'static str,
}

fn unauthorized(detail: &str) -> Refusal {
    let mut r = Refusal::new(401, "Unauthorized", "unauthorized", detail);
    r.headers
        .push(("WWW-Authenticate", "Basic realm=\"Icecast2 Server\"".into()));
    r
}

async fn admit(app: &Ingest, head: &Head, addr: SocketAddr) -> Result<Admitted, Refusal> {
    let Some(id) = ChannelId::parse_canonical(&head.channel) else {
        return Err(Refusal::new(
            404,
            "Not Found",
            "not-found",
            "no such channel",
        ));
    };
    let Some((_, key)) = head
        .credentials
        .as_ref()
        .filter(|(user, _)| user == "source")
    else {
        return Err(unauthorized("send Basic credentials source:<stream key>"));
    };
    let row = match app
        .live
        .check_key(&app.auth.limits, id, key, addr.ip(), "icecast")
        .await
    {
        Ok(row) => row,
        Err(Admission::NoChannel) => {
            return Err(Refusal::new(
                404,
                "Not Found",
                "not-found",
                "no such channel",
            ))
        }
        Err(Admission::Store(e)) => {
            return Err(Refusal::new(
                503,
                "Service Unavailable",
                "unavailable",
                format!("the metadata store failed: {e}"),
            ))
        }
        Err(Admission::Key(KeyRefused::Wrong)) => {
            return Err(unauthorized("the stream key is wrong or was rotated"))
        }
        Err(Admission::Key(KeyRefused::Blocked(left))) => {
            let mut r = Refusal::new(
                429,
                "Too Many Requests",
                "too-many-key-failures",
                "this address sent too many wrong stream keys; try again later",
            );
            r.headers
                .push(("Retry-After", left.as_secs().max(1).to_string()));
            return Err(r);
        }
    };
    let format = match head.content_type.as_deref() {
        None => return Err(Refusal::new(403, "Forbidden", "content-type", "No Content-type given")),
        Some(t) => head::format_of(t).ok_or_else(|| {
            Refusal::new(403, "Forbidden", "content-type", format!("Content-type not supported: {t} (send audio/mpeg, audio/aac, application/ogg or audio/flac)"))
        })?,
    };
    let info = SourceInfo {
        client: if head.user_agent.is_empty() {
            "unknown".into()
        } else {
            head.user_agent.clone()
        },
        codec: head.content_type.clone().unwrap_or_default(),
        bitrate: 0,
        connected_at: util::rfc3339(util::now_ms()),
        name: head.ice.name.clone(),
        description: head.ice.description.clone(),
        genre: head.ice.genre.clone(),
        public: head.ice.public,
    };
    let (channel, (source, pcm, drop)) = app
        .live
        .go_live(&row, &key_hash(key), info)
        .await
        .map_err(|e| match e {
            GoLiveError::Start(StartError::Elsewhere(lease)) => {
                let mut r = Refusal::new(
                    409,
                    "Conflict",
                    "channel-elsewhere",
                    format!(
                        "channel {id} is live on node {} at {}; send the source there",
                        lease.node, lease.url
                    ),
                );
                r.headers.push((
                    "Location",
                    format!("{}{}", lease.url, crate::layout::channel_ingest(id)),
                ));
                r
            }
            GoLiveError::Start(StartError::Failed(e)) => Refusal::new(
                503,
                "Service Unavailable",
                "unavailable",
                format!("the channel could not start: {e}"),
            ),
            GoLiveError::Busy => Refusal::new(
                403,
                "Forbidden",
                "mountpoint-in-use",
                "Mountpoint in use: another source is live on this channel",
            ),
            GoLiveError::Restarting => Refusal::new(
                503,
                "Service Unavailable",
                "unavailable",
                "the channel is restarting; try again",
            ),
        })?;
    Ok(Admitted {
        channel,
        source,
        pcm,
        drop,
        format,
    })
}

/// Answers the source, then reads its body until the end. Returns how it ended.
async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    app: &Ingest,
    tcp: &mut S,
    head: Head,
    a: Admitted,
    first: Vec<u8>,
    addr: SocketAddr,
) -> &'static str {
    let mut greeting = Vec::new();
    if head.expect_continue {
        greeting.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    greeting
        .extend_from_slice(b"HTTP/1.0 200 OK\r\nServer: veza-stream\r\nConnection: close\r\n\r\n");
    if tcp.write_all(&greeting).await.is_err() {
        a.channel.detach(a.source);
        return "closed";
    }
    tracing::info!(channel = %a.channel.id, %addr, client = %head.user_agent, format = a.format, "source connected");
    let how = Body {
        chunked: head.chunked,
        icy: None,
    };
    let outcome = pump(app, tcp, how, a, first).await;
    tracing::info!(%addr, outcome, "source disconnected");
    outcome
}

/// How a source's body reaches us.
struct Body {
    /// In HTTP/1.1 chunks.
    chunked: bool,
    /// With ICY metadata blocks between its bytes (a relayed stream), whose titles become the
    /// source's.
    icy: Option<veza_hls::IcyReader>,
}

/// Reads a source's body until the end, handing it to a decoding thread. Returns how it ended.
async fn pump<S: AsyncRead + Unpin>(
    app: &Ingest,
    tcp: &mut S,
    how: Body,
    a: Admitted,
    first: Vec<u8>,
) -> &'static str {
    let timeout = app.source_timeout;
    // One read waits while the decoder works on the last: with the engine taking PCM only as
    // fast as it plays, a source sending ahead of real time is held back through TCP.
    let (bytes_tx, bytes_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let decoding = {
        let pcm = a.pcm.clone();
        let drop = a.drop.clone();
        let metrics = app.metrics.clone();
        let format = a.format;
        let channel = a.channel.clone();
        let source = a.source;
        let on_tags = move |t: Tags| {
            if let Some(song) = song(t.artist.as_deref(), t.title.as_deref()) {
                channel.set_source_title(source, song);
            }
        };
        std::thread::Builder::new()
            .name("icecast-decode".into())
            .spawn(move || decode(bytes_rx, pcm, drop, metrics, format, on_tags))
    };
    let decoding = match decoding {
        Ok(d) => d,
        Err(_) => {
            a.channel.detach(a.source);
            return "refused";
        }
    };
    let mut dechunk = how.chunked.then(Dechunk::default);
    let mut icy = how.icy;
    let mut window_start = Instant::now();
    let mut window_bytes = 0u64;
    let mut pending = first;
    let mut chunk = vec![0u8; 16 << 10];
    let outcome = 'read: loop {
        if !pending.is_empty() {
            let bytes = match dechunk.as_mut() {
                Some(d) => {
                    let mut out = Vec::with_capacity(pending.len());
                    if d.push(&pending, &mut out).is_err() {
                        break 'read "garbage";
                    }
                    pending.clear();
                    out
                }
                None => std::mem::take(&mut pending),
            };
            window_bytes += bytes.len() as u64;
            let bytes = match icy.as_mut() {
                Some(reader) => {
                    let mut audio = Vec::with_capacity(bytes.len());
                    for title in reader.push(&bytes, &mut audio) {
                        a.channel.set_source_title(a.source, title);
                    }
                    audio
                }
                None => bytes,
            };
            tokio::select! {
                sent = bytes_tx.send(bytes) => if sent.is_err() { break 'read "garbage" },
                _ = a.drop.cancelled() => break 'read "dropped",
            }
            if dechunk.as_ref().is_some_and(Dechunk::done) {
                break 'read "ended";
            }
        }
        if window_start.elapsed() >= Duration::from_secs(2) {
            let ms = window_start.elapsed().as_millis().max(1) as u64;
            a.channel.set_bitrate(window_bytes * 8 * 1000 / ms);
            window_start = Instant::now();
            window_bytes = 0;
        }
        tokio::select! {
            r = tokio::time::timeout(timeout, tcp.read(&mut chunk)) => match r {
                Ok(Ok(0)) => break 'read "ended",
                Ok(Ok(n)) => pending.extend_from_slice(&chunk[..n]),
                Ok(Err(_)) => break 'read "closed",
                Err(_) => break 'read "stalled",
            },
            _ = a.drop.cancelled() => break 'read "dropped",
        }
    };
    drop(bytes_tx);
    if outcome != "ended" {
        a.drop.cancel();
    }
    // The slot is free at once: what the source sent before it ended plays out, unless a new
    // source connects first.
    a.channel.detach(a.source);
    let _ = tokio::task::spawn_blocking(move || decoding.join()).await;
    outcome
}

/// The decoding thread of one source: bytes in, stereo 48 kHz PCM out to the engine. A decoder
/// that fails on damaged bytes is replaced by a fresh one, which resyncs on the next frame it
/// recognises; each failure is counted. An Ogg source's in-band titles (the comment header of
/// each link of a chained stream) go to `on_tags`.
fn decode(
    mut bytes: tokio::sync::mpsc::Receiver<Vec<u8>>,
    pcm: tokio::sync::mpsc::Sender<crate::live::Pcm48>,
    drop: tokio_util::sync::CancellationToken,
    metrics: Arc<crate::metrics::Metrics>,
    format: &'static str,
    on_tags: impl Fn(Tags),
) {
    let mut titles = (format == "ogg").then(OggTitles::new);
    let mut undecoded = 0usize;
    let mut decoder = PushDecoder::new(Some(format), Limits::default());
    let mut convert = ToStereo48::default();
    let send = |pieces: Vec<veza_codecs::Pcm>, convert: &mut ToStereo48| -> bool {
        for p in pieces {
            let stereo = match convert.push(p) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "a source's PCM could not be converted; dropping it");
                    return false;
                }
            };
            if stereo[0].is_empty() {
                continue;
            }
            if drop.is_cancelled() || pcm.blocking_send(stereo).is_err() {
                return false;
            }
        }
        true
    };
    // Decoded in small pieces, so that what one push decodes stays short whatever the bitrate
    // (2 KiB is 2 s at 8 kb/s): the engine takes PCM only as fast as it plays it, and this
    // thread waits on it with at most that much in hand.
    while let Some(chunk) = bytes.blocking_recv() {
        for b in chunk.chunks(DECODE_PIECE) {
            undecoded += b.len();
            if let Some(t) = titles.as_mut() {
                t.push(b).into_iter().for_each(&on_tags);
            }
            let pieces = match decoder.push(b) {
                Ok(p) => p,
                Err(e) => {
                    metrics.live_source_damage.inc();
                    tracing::debug!(error = %e, "source damage; resyncing");
                    decoder = PushDecoder::new(Some(format), Limits::default());
                    Vec::new()
                }
            };
            if pieces.iter().any(|p| p.frames() > 0) {
                undecoded = 0;
            } else if undecoded > GARBAGE_BYTES {
                tracing::info!(
                    bytes = undecoded,
                    "a source sends bytes that do not decode; dropping it"
                );
                return;
            }
            if !send(pieces, &mut convert) {
                return;
            }
        }
    }
    if drop.is_cancelled() {
        return;
    }
    // The source ended cleanly: what the decoder and resampler still hold plays out.
    if let Ok(rest) = decoder.finish() {
        send(rest, &mut convert);
    }
    if let Ok(tail) = convert.flush() {
        let _ = pcm.blocking_send(tail);
    }
}
