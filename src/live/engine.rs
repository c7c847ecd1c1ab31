//! The engine of one channel: its sources switched at the PCM level, encoded once per rendition,
//! cut into parts and published. One task per channel drives it.
//!
//! Each turn produces one 20 ms block (960 frames at 48 kHz) from the live source when it has
//! one buffered, else from the auto-DJ, crossfading when the input changes. Blocks are produced
//! no earlier than the clock ([`Clock`]) says they are due, whatever the input: a part is never
//! published before its date. A source that sends ahead waits in its buffer (at most
//! `live.lead_seconds`), then in its queue, then in TCP. A source that falls silent for half a
//! second is replaced by the auto-DJ, or by silence on a channel without one, so that media
//! time keeps up with the wall clock and dates stay consistent with durations. Every
//! rendition's encoder gets the same block, and every listener reads the same parts: adding
//! listeners adds no encoder work.

use super::autodj::{Feed, Started};
use super::channel::{Channel, ChannelEvent, Ctl, Frame, NowPlaying, Pcm48, State};
use super::clock::Clock;
use super::mixer::{Block, Input, Mixer};
use super::output::Output;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::store::{Event, MetadataStore, TrackId};
use crate::util;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use veza_codecs::Encoder;
use veza_hls::{emsg_id3, DateRange, PartCutter, LOSSY_TIMESCALE};

/// Frames per turn: one Opus frame.
pub const BLOCK: usize = 960;

/// How long a live source may leave its buffer empty before the auto-DJ (or silence) fills in.
const UNDERRUN: Duration = Duration::from_millis(500);

/// `CLASS` of now-playing date ranges.
pub const NOW_PLAYING_CLASS: &str = "com.veza.now-playing";

/// One rendition being encoded.
pub struct Lane {
    pub(super) encoder: Box<dyn Encoder>,
    pub(super) cutter: PartCutter,
    pub(super) output: Arc<Output>,
    pub(super) pts: u64,
    pub(super) emsg: Option<Vec<u8>>,
    pub(super) fan_out: bool,
}

struct LiveIn {
    id: u64,
    pcm: mpsc::Receiver<Pcm48>,
    /// Cancelled when the source must go at once, buffer included.
    drop: CancellationToken,
    buf: [VecDeque<f32>; 2],
    last: Instant,
    closed: bool,
    /// No block taken from it yet.
    fresh: bool,
}

/// What the engine needs besides its channel.
pub struct Wiring {
    pub store: Arc<dyn MetadataStore>,
    pub outbox: Arc<Outbox>,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
    pub source_timeout: Duration,
    /// How far ahead of the wall clock a live source may run before it is held back
    /// (`live.lead_seconds`): the decoded PCM the engine takes ahead of what it encodes. Past it
    /// the source's PCM waits in its queue, its decoder waits, its reads stop and TCP holds it
    /// back, so memory stays bounded in seconds whatever the source's bitrate or pace.
    pub lead: Duration,
    pub crossfade_frames: usize,
    pub listener_idle: Duration,
}

/// A channel's engine.
pub struct Engine {
    ch: Arc<Channel>,
    lanes: Vec<Lane>,
    ctl: mpsc::Receiver<Ctl>,
    live: Option<LiveIn>,
    autodj: Option<Feed>,
    mixer: Mixer,
    /// Paces production and dates parts (`EXT-X-PROGRAM-DATE-TIME`): dates follow media time,
    /// so they only move forward, by each part's duration (only a starved engine moves them on,
    /// once).
    clock: Clock,
    /// Tick of the next input frame.
    tick: u64,
    origin: u64,
    w: Wiring,
    titles: u32,
    turns: u64,
    listeners: super::channel::Listeners,
}

impl Engine {
    /// An engine whose timeline starts at `origin` ticks.
    pub fn new(
        ch: Arc<Channel>,
        lanes: Vec<Lane>,
        ctl: mpsc::Receiver<Ctl>,
        autodj: Option<Feed>,
        origin: u64,
        w: Wiring,
    ) -> Engine {
        Engine {
            clock: Clock::new(origin, Instant::now(), util::now_ms()),
            mixer: Mixer::new(w.crossfade_frames.max(1), Input::Silence),
            ch,
            lanes,
            ctl,
            live: None,
            autodj,
            tick: origin,
            origin,
            w,
            titles: 0,
            turns: 0,
            listeners: Default::default(),
        }
    }

