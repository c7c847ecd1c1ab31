//! The driver of one channel's [`Core`]: one task that feeds it from the sockets (the source's
//! PCM queue and drop token), the auto-DJ thread, the channel's control queue and the clock, and
//! carries what it decides to the channel's outputs, its status and SSE feed, and the outbox.
//! Every policy decision (which input plays, when a block is due, what now-playing says) is the
//! core's; this file only moves values.
//!
//! Back-pressure is the core's word: the source's queue is read only while
//! [`Core::wants_pcm`], the auto-DJ's only while [`Core::wants_autodj`], so a source sending
//! ahead of real time waits in its queue, then in its decoder, then in TCP.

use super::audience::{Minutes, Sample};
use super::autodj::Feed;
use super::channel::{Channel, Ctl, Frame};
use super::core::{Core, Input, Output, Pcm48, Stream, Tap};
use super::mount::Format;
use super::record::Rec;
use super::status::{Listeners, NowPlaying, Status};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::store::{Event, HistoryItem, ListenerMinute, MetadataStore};
use crate::util;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Date ranges a channel keeps for its playlists.
const DATERANGES: usize = 64;

/// How often listeners are counted.
const COUNT_EVERY: Duration = Duration::from_secs(1);

/// How long the MP3 encoder runs on after its mount's last listener left: a player that
/// reconnects finds it running, with its burst.
const TAP_LINGER: Duration = Duration::from_secs(10);

/// What the engine writes to the store, in order, off its loop.
enum Write {
    /// The item on air changed at this instant (Unix ms); `None`: nothing plays.
    OnAir(i64, Option<HistoryItem>),
    /// Listener minutes.
    Minutes(Vec<ListenerMinute>),
}

/// How often the minute in progress is written, so statistics are current within this.
const STATS_EVERY: Duration = Duration::from_secs(10);

/// Writes waiting for the store, at most: a store slower than this loses history, never delays
/// the channel.
const WRITES: usize = 256;

/// What the driver needs besides its channel and core.
pub struct Wiring {
    pub store: Arc<dyn MetadataStore>,
    pub outbox: Arc<Outbox>,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
    pub listener_idle: Duration,
    pub recorders: Arc<super::record::Recorders>,
}

/// The connected source's queue, as the driver reads it.
struct SourceQueue {
    id: u64,
    pcm: mpsc::Receiver<Pcm48>,
    drop: CancellationToken,
    ended: bool,
    /// Its recording (dropped with it, which ends the recording).
    rec: mpsc::Sender<Rec>,
}

/// A channel's driver.
pub struct Engine {
    ch: Arc<Channel>,
    core: Core,
    ctl: mpsc::Receiver<Ctl>,
    source: Option<SourceQueue>,
    autodj: Option<Feed>,
    w: Wiring,
    counted: Instant,
    listeners: Listeners,
    /// Since when the MP3 encoder has run without a listener (`Some(None)`: with listeners).
    tap: Option<Option<Instant>>,
    held: bool,
    /// The now-playing item last written to the history.
    on_air: Option<NowPlaying>,
    minutes: Minutes,
    /// When the minute in progress was last written.
    stats_written: Instant,
    writes: mpsc::Sender<Write>,
}

impl Engine {
    /// A driver of `core` for `ch`.
    pub fn new(
        ch: Arc<Channel>,
        core: Core,
        ctl: mpsc::Receiver<Ctl>,
        autodj: Option<Feed>,
        w: Wiring,
    ) -> Engine {
        let (writes, mut rx) = mpsc::channel(WRITES);
        let (store, id) = (w.store.clone(), ch.id);
        tokio::spawn(async move {
            while let Some(w) = rx.recv().await {
                let done = match &w {
                    Write::OnAir(at, next) => store.on_air(id, *at, next.as_ref()).await,
                    Write::Minutes(rows) => store.add_listener_minutes(rows).await,
                };
                if let Err(e) = done {
                    tracing::warn!(channel = %id, error = %e, "writing the channel's history or statistics failed");
                }
            }
        });
        Engine {
            on_air: None,
            minutes: Minutes::new(ch.id),
            stats_written: Instant::now(),
            writes,
            ch,
            core,
            ctl,
            source: None,
            autodj,
            w,
            counted: Instant::now(),
            listeners: Listeners::default(),
            tap: None,
            held: false,
        }
    }

