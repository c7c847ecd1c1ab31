//! Media at the edge: HLS delivery of tracks (`/hls/tracks`), stitched playlists
//! (`/hls/playlists`) and live channels (`/hls/live`), WebRTC listeners and publishers (WHEP and
//! WHIP), Icecast's `/admin/metadata`, and the web app. Every request here is a listener's, a
//! CDN's or a source's: tokens, caching and validators rather than roles.

pub(in crate::http) mod delivery;
pub(in crate::http) mod icecast_admin;
pub(in crate::http) mod live;
pub(in crate::http) mod mounts;
pub(in crate::http) mod stitch;
pub(in crate::http) mod ts;
pub(in crate::http) mod webapp;
pub(in crate::http) mod webrtc;