    /// Runs until nothing is left to play, the channel is stopped, or shutdown.
    pub async fn run(mut self) {
        let stopped = self.ch.stopped.clone();
        loop {
            if stopped.is_cancelled() || self.w.shutdown.is_cancelled() {
                break;
            }
            let Some(block) = self.next_block().await else {
                break;
            };
            if let Some(wake) =
                self.clock
                    .gate(self.tick, Duration::ZERO, Instant::now(), util::now_ms())
            {
                tokio::select! {
                    _ = tokio::time::sleep_until(wake.into()) => {}
                    _ = stopped.cancelled() => break,
                    _ = self.w.shutdown.cancelled() => break,
                }
            }
            if let Err(e) = self.encode(&block) {
                tracing::error!(channel = %self.ch.id, error = %e, "live encoding failed; the channel stops");
                break;
            }
            self.turns += 1;
            if self.turns.is_multiple_of(50) {
                self.count_listeners();
            }
        }
        self.finish();
    }

    fn control(&mut self, c: Ctl) {
        match c {
            Ctl::Attach { id, pcm, drop } => {
                tracing::debug!(channel = %self.ch.id, source = id, "source attached to the engine");
                self.live = Some(LiveIn {
                    id,
                    pcm,
                    drop,
                    buf: [VecDeque::new(), VecDeque::new()],
                    last: Instant::now(),
                    closed: false,
                    fresh: true,
                });
            }
            Ctl::Title(t) => self.now_playing(t, None, 0),
        }
    }