    /// Runs until the channel is idle, stopped, failed, or shutdown.
    pub async fn run(mut self) {
        let stopped = self.ch.stopped.clone();
        let shutdown = self.w.shutdown.clone();
        self.core.handle_input(Instant::now(), Input::Tick);
        while let Some(deadline) = self.apply(Instant::now()) {
            let wants_pcm = self.core.wants_pcm();
            let wants_autodj = self.core.wants_autodj();
            let cut = self.source.as_ref().map(|s| s.drop.clone());
            let input = tokio::select! {
                biased;
                _ = stopped.cancelled() => break,
                _ = shutdown.cancelled() => break,
                c = self.ctl.recv() => match c {
                    Some(Ctl::Attach { id, pcm, drop, info }) => {
                        tracing::debug!(channel = %self.ch.id, source = id, "source attached to the engine");
                        let rec = self.w.recorders.start(self.ch.id, info.name.clone());
                        self.source = Some(SourceQueue { id, pcm, drop, ended: false, rec });
                        Input::Attach { id, info }
                    }
                    Some(Ctl::Title { id, title }) => {
                        if let Some(s) = self.source.as_ref().filter(|s| s.id == id) {
                            let _ = s.rec.try_send(Rec::Title(title.clone()));
                        }
                        Input::Title { id, title }
                    }
                    None => break,
                },
                // Guarded by the branch condition: the token is there.
                _ = async { cut.as_ref().expect("guarded").cancelled().await }, if cut.is_some() => {
                    // Rotated away or taken over: it goes now, with what it had buffered.
                    let id = self.source.take().map_or(0, |s| s.id);
                    Input::Dropped { id }
                }
                pcm = async {
                    // Guarded by the branch condition: a source is there.
                    self.source.as_mut().expect("guarded").pcm.recv().await
                }, if wants_pcm && self.source.as_ref().is_some_and(|s| !s.ended) => {
                    let s = self.source.as_mut().expect("guarded");
                    match pcm {
                        Some(pcm) => {
                            // The recording takes the source's own PCM, before any crossfade.
                            if s.rec.try_send(Rec::Pcm(pcm.clone())).is_err() {
                                self.w.metrics.live_consumers_dropped.inc();
                            }
                            Input::Pcm { id: s.id, pcm }
                        }
                        None => {
                            s.ended = true;
                            self.ch.detach(s.id);
                            Input::Ended { id: s.id }
                        }
                    }
                }
                block = async {
                    // Guarded by the branch condition: the auto-DJ is there.
                    self.autodj.as_mut().expect("guarded").blocks.recv().await
                }, if wants_autodj && self.autodj.is_some() => match block {
                    Some((pcm, started)) => Input::AutoDj { pcm, started },
                    None => {
                        tracing::warn!(channel = %self.ch.id, "the auto-DJ playlist has nothing playable");
                        self.autodj = None;
                        Input::AutoDjEnded
                    }
                },
                _ = tokio::time::sleep_until(deadline.into()) => Input::Tick,
            };
            let now = Instant::now();
            self.core.handle_input(now, input);
            self.follow_mounts(now);
            self.w
                .metrics
                .live_encode
                .inc_by(now.elapsed().as_secs_f64());
            if self.core.source().is_none() {
                self.source = None;
            }
            self.ch
                .source_on_time
                .store(self.core.source_on_time(now), Ordering::Release);
            if now.duration_since(self.counted) >= COUNT_EVERY {
                self.counted = now;
                self.count_listeners();
            }
        }
        self.finish();
    }

