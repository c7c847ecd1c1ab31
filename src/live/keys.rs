//! Stream keys and the channel record's rules on the air: how every way of going live (an Icecast
//! `SOURCE`/`PUT`, WHIP, Icecast's `/admin/metadata`) checks a source's key, and what a change to
//! a channel's record does to the channel running here (a rotated key drops the source that used
//! the old one; a new auto-DJ playlist or new renditions restart it; deletion ends it). The HTTP
//! handlers check fields and rights, then call these, as they call `Catalog` for tracks. Keys are
//! stored hashed; each wrong key counts against the sending address.

use super::Live;
use crate::store::{self, ChannelId};
use crate::util;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// A new stream key and its stored form: 24 random bytes, URL-safe, so it fits a URL's userinfo
/// unescaped.
pub fn new_key() -> (String, String) {
    let key = crate::auth::random_b64(24);
    let hash = key_hash(&key);
    (key, hash)
}

/// The stored form of a stream key: SHA-256, hex.
pub fn key_hash(key: &str) -> String {
    util::hex(&Sha256::digest(key.as_bytes()))
}

/// Whether `key` is the stream key stored as `hash`, compared in constant time.
pub fn key_matches(key: &str, hash: &str) -> bool {
    crate::auth::constant_time_eq(key_hash(key).as_bytes(), hash.as_bytes())
}

/// Why a stream key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefused {
    /// Wrong (or rotated): 401.
    Wrong,
    /// The client address sent too many wrong keys: 429, retry after this long.
    Blocked(Duration),
}

/// Checks a source's stream `key` for `channel`, stored as `hash`, sent from `client` through
/// `via` (`icecast`, `whip`, `metadata`). An address that sent `limits.stream_key_failures_per_minute`
/// wrong keys is refused whatever it sends until its budget refills. Each refusal is logged at
/// warn with the address, the channel and the reason, for fail2ban-style tools:
/// `stream key refused client=203.0.113.9 channel=… via=icecast reason=wrong key`.
pub fn check_stream_key(
    limits: &crate::auth::Limiters,
    client: std::net::IpAddr,
    channel: ChannelId,
    key: &str,
    hash: &str,
    via: &'static str,
) -> Result<(), KeyRefused> {
    if let Some(left) = limits.key_blocked(client) {
        tracing::warn!(%client, %channel, via, reason = "too many wrong keys", "stream key refused");
        return Err(KeyRefused::Blocked(left));
    }
    if key_matches(key, hash) {
        return Ok(());
    }
    match limits.key_failed(client) {
        Some(left) => {
            tracing::warn!(%client, %channel, via, reason = "too many wrong keys", "stream key refused");
            Err(KeyRefused::Blocked(left))
        }
        None => {
            tracing::warn!(%client, %channel, via, reason = "wrong key", "stream key refused");
            Err(KeyRefused::Wrong)
        }
    }
}

/// Why a source could not be admitted before it goes live.
#[derive(Debug)]
pub enum Admission {
    /// No such channel: 404.
    NoChannel,
    /// The metadata store failed: 503.
    Store(String),
    /// The key was refused.
    Key(KeyRefused),
}

impl Live {
    /// The channel `id` if `key` is its stream key, sent from `client` through `via`: the check
    /// every source makes before it goes live ([`Live::go_live`]).
    pub async fn check_key(
        &self,
        limits: &crate::auth::Limiters,
        id: ChannelId,
        key: &str,
        client: std::net::IpAddr,
        via: &'static str,
    ) -> Result<store::Channel, Admission> {
        let row = match self.store.channel(id).await {
            Ok(Some(row)) => row,
            Ok(None) => return Err(Admission::NoChannel),
            Err(e) => return Err(Admission::Store(e.to_string())),
        };
        check_stream_key(limits, client, id, key, &row.key_hash, via).map_err(Admission::Key)?;
        Ok(row)
    }

    /// The key of channel `id` is now the one hashed `hash`: a source that went live with
    /// another ends at once, with what it had buffered.
    pub fn key_changed(&self, id: ChannelId, hash: &str) {
        if let Some(ch) = self.running(id) {
            ch.keep_only_key(hash);
        }
    }

    /// Channel `old` was saved as `new`: a changed key drops the source on the old one; a new
    /// auto-DJ playlist, shuffle, renditions or MP3 bitrate restart the channel, since its core is built from
    /// them (the supervisor brings auto-DJ channels back within a lease period; a live source
    /// reconnects).
    pub fn channel_changed(&self, old: &store::Channel, new: &store::Channel) {
        if new.key_hash != old.key_hash {
            self.key_changed(new.id, &new.key_hash);
        }
        if new.playlist_id != old.playlist_id
            || new.shuffle != old.shuffle
            || new.renditions != old.renditions
            || new.mp3_kbps != old.mp3_kbps
        {
            self.stop(new.id);
        }
    }
}
