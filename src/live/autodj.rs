//! The auto-DJ: a playlist's ready tracks, decoded from their originals (no generation loss),
//! resampled to 48 kHz stereo and played back to back with no gap, in order or shuffled, looping.
//! Each track plays at its published loudness gain, so the auto-DJ is as even as the VOD ladder.
//!
//! Decoders hold codec state that must stay on one thread (libopus), so the auto-DJ runs on a
//! thread of its own and hands 20 ms blocks to the engine through a short bounded queue
//! ([`Feed`]); the engine's clock paces it through that queue.

use super::convert::ToStereo48;
use super::core::{Pcm48, Started};
use crate::storage::Storage;
use crate::store::{MetadataStore, PlaylistId, Track, TrackStatus};
use std::collections::VecDeque;
use std::io::Cursor;
use std::sync::Arc;
use veza_codecs::{Limits, StreamDecoder};

struct Playing {
    decoder: StreamDecoder,
    convert: ToStereo48,
    gain: f32,
    ended: bool,
}

/// The auto-DJ of one channel, on its thread.
struct AutoDj {
    store: Arc<dyn MetadataStore>,
    storage: Storage,
    playlist: PlaylistId,
    shuffle: bool,
    order: Vec<Track>,
    at: usize,
    current: Option<Playing>,
    buf: [VecDeque<f32>; 2],
    /// Tracks that failed to load or decode, in a row.
    failures: usize,
}

/// Blocks queued ahead of the engine: 0.2 s.
const AHEAD: usize = 10;

/// The engine's end of an auto-DJ thread.
pub struct Feed {
    /// Blocks, with the tracks that started in them. Closed when the playlist has nothing
    /// playable.
    pub blocks: tokio::sync::mpsc::Receiver<(Pcm48, Vec<Started>)>,
}

impl Feed {
    /// Starts the auto-DJ thread of `playlist`, producing blocks of `n` frames until the
    /// playlist runs dry or the feed is dropped.
    pub fn spawn(
        store: Arc<dyn MetadataStore>,
        storage: Storage,
        playlist: PlaylistId,
        shuffle: bool,
        n: usize,
    ) -> std::io::Result<Feed> {
        let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
        let runtime = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name(format!("autodj-{playlist}"))
            .spawn(move || {
                let mut dj = AutoDj::new(store, storage, playlist, shuffle);
                while let Some(b) = runtime.block_on(dj.block(n)) {
                    if tx.blocking_send(b).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Feed { blocks: rx })
    }
}

impl AutoDj {
    fn new(
        store: Arc<dyn MetadataStore>,
        storage: Storage,
        playlist: PlaylistId,
        shuffle: bool,
    ) -> AutoDj {
        AutoDj {
            store,
            storage,
            playlist,
            shuffle,
            order: Vec::new(),
            at: 0,
            current: None,
            buf: [VecDeque::new(), VecDeque::new()],
            failures: 0,
        }
    }

    /// The next `n` frames, and the tracks that started within them. `None` when the playlist
    /// has nothing playable.
    async fn block(&mut self, n: usize) -> Option<(Pcm48, Vec<Started>)> {
        let mut started = Vec::new();
        while self.buf[0].len() < n {
            if self.current.as_ref().is_none_or(|p| p.ended) {
                self.current = None;
                let track = self.next_track().await?;
                match self.load(&track).await {
                    Ok(p) => {
                        self.failures = 0;
                        self.current = Some(p);
                        started.push(Started {
                            track: track.id,
                            title: track.title.clone(),
                            offset: self.buf[0].len(),
                        });
                    }
                    Err(e) => {
                        tracing::warn!(track = %track.id, error = %e, "auto-DJ skips a track");
                        self.failures += 1;
                        if self.failures > self.order.len().max(1) {
                            return None;
                        }
                    }
                }
                continue;
            }
            if let Some(p) = self.current.as_mut() {
                let piece = match p.decoder.next_chunk() {
                    Ok(Some(pcm)) => p.convert.push(pcm),
                    Ok(None) => {
                        p.ended = true;
                        p.convert.flush()
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "auto-DJ track ends early on a decode error");
                        p.ended = true;
                        p.convert.flush()
                    }
                };
                match piece {
                    Ok([l, r]) => {
                        let g = p.gain;
                        self.buf[0].extend(l.into_iter().map(|x| (x * g).clamp(-1.0, 1.0)));
                        self.buf[1].extend(r.into_iter().map(|x| (x * g).clamp(-1.0, 1.0)));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "auto-DJ track ends early");
                        p.ended = true;
                    }
                }
            }
        }
        let l: Vec<f32> = self.buf[0].drain(..n).collect();
        let r: Vec<f32> = self.buf[1].drain(..n).collect();
        Some(([l, r], started))
    }

    async fn next_track(&mut self) -> Option<Track> {
        if self.at >= self.order.len() {
            self.order = ready_tracks(self.store.as_ref(), self.playlist).await;
            if self.shuffle {
                use rand::seq::SliceRandom;
                self.order.shuffle(&mut rand::rng());
            }
            self.at = 0;
        }
        let t = self.order.get(self.at).cloned();
        self.at += 1;
        t
    }

    async fn load(&self, track: &Track) -> Result<Playing, String> {
        let bytes = self
            .storage
            .get(&crate::layout::original(track.id))
            .await
            .map_err(|e| e.to_string())?;
        let ext = std::path::Path::new(&track.filename)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let decoder = StreamDecoder::open(
            Box::new(Cursor::new(bytes)),
            ext.as_deref(),
            &Limits::default(),
        )
        .map_err(|e| e.to_string())?;
        Ok(Playing {
            decoder,
            convert: ToStereo48::default(),
            gain: gain_of(track),
            ended: false,
        })
    }
}

/// Whether a playlist has anything to play now.
pub async fn playable(store: &dyn MetadataStore, playlist: PlaylistId) -> bool {
    !ready_tracks(store, playlist).await.is_empty()
}

/// The published normalisation gain of a track (linear), 1 when it has none.
fn gain_of(track: &Track) -> f32 {
    let db = track
        .analysis
        .as_deref()
        .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
        .and_then(|a| a.pointer("/normalization/gain_db").and_then(|g| g.as_f64()))
        .unwrap_or(0.0);
    10f64.powf(db / 20.0) as f32
}

async fn ready_tracks(store: &dyn MetadataStore, playlist: PlaylistId) -> Vec<Track> {
    let Ok(Some((_, entries))) = store.playlist(playlist).await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries {
        if let Ok(Some(t)) = store.track(e.track_id).await {
            if t.status == TrackStatus::Ready {
                out.push(t);
            }
        }
    }
    out
}