    /// Carries the core's outputs out. The instant it wants its next tick, or `None` when the
    /// channel must end (it failed, or it is idle and no source holds it).
    fn apply(&mut self, now: Instant) -> Option<Instant> {
        loop {
            match self.core.poll_output() {
                Output::Timeout(at) => return Some(at),
                Output::Part {
                    rendition,
                    part,
                    pdt_ms,
                } => {
                    if let Some(o) = self.ch.outputs.get(rendition) {
                        o.publish(part, pdt_ms);
                        self.w.metrics.live_parts.inc();
                    }
                }
                Output::Frame {
                    from,
                    data,
                    pts,
                    samples,
                } => {
                    let m = &self.ch.mounts;
                    if from == Stream::Tap {
                        m.mp3.push(&data, samples);
                        continue;
                    }
                    if let Some(mount) = m.of_rendition(from) {
                        mount.push(&data, samples);
                    }
                    if let Some(ts) = m.ts.as_ref().filter(|t| t.from == from) {
                        ts.push(&data, pts, samples, crate::util::now_ms());
                    }
                    if m.webrtc == Some(from) {
                        self.ch.fan_out(&Frame {
                            data: Bytes::from(data),
                            pts,
                            at: now,
                        });
                    }
                }
                Output::Status(s) => {
                    self.history(&s);
                    let title = s.now_playing.as_ref().map_or("", |n| n.title.as_str());
                    self.ch.mounts.set_title(title);
                    *self.ch.status.write() = s;
                }
                Output::Announce(e) => self.ch.announce(e),
                Output::Record(e) => self.record(e),
                Output::DateRange(d) => {
                    let mut all = self.ch.dateranges.write();
                    all.push_back(d);
                    while all.len() > DATERANGES {
                        all.pop_front();
                    }
                    self.ch.dateranges_version.fetch_add(1, Ordering::AcqRel);
                }
                Output::Idle => {
                    if self.ch.retire() {
                        return None;
                    }
                }
                Output::Failed(e) => {
                    tracing::error!(channel = %self.ch.id, error = %e, "live encoding failed; the channel stops");
                    return None;
                }
                Output::TapFailed(e) => {
                    tracing::error!(channel = %self.ch.id, error = %e, "the MP3 encoder failed; its mount stops");
                    self.tap = None;
                    self.ch.mounts.mp3.reset();
                }
            }
        }
    }

    /// Starts the MP3 encoder when its mount has a listener, and stops it a while after the
    /// last one left; holds the channel on air while any mount has a listener.
    fn follow_mounts(&mut self, now: Instant) {
        let m = &self.ch.mounts;
        let mp3 = m.mp3.listeners() > 0;
        match (self.tap, mp3) {
            (None, true) => {
                match veza_codecs::Mp3Encoder::new(veza_codecs::SampleRate::LOSSY, 2, m.mp3_bitrate)
                {
                    Ok(e) => {
                        self.core
                            .handle_input(now, Input::Tap(Some(Tap(Box::new(e)))));
                        self.tap = Some(None);
                    }
                    Err(e) => {
                        tracing::error!(channel = %self.ch.id, error = %e, "the MP3 encoder did not start")
                    }
                }
            }
            (Some(_), true) => self.tap = Some(None),
            (Some(None), false) => self.tap = Some(Some(now)),
            (Some(Some(since)), false) if now.duration_since(since) >= TAP_LINGER => {
                self.core.handle_input(now, Input::Tap(None));
                m.mp3.reset();
                self.tap = None;
            }
            _ => {}
        }
        let held = Format::ALL
            .iter()
            .any(|&f| m.get(f).is_some_and(|x| x.listeners() > 0));
        if held != self.held {
            self.held = held;
            self.core.handle_input(now, Input::Hold(held));
        }
    }

    fn record(&self, e: Event) {
        let store = self.w.store.clone();
        let outbox = self.w.outbox.clone();
        tokio::spawn(async move {
            match store.record_event(&e, util::now_ms()).await {
                Ok(()) => outbox.notify(),
                Err(err) => {
                    tracing::warn!(error = %err, kind = e.kind(), "a channel event was not recorded")
                }
            }
        });
    }

