//! `store`: the metadata store. Tracks, their renditions, the durable job queue, playlists, the
//! event outbox, idempotency records, resumable uploads, and local accounts with their sessions.
//!
//! [`MetadataStore`] is the seam; [`open`] picks the backend from `database.url`: SQLite
//! (embedded, the default) or PostgreSQL. Both run the same SQL apart from job claiming and their
//! column types (one migrations directory each), and the same test suite (`tests/store.rs`).
//!
//! Times are Unix milliseconds passed in by the caller, so the store reads no clock.

mod account;
mod contract;
mod error;
mod event;
mod ids;
mod rows;
mod sql;

pub use account::{Account, Created, Hit, NewAccount, Search, SearchKind, SearchSort, Session};
pub use contract::{
    AccountStore, ChannelStore, IdempotencyStore, MetadataStore, OutboxStore, PlaylistStore,
    SearchStore, StationStore, TrackStore, UploadStore,
};
pub use error::{Error, Result};
pub use event::{ChannelRef, Event, PlaylistState};
pub use ids::{ChannelId, PlaylistId, TrackId};
pub use rows::*;

use std::sync::Arc;

/// Opens the store named by `url` (`sqlite:` or `postgres://`), creating a SQLite file and its
/// directory if needed.
pub async fn open(url: &str, max_connections: u32) -> Result<Arc<dyn MetadataStore>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            sql::SqliteStore::open(url, max_connections).await?,
        ))
    } else {
        Ok(Arc::new(sql::PgStore::open(url, max_connections).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_have_one_spelling() {
        let id = TrackId::new();
        let text = id.to_string();
        assert_eq!(TrackId::parse_canonical(&text), Some(id));
        for other in [
            text.to_uppercase(),
            text.replace('-', ""),
            format!("{{{text}}}"),
            format!("urn:uuid:{text}"),
            format!("{text} "),
        ] {
            assert!(other.parse::<TrackId>().is_ok() || other.ends_with(' '));
            assert_eq!(TrackId::parse_canonical(&other), None, "{other}");
            assert_eq!(PlaylistId::parse_canonical(&other), None, "{other}");
        }
    }
}
