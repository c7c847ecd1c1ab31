//! A running channel as the rest of the server sees it: its outputs, its live status, its
//! listeners and the door its engine listens on.

use super::core::Pcm48;
use super::mount::{Format, Mounts};
use super::output::Output;
use super::status::{ChannelEvent, Listeners, SourceInfo, State, Status};
use crate::store::ChannelId;
use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::{Mutex, RwLock};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use veza_hls::DateRange;

/// How a listener listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// LL-HLS (and plain HLS).
    Hls,
    /// WHEP.
    Webrtc,
}

impl Protocol {
    /// Its label in metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Hls => "hls",
            Protocol::Webrtc => "webrtc",
        }
    }
}

/// What the engine is told.
pub enum Ctl {
    /// A source connected: its PCM arrives on `pcm`.
    Attach {
        /// The source's number.
        id: u64,
        /// Its PCM.
        pcm: mpsc::Receiver<Pcm48>,
        /// Cancelled when it must go at once, what it has buffered included (its key was
        /// rotated, another source took over).
        drop: CancellationToken,
        /// What the API shows of it.
        info: SourceInfo,
    },
    /// A new title from source `id` (`/admin/metadata`, in-band tags).
    Title {
        /// The source.
        id: u64,
        /// The title.
        title: String,
    },
}

/// A push consumer's encoded frames (the Opus rendition), for WebRTC sessions.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The Opus packet.
    pub data: Bytes,
    /// Its decode time at 48 kHz.
    pub pts: u64,
    /// When the engine took the PCM block it was encoded from (its last sample had arrived).
    pub at: std::time::Instant,
}

/// A source slot: who is connected, and how to drop them.
struct Attached {
    id: u64,
    key_hash: String,
    drop: CancellationToken,
}

/// Why a source was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Another source is live (Icecast answers 403 "Mountpoint in use").
    Busy,
    /// The channel's engine has stopped.
    Stopped,
}

/// A running channel.
pub struct Channel {
    /// Its id.
    pub id: ChannelId,
    /// Its owner.
    pub owner: String,
    /// Its renditions, in the order of the multivariant playlist.
    pub outputs: Vec<Arc<Output>>,
    /// Parts per segment.
    pub parts_per_segment: u32,
    /// Its progressive mounts.
    pub mounts: Mounts,
    pub(super) status: RwLock<Status>,
    pub(super) dateranges: RwLock<VecDeque<DateRange>>,
    /// Bumped whenever `dateranges` changes.
    pub(super) dateranges_version: AtomicU64,
    sessions: DashMap<u128, (Protocol, AtomicU64, &'static str)>,
    /// Sessions started and progressive listeners by player family, for statistics.
    pub audience: super::audience::Audience,
    pub(super) consumers: DashMap<u64, mpsc::Sender<Frame>>,
    next_consumer: AtomicU64,
    pub(super) dropped_consumers: AtomicU64,
    events: broadcast::Sender<ChannelEvent>,
    ctl: mpsc::Sender<Ctl>,
    source: Mutex<Option<Attached>>,
    /// Whether the attached source delivers in real time: neither held back ahead of it nor
    /// silent. Set by the engine; a source that is not may be taken over by a new one.
    pub(super) source_on_time: AtomicBool,
    /// The connected source's measured bitrate, bits per second.
    source_bitrate: AtomicU64,
    next_source: AtomicU64,
    epoch: Instant,
    /// Cancelled when the engine stops.
    pub stopped: CancellationToken,
}

impl Channel {
    pub(super) fn new(
        id: ChannelId,
        owner: String,
        outputs: Vec<Arc<Output>>,
        parts_per_segment: u32,
        mounts: Mounts,
        ctl: mpsc::Sender<Ctl>,
    ) -> Channel {
        Channel {
            id,
            owner,
            outputs,
            parts_per_segment,
            mounts,
            status: RwLock::new(Status {
                state: State::Offline,
                source: None,
                now_playing: None,
                started_at: None,
            }),
            dateranges: RwLock::new(VecDeque::new()),
            dateranges_version: AtomicU64::new(0),
            sessions: DashMap::new(),
            audience: Default::default(),
            consumers: DashMap::new(),
            next_consumer: AtomicU64::new(0),
            dropped_consumers: AtomicU64::new(0),
            events: broadcast::channel(64).0,
            ctl,
            source: Mutex::new(None),
            source_on_time: AtomicBool::new(false),
            source_bitrate: AtomicU64::new(0),
            next_source: AtomicU64::new(1),
            epoch: Instant::now(),
            stopped: CancellationToken::new(),
        }
    }

