//! The channel core: one live channel's policy as a state machine without I/O, in the
//! `handle_input` / `poll_output` shape of str0m's `Rtc`.
//!
//! The driver (`src/live/engine.rs`) feeds it what happened, each with the instant it happened
//! ([`Core::handle_input`]): a source attaching, its PCM, its titles, its end or its drop, the
//! auto-DJ's blocks, and ticks. It drains what the core decided ([`Core::poll_output`]): parts to
//! publish, frames for push consumers, the status, events for the channel's SSE feed and the
//! outbox, now-playing date ranges, and the instant by which it wants its next tick. It reads no
//! clock, takes no lock and spawns nothing, so every rule below is tested on synthetic time
//! (`tests.rs`).
//!
//! Each turn produces one 20 ms block (960 frames at 48 kHz) from the live source when it has one
//! buffered, else from the auto-DJ, crossfading when the input changes (`mixer.rs`). A block is
//! produced no earlier than the clock says it is due (`clock.rs`), whatever the input, so a part is
//! never published before its date. A source sending ahead of real time fills its buffer up to
//! `lead`, after which [`Core::wants_pcm`] is false and the driver stops reading it (its queue,
//! decoder and TCP then hold it back). A source silent for [`UNDERRUN`] is filled in by the
//! auto-DJ, or by silence on a channel without one. A new source is paced from the arrival of
//! the first sample it holds when it goes on air (never earlier than the clock stood), and none
//! of what it sent is dropped: a source whose pages carry seconds needs that much buffered to
//! play on. Every rendition's encoder gets the same block.
//!
//! **Now-playing** is one ordered sequence of items, each announced once, at the tick it starts:
//! - a source's title applies from the instant the source is on air, whether it came before or
//!   after the switch; a source without one shows its `ice-name`, else the channel's title, with
//!   no track;
//! - while a source is connected (its takeover window included), the auto-DJ changing track
//!   changes nothing shown;
//! - when the source leaves, the auto-DJ's current item is announced at the switch (even when its
//!   title equals the one before), and the status's `source` is cleared at once.

mod clock;
mod mixer;
mod types;

use clock::{Clock, RATE};
use mixer::{Block, Input as Air, Mixer};
pub use types::{Config, Encoding, Input, Output, Pcm48, Started, Stream, Tap};

use super::station::Kind;
use super::status::{ChannelEvent, NowPlaying, SourceInfo, State, Status};
use crate::store::{ChannelRef, Event, TrackId};
use crate::util;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use veza_hls::{emsg_id3, DateRange, LOSSY_TIMESCALE};

/// Frames per block: one Opus frame.
pub const BLOCK: usize = 960;

/// How long a live source may leave its buffer empty before the auto-DJ (or silence) fills in.
pub const UNDERRUN: Duration = Duration::from_millis(500);

/// `CLASS` of now-playing date ranges.
pub const NOW_PLAYING_CLASS: &str = "com.veza.now-playing";

/// How long the core sleeps when it waits for input only: a tick that finds nothing to do.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// Auto-DJ blocks the core keeps queued.
const AUTODJ_QUEUE: usize = 2;

/// Titles are cut to this many characters.
const MAX_TITLE: usize = 512;

/// How the auto-DJ's item is announced when a source leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handback {
    /// The source was on air: the switch back is a new item, always announced.
    Always,
    /// The source never went on air: announced only if what is shown is not the auto-DJ's.
    IfChanged,
}

/// A connected source.
struct Source {
    id: u64,
    info: SourceInfo,
    title: Option<String>,
    buf: [VecDeque<f32>; 2],
    /// When its last PCM arrived (its attach until the first).
    last: Instant,
    ended: bool,
    /// A block of it has played.
    on_air: bool,
}

impl Source {
    fn buffered(&self) -> usize {
        self.buf[0].len()
    }

    fn take(&mut self, n: usize) -> Block {
        let n = n.min(self.buffered());
        self.buf
            .each_mut()
            .map(|b| b.drain(..n).collect::<Vec<f32>>())
    }

