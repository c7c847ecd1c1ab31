//! What the channel routes take and give, and the checks they share.

use super::super::fields::{check_description, check_title, etag, Visibility};
use crate::app::App;
use crate::auth::{Identity, Role};
use crate::http::access::authenticate;
use crate::http::problem::Problem;
use crate::live::{Listeners, NowPlaying, SourceInfo, State};
use crate::rendition::Rendition;
use crate::store::{Channel, ChannelId, InterstitialDoc, PlaylistId, StationSettings};
use crate::util::rfc3339;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/channels`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    /// 1 to 200 characters.
    pub title: String,
    /// Up to 5 000 characters.
    #[serde(default)]
    pub description: String,
    /// Default private.
    pub visibility: Option<Visibility>,
    /// The auto-DJ playlist: played when no source is live.
    pub playlist_id: Option<String>,
    /// Shuffle the auto-DJ (default false: in order).
    #[serde(default)]
    pub shuffle: bool,
    /// Renditions encoded once each: `opus-32` … `opus-510`, `aac-32` … `aac-320`. Default
    /// `live.renditions` (AAC-LC 128 kb/s and Opus 128 kb/s).
    pub renditions: Option<Vec<String>>,
    /// A unique name for its mounts (`/listen/{slug}.mp3`): 3 to 64 of `a-z`, `0-9` and `-`,
    /// not starting or ending with `-`.
    pub slug: Option<String>,
    /// The MP3 mount's bitrate, kb/s (32 … 320); default `live.mp3_bitrate_kbps`.
    pub mp3_kbps: Option<u32>,
    /// Progressive listeners at once; default `live.max_listeners_per_channel`.
    pub max_listeners: Option<u32>,
    /// Another server's stream (an Icecast mount, `http(s)://…`) to relay as the live source.
    pub relay_url: Option<String>,
    /// Crossfade between the auto-DJ's items, 0 to 12 seconds (default 0: gapless).
    pub crossfade_seconds: Option<f64>,
    /// Leading and trailing silence of tracks quieter than this (-90 to -20 dBFS, default -50)
    /// is skipped; `null` keeps it.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<f64>)]
    pub silence_threshold_dbfs: Option<Option<f64>>,
    /// Record every live source session and publish it as a track (default false).
    pub record_live: Option<bool>,
    /// The channel's jingles and station IDs.
    pub interstitial: Option<InterstitialDoc>,
}

/// `PATCH /v1/channels/{id}`: the fields to change. `playlist_id: null` removes the auto-DJ.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    /// 1 to 200 characters.
    pub title: Option<String>,
    /// Up to 5 000 characters.
    pub description: Option<String>,
    /// Public or private.
    pub visibility: Option<Visibility>,
    /// The auto-DJ playlist; `null` for none.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    pub playlist_id: Option<Option<String>>,
    /// Shuffle the auto-DJ.
    pub shuffle: Option<bool>,
    /// Renditions.
    pub renditions: Option<Vec<String>>,
    /// The slug; `null` removes it.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    pub slug: Option<Option<String>>,
    /// The MP3 mount's bitrate, kb/s; 0 for the server's.
    pub mp3_kbps: Option<u32>,
    /// Progressive listeners at once; 0 for the server's cap.
    pub max_listeners: Option<u32>,
    /// The stream to relay; `null` stops relaying.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>)]
    pub relay_url: Option<Option<String>>,
    /// Crossfade between the auto-DJ's items, 0 to 12 seconds.
    pub crossfade_seconds: Option<f64>,
    /// Silence threshold, -90 to -20 dBFS; `null` keeps silence.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<f64>)]
    pub silence_threshold_dbfs: Option<Option<f64>>,
    /// Record live shows.
    pub record_live: Option<bool>,
    /// The channel's jingles; `null` for none.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<InterstitialDoc>)]
    pub interstitial: Option<Option<InterstitialDoc>>,
}

