//! The webhook contract: every event the outbox carries, typed. The store writes one in the same
//! transaction as the change it reports; the dispatcher sends `{"id", "type", "created_at",
//! "data"}` with [`Event::kind`] as `type` and [`Event::data`] as `data`.

use super::ids::{ChannelId, PlaylistId, TrackId};
use super::rows::{Entry, Playlist};
use serde::Serialize;

/// One event, with its payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Event {
    /// `track.ready`: a track was published and plays.
    TrackReady {
        /// The track.
        track_id: TrackId,
        /// Its owner's subject.
        owner: String,
    },
    /// `track.failed`: a track will not be packaged (rejected, or out of attempts).
    TrackFailed {
        /// The track.
        track_id: TrackId,
        /// Its owner's subject.
        owner: String,
        /// Why.
        error: String,
    },
    /// `track.deleted`: a track and its media were removed.
    TrackDeleted {
        /// The track.
        track_id: TrackId,
        /// Its owner's subject.
        owner: String,
    },
    /// `playlist.created`.
    PlaylistCreated(PlaylistState),
    /// `playlist.updated`: its details or (when `track_ids` is present) its entries changed.
    PlaylistUpdated(PlaylistState),
    /// `playlist.deleted`.
    PlaylistDeleted {
        /// The playlist.
        playlist_id: PlaylistId,
        /// Its owner's subject.
        owner: String,
    },
    /// `channel.created`.
    ChannelCreated(ChannelRef),
    /// `channel.updated`: its details or its stream key changed.
    ChannelUpdated(ChannelRef),
    /// `channel.deleted`.
    ChannelDeleted(ChannelRef),
    /// `channel.live`: the channel went on air, from a source (`live`) or its auto-DJ (`autodj`),
    /// or switched between the two.
    ChannelLive {
        /// The channel.
        channel_id: ChannelId,
        /// Its owner's subject.
        owner: String,
        /// `live` or `autodj`.
        state: String,
        /// The source software, for a live source (its `User-Agent`).
        #[serde(skip_serializing_if = "Option::is_none")]
        client: Option<String>,
    },
    /// `channel.offline`: nothing plays any more.
    ChannelOffline(ChannelRef),
    /// `channel.now_playing`: the title changed.
    ChannelNowPlaying {
        /// The channel.
        channel_id: ChannelId,
        /// Its owner's subject.
        owner: String,
        /// What plays now.
        title: String,
        /// The auto-DJ track playing, if it is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        track_id: Option<TrackId>,
    },
}

/// A channel as its lifecycle events name it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelRef {
    /// The channel.
    pub channel_id: ChannelId,
    /// Its owner's subject.
    pub owner: String,
}

/// A playlist as its events describe it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaylistState {
    /// The playlist.
    pub playlist_id: PlaylistId,
    /// Its owner's subject.
    pub owner: String,
    /// Its version after the change.
    pub version: i64,
    /// Its tracks in order; absent when an update left the entries alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_ids: Option<Vec<TrackId>>,
}

impl PlaylistState {
    /// The state of `p` with `entries` (`None`: not changed).
    pub fn of(p: &Playlist, entries: Option<&[Entry]>) -> PlaylistState {
        PlaylistState {
            playlist_id: p.id,
            owner: p.owner.clone(),
            version: p.version,
            track_ids: entries.map(|e| e.iter().map(|e| e.track_id).collect()),
        }
    }
}

impl Event {
    /// The event type: the webhook's `type`, the `Veza-Event-Type` header and the AMQP routing
    /// key.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::TrackReady { .. } => "track.ready",
            Event::TrackFailed { .. } => "track.failed",
            Event::TrackDeleted { .. } => "track.deleted",
            Event::PlaylistCreated(_) => "playlist.created",
            Event::PlaylistUpdated(_) => "playlist.updated",
            Event::PlaylistDeleted { .. } => "playlist.deleted",
            Event::ChannelCreated(_) => "channel.created",
            Event::ChannelUpdated(_) => "channel.updated",
            Event::ChannelDeleted(_) => "channel.deleted",
            Event::ChannelLive { .. } => "channel.live",
            Event::ChannelOffline(_) => "channel.offline",
            Event::ChannelNowPlaying { .. } => "channel.now_playing",
        }
    }

    /// The payload, as JSON text.
    pub fn data(&self) -> String {
        // Plain structs of strings and integers: serialising cannot fail.
        serde_json::to_string(self).expect("events serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_keep_the_published_contract() {
        let t: TrackId = "0190a0a0-0000-7000-8000-000000000001".parse().unwrap();
        let e = Event::TrackFailed {
            track_id: t,
            owner: "artist-1".into(),
            error: "not audio".into(),
        };
        assert_eq!(e.kind(), "track.failed");
        assert_eq!(
            e.data(),
            r#"{"track_id":"0190a0a0-0000-7000-8000-000000000001","owner":"artist-1","error":"not audio"}"#
        );
        let p = PlaylistState {
            playlist_id: "0190a0a0-0000-7000-8000-000000000002".parse().unwrap(),
            owner: "a".into(),
            version: 3,
            track_ids: None,
        };
        assert_eq!(
            Event::PlaylistUpdated(p.clone()).data(),
            r#"{"playlist_id":"0190a0a0-0000-7000-8000-000000000002","owner":"a","version":3}"#
        );
        let with = PlaylistState {
            track_ids: Some(vec![t]),
            ..p
        };
        assert_eq!(
            Event::PlaylistCreated(with).data(),
            r#"{"playlist_id":"0190a0a0-0000-7000-8000-000000000002","owner":"a","version":3,"track_ids":["0190a0a0-0000-7000-8000-000000000001"]}"#
        );
        let c: ChannelId = "0190a0a0-0000-7000-8000-000000000003".parse().unwrap();
        let np = Event::ChannelNowPlaying {
            channel_id: c,
            owner: "a".into(),
            title: "Song".into(),
            track_id: None,
        };
        assert_eq!(np.kind(), "channel.now_playing");
        assert_eq!(
            np.data(),
            r#"{"channel_id":"0190a0a0-0000-7000-8000-000000000003","owner":"a","title":"Song"}"#
        );
        let live = Event::ChannelLive {
            channel_id: c,
            owner: "a".into(),
            state: "live".into(),
            client: Some("ffmpeg".into()),
        };
        assert_eq!(
            live.data(),
            r#"{"channel_id":"0190a0a0-0000-7000-8000-000000000003","owner":"a","state":"live","client":"ffmpeg"}"#
        );
    }
}
