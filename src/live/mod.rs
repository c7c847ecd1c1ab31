//! `live`: live channels. Each running channel has one engine task that takes PCM from its
//! source (an Icecast source client, later WHIP) or its auto-DJ, encodes it once per rendition
//! and publishes LL-HLS parts that every listener reads ([`Output`]).
//!
//! A channel runs on one node at a time: the one holding its lease row in the metadata store.
//! The node renews the lease while the channel runs; another node refuses its sources (409) and
//! redirects its listeners (307) to the holder. [`supervisor`] keeps auto-DJ channels on air and
//! leases renewed.
//!
//! ```text
//! source ─► decode ─► stereo 48 kHz ─┐
//!                                    ├─► mixer (crossfade) ─► encoder per rendition ─► parts
//! auto-DJ ─► decode ─► stereo 48 kHz ┘                         (once)                   │
//!                                                                 listeners read the same ◄┘
//! ```

pub mod audience;
mod autodj;
mod channel;
mod convert;
pub mod core;
mod engine;
mod keys;
pub mod mount;
mod output;
mod playlist;
mod record;
pub mod station;
mod status;
pub mod ts;

pub use self::core::{Pcm48, NOW_PLAYING_CLASS};
pub use autodj::{programme as autodj_programme, ready_tracks};
pub use channel::{Channel, Frame, Protocol, Refused};
pub use convert::ToStereo48;
pub use keys::{check_stream_key, key_hash, key_matches, new_key, Admission, KeyRefused};
pub use output::{Output, PartOut, SegmentOut, Window};
pub use playlist::{render_media, PART_HOLD_BACK, TARGET_DURATION};
pub use status::{
    artist_and_title, ChannelEvent, Listeners, NowPlaying, SourceInfo, State, Status,
};

use crate::config;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::rendition::Rendition;
use crate::storage::Storage;
use crate::store::{self, ChannelId, Lease, MetadataStore};
use crate::util;
use dashmap::DashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use veza_hls::{PartCutter, GRID, LOSSY_TIMESCALE};

/// Parts per segment: 6 × 320 ms = 1.92 s segments.
pub const PARTS_PER_SEGMENT: u32 = 6;

/// `PART-TARGET`, seconds.
pub const PART_TARGET: f64 = GRID as f64 / LOSSY_TIMESCALE as f64;

/// How long a live HLS listener counts after its last request: a low-latency client asks
/// for every part (320 ms), a plain HLS one for the playlist every target duration (2 s), so one
/// that has asked nothing for two target durations has left.
pub const HLS_LISTENER_IDLE: std::time::Duration = std::time::Duration::from_millis(4_000);

/// Segment length in ticks.
const SEGMENT_TICKS: u64 = GRID * PARTS_PER_SEGMENT as u64;

/// Why a channel did not start here.
#[derive(Debug)]
pub enum StartError {
    /// Another node holds the channel's lease.
    Elsewhere(Lease),
    /// The store or an encoder failed.
    Failed(String),
}

/// Why a source could not go live here.
#[derive(Debug)]
pub enum GoLiveError {
    /// The channel did not start here.
    Start(StartError),
    /// Another source is live on the channel: one source at a time.
    Busy,
    /// The channel's engine kept ending as the source arrived; the source may try again.
    Restarting,
}

/// A source attached to its channel: its number, where its PCM goes, and the token cancelled
/// when it must go (its key was rotated, the channel stopped or was deleted).
pub type Attached = (u64, mpsc::Sender<Pcm48>, CancellationToken);

/// What is told of every channel a node starts.
pub type StartHook = Box<dyn Fn(&Arc<Channel>) + Send + Sync>;

/// This node's live channels.
pub struct Live {
    /// This node's id in leases.
    pub node: String,
    /// `[live]`.
    pub config: config::Live,
    /// This node's public URL, written in its leases.
    pub public_url: String,
    /// How long an HLS listener counts after its last request (at most
    /// [`HLS_LISTENER_IDLE`]).
    pub listener_idle: Duration,
    channels: Arc<DashMap<ChannelId, Arc<Channel>>>,
    /// The metadata store (relays read their channels from it).
    pub(crate) store: Arc<dyn MetadataStore>,
    storage: Storage,
    outbox: Arc<Outbox>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    starting: tokio::sync::Mutex<()>,
    /// Told of every channel started here (the cluster's relay of channel events).
    on_start: std::sync::OnceLock<StartHook>,
    /// Records live shows.
    pub recorders: Arc<record::Recorders>,
}