    /// The name shown while it plays without a title.
    fn shown(&self, channel_title: &str) -> String {
        self.title
            .clone()
            .or_else(|| self.info.name.clone().filter(|n| !n.trim().is_empty()))
            .unwrap_or_else(|| channel_title.to_string())
    }
}

/// The auto-DJ's side: blocks queued, and the item it plays.
struct AutoDj {
    blocks: VecDeque<(Pcm48, Vec<Started>)>,
    item: Option<(String, TrackId, Kind)>,
    ended: bool,
}

/// What the next block comes from.
enum Next {
    Live,
    AutoDj,
    Silence,
    /// Nothing plays, but listeners hold the channel on air: silence, offline.
    Held,
    Offline,
    /// Wait for input (or this instant).
    Wait(Instant),
}

/// One channel's state machine.
pub struct Core {
    cfg: Config,
    encodings: Vec<Encoding>,
    mixer: Mixer,
    clock: Clock,
    /// The wall clock at one instant: how instants become Unix ms.
    wall: (Instant, i64),
    /// Tick of the next block.
    tick: u64,
    source: Option<Source>,
    autodj: Option<AutoDj>,
    /// The tap encoder and its next packet's decode time.
    tap: Option<(Tap, u64)>,
    /// Listeners hold the channel on air.
    held: bool,
    handback: Option<Handback>,
    status: Status,
    titles: u32,
    offline_since: Option<Instant>,
    idle_told: bool,
    failed: bool,
    timeout: Instant,
    out: VecDeque<Output>,
}

impl Core {
    /// A core whose timeline starts at `cfg.origin` at `now`, which the wall clock calls
    /// `unix_ms`.
    pub fn new(cfg: Config, encodings: Vec<Encoding>, now: Instant, unix_ms: i64) -> Core {
        let crossfade = ((cfg.crossfade.as_secs_f64() * RATE as f64) as usize).max(1);
        Core {
            mixer: Mixer::new(crossfade, Air::Silence),
            clock: Clock::new(cfg.origin, now, unix_ms),
            wall: (now, unix_ms),
            tick: cfg.origin,
            autodj: cfg.autodj.then(|| AutoDj {
                blocks: VecDeque::new(),
                item: None,
                ended: false,
            }),
            cfg,
            encodings,
            source: None,
            tap: None,
            held: false,
            handback: None,
            status: Status {
                state: State::Offline,
                source: None,
                now_playing: None,
                started_at: None,
            },
            titles: 0,
            offline_since: None,
            idle_told: false,
            failed: false,
            timeout: now,
            out: VecDeque::new(),
        }
    }

