//! The auto-DJ: the driver of a channel's [`Dj`]. It follows the channel's programme (slots,
//! events, interstitials; `station/`), decodes each track from its original (no generation
//! loss), resamples it to 48 kHz stereo, skips its leading and trailing silence, and plays the
//! items back to back, gapless or crossfaded. Each track plays at its published loudness gain,
//! so the auto-DJ is as even as the VOD ladder.
//!
//! Decoders hold codec state that must stay on one thread (libopus), so the auto-DJ runs on a
//! thread of its own and hands 20 ms blocks to the engine through a short bounded queue
//! ([`Feed`]); the engine's clock paces it through that queue. A block made now plays about
//! [`LEAD_MS`] later, so the programme is asked about that instant: an event starts on air at
//! its instant, to within a block or two.

use super::convert::ToStereo48;
use super::core::{Pcm48, Started, BLOCK};
use super::station::{crossfade, Dj, Interstitial, Order, Pick, Programme, Trim};
use crate::storage::Storage;
use crate::store::{
    Channel, ChannelId, MetadataStore, PlaylistId, StationSettings, Track, TrackId, TrackStatus,
};
use crate::util;
use std::collections::{HashMap, VecDeque};
use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};
use veza_codecs::{Limits, StreamDecoder};

/// Blocks queued ahead of the engine: 0.2 s.
const AHEAD: usize = 10;

/// How far ahead of the wall clock a block being made plays: this queue and the core's.
pub const LEAD_MS: i64 = ((AHEAD + 2) * BLOCK * 1000 / 48_000) as i64;

/// The fade when an event cuts the item playing.
const PREEMPT_FADE: usize = 48_000 * 3 / 10;

/// How often the programme and the station settings are read again.
const REFRESH: Duration = Duration::from_secs(2);

/// How often the programme's playlists are read again when it names the same ones.
const LISTS_EVERY: Duration = Duration::from_secs(30);

/// Quiet frames held back at most while looking for a track's end (longer quiet passages play).
const SILENCE_HOLD: usize = 48_000 * 30;

struct Playing {
    decoder: StreamDecoder,
    convert: ToStereo48,
    trim: Trim,
    gain: f32,
    ended: bool,
}

impl Playing {
    /// The next decoded, trimmed and gained PCM; empty once ended.
    fn pull(&mut self) -> [Vec<f32>; 2] {
        if self.ended {
            return [Vec::new(), Vec::new()];
        }
        let piece = match self.decoder.next_chunk() {
            Ok(Some(pcm)) => self.convert.push(pcm),
            Ok(None) => {
                self.ended = true;
                self.convert.flush()
            }
            Err(e) => {
                tracing::warn!(error = %e, "auto-DJ track ends early on a decode error");
                self.ended = true;
                self.convert.flush()
            }
        };
        let pcm = match piece {
            Ok(p) => self.trim.push(p),
            Err(e) => {
                tracing::warn!(error = %e, "auto-DJ track ends early");
                self.ended = true;
                [Vec::new(), Vec::new()]
            }
        };
        if self.ended {
            self.trim.finish();
        }
        let g = self.gain;
        pcm.map(|c| c.into_iter().map(|x| (x * g).clamp(-1.0, 1.0)).collect())
    }
}

/// The auto-DJ of one channel, on its thread.
struct AutoDj {
    store: Arc<dyn MetadataStore>,
    storage: Storage,
    channel: ChannelId,
    dj: Dj,
    programme: Programme,
    settings: StationSettings,
    jingles: Option<Interstitial>,
    refreshed: Option<Instant>,
    /// Ready tracks of each playlist the programme names, as last read, and when.
    lists: HashMap<PlaylistId, Vec<Track>>,
    lists_read: Option<Instant>,
    current: Option<Playing>,
    buf: [VecDeque<f32>; 2],
    /// Tracks that failed to load or decode, in a row.
    failures: usize,
}

/// The engine's end of an auto-DJ thread.
pub struct Feed {
    /// Blocks, with the tracks that started in them. Closed when the programme has nothing
    /// playable.
    pub blocks: tokio::sync::mpsc::Receiver<(Pcm48, Vec<Started>)>,
}

