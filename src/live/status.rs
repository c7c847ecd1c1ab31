//! What a channel plays, as the API, its events and the lease status say it: plain values
//! the channel core produces and the rest of the server reads.

use super::station::Kind;
use crate::store::TrackId;
use serde::{Deserialize, Serialize};

/// What plays on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Nothing: no source and no auto-DJ.
    Offline,
    /// A live source.
    Live,
    /// The auto-DJ.
    Autodj,
}

impl State {
    /// Its name in the API and events.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Offline => "offline",
            State::Live => "live",
            State::Autodj => "autodj",
        }
    }
}

/// A connected source, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// Its `User-Agent`.
    pub client: String,
    /// Its content type (`audio/mpeg`).
    pub codec: String,
    /// Its measured bitrate, bits per second, over the last few seconds.
    pub bitrate: u64,
    /// RFC 3339.
    pub connected_at: String,
    /// `ice-name`, `ice-description`, `ice-genre`, `ice-public`.
    pub name: Option<String>,
    /// `ice-description`.
    pub description: Option<String>,
    /// `ice-genre`.
    pub genre: Option<String>,
    /// `ice-public`.
    pub public: Option<bool>,
}

/// What plays now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NowPlaying {
    /// The title.
    pub title: String,
    /// The auto-DJ track, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_id: Option<TrackId>,
    /// What it is: `track`, `event`, `interstitial` or `live`.
    #[serde(default)]
    pub kind: Kind,
    /// RFC 3339.
    pub since: String,
}

/// The artist and title of an item of `kind` shown as `title`: a live source's `Artist - Title`
/// split by the ICY convention; anything else is a title alone.
pub fn artist_and_title(kind: Kind, title: &str) -> (Option<String>, String) {
    match (kind, title.split_once(" - ")) {
        (Kind::Live, Some((a, t))) if !a.trim().is_empty() && !t.trim().is_empty() => {
            (Some(a.trim().to_string()), t.trim().to_string())
        }
        _ => (None, title.to_string()),
    }
}

/// A channel's live status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// offline, live or autodj.
    pub state: State,
    /// The live source, when one is connected.
    pub source: Option<SourceInfo>,
    /// What plays.
    pub now_playing: Option<NowPlaying>,
    /// When the channel went on air, RFC 3339.
    pub started_at: Option<String>,
}

/// Listener counts by protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listeners {
    /// LL-HLS sessions seen within the idle window.
    pub hls: u64,
    /// WebRTC sessions.
    pub webrtc: u64,
    /// Listeners of the MP3 mount.
    #[serde(default)]
    pub mp3: u64,
    /// Listeners of the AAC mount.
    #[serde(default)]
    pub aac: u64,
    /// Listeners of the Ogg Opus mount.
    #[serde(default)]
    pub opus: u64,
}

impl Listeners {
    /// Every listener, whatever the protocol.
    pub fn total(&self) -> u64 {
        self.hls + self.webrtc + self.mp3 + self.aac + self.opus
    }
}

/// What the channel's SSE stream carries.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelEvent {
    /// The state (and source) changed.
    State {
        /// offline, live or autodj.
        state: State,
        /// The source.
        source: Option<SourceInfo>,
    },
    /// The title changed.
    NowPlaying(NowPlaying),
    /// Listener counts changed.
    Listeners(Listeners),
}
