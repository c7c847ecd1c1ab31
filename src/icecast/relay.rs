//! Relays: a channel with a `relay_url` takes its live source from another server's stream (an
//! Icecast mount, say) instead of a source client. This is how a station moves over from an
//! existing Icecast server: point a channel at its mount, then move the encoder when ready.
//!
//! A relay is a source like any other: it goes live with a key no client has, so a local source
//! with the channel's key takes over only when the relay is not on time, and when the relay goes
//! down the auto-DJ (or silence, while anyone listens) takes over, by the rules of a source drop.
//! The remote stream is fetched with `Icy-MetaData: 1`; its ICY titles become now-playing. A
//! relay that fails, ends, stalls or sends garbage is fetched again after a backoff that doubles
//! from 1 s to 60 s (and starts over after a minute of good audio). Redirects are followed five
//! times at most.
//!
//! [`supervise`] keeps one relay task per channel that has a `relay_url` and does not run on
//! another node, reading the store every few seconds: setting, changing or removing a channel's
//! `relay_url` takes effect within that time.

use super::{pump, Admitted, Body, Ingest};
use crate::live::{GoLiveError, SourceInfo, StartError};
use crate::store::ChannelId;
use crate::util;
use dashmap::DashMap;
use futures::TryStreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the store is read for relay channels.
const EVERY: Duration = Duration::from_secs(3);
/// The first wait before fetching a failed relay again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A relay that played this long starts its backoff over.
const GOOD_RUN: Duration = Duration::from_secs(60);
/// The answer's head must come within this.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// The key hash a relay goes live with: no stream key hashes to it, so no client is ever taken
/// for the relay.
const RELAY_KEY: &str = "relay";

/// One relay task.
struct Task {
    url: String,
    stop: CancellationToken,
}

/// Keeps the relays of this node's channels running until shutdown.
pub async fn supervise(ingest: Arc<Ingest>, shutdown: CancellationToken) {
    let tasks: DashMap<ChannelId, Task> = DashMap::new();
    let http = match client() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client for relays; relays are off");
            return;
        }
    };
    loop {
        if let Ok(rows) = ingest.live.store.relay_channels().await {
            let mut wanted = std::collections::HashSet::new();
            for row in rows {
                let Some(url) = row.relay_url.clone() else {
                    continue;
                };
                let current = tasks.get(&row.id).map(|t| t.url == url);
                if current == Some(true) {
                    wanted.insert(row.id);
                    continue;
                }
                // Another node runs the channel: it relays it.
                if ingest.live.running(row.id).is_none()
                    && ingest.live.elsewhere(row.id).await.is_some()
                {
                    continue;
                }
                wanted.insert(row.id);
                if let Some((_, old)) = tasks.remove(&row.id) {
                    old.stop.cancel();
                }
                let stop = shutdown.child_token();
                tasks.insert(
                    row.id,
                    Task {
                        url: url.clone(),
                        stop: stop.clone(),
                    },
                );
                tokio::spawn(relay(ingest.clone(), http.clone(), row.id, url, stop));
            }
            tasks.retain(|id, t| {
                let keep = wanted.contains(id);
                if !keep {
                    t.stop.cancel();
                }
                keep
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.cancelled() => break,
        }
    }
}

fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::limited(5))
        .user_agent(concat!("veza-stream/", env!("CARGO_PKG_VERSION"), " relay"))
        .build()
}

/// Relays `url` into channel `id` until `stop`.
async fn relay(
    ingest: Arc<Ingest>,
    http: reqwest::Client,
    id: ChannelId,
    url: String,
    stop: CancellationToken,
) {
    let mut backoff = FIRST_BACKOFF;
    while !stop.is_cancelled() {
        let began = Instant::now();
        let outcome = once(&ingest, &http, id, &url, &stop).await;
        ingest
            .metrics
            .live_sources
            .with_label_values(&[outcome])
            .inc();
        tracing::info!(channel = %id, outcome, "relay ended");
        if began.elapsed() >= GOOD_RUN {
            backoff = FIRST_BACKOFF;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.cancelled() => break,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One fetch of the relayed stream, from the request to its end. Returns how it ended.
async fn once(
    ingest: &Ingest,
    http: &reqwest::Client,
    id: ChannelId,
    url: &str,
    stop: &CancellationToken,
) -> &'static str {
    // The channel as it is now (its title, its key, whether it still relays this URL).
    let row = match ingest.live.store.channel(id).await {
        Ok(Some(row)) if row.relay_url.as_deref() == Some(url) => row,
        Ok(_) => return "relay-gone",
        Err(_) => return "relay-store-failed",
    };
    let request = http.get(url).header("Icy-MetaData", "1").send();
    let response = tokio::select! {
        r = tokio::time::timeout(HEAD_TIMEOUT, request) => r,
        _ = stop.cancelled() => return "relay-stopped",
    };
    let response = match response {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::info!(channel = %id, error = %e, "the relayed stream could not be fetched");
            return "relay-failed";
        }
        Err(_) => return "relay-stalled",
    };
    if response.status() != reqwest::StatusCode::OK {
        tracing::info!(channel = %id, status = %response.status(), "the relayed stream was refused");
        return "relay-refused";
    }
    let h = response.headers();
    let text = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| util::clean_text(v, 256))
            .filter(|v| !v.is_empty())
    };
    let content_type = text("content-type").unwrap_or_default();
    let Some(format) = super::head::format_of(&content_type) else {
        tracing::info!(channel = %id, %content_type, "the relayed stream is not audio we decode");
        return "relay-content-type";
    };
    let icy = text("icy-metaint")
        .and_then(|m| m.parse::<usize>().ok())
        .filter(|&m| m > 0 && m <= 1 << 20)
        .map(veza_hls::IcyReader::new);
    let info = SourceInfo {
        client: "relay".into(),
        codec: content_type.clone(),
        bitrate: 0,
        connected_at: util::rfc3339(util::now_ms()),
        name: text("icy-name"),
        description: text("icy-description"),
        genre: text("icy-genre"),
        public: text("icy-pub").map(|p| p == "1"),
    };
    // Nothing goes on the air before the first bytes: an origin that stalls after its head
    // never takes the channel.
    let mut body = response.bytes_stream().map_err(std::io::Error::other);
    let first = tokio::select! {
        b = tokio::time::timeout(ingest.source_timeout, body.try_next()) => match b {
            Ok(Ok(Some(b))) => b.to_vec(),
            Ok(_) => return "relay-ended",
            Err(_) => return "relay-stalled",
        },
        _ = stop.cancelled() => return "relay-stopped",
    };
    let (channel, (source, pcm, drop)) = match ingest.live.go_live(&row, RELAY_KEY, info).await {
        Ok(a) => a,
        Err(GoLiveError::Busy) => return "relay-busy",
        Err(GoLiveError::Start(StartError::Elsewhere(_))) => return "relay-elsewhere",
        Err(_) => return "relay-failed",
    };
    tracing::info!(channel = %id, format, "relay connected");
    // The relay's own stop ends its source too.
    let ended = drop.clone();
    let stopping = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = stopping.cancelled() => ended.cancel(),
            _ = ended.cancelled() => {}
        }
    });
    let mut reader = tokio_util::io::StreamReader::new(body);
    let a = Admitted {
        channel,
        source,
        pcm,
        drop,
        format,
    };
    let how = Body {
        chunked: false,
        icy,
    };
    match pump(ingest, &mut reader, how, a, first).await {
        "ended" => "relay-ended",
        "stalled" => "relay-stalled",
        "garbage" => "relay-garbage",
        "dropped" => "relay-dropped",
        _ => "relay-closed",
    }
}
