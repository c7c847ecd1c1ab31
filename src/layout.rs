//! `layout`: the public names of things in object storage and under `/hls`. Every object key and
//! every multivariant playlist name is made here, so that packaging, delivery, uploads and the
//! sweeper cannot disagree about where something lives.
//!
//! ```text
//! originals/{track}                     the upload, as sent
//! uploads/{upload}/{offset:020}         one piece of a resumable (tus) upload
//! tracks/{track}/{attempt}/…            one packaging attempt; the published one is the track's
//!                                       media prefix: master.m3u8, master_{family}.m3u8,
//!                                       waveform.json, cover.*, {rendition}/index.m3u8,
//!                                       {rendition}/init.mp4, {rendition}/seg_{n}.m4s
//! ```
//!
//! Delivery serves a track's files under `/hls/tracks/{track}/` and a playlist's stitched
//! playlists under `/hls/playlists/{playlist}/`; the control API names a track
//! `/v1/tracks/{track}`.

use crate::store::{ChannelId, PlaylistId, TrackId};

/// Codec families that have their own multivariant playlist, most compatible first.
pub const FAMILIES: [&str; 3] = ["aac", "opus", "flac"];

/// The multivariant playlist of every rendition.
pub const MASTER: &str = "master.m3u8";

/// The codec family of a rendition name (`aac-128` is `aac`).
pub fn family(rendition: &str) -> &str {
    rendition.split('-').next().unwrap_or(rendition)
}

/// The multivariant playlist of one codec family: `master_{family}.m3u8`.
pub fn master_of(family: &str) -> String {
    format!("master_{family}.m3u8")
}

/// Which multivariant playlist a file name is: `Some(None)` for [`MASTER`], `Some(Some(family))`
/// for a known family's, `None` for anything else.
pub fn parse_master(file: &str) -> Option<Option<&'static str>> {
    if file == MASTER {
        return Some(None);
    }
    let f = file.strip_prefix("master_")?.strip_suffix(".m3u8")?;
    FAMILIES.into_iter().find(|x| *x == f).map(Some)
}

/// Where a track's files are delivered, below the public URL.
pub fn track_hls(track: TrackId) -> String {
    format!("/hls/tracks/{track}")
}

/// Where a playlist's stitched playlists are delivered, below the public URL.
pub fn playlist_hls(playlist: PlaylistId) -> String {
    format!("/hls/playlists/{playlist}")
}

/// Where a live channel's playlists, parts and segments are delivered, below the public URL.
pub fn channel_hls(channel: ChannelId) -> String {
    format!("/hls/live/{channel}")
}

/// A channel in the control API (`Location`, links).
pub fn channel_api(channel: ChannelId) -> String {
    format!("/v1/channels/{channel}")
}

/// Where an Icecast source sends a channel (its mount).
pub fn channel_ingest(channel: ChannelId) -> String {
    format!("/ingest/{channel}")
}

/// A channel's WHEP endpoint.
pub fn channel_whep(channel: ChannelId) -> String {
    format!("/whep/{channel}")
}

/// A WHEP session's resource (`session`: 32 hex digits).
pub fn whep_session(channel: ChannelId, session: &str) -> String {
    format!("/whep/{channel}/{session}")
}

/// A WHIP session's resource (`session`: 32 hex digits).
pub fn whip_session(channel: ChannelId, session: &str) -> String {
    format!("/whip/{channel}/{session}")
}

/// A track's files as a stitched media playlist names them: from
/// `/hls/playlists/{playlist}/{rendition}/` up to `/hls/` and into the track's own rendition, so
/// the URLs (and a CDN's cache entries) are the track's own.
pub fn track_from_stitched(track: TrackId, rendition: &str) -> String {
    format!("../../../tracks/{track}/{rendition}")
}

/// A track in the control API (`Location`, links).
pub fn track_api(track: TrackId) -> String {
    format!("/v1/tracks/{track}")
}

/// Prefix of every original.
pub const ORIGINALS: &str = "originals/";

/// Where a track's upload is kept.
pub fn original(track: TrackId) -> String {
    format!("{ORIGINALS}{track}")
}

/// The track whose original `key` is, if it is one.
pub fn original_track(key: &str) -> Option<TrackId> {
    key.strip_prefix(ORIGINALS)?.parse().ok()
}

/// Everything packaged for a track, every attempt included.
pub fn package(track: TrackId) -> String {
    format!("tracks/{track}")
}

/// A track's cover, by its digest: under [`package`], so it goes with the track.
pub fn cover(track: TrackId, digest: &str) -> String {
    format!("{}/covers/{digest}.jpg", package(track))
}

/// Where the app and players fetch a track's cover: immutable, since a new cover is a new digest.
pub fn cover_url(track: TrackId, digest: &str) -> String {
    format!("/v1/covers/{track}/{digest}.jpg")
}

/// A fresh prefix for one packaging attempt, under [`package`].
pub fn staging(track: TrackId) -> String {
    format!("{}/{}", package(track), uuid::Uuid::now_v7().simple())
}

/// Prefix of every resumable-upload piece.
pub const UPLOADS: &str = "uploads/";

/// The pieces of one resumable upload.
pub fn upload(id: &str) -> String {
    format!("{UPLOADS}{id}/")
}

/// One piece of a resumable upload, named by its offset so that a listing sorts in order.
pub fn upload_piece(id: &str, offset: i64) -> String {
    format!("{UPLOADS}{id}/{offset:020}")
}

/// The upload a piece's `key` belongs to, if it is one.
pub fn upload_of(key: &str) -> Option<&str> {
    key.strip_prefix(UPLOADS)?.split('/').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        let t = TrackId::new();
        assert_eq!(original_track(&original(t)), Some(t));
        assert_eq!(original_track("originals/x"), None);
        assert!(staging(t).starts_with(&format!("tracks/{t}/")));
        assert_eq!(upload_piece("u1", 5), "uploads/u1/00000000000000000005");
        assert_eq!(upload_of(&upload_piece("u1", 5)), Some("u1"));
        assert_eq!(parse_master("master.m3u8"), Some(None));
        for f in FAMILIES {
            assert_eq!(parse_master(&master_of(f)), Some(Some(f)));
        }
        assert_eq!(parse_master("master_mp3.m3u8"), None);
        assert_eq!(family("opus-96"), "opus");
        assert_eq!(track_api(t), format!("/v1/tracks/{t}"));
        // Three levels up from a stitched rendition's playlist is /hls/.
        assert_eq!(
            track_from_stitched(t, "aac-128"),
            format!("../../../tracks/{t}/aac-128")
        );
        assert!(track_hls(t).starts_with("/hls/tracks/"));
    }
}
