//! `catalog`: what is playable now, as delivery reads it, and the operations that change it.
//!
//! It holds the published-track and stitched-playlist caches (five seconds each, so a warm
//! delivery request reads no database), the listener sessions, and the domain operations that
//! must keep them true: queueing an upload, retrying and deleting a track. Handlers call these;
//! they do not touch the caches themselves.

use crate::layout;
use crate::listeners::Listeners;
use crate::outbox::Outbox;
use crate::queue::Queue;
use crate::storage::Storage;
use crate::store::{
    Entry, MetadataStore, PlaylistId, Rendition, Track, TrackId, TrackStatus, Upload,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The metadata store failed: retry later.
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    /// Object storage failed: retry later (a deletion is safe to send again).
    #[error(transparent)]
    Storage(#[from] crate::storage::Error),
    /// A resumable upload's stored pieces do not make up its length: the upload store lost
    /// some. Retry later; the upload stays open.
    #[error("{0}")]
    Incomplete(String),
}

/// Whether `t` plays in a playlist owned by `playlist_owner`: a ready track that is public or
/// the playlist owner's own. A private track is never published through someone else's
/// playlist, whoever added it and whenever it was made private.
pub fn plays_in(t: &Track, playlist_owner: &str) -> bool {
    t.status == TrackStatus::Ready && (t.public || t.owner == playlist_owner)
}

/// A published track as delivery needs it.
#[derive(Debug)]
pub struct Published {
    /// Object prefix of the package.
    pub prefix: String,
    /// Rendition directory names.
    pub renditions: Vec<String>,
}

/// What playlist delivery needs of a playlist: its playable tracks in order and the renditions
/// they all have.
#[derive(Debug)]
pub struct Stitch {
    /// Ready tracks, in playlist order.
    pub tracks: Vec<TrackId>,
    /// Renditions every one of them has (bandwidths: the highest).
    pub renditions: Vec<Rendition>,
    /// Each rendition's media playlist, rendered once for this state of the playlist with a
    /// place for the token; a request only substitutes its own.
    pub media: parking_lot::Mutex<HashMap<String, Arc<Template>>>,
}

impl Stitch {
    /// The codec families the playlist can be played in.
    pub fn families(&self) -> Vec<&'static str> {
        layout::FAMILIES
            .into_iter()
            .filter(|f| {
                self.renditions
                    .iter()
                    .any(|r| layout::family(&r.name) == *f)
            })
            .collect()
    }
}

/// A rendered playlist whose token is left out: the text between the token's places.
#[derive(Debug)]
pub struct Template {
    /// The text, split where the token goes.
    pub pieces: Vec<String>,
    /// A hash of the whole template, for strong validators.
    pub tag: String,
}

impl Template {
    /// The marker a renderer writes where the token goes.
    pub const MARK: &'static str = "\u{1}token\u{1}";

    /// Splits rendered `text` at its markers.
    pub fn new(text: &str, tag: String) -> Template {
        Template {
            pieces: text.split(Self::MARK).map(String::from).collect(),
            tag,
        }
    }

    /// The text with `token` in every place: one copy of the bytes.
    pub fn fill(&self, token: &str) -> String {
        let len: usize = self.pieces.iter().map(String::len).sum::<usize>()
            + token.len() * self.pieces.len().saturating_sub(1);
        let mut out = String::with_capacity(len);
        for (i, p) in self.pieces.iter().enumerate() {
            if i > 0 {
                out.push_str(token);
            }
            out.push_str(p);
        }
        out
    }
}

/// The catalog part of the server's state.
pub struct Catalog {
    store: Arc<dyn MetadataStore>,
    storage: Storage,
    published: moka::sync::Cache<TrackId, Option<Arc<Published>>>,
    stitched: moka::sync::Cache<PlaylistId, Arc<Stitch>>,
    /// What was last read of each, kept for an hour: while the store is unreachable, published
    /// media keeps playing from it (stale-if-error) instead of failing every request.
    last_published: moka::sync::Cache<TrackId, Option<Arc<Published>>>,
    last_stitched: moka::sync::Cache<PlaylistId, Arc<Stitch>>,
    /// Listener sessions seen by delivery on this node.
    pub listeners: Listeners,
}