    /// The next block, or `None` when nothing is left to play.
    async fn next_block(&mut self) -> Option<Block> {
        loop {
            while let Ok(c) = self.ctl.try_recv() {
                self.control(c);
            }
            if self.live.as_ref().is_some_and(|l| l.drop.is_cancelled()) {
                // Rotated away or taken over: it goes now, with what it had buffered.
                self.live = None;
                self.ch.clear_source_if_free();
                continue;
            }
            let buffer =
                ((self.w.lead.as_secs_f64() * super::clock::RATE as f64) as usize).max(BLOCK);
            if let Some(live) = self.live.as_mut() {
                while live.buf[0].len() < buffer {
                    match live.pcm.try_recv() {
                        Ok([l, r]) => {
                            live.last = Instant::now();
                            live.buf[0].extend(l);
                            live.buf[1].extend(r);
                        }
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            live.closed = true;
                            break;
                        }
                        Err(mpsc::error::TryRecvError::Empty) => break,
                    }
                }
                let held = live.buf[0].len() >= buffer;
                let on_time = !held && live.last.elapsed() < UNDERRUN;
                self.ch
                    .source_on_time
                    .store(on_time, std::sync::atomic::Ordering::Release);
                if live.buf[0].len() >= BLOCK {
                    let l: Vec<f32> = live.buf[0].drain(..BLOCK).collect();
                    let r: Vec<f32> = live.buf[1].drain(..BLOCK).collect();
                    if std::mem::take(&mut live.fresh) {
                        // A new source is paced from its first sample's arrival (the samples
                        // still buffered arrived after it), not by what an earlier source
                        // sent; dates never go back.
                        let backlog = Duration::from_micros(
                            live.buf[0].len() as u64 * 1_000_000 / super::clock::RATE,
                        );
                        let now = Instant::now();
                        let at = now.checked_sub(backlog).unwrap_or(now);
                        self.clock.restart(
                            self.tick,
                            at,
                            util::now_ms() - backlog.as_millis() as i64,
                        );
                    }
                    self.mixer.switch(Input::Live);
                    self.set_state(State::Live);
                    let prev = match self.mixer.fading() {
                        Some(Input::AutoDj) => self.autodj_block().await,
                        _ => None,
                    };
                    return Some(self.mixer.mix([l, r], prev.as_ref()));
                }
                if live.closed {
                    let id = live.id;
                    self.live = None;
                    self.ch.detach(id);
                    self.ch.clear_source_if_free();
                    continue;
                }
                let starved = live.last.elapsed() >= UNDERRUN;
                if self.autodj.is_some() && (self.mixer.current() != Input::Live || starved) {
                    if let Some(b) = self.play_autodj().await {
                        return Some(b);
                    }
                    continue;
                }
                if starved && self.autodj.is_none() {
                    // No auto-DJ to fill in: silence keeps media time with the wall clock until
                    // the source sends again (or times out).
                    let prev = live
                        .buf
                        .each_mut()
                        .map(|b| b.drain(..).collect::<Vec<f32>>());
                    self.mixer.switch(Input::Silence);
                    let silence = [vec![0.0; BLOCK], vec![0.0; BLOCK]];
                    let prev = (!prev[0].is_empty()).then_some(prev);
                    return Some(self.mixer.mix(silence, prev.as_ref()));
                }
                let underrun_at = live.last + UNDERRUN;
                // Wait for the source (it paces the channel), a control message or the end.
                let stopped = self.ch.stopped.clone();
                let shutdown = self.w.shutdown.clone();
                let Some(live) = self.live.as_mut() else {
                    continue;
                };
                let cut = live.drop.clone();
                tokio::select! {
                    _ = cut.cancelled() => {}
                    _ = tokio::time::sleep_until(underrun_at.into()), if self.autodj.is_none() => {}
                    pcm = live.pcm.recv() => match pcm {
                        Some([l, r]) => {
                            live.last = Instant::now();
                            live.buf[0].extend(l);
                            live.buf[1].extend(r);
                        }
                        None => live.closed = true,
                    },
                    c = self.ctl.recv() => match c {
                        Some(c) => self.control(c),
                        None => return None,
                    },
                    _ = stopped.cancelled() => return None,
                    _ = shutdown.cancelled() => return None,
                }
                continue;
            }
            if self.autodj.is_some() {
                if let Some(b) = self.play_autodj().await {
                    return Some(b);
                }
                continue;
            }
            // Nothing to play: wait a source timeout for a source to (re)connect.
            self.mixer.switch(Input::Silence);
            self.set_state(State::Offline);
            tokio::select! {
                c = self.ctl.recv() => match c {
                    Some(c) => self.control(c),
                    None => return None,
                },
                _ = tokio::time::sleep(self.w.source_timeout) => {
                    if self.ch.retire() {
                        return None;
                    }
                }
                _ = self.ch.stopped.cancelled() => return None,
                _ = self.w.shutdown.cancelled() => return None,
            }
        }
    }

    /// An auto-DJ block as the current input (switching to it), or `None` when the auto-DJ has
    /// nothing to play (it is then dropped).
    async fn play_autodj(&mut self) -> Option<Block> {
        let b = self.autodj_block().await?;
        if self.mixer.current() != Input::AutoDj {
            // The live source is gone or starved: its buffer is what fades out.
            let prev = self.live.as_mut().map(|l| {
                let n = l.buf[0].len().min(BLOCK);
                let left: Vec<f32> = l.buf[0].drain(..n).collect();
                let right: Vec<f32> = l.buf[1].drain(..n).collect();
                [left, right]
            });
            self.mixer.switch(Input::AutoDj);
            self.set_state(State::Autodj);
            return Some(self.mixer.mix(b, prev.as_ref()));
        }
        self.set_state(State::Autodj);
        Some(self.mixer.mix(b, None))
    }

    async fn autodj_block(&mut self) -> Option<Block> {
        let adj = self.autodj.as_mut()?;
        match adj.blocks.recv().await {
            Some((b, started)) => {
                for Started {
                    track,
                    title,
                    offset,
                } in started
                {
                    self.now_playing(title, Some(track), offset);
                }
                Some(b)
            }
            None => {
                tracing::warn!(channel = %self.ch.id, "the auto-DJ playlist has nothing playable");
                self.autodj = None;
                None
            }
        }
    }

    fn encode(&mut self, block: &Block) -> Result<(), String> {
        let started = Instant::now();
        let planes = [block[0].as_slice(), block[1].as_slice()];
        for lane in &mut self.lanes {
            let packets = lane.encoder.push(&planes).map_err(|e| e.to_string())?;
            for p in packets {
                let pts = lane.pts;
                lane.pts += u64::from(p.duration);
                if lane.fan_out {
                    self.ch.fan_out(&Frame {
                        data: Bytes::copy_from_slice(&p.data),
                        pts,
                        at: started,
                    });
                }
                if let Some(mut part) = lane
                    .cutter
                    .push(p.data, p.duration)
                    .map_err(|e| e.to_string())?
                {
                    if let Some(e) = lane.emsg.take() {
                        part.data = with_emsg(part.data, &e, part.index == 0);
                    }
                    let pdt = self.clock.unix_ms(part.start.ticks());
                    lane.output.publish(part, pdt);
                    self.w.metrics.live_parts.inc();
                }
            }
        }
        self.tick += block[0].len() as u64;
        self.w
            .metrics
            .live_encode
            .inc_by(started.elapsed().as_secs_f64());
        Ok(())
    }

    fn now_playing(&mut self, title: String, track_id: Option<TrackId>, offset: usize) {
        let title = util::clean_text(&title, 512);
        if self
            .ch
            .status
            .read()
            .now_playing
            .as_ref()
            .is_some_and(|n| n.title == title && n.track_id == track_id)
        {
            return;
        }
        let tick = self.tick + offset as u64;
        self.titles += 1;
        let e = emsg_id3(LOSSY_TIMESCALE, tick, self.titles, &title);
        for lane in &mut self.lanes {
            lane.emsg = Some(e.clone());
        }
        let start_ms = self.clock.unix_ms(tick);
        {
            let mut d = self.ch.dateranges.write();
            d.push_back(DateRange {
                id: format!("np-{}-{}", self.origin, self.titles),
                class: NOW_PLAYING_CLASS.into(),
                start_ms,
                title: title.clone(),
            });
            while d.len() > 64 {
                d.pop_front();
            }
            self.ch
                .dateranges_version
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        let np = NowPlaying {
            title: title.clone(),
            track_id,
            since: util::rfc3339(start_ms),
        };
        self.ch.status.write().now_playing = Some(np.clone());
        self.ch.announce(ChannelEvent::NowPlaying(np));
        self.record(Event::ChannelNowPlaying {
            channel_id: self.ch.id,
            owner: self.ch.owner.clone(),
            title,
            track_id,
        });
    }

    fn set_state(&mut self, state: State) {
        let (changed, source) = {
            let mut s = self.ch.status.write();
            let changed = s.state != state;
            if changed {
                if s.state == State::Offline {
                    s.started_at = Some(util::rfc3339(util::now_ms()));
                }
                if state == State::Offline {
                    s.started_at = None;
                    s.now_playing = None;
                }
                s.state = state;
            }
            (changed, s.source.clone())
        };
        if !changed {
            return;
        }
        self.ch.announce(ChannelEvent::State {
            state,
            source: source.clone(),
        });
        let r = crate::store::ChannelRef {
            channel_id: self.ch.id,
            owner: self.ch.owner.clone(),
        };
        self.record(match state {
            State::Offline => Event::ChannelOffline(r),
            _ => Event::ChannelLive {
                channel_id: self.ch.id,
                owner: self.ch.owner.clone(),
                state: state.as_str().into(),
                client: source.filter(|_| state == State::Live).map(|s| s.client),
            },
        });
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

    fn count_listeners(&mut self) {
        let l = self.ch.listeners(self.w.listener_idle);
        let id = self.ch.id.to_string();
        let m = &self.w.metrics.channel_listeners;
        m.with_label_values(&[id.as_str(), "hls"]).set(l.hls as i64);
        m.with_label_values(&[id.as_str(), "webrtc"])
            .set(l.webrtc as i64);
        self.w
            .metrics
            .live_drift_corrections
            .with_label_values(&[id.as_str()])
            .set(self.clock.corrections as i64);
        let dropped = self
            .ch
            .dropped_consumers
            .swap(0, std::sync::atomic::Ordering::Relaxed);
        self.w.metrics.live_consumers_dropped.inc_by(dropped);
        if l != self.listeners {
            self.listeners = l;
            self.ch.announce(ChannelEvent::Listeners(l));
        }
    }

    fn finish(mut self) {
        // Encoders hold at most a frame: what is cut ends the last segment.
        for lane in &mut self.lanes {
            if let Ok(Some(part)) = lane.cutter.flush() {
                let pdt = self.clock.unix_ms(part.start.ticks());
                lane.output.publish(part, pdt);
            }
            lane.output.end();
        }
        if let Some(l) = self.live.take() {
            self.ch.detach(l.id);
        }
        self.ch.status.write().source = None;
        self.set_state(State::Offline);
        let id = self.ch.id.to_string();
        let _ = self
            .w
            .metrics
            .channel_listeners
            .remove_label_values(&[id.as_str(), "hls"]);
        let _ = self
            .w
            .metrics
            .channel_listeners
            .remove_label_values(&[id.as_str(), "webrtc"]);
        let _ = self
            .w
            .metrics
            .live_drift_corrections
            .remove_label_values(&[id.as_str()]);
        self.ch.stopped.cancel();
        // Push consumers (WebRTC listeners) see their frames end.
        self.ch.consumers.clear();
    }
}

/// Puts an `emsg` at the front of a part: after the segment's `styp` when the part opens a
/// segment (ISO/IEC 23000-19 7.3.3: `emsg` precedes the `moof` it applies to).
fn with_emsg(data: Vec<u8>, emsg: &[u8], opens_segment: bool) -> Vec<u8> {
    let at = if opens_segment && data.len() >= 8 && &data[4..8] == b"styp" {
        u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize
    } else {
        0
    }
    .min(data.len());
    let mut out = Vec::with_capacity(data.len() + emsg.len());
    out.extend_from_slice(&data[..at]);
    out.extend_from_slice(emsg);
    out.extend_from_slice(&data[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emsg_goes_after_styp_or_first() {
        let styp = veza_hls::styp();
        let mut part = styp.clone();
        part.extend_from_slice(b"\0\0\0\x08moof");
        let out = with_emsg(part.clone(), b"EMSG", true);
        assert_eq!(&out[..styp.len()], &styp[..]);
        assert_eq!(&out[styp.len()..styp.len() + 4], b"EMSG");
        let bare = with_emsg(b"\0\0\0\x08moof".to_vec(), b"EMSG", false);
        assert_eq!(&bare[..4], b"EMSG");
    }
}