    /// The live status, with the source's measured bitrate.
    pub fn status(&self) -> Status {
        let mut s = self.status.read().clone();
        if let Some(src) = s.source.as_mut() {
            src.bitrate = self.source_bitrate.load(Ordering::Relaxed);
        }
        s
    }

    /// A rendition by name.
    pub fn output(&self, name: &str) -> Option<&Arc<Output>> {
        self.outputs.iter().find(|o| o.name == name)
    }

    /// The bitrate in kb/s of the first rendition whose name starts with `prefix` (`aac-`), or 0.
    pub fn rendition_kbps(&self, prefix: &str) -> u32 {
        self.outputs
            .iter()
            .find(|o| o.name.starts_with(prefix))
            .map_or(0, |o| o.rendition.bitrate() / 1000)
    }

    /// Whether the channel encodes Opus, which its push consumers (WebRTC) receive.
    pub fn has_opus(&self) -> bool {
        self.outputs.iter().any(|o| o.name.starts_with("opus-"))
    }

    /// The SSE feed.
    pub fn subscribe(&self) -> broadcast::Receiver<ChannelEvent> {
        self.events.subscribe()
    }

    pub(super) fn announce(&self, e: ChannelEvent) {
        let _ = self.events.send(e);
    }

    /// Attaches a source authenticated by the key whose hash is `key_hash`. Returns its number,
    /// the sender its PCM goes to, and the token that is cancelled when it must go (its key was
    /// rotated, another source took over, the channel stopped or was deleted).
    ///
    /// One source at a time: a second is refused while the first delivers in real time (as
    /// Icecast refuses it, so a backup encoder that retries never cuts the live one off). A
    /// source with the channel's key takes over from one that does not: one held back ahead of
    /// real time (a file sent too fast, or the backlog of a source that already left) or one
    /// that went silent (a dead connection not yet timed out). The old one ends at once, with
    /// what it had buffered.
    pub async fn attach(
        &self,
        key_hash: &str,
        info: SourceInfo,
    ) -> Result<(u64, mpsc::Sender<Pcm48>, CancellationToken), Refused> {
        let (tx, rx) = mpsc::channel(16);
        let drop = self.stopped.child_token();
        let id = self.next_source.fetch_add(1, Ordering::Relaxed);
        {
            let mut slot = self.source.lock();
            // Checked under the slot's lock, which `retire` also takes: a source either attaches
            // to a running engine or is told to start a new one, never lost in between.
            if self.stopped.is_cancelled() {
                return Err(Refused::Stopped);
            }
            if let Some(old) = slot.as_ref().filter(|a| !a.drop.is_cancelled()) {
                let on_time = self.source_on_time.load(Ordering::Acquire);
                if on_time || old.key_hash != key_hash {
                    return Err(Refused::Busy);
                }
                tracing::info!(channel = %self.id, old = old.id, new = id, "a source takes over from one that is not on time");
                old.drop.cancel();
            }
            *slot = Some(Attached {
                id,
                key_hash: key_hash.to_string(),
                drop: drop.clone(),
            });
            self.source_on_time.store(true, Ordering::Release);
            self.source_bitrate.store(0, Ordering::Relaxed);
        }
        if self
            .ctl
            .send(Ctl::Attach {
                id,
                pcm: rx,
                drop: drop.clone(),
                info,
            })
            .await
            .is_err()
        {
            self.detach(id);
            return Err(Refused::Stopped);
        }
        Ok((id, tx, drop))
    }

    /// Stops the channel if no source holds its slot (an idle engine ending). False when a source
    /// attached meanwhile: the engine must go on.
    pub(super) fn retire(&self) -> bool {
        let slot = self.source.lock();
        if slot.as_ref().is_some_and(|a| !a.drop.is_cancelled()) {
            return false;
        }
        self.stopped.cancel();
        true
    }

    /// Frees the source slot of source `id`. What the engine has of it still plays out unless
    /// its drop token is cancelled too.
    pub fn detach(&self, id: u64) {
        let mut slot = self.source.lock();
        if slot.as_ref().is_some_and(|a| a.id == id) {
            *slot = None;
        }
    }