    /// Writes the item on air to the history when it changed.
    fn history(&mut self, s: &Status) {
        if s.now_playing == self.on_air {
            return;
        }
        self.on_air = s.now_playing.clone();
        let now = util::now_ms();
        let item = s.now_playing.as_ref().map(|np| {
            let started_at = chrono::DateTime::parse_from_rfc3339(&np.since)
                .map_or(now, |t| t.timestamp_millis());
            let (artist, title) = super::status::artist_and_title(np.kind, &np.title);
            HistoryItem {
                id: uuid::Uuid::now_v7(),
                channel_id: self.ch.id,
                kind: np.kind.as_str().into(),
                title,
                artist,
                track_id: np.track_id,
                started_at,
                ended_at: None,
                listeners: self.listeners.total() as i64,
            }
        });
        let at = item.as_ref().map_or(now, |i| i.started_at);
        if self.writes.try_send(Write::OnAir(at, item)).is_err() {
            tracing::warn!(channel = %self.ch.id, "the history writer is behind; an item is not recorded");
        }
    }

    fn count_listeners(&mut self) {
        let l = self.ch.listeners(self.w.listener_idle);
        let sample = Sample {
            protocols: [l.hls, l.webrtc, l.mp3 + l.aac + l.opus],
            families: self.ch.families(),
            started: self.ch.audience.started_so_far(),
        };
        let mut rows = self.minutes.add(util::now_ms(), &sample);
        if self.stats_written.elapsed() >= STATS_EVERY {
            self.stats_written = Instant::now();
            rows.extend(self.minutes.current());
        }
        if !rows.is_empty() {
            let _ = self.writes.try_send(Write::Minutes(rows));
        }
        let id = self.ch.id.to_string();
        let m = &self.w.metrics.channel_listeners;
        m.with_label_values(&[id.as_str(), "hls"]).set(l.hls as i64);
        m.with_label_values(&[id.as_str(), "webrtc"])
            .set(l.webrtc as i64);
        for f in Format::ALL {
            if let Some(mount) = self.ch.mounts.get(f) {
                m.with_label_values(&[id.as_str(), f.extension()])
                    .set(mount.listeners() as i64);
                self.w
                    .metrics
                    .live_consumers_dropped
                    .inc_by(mount.take_dropped());
            }
        }
        let corrections = self.core.corrections() as i64;
        let gauge = self
            .w
            .metrics
            .live_drift_corrections
            .with_label_values(&[id.as_str()]);
        if corrections > gauge.get() {
            let _behind = tracing::info_span!(
                "live event",
                otel.name = "channel behind real time",
                channel = %id,
            )
            .entered();
            tracing::warn!(channel = %id, corrections, "the channel fell behind real time; its media clock was moved up");
        }
        gauge.set(corrections);
        let dropped = self.ch.dropped_consumers.swap(0, Ordering::Relaxed);
        self.w.metrics.live_consumers_dropped.inc_by(dropped);
        if l != self.listeners {
            self.listeners = l;
            self.ch.announce(super::status::ChannelEvent::Listeners(l));
        }
    }

    fn finish(mut self) {
        let now = Instant::now();
        self.core.finish(now);
        self.apply(now);
        let _ = self.writes.try_send(Write::OnAir(util::now_ms(), None));
        let rows = self.minutes.flush();
        if !rows.is_empty() {
            let _ = self.writes.try_send(Write::Minutes(rows));
        }
        for o in &self.ch.outputs {
            o.end();
        }
        self.ch.mounts.end();
        if let Some(s) = self.source.take() {
            self.ch.detach(s.id);
        }
        let id = self.ch.id.to_string();
        let m = &self.w.metrics;
        for protocol in ["hls", "webrtc", "mp3", "aac", "opus"] {
            let _ = m
                .channel_listeners
                .remove_label_values(&[id.as_str(), protocol]);
        }
        let _ = m.live_drift_corrections.remove_label_values(&[id.as_str()]);
        self.ch.stopped.cancel();
        // Push consumers (WebRTC listeners) see their frames end.
        self.ch.consumers.clear();
    }
}