impl Catalog {
    /// A catalog over `store` and `storage`; a listener session counts until `listener_idle`
    /// after its last request.
    pub fn new(
        store: Arc<dyn MetadataStore>,
        storage: Storage,
        listener_idle: Duration,
    ) -> Catalog {
        Catalog {
            store,
            storage,
            published: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
            stitched: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
            last_published: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(3600))
                .build(),
            last_stitched: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(3600))
                .build(),
            listeners: Listeners::new(listener_idle),
        }
    }

    /// The published state of a track (`None`: not playable), cached for a few seconds.
    pub async fn published(&self, track: TrackId) -> crate::store::Result<Option<Arc<Published>>> {
        if let Some(p) = self.published.get(&track) {
            return Ok(p);
        }
        match self.read_published(track).await {
            Ok(p) => {
                self.published.insert(track, p.clone());
                self.last_published.insert(track, p.clone());
                Ok(p)
            }
            Err(e) => match self.last_published.get(&track) {
                Some(p) => {
                    tracing::debug!(%track, error = %e, "the store is unreachable: serving what was last read");
                    Ok(p)
                }
                None => Err(e),
            },
        }
    }

    async fn read_published(&self, track: TrackId) -> crate::store::Result<Option<Arc<Published>>> {
        let p = match self.store.track(track).await? {
            Some(t) if t.status == TrackStatus::Ready => match t.media_prefix {
                Some(prefix) => {
                    let renditions = self.store.renditions(track).await?;
                    Some(Arc::new(Published {
                        prefix,
                        renditions: renditions.into_iter().map(|r| r.name).collect(),
                    }))
                }
                None => None,
            },
            _ => None,
        };
        Ok(p)
    }

    /// A track's published state changed (published, queued again, deleted).
    pub fn invalidate(&self, track: TrackId) {
        self.published.invalidate(&track);
        self.last_published.invalidate(&track);
    }

    /// A playlist's entries or visibility changed.
    pub fn invalidate_playlist(&self, playlist: PlaylistId) {
        self.stitched.invalidate(&playlist);
        self.last_stitched.invalidate(&playlist);
    }

    /// What a playlist stitches, from the cache or the store; `None` when there is no such
    /// playlist.
    pub async fn stitch(&self, playlist: PlaylistId) -> crate::store::Result<Option<Arc<Stitch>>> {
        if let Some(s) = self.stitched.get(&playlist) {
            return Ok(Some(s));
        }
        match self.read_stitch(playlist).await {
            Ok(Some(s)) => {
                self.stitched.insert(playlist, s.clone());
                self.last_stitched.insert(playlist, s.clone());
                Ok(Some(s))
            }
            Ok(None) => Ok(None),
            Err(e) => match self.last_stitched.get(&playlist) {
                Some(s) => Ok(Some(s)),
                None => Err(e),
            },
        }
    }

    async fn read_stitch(&self, playlist: PlaylistId) -> crate::store::Result<Option<Arc<Stitch>>> {
        let Some((p, entries)) = self.store.playlist(playlist).await? else {
            return Ok(None);
        };
        let tracks = self.tracks_of(&entries).await?;
        let ready: Vec<&Track> = entries
            .iter()
            .filter_map(|e| tracks.get(&e.track_id).and_then(Option::as_ref))
            .filter(|t| plays_in(t, &p.owner))
            .collect();
        let renditions = self.common(&ready).await?;
        let s = Arc::new(Stitch {
            tracks: ready.iter().map(|t| t.id).collect(),
            renditions,
            media: Default::default(),
        });
        Ok(Some(s))
    }

    /// The tracks of some entries, by id (`None`: deleted).
    pub async fn tracks_of(
        &self,
        entries: &[Entry],
    ) -> crate::store::Result<HashMap<TrackId, Option<Track>>> {
        let mut map = HashMap::new();
        for e in entries {
            if let std::collections::hash_map::Entry::Vacant(slot) = map.entry(e.track_id) {
                slot.insert(self.store.track(e.track_id).await?);
            }
        }
        Ok(map)
    }

    /// The renditions every one of `tracks` has, with the first track's details and the highest
    /// bandwidths.
    async fn common(&self, tracks: &[&Track]) -> crate::store::Result<Vec<Rendition>> {
        let mut out: Option<Vec<Rendition>> = None;
        for t in tracks {
            let mine = self.store.renditions(t.id).await?;
            out = Some(match out {
                None => mine,
                Some(acc) => acc
                    .into_iter()
                    .filter_map(|mut r| {
                        let m = mine.iter().find(|m| m.name == r.name)?;
                        r.bandwidth = r.bandwidth.max(m.bandwidth);
                        r.average_bandwidth = r.average_bandwidth.max(m.average_bandwidth);
                        r.channels = r.channels.max(m.channels);
                        Some(r)
                    })
                    .collect(),
            });
        }
        Ok(out.unwrap_or_default())
    }

    /// Records a track whose original is stored and queues its packaging. On failure the
    /// original is removed, so no object is left that no row points at.
    pub async fn queue_upload(&self, track: &Track, queue: &Queue, now: i64) -> Result<(), Error> {
        let job = uuid::Uuid::new_v4().to_string();
        if let Err(e) = self.store.create_track(track, &job, now).await {
            let _ = self.storage.delete(&track.original_key).await;
            return Err(e.into());
        }
        queue.notify();
        Ok(())
    }

    /// Completes a resumable upload: joins its pieces into the original of a new track (made
    /// by `describe` from the track's id and original key), records the track with the upload's
    /// completion in one transaction, queues its packaging and removes the pieces. Returns the
    /// track, or the one another request recorded first. Like [`Catalog::queue_upload`], it
    /// leaves no original that no row points at.
    pub async fn complete_upload(
        &self,
        u: &Upload,
        describe: impl FnOnce(TrackId, String) -> Track,
        queue: &Queue,
        now: i64,
    ) -> Result<TrackId, Error> {
        if let Some(t) = u.track_id {
            return Ok(t);
        }
        let prefix = crate::layout::upload(&u.id);
        let pieces = self.storage.list(&prefix).await?;
        let id = TrackId::new();
        let original = crate::layout::original(id);
        let keys: Vec<String> = pieces.iter().map(|(k, _)| k.clone()).collect();
        let size = self.storage.concat(&keys, &original).await?;
        if size != u.length as u64 {
            let _ = self.storage.delete(&original).await;
            return Err(Error::Incomplete(format!(
                "upload {} holds {size} of {} bytes",
                u.id, u.length
            )));
        }
        let track = describe(id, original.clone());
        let job = uuid::Uuid::new_v4().to_string();
        match self.store.complete_upload(&u.id, &track, &job, now).await {
            Ok(true) => {}
            Ok(false) => {
                // Another request completed it first: its track stands.
                let _ = self.storage.delete(&original).await;
                let done = self.store.upload(&u.id).await?.and_then(|u| u.track_id);
                return done.ok_or_else(|| Error::Incomplete(format!("upload {} is gone", u.id)));
            }
            Err(e) => {
                let _ = self.storage.delete(&original).await;
                return Err(e.into());
            }
        }
        queue.notify();
        if let Err(e) = self.storage.delete_prefix(&prefix).await {
            tracing::warn!(upload = %u.id, error = %e, "removing joined upload pieces");
        }
        tracing::info!(upload = %u.id, track = %id, bytes = u.length, "resumable upload complete");
        Ok(id)
    }

    /// Queues a failed track again; `false` when it is no longer failed.
    pub async fn retry(&self, track: TrackId, queue: &Queue, now: i64) -> Result<bool, Error> {
        if !self.store.retry_track(track, now).await? {
            return Ok(false);
        }
        queue.notify();
        self.invalidate(track);
        Ok(true)
    }

    /// Deletes a track: stops its job on this node, removes its original and package, then its
    /// rows (with a `track.deleted` event). Returns the deleted row, `None` if it was already
    /// gone.
    pub async fn delete_track(
        &self,
        track: &Track,
        queue: &Queue,
        outbox: &Outbox,
        now: i64,
    ) -> Result<Option<Track>, Error> {
        let id = track.id;
        queue.cancel(id);
        // Objects first, then rows: on a full disk the store needs the space the objects free to
        // write its own deletion, and a DELETE that fails half way is simply sent again.
        self.storage.delete(&track.original_key).await?;
        let package = layout::package(id);
        self.storage.delete_prefix(&package).await?;
        let deleted = self.store.delete_track(id, now).await?;
        if deleted.is_some() {
            outbox.notify();
        }
        self.invalidate(id);
        self.listeners.forget(id);
        // Whatever an attempt published between the two; a worker elsewhere still writing removes
        // its own staging prefix when its publish finds the track gone.
        self.storage.delete_prefix(&package).await?;
        Ok(deleted)
    }
}
