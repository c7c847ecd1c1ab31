//! Ids: UUIDv7 newtypes for tracks and playlists, with the one canonical spelling delivery
//! accepts.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A track id: a UUIDv7, so ids sort by creation time and serve as pagination cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub uuid::Uuid);

impl TrackId {
    /// A fresh, time-ordered id.
    pub fn new() -> TrackId {
        TrackId(uuid::Uuid::now_v7())
    }
}

impl Default for TrackId {
    fn default() -> Self {
        TrackId::new()
    }
}

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for TrackId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        uuid::Uuid::try_parse(s).map(TrackId)
    }
}

impl TrackId {
    /// The id spelled exactly as it is written (lowercase, hyphenated), or `None`: delivery URLs
    /// accept one spelling per track, so a CDN never caches one object under two keys.
    pub fn parse_canonical(s: &str) -> Option<TrackId> {
        canonical(s).map(TrackId)
    }
}

/// A UUID in its one written form (RFC 9562 §4: lowercase hexadecimal, hyphenated).
fn canonical(s: &str) -> Option<uuid::Uuid> {
    let id = uuid::Uuid::try_parse(s).ok()?;
    (id.hyphenated()
        .encode_lower(&mut uuid::Uuid::encode_buffer())
        == s)
        .then_some(id)
}

impl Serialize for TrackId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for TrackId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for PlaylistId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A playlist id (UUIDv7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlaylistId(pub uuid::Uuid);

impl PlaylistId {
    /// A fresh, time-ordered id.
    pub fn new() -> PlaylistId {
        PlaylistId(uuid::Uuid::now_v7())
    }
}

impl Default for PlaylistId {
    fn default() -> Self {
        PlaylistId::new()
    }
}

impl fmt::Display for PlaylistId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for PlaylistId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        uuid::Uuid::try_parse(s).map(PlaylistId)
    }
}

impl PlaylistId {
    /// The id spelled exactly as it is written, or `None` (see [`TrackId::parse_canonical`]).
    pub fn parse_canonical(s: &str) -> Option<PlaylistId> {
        canonical(s).map(PlaylistId)
    }
}

/// A live channel id (UUIDv7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub uuid::Uuid);

impl ChannelId {
    /// A fresh, time-ordered id.
    pub fn new() -> ChannelId {
        ChannelId(uuid::Uuid::now_v7())
    }

    /// The id spelled exactly as it is written, or `None` (see [`TrackId::parse_canonical`]).
    pub fn parse_canonical(s: &str) -> Option<ChannelId> {
        canonical(s).map(ChannelId)
    }
}

impl Default for ChannelId {
    fn default() -> Self {
        ChannelId::new()
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for ChannelId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        uuid::Uuid::try_parse(s).map(ChannelId)
    }
}

impl Serialize for ChannelId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