impl Live {
    /// No channel running yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: config::Live,
        public_url: String,
        listener_idle: Duration,
        store: Arc<dyn MetadataStore>,
        storage: Storage,
        outbox: Arc<Outbox>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
        queue: Arc<crate::queue::Queue>,
        spool: std::path::PathBuf,
    ) -> Live {
        let node = if config.node_id.is_empty() {
            format!("node-{}", uuid::Uuid::new_v4().simple())
        } else {
            config.node_id.clone()
        };
        let recorders = Arc::new(record::Recorders::new(
            store.clone(),
            storage.clone(),
            queue,
            spool,
            config.record_max_seconds,
        ));
        Live {
            recorders,
            node,
            config,
            public_url,
            listener_idle,
            channels: Arc::new(DashMap::new()),
            store,
            storage,
            outbox,
            metrics,
            shutdown,
            starting: tokio::sync::Mutex::new(()),
            on_start: std::sync::OnceLock::new(),
        }
    }

    /// Calls `hook` with every channel this node starts from now on (once).
    pub fn on_start(&self, hook: StartHook) {
        let _ = self.on_start.set(hook);
    }

    /// The channel, if it runs on this node.
    pub fn running(&self, id: ChannelId) -> Option<Arc<Channel>> {
        self.channels
            .get(&id)
            .map(|c| c.clone())
            .filter(|c| !c.stopped.is_cancelled())
    }

    /// The channel as this node last ran it, stopped or not: a stopped one still answers its
    /// last playlist (with `EXT-X-ENDLIST`) until the supervisor forgets it.
    pub fn get(&self, id: ChannelId) -> Option<Arc<Channel>> {
        self.channels.get(&id).map(|c| c.clone())
    }

    /// Every channel running here.
    pub fn all_running(&self) -> Vec<Arc<Channel>> {
        self.channels
            .iter()
            .filter(|c| !c.stopped.is_cancelled())
            .map(|c| c.clone())
            .collect()
    }

    /// Channels running here.
    pub fn count(&self) -> usize {
        self.channels
            .iter()
            .filter(|c| !c.stopped.is_cancelled())
            .count()
    }

    /// The live status and listeners of a channel another node runs, as that node last wrote
    /// them with its lease (at most a third of `live.lease_seconds` old), and that node's URL.
    pub async fn remote(&self, id: ChannelId) -> Option<(Option<Remote>, String)> {
        let lease = self.elsewhere(id).await?;
        Some((serde_json::from_str(&lease.status).ok(), lease.url))
    }

    /// The node that runs a channel elsewhere, if one does.
    pub async fn elsewhere(&self, id: ChannelId) -> Option<Lease> {
        let lease = self.store.lease(id, util::now_ms()).await.ok()??;
        (lease.node != self.node).then_some(lease)
    }

    /// Starts a channel here (or returns it running), taking its lease.
    pub async fn start(&self, row: &store::Channel) -> Result<Arc<Channel>, StartError> {
        let _one_at_a_time = self.starting.lock().await;
        if let Some(c) = self.running(row.id) {
            return Ok(c);
        }
        let now = util::now_ms();
        let lease = self
            .store
            .acquire_lease(
                row.id,
                &self.node,
                &self.public_url,
                "",
                now + self.lease_ms(),
                now,
            )
            .await
            .map_err(|e| StartError::Failed(e.to_string()))?;
        if lease.node != self.node {
            return Err(StartError::Elsewhere(lease));
        }
        let names = if row.renditions.is_empty() {
            &self.config.renditions
        } else {
            &row.renditions
        };
        // Segment numbers follow the wall clock (one per 1.92 s), so a channel that restarts
        // never reuses the name of a part a CDN may still cache.
        let mut msn = (now.max(0) as u64) / (SEGMENT_TICKS * 1000 / LOSSY_TIMESCALE as u64);
        if let Some(old) = self.channels.get(&row.id) {
            if let Some(e) = old.outputs.first().and_then(|o| o.edge()) {
                msn = msn.max(e.msn + 1);
            }
        }
        // The media timeline (`tfdt`, `emsg` times, RTP) starts at zero on every start, as
        // players expect (GStreamer's clock-synced sinks wait out a timeline that starts at the
        // Unix epoch in samples); `EXT-X-PROGRAM-DATE-TIME` carries the wall clock.
        let origin = 0;
        let mut encodings = Vec::new();
        let mut outputs = Vec::new();
        let bounds = mount::Bounds {
            burst: self.config.burst_bytes,
            queue: self.config.listener_queue_bytes,
        };
        let (mut aac_mount, mut opus_mount, mut ts) = (None, None, None);
        for (i, name) in names.iter().enumerate() {
            let rendition = Rendition::parse_live(name).map_err(StartError::Failed)?;
            let (encoder, init) = rendition.live_encoder().map_err(StartError::Failed)?;
            let bitrate = rendition.bitrate();
            let output = Arc::new(Output::new(
                rendition,
                bytes::Bytes::from(init),
                self.config.dvr_seconds,
            ));
            let cutter = PartCutter::new(LOSSY_TIMESCALE, GRID, PARTS_PER_SEGMENT, origin, msn)
                .map_err(|e| StartError::Failed(e.to_string()))?;
            // The first AAC and the first Opus rendition feed the mounts (and Opus, WebRTC).
            let fans = match (encoder.config(), &aac_mount, &opus_mount) {
                (veza_codecs::CodecConfig::Aac { asc }, None, _) => {
                    aac_mount = Some((
                        i,
                        mount::Mount::aac(&asc, bounds).map_err(StartError::Failed)?,
                    ));
                    // TS segments are numbered by the 6 s slots since the epoch, so that a
                    // restarted channel never reuses a number.
                    let first = crate::util::now_ms() as u64 / (ts::TS_SEGMENT.as_millis() as u64);
                    ts = Some(
                        ts::TsStream::new(core::Stream::Rendition(i), &asc, bitrate, first)
                            .map_err(StartError::Failed)?,
                    );
                    true
                }
                (veza_codecs::CodecConfig::Opus { pre_skip, .. }, _, None) => {
                    let serial = rand::random::<u32>();
                    let m =
                        mount::Mount::opus(pre_skip, serial, bounds).map_err(StartError::Failed)?;
                    opus_mount = Some((i, m));
                    true
                }
                _ => false,
            };
            encodings.push(core::Encoding::new(encoder, cutter, origin, fans));
            outputs.push(output);
        }
        let (ctl_tx, ctl_rx) = tokio::sync::mpsc::channel(32);
        let ch = Arc::new(Channel::new(
            row.id,
            row.owner.clone(),
            outputs,
            PARTS_PER_SEGMENT,
            mount::Mounts::new(
                if row.mp3_kbps > 0 {
                    row.mp3_kbps * 1000
                } else {
                    self.config.mp3_bitrate_kbps * 1000
                },
                aac_mount,
                opus_mount,
                ts,
                bounds,
            ),
            ctl_tx,
        ));
        let scheduled = self.store.schedule(row.id).await.ok().flatten().is_some();
        let autodj = if row.playlist_id.is_some() || scheduled {
            Some(
                autodj::Feed::spawn(self.store.clone(), self.storage.clone(), row, core::BLOCK)
                    .map_err(|e| StartError::Failed(format!("starting the auto-DJ thread: {e}")))?,
            )
        } else {
            None
        };
        let core = core::Core::new(
            core::Config {
                channel: row.id,
                owner: row.owner.clone(),
                title: row.title.clone(),
                origin,
                lead: Duration::from_secs_f64(self.config.lead_seconds),
                crossfade: Duration::from_secs_f64(self.config.crossfade_seconds),
                idle_after: Duration::from_secs_f64(self.config.source_timeout_seconds),
                autodj: autodj.is_some(),
            },
            encodings,
            std::time::Instant::now(),
            now,
        );
        let engine = engine::Engine::new(
            ch.clone(),
            core,
            ctl_rx,
            autodj,
            engine::Wiring {
                store: self.store.clone(),
                outbox: self.outbox.clone(),
                metrics: self.metrics.clone(),
                shutdown: self.shutdown.clone(),
                listener_idle: self.listener_idle,
                recorders: self.recorders.clone(),
            },
        );
        let store = self.store.clone();
        let node = self.node.clone();
        let id = row.id;
        let registry = self.channels.clone();
        let this = ch.clone();
        tokio::spawn(async move {
            engine.run().await;
            // A replacement started here (a restart after an edit) holds the same lease row:
            // only the last engine of a channel on this node gives it up.
            let replaced = registry
                .get(&id)
                .is_some_and(|c| !Arc::ptr_eq(c.value(), &this));
            if replaced {
                return;
            }
            if let Err(e) = store.release_lease(id, &node).await {
                tracing::warn!(channel = %id, error = %e, "releasing a channel lease failed");
            }
        });
        self.channels.insert(row.id, ch.clone());
        if let Some(hook) = self.on_start.get() {
            hook(&ch);
        }
        tracing::info!(channel = %row.id, node = %self.node, "channel started");
        Ok(ch)
    }

    /// Starts the channel of `row` here if it is not running and attaches a source whose key
    /// hashes to `key_hash`: the one way Icecast and WHIP sources go live. An idle engine may
    /// be ending just as the source arrives; a new one is then started, up to three times.
    pub async fn go_live(
        &self,
        row: &store::Channel,
        key_hash: &str,
        info: SourceInfo,
    ) -> Result<(Arc<Channel>, Attached), GoLiveError> {
        for _ in 0..3 {
            let channel = self.start(row).await.map_err(GoLiveError::Start)?;
            match channel.attach(key_hash, info.clone()).await {
                Ok(attached) => return Ok((channel, attached)),
                Err(Refused::Busy) => return Err(GoLiveError::Busy),
                Err(Refused::Stopped) => continue,
            }
        }
        Err(GoLiveError::Restarting)
    }

    /// Stops a channel here (deleted, or changed so that it must restart).
    pub fn stop(&self, id: ChannelId) {
        if let Some((_, c)) = self.channels.remove(&id) {
            c.stopped.cancel();
        }
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.config.lease_seconds.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

/// Keeps leases renewed, auto-DJ channels on air and the registry free of stopped channels,
/// until shutdown.
pub async fn supervisor(live: Arc<Live>) {
    let every = Duration::from_millis((live.lease_ms() / 3).max(500) as u64);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = live.shutdown.cancelled() => break,
        }
        supervise_once(&live).await;
    }
    for c in live.channels.iter() {
        c.stopped.cancel();
    }
}

