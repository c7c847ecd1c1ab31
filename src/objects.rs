//! `objects`: the delivery part of the server's state, the hot cache of stored objects
//! (segments, init segments, playlists, retimed segments) by key, bounded in bytes.

use bytes::Bytes;

/// An object held in the hot cache, with its strong validator.
#[derive(Debug, Clone)]
pub struct Object {
    /// The bytes.
    pub data: Bytes,
    /// The quoted ETag.
    pub etag: axum::http::HeaderValue,
}

/// The hot cache: cheap to clone, shared by every clone.
pub type Objects = moka::sync::Cache<String, Object>;

/// A cache holding at most `bytes` of keys and objects.
pub fn cache(bytes: u64) -> Objects {
    moka::sync::Cache::builder()
        .max_capacity(bytes)
        .weigher(|k: &String, v: &Object| u32::try_from(k.len() + v.data.len()).unwrap_or(u32::MAX))
        .build()
}