fn some<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Applies the station fields of a create or a patch to `s`, checking each.
pub(crate) async fn check_station(
    app: &App,
    who: &Identity,
    s: &mut StationSettings,
    crossfade: Option<f64>,
    threshold: Option<Option<f64>>,
    record: Option<bool>,
    interstitial: Option<Option<InterstitialDoc>>,
) -> Result<(), Problem> {
    if let Some(x) = crossfade {
        if !(0.0..=12.0).contains(&x) {
            return Err(Problem::unprocessable(
                "invalid-field",
                "crossfade_seconds takes 0 to 12",
            ));
        }
        s.crossfade_seconds = x;
    }
    if let Some(t) = threshold {
        if t.is_some_and(|t| !(-90.0..=-20.0).contains(&t)) {
            return Err(Problem::unprocessable(
                "invalid-field",
                "silence_threshold_dbfs takes -90 to -20, or null",
            ));
        }
        s.silence_threshold_dbfs = t;
    }
    if let Some(r) = record {
        s.record_live = r;
    }
    if let Some(i) = interstitial {
        if let Some(doc) = &i {
            doc.parse("interstitial")
                .map_err(|e| Problem::unprocessable("invalid-field", e.to_string()))?;
            check_playlist(app, who, Some(&doc.playlist_id)).await?;
        }
        s.interstitial = i;
    }
    Ok(())
}

/// A connected source.
#[derive(Serialize, ToSchema)]
pub struct SourceView {
    /// Its `User-Agent`.
    pub client: String,
    /// Its content type.
    pub codec: String,
    /// Measured bits per second.
    pub bitrate: u64,
    /// RFC 3339.
    pub connected_at: String,
    /// `ice-name`.
    pub name: Option<String>,
    /// `ice-description`.
    pub description: Option<String>,
    /// `ice-genre`.
    pub genre: Option<String>,
    /// `ice-public`.
    pub public: Option<bool>,
}

impl From<SourceInfo> for SourceView {
    fn from(s: SourceInfo) -> SourceView {
        SourceView {
            client: s.client,
            codec: s.codec,
            bitrate: s.bitrate,
            connected_at: s.connected_at,
            name: s.name,
            description: s.description,
            genre: s.genre,
            public: s.public,
        }
    }
}

/// What plays now.
#[derive(Serialize, ToSchema)]
pub struct NowPlayingView {
    /// The title.
    pub title: String,
    /// The auto-DJ track.
    pub track_id: Option<String>,
    /// `track`, `event`, `interstitial` or `live`.
    #[schema(value_type = String)]
    pub kind: crate::live::station::Kind,
    /// RFC 3339.
    pub since: String,
}

impl From<NowPlaying> for NowPlayingView {
    fn from(n: NowPlaying) -> NowPlayingView {
        NowPlayingView {
            title: n.title,
            track_id: n.track_id.map(|t| t.to_string()),
            kind: n.kind,
            since: n.since,
        }
    }
}

/// Listener counts by protocol.
#[derive(Serialize, ToSchema, Default)]
pub struct ListenersView {
    /// LL-HLS sessions seen recently.
    pub hls: u64,
    /// WebRTC sessions.
    pub webrtc: u64,
    /// Listeners of the MP3 mount (`/listen/{channel}.mp3`).
    pub mp3: u64,
    /// Listeners of the AAC mount.
    pub aac: u64,
    /// Listeners of the Ogg Opus mount.
    pub opus: u64,
}

impl From<Listeners> for ListenersView {
    fn from(l: Listeners) -> ListenersView {
        ListenersView {
            hls: l.hls,
            webrtc: l.webrtc,
            mp3: l.mp3,
            aac: l.aac,
            opus: l.opus,
        }
    }
}

