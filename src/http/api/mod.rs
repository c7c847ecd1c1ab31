//! The control API under `/v1`: tracks and their uploads (plain and tus), playback URLs,
//! playlists, channels, the outbox, and the public share pages' data. Each resource's handlers
//! live in its own file or folder and use each other only through what a resource exports.

pub(in crate::http) mod accounts;
pub(in crate::http) mod channels;
pub(in crate::http) mod events;
mod fields;
pub(in crate::http) mod lookup;
pub(in crate::http) mod oembed;
pub(in crate::http) mod playback;
pub(in crate::http) mod playlists;
pub(in crate::http) mod public;
pub(in crate::http) mod search;
pub(in crate::http) mod signin;
pub(crate) mod station;
pub(in crate::http) mod tracks;
pub(in crate::http) mod tus;