    /// Drops the connected source unless it authenticated with the key hashed `key_hash` (the
    /// key was rotated): it ends at once, with what it had buffered.
    pub fn keep_only_key(&self, key_hash: &str) {
        let mut slot = self.source.lock();
        if slot.as_ref().is_some_and(|a| a.key_hash != key_hash) {
            if let Some(a) = slot.take() {
                a.drop.cancel();
            }
        }
    }

    /// Whether source `id` still holds the slot.
    pub fn holds(&self, id: u64) -> bool {
        self.source.lock().as_ref().is_some_and(|a| a.id == id)
    }

    /// Records the source's measured bitrate.
    pub fn set_bitrate(&self, bits_per_second: u64) {
        self.source_bitrate
            .store(bits_per_second, Ordering::Relaxed);
    }

    /// A title for the source connected now (`/admin/metadata`); false when none is.
    pub fn set_title(&self, title: String) -> bool {
        let id = self.source.lock().as_ref().map(|a| a.id);
        id.is_some_and(|id| self.set_source_title(id, title))
    }

    /// A title from source `id` (its in-band tags). It shows from the instant that source is on
    /// air; a source that has gone changes nothing.
    pub fn set_source_title(&self, id: u64, title: String) -> bool {
        self.ctl.try_send(Ctl::Title { id, title }).is_ok()
    }

    /// Records a listener session seen now, with its `User-Agent`.
    pub fn seen(&self, session: u128, protocol: Protocol, agent: Option<&str>) {
        let now = self.epoch.elapsed().as_millis() as u64;
        match self.sessions.get(&session) {
            Some(s) => s.1.store(now, Ordering::Relaxed),
            None => {
                self.audience.started(match protocol {
                    Protocol::Hls => 0,
                    Protocol::Webrtc => 1,
                });
                let family = super::audience::family(agent);
                self.sessions
                    .insert(session, (protocol, AtomicU64::new(now), family));
            }
        }
    }

    /// Listeners now by player family (sessions as last counted, and progressive listeners).
    pub fn families(&self) -> Vec<(&'static str, u64)> {
        let mut all: std::collections::BTreeMap<&'static str, u64> = Default::default();
        for s in self.sessions.iter() {
            *all.entry(s.2).or_default() += 1;
        }
        for (f, n) in self.audience.progressive() {
            *all.entry(f).or_default() += n;
        }
        all.into_iter().collect()
    }

    /// Forgets a session (a WebRTC session that closed).
    pub fn forget(&self, session: u128) {
        self.sessions.remove(&session);
    }

    /// Listener counts, dropping sessions idle for longer than `idle`.
    pub fn listeners(&self, idle: Duration) -> Listeners {
        let now = self.epoch.elapsed().as_millis() as u64;
        let idle = idle.as_millis() as u64;
        self.sessions.retain(|_, (p, seen, _)| {
            *p == Protocol::Webrtc || now.saturating_sub(seen.load(Ordering::Relaxed)) <= idle
        });
        let mut l = Listeners::default();
        for s in self.sessions.iter() {
            match s.0 {
                Protocol::Hls => l.hls += 1,
                Protocol::Webrtc => l.webrtc += 1,
            }
        }
        let mount = |f| self.mounts.get(f).map_or(0, |m| m.listeners() as u64);
        l.mp3 = mount(Format::Mp3);
        l.aac = mount(Format::Aac);
        l.opus = mount(Format::Opus);
        l
    }

    /// A push consumer of the first Opus rendition's frames, with `queue` frames of slack. A
    /// consumer that falls further behind is dropped (its receiver ends) and counted.
    pub fn consume(&self, queue: usize) -> mpsc::Receiver<Frame> {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let id = self.next_consumer.fetch_add(1, Ordering::Relaxed);
        self.consumers.insert(id, tx);
        rx
    }

    /// Consumers attached now.
    pub fn consumers(&self) -> usize {
        self.consumers.len()
    }

    /// Hands a frame to every consumer without waiting: one that is full or gone is dropped.
    pub(super) fn fan_out(&self, frame: &Frame) {
        self.consumers
            .retain(|_, tx| match tx.try_send(frame.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.dropped_consumers.fetch_add(1, Ordering::Relaxed);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
    }

    /// Now-playing intervals for the playlists.
    pub fn dateranges(&self) -> Vec<DateRange> {
        self.dateranges.read().iter().cloned().collect()
    }

    /// Changes whenever the date ranges do.
    pub fn dateranges_version(&self) -> u64 {
        self.dateranges_version.load(Ordering::Acquire)
    }
}