    /// Takes what happened at `now`, and produces every block that is due and has its input.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Attach { id, info } => {
                if let Some(old) = self.source.take() {
                    self.left(&old);
                }
                self.source = Some(Source {
                    id,
                    info,
                    title: None,
                    buf: [VecDeque::new(), VecDeque::new()],
                    last: now,
                    ended: false,
                    on_air: false,
                });
                self.offline_since = None;
                self.sync_status();
            }
            Input::Pcm { id, pcm } => self.pcm(now, id, pcm),
            Input::Title { id, title } => {
                let title = util::clean_text(&title, MAX_TITLE).trim().to_string();
                let tick = self.tick;
                match self.source.as_mut().filter(|s| s.id == id) {
                    Some(s) if !title.is_empty() => {
                        let on_air = s.on_air;
                        s.title = Some(title.clone());
                        if on_air {
                            self.announce(title, None, Kind::Live, tick);
                        }
                    }
                    _ => {}
                }
            }
            Input::Ended { id } => {
                if let Some(s) = self.source.as_mut().filter(|s| s.id == id) {
                    s.ended = true;
                }
            }
            Input::Dropped { id } => {
                if self.source.as_ref().is_some_and(|s| s.id == id) {
                    if let Some(old) = self.source.take() {
                        self.left(&old);
                    }
                    self.sync_status();
                }
            }
            Input::AutoDj { pcm, started } => {
                if let Some(a) = self.autodj.as_mut() {
                    a.blocks.push_back((fit(pcm, BLOCK), started));
                }
            }
            Input::AutoDjEnded => {
                if let Some(a) = self.autodj.as_mut() {
                    a.ended = true;
                }
            }
            Input::Tap(tap) => self.tap = tap.map(|t| (t, 0)),
            Input::Hold(held) => self.held = held,
            Input::Tick => {}
        }
        self.run(now);
    }

    /// The next thing decided, ending with [`Output::Timeout`] each time the queue empties.
    pub fn poll_output(&mut self) -> Output {
        self.out
            .pop_front()
            .unwrap_or(Output::Timeout(self.timeout))
    }

    /// Whether the core takes more PCM from its source now: false once `lead` is buffered, which
    /// is what holds a fast source back.
    pub fn wants_pcm(&self) -> bool {
        self.source
            .as_ref()
            .is_some_and(|s| !s.ended && s.buffered() < self.lead_frames())
    }

    /// Whether the core takes another auto-DJ block now.
    pub fn wants_autodj(&self) -> bool {
        self.autodj
            .as_ref()
            .is_some_and(|a| !a.ended && a.blocks.len() < AUTODJ_QUEUE)
    }

    /// Whether the source delivers in real time: neither held back ahead of it (more than half
    /// the lead buffered) nor silent. One that does not may be taken over by a new source with
    /// the channel's key.
    pub fn source_on_time(&self, now: Instant) -> bool {
        self.source.as_ref().is_some_and(|s| {
            s.buffered() * 2 < self.lead_frames()
                && now.saturating_duration_since(s.last) < UNDERRUN
        })
    }

    /// The source attached, if any.
    pub fn source(&self) -> Option<u64> {
        self.source.as_ref().map(|s| s.id)
    }

    /// Times the clock mapping was moved because the channel fell behind.
    pub fn corrections(&self) -> u64 {
        self.clock.corrections
    }

    /// Ends the channel at `now`: the part in progress is published and the channel goes
    /// offline.
    pub fn finish(&mut self, now: Instant) {
        for (i, e) in self.encodings.iter_mut().enumerate() {
            if let Ok(Some(part)) = e.cutter.flush() {
                let pdt_ms = self.clock.unix_ms(part.start.ticks());
                self.out.push_back(Output::Part {
                    rendition: i,
                    part,
                    pdt_ms,
                });
            }
        }
        self.source = None;
        self.set_state(now, State::Offline);
        self.sync_status();
    }

    fn lead_frames(&self) -> usize {
        ((self.cfg.lead.as_secs_f64() * RATE as f64) as usize).max(BLOCK)
    }

    fn unix_ms(&self, at: Instant) -> i64 {
        let (t0, ms) = self.wall;
        match at.checked_duration_since(t0) {
            Some(d) => ms + d.as_millis() as i64,
            None => ms - t0.duration_since(at).as_millis() as i64,
        }
    }

    fn pcm(&mut self, now: Instant, id: u64, pcm: Pcm48) {
        let room = self.lead_frames() + BLOCK;
        let Some(s) = self.source.as_mut().filter(|s| s.id == id && !s.ended) else {
            return;
        };
        let [l, r] = pcm;
        let n = l.len().min(r.len()).min(room.saturating_sub(s.buffered()));
        if n == 0 {
            return;
        }
        s.buf[0].extend(l[..n].iter().map(|&x| finite(x)));
        s.buf[1].extend(r[..n].iter().map(|&x| finite(x)));
        s.last = now;
    }

    /// Produces blocks until one is not due or has no input.
    fn run(&mut self, now: Instant) {
        while !self.failed {
            match self.next(now) {
                Next::Wait(at) => {
                    self.timeout = at;
                    return;
                }
                Next::Offline => {
                    self.offline(now);
                    return;
                }
                next => {
                    if let Some(s) = self.source.as_ref().filter(|s| !s.on_air) {
                        // A new source is paced from its first buffered sample's arrival (what
                        // it holds arrived in real time before now: a decoder's probe), never
                        // earlier than the mapping already puts the next tick. On a channel
                        // that was idle, that backlog is then produced at once and dated where
                        // it arrived; on one the auto-DJ keeps on time, it plays after it.
                        let held = Duration::from_micros(s.buffered() as u64 * 1_000_000 / RATE);
                        let at = now.checked_sub(held).unwrap_or(now);
                        let ms = self.unix_ms(at);
                        self.clock.restart(self.tick, at, ms);
                    }
                    if let Some(wake) = self.clock.gate(self.tick, now, self.unix_ms(now)) {
                        self.timeout = wake;
                        return;
                    }
                    let block = match next {
                        Next::Live => self.live_block(now),
                        Next::AutoDj => self.autodj_block(now),
                        Next::Held => {
                            self.set_state(now, State::Offline);
                            self.silence_block()
                        }
                        _ => self.silence_block(),
                    };
                    if let Some(block) = block {
                        self.encode(&block);
                    }
                }
            }
        }
        self.timeout = now + IDLE_TICK;
    }

    /// What the next block comes from.
    fn next(&mut self, now: Instant) -> Next {
        let idle = now + IDLE_TICK;
        if self
            .source
            .as_ref()
            .is_some_and(|s| s.ended && s.buffered() < BLOCK)
        {
            // Played out: it leaves.
            if let Some(old) = self.source.take() {
                self.left(&old);
            }
            self.sync_status();
        }
        if self
            .autodj
            .as_ref()
            .is_some_and(|a| a.ended && a.blocks.is_empty())
        {
            self.autodj = None;
        }
        let autodj = self.autodj.as_ref().map(|a| !a.blocks.is_empty());
        // An auto-DJ block is needed, but none has come yet: wait for the driver to bring one.
        let autodj_or_wait = |ready: bool| {
            if ready {
                Next::AutoDj
            } else {
                Next::Wait(idle)
            }
        };
        let Some(s) = self.source.as_ref() else {
            return match autodj {
                Some(ready) => autodj_or_wait(ready),
                None if self.held => Next::Held,
                None => Next::Offline,
            };
        };
        if s.buffered() >= BLOCK {
            let fading_autodj =
                self.mixer.current() == Air::AutoDj || self.mixer.fading() == Some(Air::AutoDj);
            return match autodj {
                // The fade from the auto-DJ needs its block.
                Some(false) if fading_autodj => Next::Wait(idle),
                _ => Next::Live,
            };
        }
        let starved_at = s.last + UNDERRUN;
        let starved = now >= starved_at;
        match autodj {
            Some(ready) if self.mixer.current() != Air::Live || starved => autodj_or_wait(ready),
            None if starved => Next::Silence,
            _ => Next::Wait(starved_at.min(idle)),
        }
    }

    fn live_block(&mut self, now: Instant) -> Option<Block> {
        let tick = self.tick;
        let s = self.source.as_mut()?;
        let first = !std::mem::replace(&mut s.on_air, true);
        let block = s.take(BLOCK);
        let shown = first.then(|| s.shown(&self.cfg.title));
        self.mixer.switch(Air::Live);
        let prev = match self.mixer.fading() {
            Some(Air::AutoDj) => self.pop_autodj(),
            _ => None,
        };
        if let Some(title) = shown {
            self.handback = None;
            self.announce(title, None, Kind::Live, tick);
        }
        self.set_state(now, State::Live);
        Some(self.mixer.mix(block, prev.as_ref()))
    }

    fn autodj_block(&mut self, now: Instant) -> Option<Block> {
        let tick = self.tick;
        let handback = self.handback.take();
        let block = self.pop_autodj()?;
        if let Some(how) = handback.filter(|_| self.source.is_none()) {
            // The source left: the auto-DJ's item is what plays from this block on.
            let item = self.autodj.as_ref().and_then(|a| a.item.clone());
            if let Some((title, track, kind)) = item {
                let shown = self.status.now_playing.as_ref();
                let same = shown.is_some_and(|n| n.title == title && n.track_id == Some(track));
                if how == Handback::Always || !same {
                    self.announce(title, Some(track), kind, tick);
                }
            }
        }
        let prev = if self.mixer.current() != Air::AutoDj {
            // The live source is gone or starved: what it has buffered fades out.
            self.source.as_mut().map(|s| s.take(BLOCK))
        } else {
            None
        };
        self.mixer.switch(Air::AutoDj);
        self.set_state(now, State::Autodj);
        Some(self.mixer.mix(block, prev.as_ref()))
    }

    /// The next auto-DJ block; the tracks starting in it become the auto-DJ's item, and are
    /// announced when no source is connected.
    fn pop_autodj(&mut self) -> Option<Block> {
        let (block, started) = self.autodj.as_mut()?.blocks.pop_front()?;
        for st in started {
            if let Some(a) = self.autodj.as_mut() {
                a.item = Some((st.title.clone(), st.track, st.kind));
            }
            if self.source.is_none() {
                self.handback = None;
                let tick = self.tick + st.offset.min(BLOCK) as u64;
                self.announce(st.title, Some(st.track), st.kind, tick);
            }
        }
        Some(block)
    }

    /// A starved source on a channel without an auto-DJ: silence keeps media time with the wall
    /// clock until it sends again (or times out).
    fn silence_block(&mut self) -> Option<Block> {
        let prev = self.source.as_mut().map(|s| s.take(usize::MAX));
        self.mixer.switch(Air::Silence);
        let prev = prev.filter(|p| !p[0].is_empty());
        Some(
            self.mixer
                .mix([vec![0.0; BLOCK], vec![0.0; BLOCK]], prev.as_ref()),
        )
    }

    fn offline(&mut self, now: Instant) {
        self.mixer.switch(Air::Silence);
        self.set_state(now, State::Offline);
        let since = *self.offline_since.get_or_insert(now);
        let at = since + self.cfg.idle_after;
        if now >= at {
            if !std::mem::replace(&mut self.idle_told, true) {
                self.out.push_back(Output::Idle);
            }
            self.timeout = now + IDLE_TICK;
        } else {
            self.timeout = at;
        }
    }

    /// A source left (played out, dropped or replaced).
    fn left(&mut self, s: &Source) {
        self.handback = Some(if s.on_air {
            Handback::Always
        } else {
            Handback::IfChanged
        });
    }

    fn encode(&mut self, block: &Block) {
        let planes = [block[0].as_slice(), block[1].as_slice()];
        for (i, e) in self.encodings.iter_mut().enumerate() {
            let packets = match e.encoder.push(&planes) {
                Ok(p) => p,
                Err(err) => return self.fail(err.to_string()),
            };
            for p in packets {
                let pts = e.pts;
                e.pts += u64::from(p.duration);
                if e.fan_out {
                    self.out.push_back(Output::Frame {
                        from: Stream::Rendition(i),
                        data: p.data.clone(),
                        pts,
                        samples: p.duration,
                    });
                }
                match e.cutter.push(p.data, p.duration) {
                    Ok(Some(mut part)) => {
                        if let Some(m) = e.emsg.take() {
                            part.data = with_emsg(part.data, &m, part.index == 0);
                        }
                        let pdt_ms = self.clock.unix_ms(part.start.ticks());
                        self.out.push_back(Output::Part {
                            rendition: i,
                            part,
                            pdt_ms,
                        });
                    }
                    Ok(None) => {}
                    Err(err) => return self.fail(err.to_string()),
                }
            }
        }
        if let Some((tap, pts)) = self.tap.as_mut() {
            match tap.0.push(&planes) {
                Ok(packets) => {
                    for p in packets {
                        self.out.push_back(Output::Frame {
                            from: Stream::Tap,
                            data: p.data,
                            pts: *pts,
                            samples: p.duration,
                        });
                        *pts += u64::from(p.duration);
                    }
                }
                Err(err) => {
                    // The tap is an extra: the channel goes on without it.
                    self.out.push_back(Output::TapFailed(err.to_string()));
                    self.tap = None;
                }
            }
        }
        self.tick += block[0].len() as u64;
    }

    fn fail(&mut self, why: String) {
        self.failed = true;
        self.out.push_back(Output::Failed(why));
    }

    /// A new now-playing item from `tick` on.
    fn announce(&mut self, title: String, track_id: Option<TrackId>, kind: Kind, tick: u64) {
        self.titles += 1;
        let e = emsg_id3(LOSSY_TIMESCALE, tick, self.titles, &title);
        for enc in &mut self.encodings {
            enc.emsg = Some(e.clone());
        }
        let start_ms = self.clock.unix_ms(tick);
        self.out.push_back(Output::DateRange(DateRange {
            // Unique across restarts of the channel, whose timelines all start at zero.
            id: format!("np-{}-{}", self.wall.1, self.titles),
            class: NOW_PLAYING_CLASS.into(),
            start_ms,
            title: title.clone(),
        }));
        let np = NowPlaying {
            title: title.clone(),
            track_id,
            kind,
            since: util::rfc3339(start_ms),
        };
        self.status.now_playing = Some(np.clone());
        self.out.push_back(Output::Status(self.status.clone()));
        self.out
            .push_back(Output::Announce(ChannelEvent::NowPlaying(np)));
        self.out.push_back(Output::Record(Event::ChannelNowPlaying {
            channel_id: self.cfg.channel,
            owner: self.cfg.owner.clone(),
            title,
            track_id,
        }));
    }

    fn set_state(&mut self, now: Instant, state: State) {
        if self.status.state == state {
            return;
        }
        if self.status.state == State::Offline {
            self.status.started_at = Some(util::rfc3339(self.unix_ms(now)));
            self.offline_since = None;
            self.idle_told = false;
        }
        if state == State::Offline {
            self.status.started_at = None;
            self.status.now_playing = None;
        }
        self.status.state = state;
        self.status.source = self.source.as_ref().map(|s| s.info.clone());
        self.out.push_back(Output::Status(self.status.clone()));
        let source = self.status.source.clone();
        self.out.push_back(Output::Announce(ChannelEvent::State {
            state,
            source: source.clone(),
        }));
        let r = ChannelRef {
            channel_id: self.cfg.channel,
            owner: self.cfg.owner.clone(),
        };
        self.out.push_back(Output::Record(match state {
            State::Offline => Event::ChannelOffline(r),
            _ => Event::ChannelLive {
                channel_id: self.cfg.channel,
                owner: self.cfg.owner.clone(),
                state: state.as_str().into(),
                client: source.filter(|_| state == State::Live).map(|s| s.client),
            },
        }));
    }

    /// Publishes the source as it stands, if the status shows another.
    fn sync_status(&mut self) {
        let source = self.source.as_ref().map(|s| s.info.clone());
        if self.status.source == source {
            return;
        }
        self.status.source = source.clone();
        self.out.push_back(Output::Status(self.status.clone()));
        self.out.push_back(Output::Announce(ChannelEvent::State {
            state: self.status.state,
            source,
        }));
    }
}

/// A sample as the encoders take it: NaN and infinities (a broken decoder) become silence.
fn finite(x: f32) -> f32 {
    if x.is_finite() {
        x.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// A block of exactly `n` frames from planes of any lengths: cut or padded with silence.
fn fit(pcm: Pcm48, n: usize) -> Pcm48 {
    pcm.map(|mut p| {
        p.resize(n, 0.0);
        p.iter_mut().for_each(|x| *x = finite(*x));
        p
    })
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
mod tests;