/// A channel with its live state.
#[derive(Serialize, ToSchema)]
pub struct ChannelView {
    /// Channel id.
    pub id: String,
    /// Owner's subject.
    pub owner: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Public or private.
    pub visibility: Visibility,
    /// The auto-DJ playlist.
    pub playlist_id: Option<String>,
    /// Whether the auto-DJ shuffles.
    pub shuffle: bool,
    /// Renditions.
    pub renditions: Vec<String>,
    /// Where an Icecast source sends (`icecast://source:<stream_key>@host:port/ingest/{id}`).
    pub ingest_url: String,
    /// The slug its mounts may be named by.
    pub slug: Option<String>,
    /// The MP3 mount's bitrate, kb/s (0: the server's, `live.mp3_bitrate_kbps`).
    pub mp3_kbps: u32,
    /// Progressive listeners at once (0: the server's cap).
    pub max_listeners: u32,
    /// The stream it relays as its live source (a password in it is not shown).
    pub relay_url: Option<String>,
    /// Crossfade between the auto-DJ's items, seconds.
    pub crossfade_seconds: f64,
    /// Silence quieter than this is skipped at tracks' edges (`null`: kept).
    pub silence_threshold_dbfs: Option<f64>,
    /// Whether live shows are recorded.
    pub record_live: bool,
    /// The channel's jingles.
    pub interstitial: Option<InterstitialDoc>,
    /// Its Icecast-style mounts by format (`mp3`, `aac`, `opus`, and the `m3u` and `pls`
    /// playlist files): permanent URLs for a public channel; a private one's need `?token=`.
    #[schema(value_type = Object)]
    pub mounts: serde_json::Map<String, serde_json::Value>,
    /// The stream key: only in the answers to create and rotate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_key: Option<String>,
    /// `offline`, `live` or `autodj`.
    #[schema(value_type = String)]
    pub state: State,
    /// The live source.
    pub source: Option<SourceView>,
    /// What plays now.
    pub now_playing: Option<NowPlayingView>,
    /// Listeners by protocol.
    pub listeners: ListenersView,
    /// When it went on air, RFC 3339.
    pub started_at: Option<String>,
    /// The public URL of the node that runs it, when another node does.
    pub node_url: Option<String>,
    /// Bumped by every change.
    pub version: i64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A page of channels.
#[derive(Serialize, ToSchema)]
pub struct ChannelPage {
    /// Newest first.
    pub items: Vec<ChannelView>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// A rotated stream key.
#[derive(Serialize, ToSchema)]
pub struct StreamKey {
    /// The new key: shown once.
    pub stream_key: String,
    /// Where sources send.
    pub ingest_url: String,
}

/// Signed live playback URLs.
#[derive(Serialize, ToSchema)]
pub struct ChannelPlayback {
    /// The multivariant playlist of every rendition.
    pub master_url: String,
    /// One multivariant playlist per codec family (`aac`, `opus`).
    #[schema(value_type = Object)]
    pub masters: serde_json::Map<String, serde_json::Value>,
    /// The channel-scoped playback token written into every URL.
    pub token: String,
    /// The WHEP endpoint (WebRTC playback; send the token as `Authorization: Bearer`), when the
    /// channel has an Opus rendition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whep_url: Option<String>,
    /// RFC 3339.
    pub expires_at: String,
}

pub(crate) fn parse_id(id: &str) -> Result<ChannelId, Problem> {
    ChannelId::parse_canonical(id).ok_or_else(|| Problem::not_found(format!("no channel {id}")))
}

/// The channel's view, with its live state: this node's, or what the node running it last wrote
/// with its lease.
pub(crate) async fn view(app: &App, c: &Channel, stream_key: Option<String>) -> ChannelView {
    let (status, listeners, node_url) = match app.live.running(c.id) {
        Some(ch) => (
            Some(ch.status()),
            ch.listeners(app.live.listener_idle),
            None,
        ),
        None => match app.live.remote(c.id).await {
            Some((Some(r), url)) => (Some(r.status), r.listeners, Some(url)),
            Some((None, url)) => (None, Listeners::default(), Some(url)),
            None => (None, Listeners::default(), None),
        },
    };
    let status = status.unwrap_or(crate::live::Status {
        state: State::Offline,
        source: None,
        now_playing: None,
        started_at: None,
    });
    ChannelView {
        id: c.id.to_string(),
        owner: c.owner.clone(),
        title: c.title.clone(),
        description: c.description.clone(),
        visibility: Visibility::of(c.public),
        playlist_id: c.playlist_id.map(|p| p.to_string()),
        shuffle: c.shuffle,
        renditions: renditions_of(app, c),
        ingest_url: format!("{}{}", app.ingest_url, crate::layout::channel_ingest(c.id)),
        slug: c.slug.clone(),
        mp3_kbps: c.mp3_kbps,
        max_listeners: c.max_listeners,
        relay_url: c.relay_url.as_deref().map(without_password),
        crossfade_seconds: c.station.crossfade_seconds,
        silence_threshold_dbfs: c.station.silence_threshold_dbfs,
        record_live: c.station.record_live,
        interstitial: c.station.interstitial.clone(),
        mounts: mount_urls(app, c),
        stream_key,
        state: status.state,
        source: status.source.map(SourceView::from),
        now_playing: status.now_playing.map(NowPlayingView::from),
        listeners: listeners.into(),
        started_at: status.started_at,
        node_url,
        version: c.version,
        created_at: rfc3339(c.created_at),
        updated_at: rfc3339(c.updated_at),
    }
}

/// The renditions a channel encodes.
pub(crate) fn renditions_of(app: &App, c: &Channel) -> Vec<String> {
    if c.renditions.is_empty() {
        app.config.live.renditions.clone()
    } else {
        c.renditions.clone()
    }
}

/// A JSON answer with the channel's `ETag`.
pub(crate) fn answer(status: StatusCode, v: ChannelView, location: bool) -> Response {
    let tag = etag(v.version);
    let loc = crate::layout::channel_api(v.id.parse().unwrap_or_default());
    let mut r = (status, Json(v)).into_response();
    if let Ok(t) = HeaderValue::from_str(&tag) {
        r.headers_mut().insert(header::ETAG, t);
    }
    if location {
        if let Ok(l) = HeaderValue::from_str(&loc) {
            r.headers_mut().insert(header::LOCATION, l);
        }
    }
    r
}

/// A channel the caller may see: its own, a public one, or any for an admin. 404 otherwise.
pub(crate) async fn visible(app: &App, who: &Identity, id: &str) -> Result<Channel, Problem> {
    let id = parse_id(id)?;
    match app.store.channel(id).await? {
        Some(c) if c.public || who.role == Role::Admin || who.subject == c.owner => Ok(c),
        _ => Err(Problem::not_found(format!("no channel {id}"))),
    }
}

/// A channel the caller may change, checked against `If-Match` when sent.
pub(crate) async fn writable(
    app: &App,
    headers: &HeaderMap,
    id: &str,
) -> Result<(Identity, Channel), Problem> {
    let who = authenticate(app, headers).await?;
    let c = visible(app, &who, id).await?;
    if !who.manages(&c.owner) {
        return Err(Problem::forbidden(format!(
            "channel {} belongs to {}",
            c.id, c.owner
        )));
    }
    if let Some(want) = headers.get(header::IF_MATCH) {
        if want.to_str().ok() != Some(etag(c.version).as_str()) && want != "*" {
            return Err(Problem::precondition_failed(format!(
                "channel {} is at version {}; fetch it again",
                c.id, c.version
            )));
        }
    }
    Ok((who, c))
}

/// Stores `c` as the next version of `old` (412 when another change came first), wakes the
/// event dispatcher for the `channel.updated` it records, and applies the change to the channel
/// on air ([`crate::live::Live::channel_changed`]).
pub(crate) async fn save(app: &App, old: &Channel, mut c: Channel) -> Result<Channel, Problem> {
    let now = crate::util::now_ms();
    c.version = old.version + 1;
    c.updated_at = now;
    if !app.store.update_channel(&c, old.version, now).await? {
        return Err(Problem::precondition_failed(format!(
            "channel {} changed meanwhile; fetch it again",
            c.id
        )));
    }
    app.outbox.notify();
    // What the change does on the air (a rotated key, a new playlist or renditions) follows
    // every save.
    app.live.channel_changed(old, &c);
    Ok(c)
}

pub(crate) fn check_renditions(r: &[String]) -> Result<Vec<String>, Problem> {
    if r.is_empty() || r.len() > 6 {
        return Err(Problem::unprocessable(
            "invalid-field",
            "renditions takes 1 to 6 names",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for name in r {
        let r =
            Rendition::parse_live(name).map_err(|e| Problem::unprocessable("invalid-field", e))?;
        if !out.contains(&r.name()) {
            out.push(r.name());
        }
    }
    Ok(out)
}

/// The auto-DJ playlist, which the caller must be able to see.
pub(crate) async fn check_playlist(
    app: &App,
    who: &Identity,
    id: Option<&str>,
) -> Result<Option<PlaylistId>, Problem> {
    let Some(id) = id else { return Ok(None) };
    let bad = || {
        Problem::unprocessable(
            "unknown-playlist",
            format!("no playlist {id} visible to you"),
        )
    };
    let pid = PlaylistId::parse_canonical(id).ok_or_else(bad)?;
    match app.store.playlist(pid).await? {
        Some((p, _)) if p.public || who.role == Role::Admin || p.owner == who.subject => {
            Ok(Some(pid))
        }
        _ => Err(bad()),
    }
}

/// A slug: 3 to 64 of `a-z`, `0-9` and `-`, not at either end, and not an id's shape (mounts
/// take either).
pub(crate) fn check_slug(slug: &str) -> Result<String, Problem> {
    let ok = (3..=64).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && ChannelId::parse_canonical(slug).is_none();
    if !ok {
        return Err(Problem::unprocessable(
            "invalid-field",
            "slug takes 3 to 64 of a-z, 0-9 and '-', not starting or ending with '-'",
        ));
    }
    Ok(slug.to_string())
}

/// A stream to relay: an `http` or `https` URL of at most 2 048 bytes.
pub(crate) fn check_relay_url(url: &str) -> Result<String, Problem> {
    let ok = url.len() <= 2048
        && (url.starts_with("http://") || url.starts_with("https://"))
        && reqwest::Url::parse(url).is_ok_and(|u| u.host_str().is_some());
    if !ok {
        return Err(Problem::unprocessable(
            "invalid-field",
            "relay_url takes an http:// or https:// URL of at most 2048 bytes",
        ));
    }
    Ok(url.to_string())
}

/// A URL as a channel's view shows it: without the password it may carry, since public channels
/// are shown to anyone.
fn without_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// An MP3 bitrate in kb/s; 0 for the server's.
pub(crate) fn check_mp3_kbps(kbps: u32) -> Result<u32, Problem> {
    if kbps != 0 && !veza_codecs::MP3_BITRATES.contains(&kbps) {
        return Err(Problem::unprocessable(
            "invalid-field",
            format!("mp3_kbps takes 0 or one of {:?}", veza_codecs::MP3_BITRATES),
        ));
    }
    Ok(kbps)
}

/// The mounts of a channel as URLs, by format.
pub(crate) fn mount_urls(app: &App, c: &Channel) -> serde_json::Map<String, serde_json::Value> {
    let names = if c.renditions.is_empty() {
        &app.config.live.renditions
    } else {
        &c.renditions
    };
    let has = |prefix: &str| names.iter().any(|n| n.starts_with(prefix));
    let name = c.slug.clone().unwrap_or_else(|| c.id.to_string());
    let base = &app.public_url;
    let mut out = serde_json::Map::new();
    for (ext, on) in [
        ("mp3", true),
        ("aac", has("aac-")),
        ("opus", has("opus-")),
        ("m3u", true),
        ("pls", true),
    ] {
        if on {
            out.insert(ext.into(), format!("{base}/listen/{name}.{ext}").into());
        }
    }
    out
}

pub(crate) fn texts(title: &str, description: &str) -> Result<(String, String), Problem> {
    Ok((check_title(title)?, check_description(description)?))
}