impl Feed {
    /// Starts the auto-DJ thread of `channel`, producing blocks of `n` frames until its
    /// programme has nothing playable or the feed is dropped.
    pub fn spawn(
        store: Arc<dyn MetadataStore>,
        storage: Storage,
        channel: &Channel,
        n: usize,
    ) -> std::io::Result<Feed> {
        let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
        let runtime = tokio::runtime::Handle::current();
        let (programme, settings) = (
            Programme::plain(channel.playlist_id, Order::of_shuffle(channel.shuffle)),
            channel.station.clone(),
        );
        let id = channel.id;
        std::thread::Builder::new()
            .name(format!("autodj-{id}"))
            .spawn(move || {
                // Built on its thread: the decoders it holds stay there.
                let mut dj = AutoDj {
                    store,
                    storage,
                    channel: id,
                    dj: Dj::new(rand::random()),
                    programme,
                    settings,
                    jingles: None,
                    refreshed: None,
                    lists: HashMap::new(),
                    lists_read: None,
                    current: None,
                    buf: [VecDeque::new(), VecDeque::new()],
                    failures: 0,
                };
                while let Some(b) = runtime.block_on(dj.block(n)) {
                    if tx.blocking_send(b).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Feed { blocks: rx })
    }
}

/// The programme a channel follows: its schedule, else its playlist alone.
pub async fn programme(store: &dyn MetadataStore, c: &Channel) -> Programme {
    let doc = match store.schedule(c.id).await {
        Ok(Some((doc, _))) => doc,
        _ => return Programme::plain(c.playlist_id, Order::of_shuffle(c.shuffle)),
    };
    let parsed = serde_json::from_str::<super::station::Doc>(&doc)
        .map_err(|e| e.to_string())
        .and_then(|d| {
            d.parse(Order::of_shuffle(c.shuffle))
                .map_err(|e| e.to_string())
        });
    match parsed {
        Ok(mut p) => {
            p.default = p.default.or(c.playlist_id);
            p
        }
        Err(e) => {
            tracing::warn!(channel = %c.id, error = %e, "a stored programme no longer parses; playing the channel's playlist");
            Programme::plain(c.playlist_id, Order::of_shuffle(c.shuffle))
        }
    }
}

impl AutoDj {
    /// Reads the channel's programme, settings and playlists again, every [`REFRESH`].
    async fn refresh(&mut self) {
        if self.refreshed.is_some_and(|at| at.elapsed() < REFRESH) {
            return;
        }
        self.refreshed = Some(Instant::now());
        let Ok(Some(c)) = self.store.channel(self.channel).await else {
            return;
        };
        self.programme = programme(self.store.as_ref(), &c).await;
        self.jingles = c
            .station
            .interstitial
            .as_ref()
            .and_then(|i| i.parse("interstitial").ok());
        self.settings = c.station;
        let mut names = self.programme.playlists();
        names.extend(self.jingles.as_ref().map(|j| j.playlist));
        // Playlists are read again when the programme names others, else every LISTS_EVERY: a
        // long playlist costs a query per track.
        let same =
            names.len() == self.lists.len() && names.iter().all(|p| self.lists.contains_key(p));
        if same && self.lists_read.is_some_and(|at| at.elapsed() < LISTS_EVERY) {
            return;
        }
        self.lists_read = Some(Instant::now());
        let mut lists = HashMap::new();
        for p in names {
            lists.insert(p, ready_tracks(self.store.as_ref(), p).await);
        }
        self.lists = lists;
    }

    fn crossfade_frames(&self) -> usize {
        (self.settings.crossfade_seconds.clamp(0.0, 12.0) * 48_000.0) as usize
    }

    /// The next `n` frames, and the items that started within them. `None` when the programme
    /// has nothing playable.
    async fn block(&mut self, n: usize) -> Option<(Pcm48, Vec<Started>)> {
        self.refresh().await;
        let now = util::now_ms() + LEAD_MS;
        let mut started = Vec::new();
        // An event due cuts what plays, with a short fade from here.
        if self.dj.due(&self.programme, now).is_some() && self.current.is_some() {
            self.fill(n + PREEMPT_FADE);
            if let Some(p) = self.current.as_mut() {
                p.ended = true;
            }
            self.start_next(now, PREEMPT_FADE, &mut started).await;
        }
        let fade = self.crossfade_frames();
        loop {
            let playing = self.current.as_ref().is_some_and(|p| !p.ended);
            if playing {
                if self.buf[0].len() >= n + fade {
                    break;
                }
                self.fill(n + fade);
                continue;
            }
            if !self.start_next(now, fade, &mut started).await {
                if self.buf[0].is_empty() {
                    return None;
                }
                // The programme ran dry: what is left plays out, padded.
                for c in &mut self.buf {
                    c.resize(c.len().max(n), 0.0);
                }
                break;
            }
        }
        let l: Vec<f32> = self.buf[0].drain(..n).collect();
        let r: Vec<f32> = self.buf[1].drain(..n).collect();
        Some(([l, r], started))
    }

    /// Decodes the item playing until `want` frames are buffered or it ends.
    fn fill(&mut self, want: usize) {
        while self.buf[0].len() < want {
            let Some(p) = self.current.as_mut().filter(|p| !p.ended) else {
                return;
            };
            let [l, r] = p.pull();
            self.buf[0].extend(l);
            self.buf[1].extend(r);
        }
    }

    /// Starts the next item, fading it in over the last `fade` frames buffered. False when
    /// nothing is playable.
    async fn start_next(&mut self, now: i64, fade: usize, started: &mut Vec<Started>) -> bool {
        self.current = None;
        loop {
            let lists = &self.lists;
            let lib = |p: PlaylistId| -> Vec<TrackId> {
                lists
                    .get(&p)
                    .map(|l| l.iter().map(|t| t.id).collect())
                    .unwrap_or_default()
            };
            let Some(Pick { track, kind }) =
                self.dj
                    .next(&self.programme, self.jingles.as_ref(), now, &lib)
            else {
                return false;
            };
            let row = match self.lists.values().flatten().find(|t| t.id == track) {
                Some(t) => Some(t.clone()),
                None => self.store.track(track).await.ok().flatten(),
            };
            let loaded = match row.filter(|t| t.status == TrackStatus::Ready) {
                Some(t) => self.load(&t).await.map(|p| (p, t)),
                None => Err(format!("track {track} is not ready")),
            };
            match loaded {
                Ok((mut p, t)) => {
                    self.failures = 0;
                    // The incoming item's head, mixed into what is buffered of the outgoing one.
                    let fade = fade.min(self.buf[0].len());
                    let mut head: [Vec<f32>; 2] = [Vec::new(), Vec::new()];
                    while head[0].len() < fade && !p.ended {
                        let [l, r] = p.pull();
                        head[0].extend(l);
                        head[1].extend(r);
                    }
                    let fade = fade.min(head[0].len());
                    let offset = self.buf[0].len() - fade;
                    if fade > 0 {
                        let mut tail = self.buf.each_mut().map(|b| b.drain(offset..).collect());
                        crossfade(
                            &mut tail,
                            &[head[0][..fade].to_vec(), head[1][..fade].to_vec()],
                        );
                        for (b, t) in self.buf.iter_mut().zip(tail) {
                            b.extend(t);
                        }
                    }
                    self.buf[0].extend(head[0].drain(fade..));
                    self.buf[1].extend(head[1].drain(fade..));
                    started.push(Started {
                        track: t.id,
                        title: t.title.clone(),
                        kind,
                        offset,
                    });
                    self.current = Some(p);
                    return true;
                }
                Err(e) => {
                    tracing::warn!(track = %track, error = %e, "auto-DJ skips a track");
                    self.failures += 1;
                    let known = self.lists.values().map(Vec::len).sum::<usize>();
                    if self.failures > known.max(1) {
                        return false;
                    }
                }
            }
        }
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
            trim: Trim::new(self.settings.silence_threshold_dbfs, SILENCE_HOLD),
            gain: gain_of(track),
            ended: false,
        })
    }
}

/// Whether a channel's programme has anything to play now.
pub async fn playable(store: &dyn MetadataStore, c: &Channel) -> bool {
    let p = programme(store, c).await;
    let now = util::now_ms();
    let mut candidates: Vec<PlaylistId> = p.at(now).map(|w| w.playlist).into_iter().collect();
    candidates.extend(p.default);
    for pl in candidates {
        if !ready_tracks(store, pl).await.is_empty() {
            return true;
        }
    }
    // An event starting within the supervisor's reach needs the channel on air.
    let soon = p
        .events_between(now - super::station::EVENT_GRACE_MS, now + 10_000)
        .next()
        .is_some();
    soon
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

/// A playlist's ready tracks, in order.
pub async fn ready_tracks(store: &dyn MetadataStore, playlist: PlaylistId) -> Vec<Track> {
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