/// What the node running a channel tells the others through its lease.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Remote {
    /// The live status.
    pub status: Status,
    /// Listeners on that node.
    pub listeners: Listeners,
}

async fn supervise_once(live: &Live) {
    // Stopped channels stay a few seconds so late playlist requests see EXT-X-ENDLIST.
    live.channels.retain(|_, c| !c.stopped.is_cancelled());
    let running: Vec<Arc<Channel>> = live.channels.iter().map(|c| c.clone()).collect();
    for c in running {
        // A channel deleted or re-keyed through another node: follow the store.
        match live.store.channel(c.id).await {
            Ok(None) => {
                live.stop(c.id);
                continue;
            }
            Ok(Some(row)) => live.key_changed(row.id, &row.key_hash),
            Err(_) => {}
        }
        let now = util::now_ms();
        let status = serde_json::to_string(&Remote {
            status: c.status(),
            listeners: c.listeners(live.listener_idle),
        })
        .unwrap_or_default();
        match live
            .store
            .acquire_lease(
                c.id,
                &live.node,
                &live.public_url,
                &status,
                now + live.lease_ms(),
                now,
            )
            .await
        {
            Ok(l) if l.node != live.node => {
                tracing::warn!(channel = %c.id, holder = %l.node, "lost a channel lease; stopping it here");
                live.stop(c.id);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(channel = %c.id, error = %e, "renewing a channel lease failed")
            }
        }
    }
    let Ok(autodj) = live.store.autodj_channels().await else {
        return;
    };
    for row in autodj {
        if live.running(row.id).is_some() || live.elsewhere(row.id).await.is_some() {
            continue;
        }
        if !autodj::playable(live.store.as_ref(), &row).await {
            continue;
        }
        match live.start(&row).await {
            Ok(_) | Err(StartError::Elsewhere(_)) => {}
            Err(StartError::Failed(e)) => {
                tracing::warn!(channel = %row.id, error = %e, "starting an auto-DJ channel failed")
            }
        }
    }
}
