//! The channel core's policy on synthetic time: every instant is made up by the test, so a
//! minute of channel runs in milliseconds and nothing depends on the machine's speed.
//!
//! Rendition 0 is the real Opus encoder (its frames fan out); rendition 1 is a tap that keeps
//! every sample the encoders were given, so a test reads what went on air. Source PCM carries
//! each sample's index (`index / 2²⁴`), the auto-DJ a constant 0.25, so the tap also says whose
//! audio it is and when each sample arrived.

use super::*;
use crate::rendition::Rendition;
use std::sync::{Arc, Mutex};
use veza_codecs::{Codec, CodecConfig, Packet, SampleRate};
use veza_hls::{GRID, LOSSY_TIMESCALE};

const ORIGIN: u64 = 1_000 * GRID * 6;
const T0_UNIX: i64 = 1_800_000_000_000;
const AUTODJ_LEVEL: f32 = 0.25;
const SCALE: f32 = (1u32 << 24) as f32;
const PART_MS: u64 = GRID * 1000 / LOSSY_TIMESCALE as u64;

/// Keeps every left-channel sample it is given; one "packet" per block.
struct Tap(Arc<Mutex<Vec<f32>>>);

impl veza_codecs::Encoder for Tap {
    fn codec(&self) -> Codec {
        Codec::Opus
    }
    fn rate(&self) -> SampleRate {
        SampleRate::LOSSY
    }
    fn channels(&self) -> usize {
        2
    }
    fn frame_len(&self) -> usize {
        BLOCK
    }
    fn delay(&self) -> usize {
        0
    }
    fn bitrate(&self) -> u32 {
        0
    }
    fn push(&mut self, planes: &[&[f32]]) -> veza_codecs::Result<Vec<Packet>> {
        self.0.lock().unwrap().extend_from_slice(planes[0]);
        Ok(vec![Packet {
            data: planes[0][0].to_le_bytes().to_vec(),
            duration: planes[0].len() as u32,
        }])
    }
    fn flush(&mut self) -> veza_codecs::Result<Vec<Packet>> {
        Ok(Vec::new())
    }
    fn config(&self) -> CodecConfig {
        CodecConfig::Opus {
            pre_skip: 0,
            input_rate: 48_000,
            channels: 2,
        }
    }
}

#[derive(Debug, Clone)]
struct Published {
    rendition: usize,
    msn: u64,
    index: u32,
    start: u64,
    pdt_ms: i64,
    at: Instant,
}

/// A source the test drives: it has sent `sent` frames, at `rate` times real time, from `from`.
struct Src {
    id: u64,
    from: Instant,
    rate: f64,
    sent: u64,
    /// (arrival, first index, frames) of each chunk delivered.
    chunks: Vec<(Instant, u64, u64)>,
    stopped: bool,
}

/// The auto-DJ the test drives: tracks of `track_s` seconds, titled `track-N`.
struct Dj {
    frames: u64,
    track_frames: u64,
    on: bool,
}

struct Sim {
    core: Core,
    t0: Instant,
    now: Instant,
    tap: Arc<Mutex<Vec<f32>>>,
    parts: Vec<Published>,
    np: Vec<(NowPlaying, i64)>,
    ranges: Vec<DateRange>,
    status: Status,
    states: Vec<(State, bool)>,
    records: Vec<Event>,
    idle: u32,
    frames: u64,
    /// Packets from the tap encoder ([`Input::Tap`]), and their samples.
    tapped: (u64, u64),
    src: Option<Src>,
    dj: Dj,
    /// Most PCM frames the core ever held from its source.
    max_buffered: usize,
}

fn sim(autodj: bool) -> Sim {
    sim_with(autodj, Duration::from_millis(100))
}

fn sim_with(autodj: bool, crossfade: Duration) -> Sim {
    let t0 = Instant::now();
    let tap = Arc::new(Mutex::new(Vec::new()));
    let cutter = || veza_hls::PartCutter::new(LOSSY_TIMESCALE, GRID, 6, ORIGIN, 1_000).unwrap();
    let (opus, _) = Rendition::Opus(128).live_encoder().unwrap();
    let encodings = vec![
        Encoding::new(opus, cutter(), ORIGIN, true),
        Encoding::new(Box::new(Tap(tap.clone())), cutter(), ORIGIN, false),
    ];
    let cfg = Config {
        channel: crate::store::ChannelId::new(),
        owner: "owner".into(),
        title: "Night Radio".into(),
        origin: ORIGIN,
        lead: Duration::from_secs(3),
        crossfade,
        idle_after: Duration::from_secs(10),
        autodj,
    };
    let mut s = Sim {
        core: Core::new(cfg, encodings, t0, T0_UNIX),
        t0,
        now: t0,
        tap,
        parts: Vec::new(),
        np: Vec::new(),
        ranges: Vec::new(),
        status: Status {
            state: State::Offline,
            source: None,
            now_playing: None,
            started_at: None,
        },
        states: Vec::new(),
        records: Vec::new(),
        idle: 0,
        frames: 0,
        tapped: (0, 0),
        src: None,
        dj: Dj {
            frames: 0,
            track_frames: 30 * RATE,
            on: autodj,
        },
        max_buffered: 0,
    };
    s.input(Input::Tick);
    s
}

fn info(name: Option<&str>) -> SourceInfo {
    SourceInfo {
        client: "test".into(),
        codec: "audio/mpeg".into(),
        bitrate: 0,
        connected_at: "2027-01-01T00:00:00Z".into(),
        name: name.map(str::to_owned),
        description: None,
        genre: None,
        public: None,
    }
}

impl Sim {
    fn unix(&self, at: Instant) -> i64 {
        T0_UNIX + at.duration_since(self.t0).as_millis() as i64
    }

    fn input(&mut self, input: Input) {
        self.core.handle_input(self.now, input);
        self.drain();
    }

    fn drain(&mut self) {
        loop {
            match self.core.poll_output() {
                Output::Timeout(_) => break,
                Output::Part {
                    rendition,
                    part,
                    pdt_ms,
                } => {
                    // Never published before its date.
                    assert!(
                        pdt_ms <= self.unix(self.now),
                        "part {}.{} dated {pdt_ms} published at {}",
                        part.msn,
                        part.index,
                        self.unix(self.now)
                    );
                    self.parts.push(Published {
                        rendition,
                        msn: part.msn,
                        index: part.index,
                        start: part.start.ticks(),
                        pdt_ms,
                        at: self.now,
                    });
                }
                Output::Frame {
                    from: Stream::Tap,
                    samples,
                    ..
                } => {
                    self.tapped.0 += 1;
                    self.tapped.1 += u64::from(samples);
                }
                Output::Frame { .. } => self.frames += 1,
                Output::TapFailed(e) => panic!("the tap failed: {e}"),
                Output::Status(s) => self.status = s,
                Output::Announce(ChannelEvent::NowPlaying(n)) => {
                    let start = self.ranges.last().map_or(0, |r| r.start_ms);
                    self.np.push((n, start));
                }
                Output::Announce(ChannelEvent::State { state, source }) => {
                    self.states.push((state, source.is_some()))
                }
                Output::Announce(ChannelEvent::Listeners(_)) => {}
                Output::Record(e) => self.records.push(e),
                Output::DateRange(d) => self.ranges.push(d),
                Output::Idle => self.idle += 1,
                Output::Failed(e) => panic!("the core failed: {e}"),
            }
        }
        if let Some(n) = self.core.source.as_ref().map(Source::buffered) {
            self.max_buffered = self.max_buffered.max(n);
        }
    }

    fn attach(&mut self, id: u64, name: Option<&str>, rate: f64) {
        self.input(Input::Attach {
            id,
            info: info(name),
        });
        self.src = Some(Src {
            id,
            from: self.now,
            rate,
            sent: 0,
            chunks: Vec::new(),
            stopped: false,
        });
    }

    /// Runs the channel for `ms`, in 5 ms steps: the source sends what its pace allows while
    /// the core wants it (in 20 ms chunks), the auto-DJ fills its queue, and ticks come when the
    /// core asked for them.
    fn run(&mut self, ms: u64) {
        for _ in 0..ms / 5 {
            self.now += Duration::from_millis(5);
            self.step();
        }
    }

    fn step(&mut self) {
        while self.dj.on && self.core.wants_autodj() {
            let mut started = Vec::new();
            if self.dj.frames.is_multiple_of(self.dj.track_frames) {
                let n = self.dj.frames / self.dj.track_frames;
                started.push(Started {
                    track: track(n),
                    title: format!("track-{n}"),
                    kind: crate::live::station::Kind::Track,
                    offset: 0,
                });
            }
            self.dj.frames += BLOCK as u64;
            self.input(Input::AutoDj {
                pcm: [vec![AUTODJ_LEVEL; BLOCK], vec![AUTODJ_LEVEL; BLOCK]],
                started,
            });
        }
        while let Some(s) = self.src.as_mut().filter(|s| !s.stopped) {
            let due = (self.now.duration_since(s.from).as_secs_f64() * RATE as f64 * s.rate) as u64;
            if due < s.sent + BLOCK as u64 || !self.core.wants_pcm() {
                break;
            }
            let first = s.sent;
            let pcm: Vec<f32> = (first..first + BLOCK as u64)
                .map(|i| i as f32 / SCALE)
                .collect();
            s.sent += BLOCK as u64;
            s.chunks.push((self.now, first, BLOCK as u64));
            let id = s.id;
            self.input(Input::Pcm {
                id,
                pcm: [pcm.clone(), pcm],
            });
        }
        if let Output::Timeout(at) = self.core.poll_output() {
            if at <= self.now {
                self.input(Input::Tick);
            }
        }
    }

    /// Tap samples from `from_ms` after the origin, for `ms`.
    fn aired(&self, from_ms: u64, ms: u64) -> Vec<f32> {
        let tap = self.tap.lock().unwrap();
        let a = (from_ms * 48) as usize;
        tap[a.min(tap.len())..(a + (ms * 48) as usize).min(tap.len())].to_vec()
    }

    fn titles(&self) -> Vec<String> {
        self.np.iter().map(|(n, _)| n.title.clone()).collect()
    }

    /// Ms of media produced so far.
    fn media_ms(&self) -> u64 {
        self.tap.lock().unwrap().len() as u64 / 48
    }
}

fn track(n: u64) -> TrackId {
    TrackId(uuid::Uuid::from_u128(u128::from(n) + 1))
}

fn is_autodj(x: f32) -> bool {
    (x - AUTODJ_LEVEL).abs() < 1e-6
}

#[test]
fn the_autodj_plays_on_time_and_announces_each_track_where_it_starts() {
    let mut s = sim(true);
    s.dj.track_frames = 10 * RATE;
    s.run(25_000);
    assert_eq!(s.titles(), ["track-0", "track-1", "track-2"]);
    assert_eq!(s.status.state, State::Autodj);
    assert_eq!(
        s.status.now_playing.as_ref().unwrap().track_id,
        Some(track(2))
    );
    // Each item is dated where its first sample plays: 10 s apart on the channel's clock.
    let starts: Vec<i64> = s.ranges.iter().map(|r| r.start_ms).collect();
    assert_eq!(starts, [T0_UNIX, T0_UNIX + 10_000, T0_UNIX + 20_000]);
    // Media keeps up with the synthetic wall clock, one part after another, never ahead.
    assert!(
        s.media_ms() >= 24_900 && s.media_ms() <= 25_020,
        "{}",
        s.media_ms()
    );
    let opus: Vec<&Published> = s.parts.iter().filter(|p| p.rendition == 0).collect();
    for w in opus.windows(2) {
        assert_eq!(w[1].start, w[0].start + GRID);
        assert_eq!(w[1].pdt_ms, w[0].pdt_ms + PART_MS as i64);
    }
    assert_eq!(s.core.corrections(), 0);
    assert!(s.frames > 1_200, "{} Opus frames fanned out", s.frames);
}

#[test]
fn a_source_takes_over_with_its_title_even_when_the_autodj_changes_track_meanwhile() {
    let mut s = sim(true);
    s.dj.track_frames = 4 * RATE;
    s.run(3_000);
    assert_eq!(s.titles(), ["track-0"]);
    // The source connects and names its show before any audio (BUTT sends metadata first).
    s.attach(7, Some("DJ Set"), 1.0);
    s.input(Input::Title {
        id: 7,
        title: "Live at the Club".into(),
    });
    // Its decoder needs 1.5 s of bytes before the first PCM: meanwhile the auto-DJ changes
    // track at 4 s, which must not show.
    s.src.as_mut().unwrap().stopped = true;
    s.run(1_500);
    assert_eq!(
        s.titles(),
        ["track-0"],
        "nothing changes while a source connects"
    );
    assert!(
        s.status.source.is_some(),
        "the source shows as soon as it is admitted"
    );
    assert_eq!(s.status.state, State::Autodj);
    // Then its audio arrives in a burst (the probe's worth) and it goes on air.
    let src = s.src.as_mut().unwrap();
    src.stopped = false;
    src.from = s.now - Duration::from_millis(1_500);
    s.run(2_000);
    assert_eq!(s.titles(), ["track-0", "Live at the Club"]);
    assert_eq!(s.status.state, State::Live);
    let np = s.status.now_playing.clone().unwrap();
    assert_eq!(np.track_id, None);
    // Announced at the tick the source's first sample plays: the tap says which that is.
    let switch_ms = (s.ranges[1].start_ms - T0_UNIX) as u64;
    let around = s.aired(switch_ms - 20, 40);
    assert!(around[..960].iter().all(|&x| is_autodj(x)));
    assert!(!is_autodj(around[960 + 200]));
    // The track the auto-DJ moved to is its item when the show ends: announced at the switch.
    s.src.as_mut().unwrap().stopped = true;
    s.input(Input::Ended { id: 7 });
    // What it sent plays out (its probe's backlog included), then it leaves.
    s.run(2_500);
    assert!(
        s.status.source.is_none(),
        "the source clears when it leaves"
    );
    s.run(500);
    assert_eq!(s.titles(), ["track-0", "Live at the Club", "track-1"]);
    assert_eq!(s.status.state, State::Autodj);
    assert_eq!(
        s.status.now_playing.as_ref().unwrap().track_id,
        Some(track(1))
    );
    assert_eq!(s.states.last(), Some(&(State::Autodj, false)));
}

#[test]
fn a_source_without_metadata_shows_its_name_or_the_channel_title() {
    for (name, shown) in [(Some("Studio B"), "Studio B"), (None, "Night Radio")] {
        let mut s = sim(true);
        s.run(1_000);
        s.attach(1, name, 1.0);
        s.run(1_000);
        assert_eq!(s.titles(), ["track-0", shown]);
        assert_eq!(s.status.now_playing.as_ref().unwrap().track_id, None);
        let recorded = s.records.iter().rev().find_map(|e| match e {
            Event::ChannelNowPlaying {
                title, track_id, ..
            } => Some((title.clone(), *track_id)),
            _ => None,
        });
        assert_eq!(recorded, Some((shown.to_string(), None)));
    }
}

#[test]
fn a_title_after_the_switch_shows_at_once_and_an_old_sources_title_never() {
    let mut s = sim(false);
    s.attach(1, None, 1.0);
    s.run(1_000);
    assert_eq!(s.titles(), ["Night Radio"]);
    s.input(Input::Title {
        id: 1,
        title: "Artist - Song".into(),
    });
    s.input(Input::Title {
        id: 99,
        title: "from a source that left".into(),
    });
    s.input(Input::Title {
        id: 1,
        title: "  \u{7}".into(),
    });
    assert_eq!(s.titles(), ["Night Radio", "Artist - Song"]);
}

#[test]
fn a_source_that_reconnects_with_the_same_title_is_announced_again() {
    let mut s = sim(true);
    s.run(500);
    for id in [1, 2] {
        s.attach(id, None, 1.0);
        s.input(Input::Title {
            id,
            title: "Morning Show".into(),
        });
        s.run(1_000);
        s.src.as_mut().unwrap().stopped = true;
        s.input(Input::Ended { id });
        s.run(1_000);
    }
    assert_eq!(
        s.titles(),
        [
            "track-0",
            "Morning Show",
            "track-0",
            "Morning Show",
            "track-0"
        ]
    );
    // One date range per item, in order, on one clock.
    assert_eq!(s.ranges.len(), 5);
    assert!(s.ranges.windows(2).all(|w| w[0].start_ms < w[1].start_ms));
}

#[test]
fn a_dropped_source_goes_at_once_and_what_it_had_buffered_never_plays() {
    let mut s = sim(true);
    s.run(500);
    // A source three times faster than real time fills its buffer.
    s.attach(1, None, 3.0);
    s.run(2_000);
    assert!(s.core.source.as_ref().unwrap().buffered() > RATE as usize);
    assert!(!s.core.source_on_time(s.now), "held back: not on time");
    let before = s.media_ms();
    s.input(Input::Dropped { id: 1 });
    assert!(s.status.source.is_none());
    s.src = None;
    s.run(1_000);
    let after = s.aired(before + 150, 500);
    assert!(
        after.iter().all(|&x| is_autodj(x)),
        "the auto-DJ plays right after the drop"
    );
    assert_eq!(s.titles().last().map(String::as_str), Some("track-0"));
}

#[test]
fn a_silent_source_is_filled_by_the_autodj_without_changing_now_playing() {
    let mut s = sim(true);
    s.dj.track_frames = 2 * RATE;
    s.attach(1, Some("Live"), 1.0);
    s.run(1_000);
    s.src.as_mut().unwrap().stopped = true;
    s.run(3_000);
    // Filled in after UNDERRUN; the auto-DJ changed track meanwhile, which does not show.
    let tail = s.aired(s.media_ms() - 500, 500);
    assert!(tail.iter().all(|&x| is_autodj(x)));
    assert_eq!(s.titles().last().map(String::as_str), Some("Live"));
    assert!(s.status.source.is_some());
    // It comes back: on air again, with no new item.
    let src = s.src.as_mut().unwrap();
    src.stopped = false;
    src.from = s.now - Duration::from_secs_f64(src.sent as f64 / RATE as f64);
    s.run(1_000);
    assert_eq!(s.status.state, State::Live);
    assert!(!is_autodj(
        *s.aired(s.media_ms() - 100, 100).last().unwrap()
    ));
    assert_eq!(s.titles().last().map(String::as_str), Some("Live"));
}

#[test]
fn a_silent_source_without_autodj_is_filled_with_silence_on_time() {
    let mut s = sim(false);
    s.attach(1, None, 1.0);
    s.run(1_000);
    s.src.as_mut().unwrap().stopped = true;
    s.run(3_000);
    assert_eq!(s.status.state, State::Live);
    assert!(s.media_ms() >= 3_900, "media keeps up: {} ms", s.media_ms());
    assert!(s
        .aired(s.media_ms() - 1_000, 1_000)
        .iter()
        .all(|&x| x == 0.0));
}

#[test]
fn a_crossfade_lasts_its_configured_length() {
    for fade_ms in [0u64, 40, 300] {
        let mut s = sim_with(true, Duration::from_millis(fade_ms));
        s.run(1_000);
        s.attach(1, None, 1.0);
        s.run(1_000);
        // The auto-DJ plays 0.25 and the source under 0.01: a sample between the two carries
        // both, which only a fade makes. An equal-power fade stays above 0.01 for all but its
        // last 3 %. (The channel's first half second holds its fade in from silence.)
        let mixed = s
            .aired(500, 2_000)
            .iter()
            .filter(|&&x| x > 0.01 && x < AUTODJ_LEVEL - 1e-6)
            .count() as u64;
        let len = fade_ms * 48;
        assert!(
            mixed <= len.max(1) && mixed * 100 >= len * 95,
            "{mixed} mixed frames for a {fade_ms} ms fade"
        );
    }
}

#[test]
fn a_source_clock_one_percent_fast_is_held_back_and_one_percent_slow_paces_the_channel() {
    // 1 % fast: its excess fills the buffer up to the lead and stays there.
    let mut s = sim(false);
    s.attach(1, None, 1.01);
    s.run(60_000);
    assert!(
        s.max_buffered <= 3 * RATE as usize + 2 * BLOCK,
        "{}",
        s.max_buffered
    );
    let media = s.media_ms();
    assert!(
        (59_800..=60_020).contains(&media),
        "media {media} ms after 60 s"
    );
    assert_eq!(s.core.corrections(), 0);
    // 1 % slow: the source paces the channel; media falls behind by 0.6 s a minute, within
    // the clock's tolerance, with no filler and dates that follow durations exactly.
    let mut s = sim(true);
    s.attach(1, None, 0.99);
    s.run(60_000);
    assert_eq!(s.titles(), ["Night Radio"], "never underrun");
    assert!(s.aired(1_000, 58_000).iter().all(|&x| !is_autodj(x)));
    assert_eq!(s.core.corrections(), 0);
    let opus: Vec<&Published> = s.parts.iter().filter(|p| p.rendition == 0).collect();
    for w in opus.windows(2) {
        assert_eq!(w[1].pdt_ms - w[0].pdt_ms, PART_MS as i64);
    }
}

#[test]
fn a_source_far_faster_than_real_time_is_held_to_the_lead_and_plays_at_pace() {
    let mut s = sim(false);
    s.attach(1, None, 50.0);
    s.run(20_000);
    assert!(
        s.max_buffered <= 3 * RATE as usize + 2 * BLOCK,
        "{}",
        s.max_buffered
    );
    let media = s.media_ms();
    assert!(
        (19_800..=20_020).contains(&media),
        "media {media} ms after 20 s"
    );
    // It is taken only as fast as it plays: 20 s and the lead, not 50 × 20 s.
    let sent = s.src.as_ref().unwrap().sent;
    assert!(sent < 24 * RATE, "{sent} frames taken");
    assert!(!s.core.source_on_time(s.now));
}

#[test]
fn sample_to_part_is_within_a_part_and_the_encoders_look_ahead_and_30_ms() {
    let mut s = sim(false);
    s.attach(1, None, 1.0);
    s.run(10_000);
    let src = s.src.as_ref().unwrap();
    let arrival = |index: u64| {
        src.chunks
            .iter()
            .find(|(_, first, n)| (*first..first + n).contains(&index))
            .map(|c| c.0)
    };
    let tap = s.tap.lock().unwrap().clone();
    let lookahead_ms = 312 * 1000 / 48_000 + 1;
    let bound = Duration::from_millis(PART_MS + lookahead_ms + 30);
    let mut checked = 0;
    for p in s.parts.iter().filter(|p| p.rendition == 0) {
        // The first sample of the part, by the index it carries.
        let at = (p.start - ORIGIN) as usize;
        let Some(&x) = tap.get(at) else { continue };
        if at < 48 * 200 {
            continue; // the fade in from silence scales the first samples
        }
        let index = (x * SCALE).round() as u64;
        let arrived = arrival(index).expect("a source sample");
        let took = p.at.duration_since(arrived);
        assert!(
            took <= bound,
            "part {}.{}: {took:?} > {bound:?}",
            p.msn,
            p.index
        );
        checked += 1;
    }
    assert!(checked >= 25, "{checked} parts checked");
}

#[test]
fn a_stall_moves_the_clock_once_and_never_bursts() {
    let mut s = sim(true);
    s.run(2_000);
    // The driver is not scheduled for 5 s (a stopped process, a starved machine).
    s.now += Duration::from_secs(5);
    let before = s.parts.len();
    s.step();
    assert!(
        s.parts.len() - before <= 2 * 2,
        "no burst of the missed parts"
    );
    s.run(3_000);
    assert_eq!(s.core.corrections(), 1);
    let opus: Vec<&Published> = s.parts.iter().filter(|p| p.rendition == 0).collect();
    let jumps = opus
        .windows(2)
        .filter(|w| w[1].pdt_ms - w[0].pdt_ms != PART_MS as i64)
        .count();
    assert_eq!(jumps, 1, "dates move forward once");
    assert!(opus.windows(2).all(|w| w[1].pdt_ms > w[0].pdt_ms));
}

#[test]
fn garbage_in_keeps_the_channel_playing() {
    let mut s = sim(true);
    s.attach(1, None, 1.0);
    s.run(500);
    let long = "x".repeat(100_000);
    for input in [
        Input::Pcm {
            id: 1,
            pcm: [vec![f32::NAN; 500], vec![f32::INFINITY; 700]],
        },
        Input::Pcm {
            id: 1,
            pcm: [vec![], vec![1.0; 10]],
        },
        Input::Pcm {
            id: 42,
            pcm: [vec![0.9; 960], vec![0.9; 960]],
        },
        Input::Pcm {
            id: 1,
            pcm: [vec![1e30; 960_000], vec![-1e30; 960_000]],
        },
        Input::Title {
            id: 1,
            title: long.clone(),
        },
        Input::Title {
            id: 3,
            title: "nobody".into(),
        },
        Input::Ended { id: 9 },
        Input::Dropped { id: 9 },
        Input::AutoDj {
            pcm: [vec![f32::NAN; 3], vec![]],
            started: vec![],
        },
        Input::Tick,
    ] {
        s.input(input);
        s.run(40);
    }
    s.run(5_000);
    assert!(
        s.max_buffered <= 3 * RATE as usize + 2 * BLOCK,
        "{}",
        s.max_buffered
    );
    assert!(s
        .tap
        .lock()
        .unwrap()
        .iter()
        .all(|x| x.is_finite() && x.abs() <= 1.0));
    assert_eq!(
        s.titles().last().map(|t| t.chars().count()),
        Some(MAX_TITLE)
    );
    assert_eq!(s.status.state, State::Live);
}

#[test]
fn an_idle_channel_says_so_once_after_its_timeout() {
    let mut s = sim(false);
    s.run(9_900);
    assert_eq!(s.idle, 0);
    s.run(5_000);
    assert_eq!(s.idle, 1);
    assert!(s.parts.is_empty(), "nothing plays on an idle channel");
    // A source comes: the channel goes live, and idles again only after it leaves.
    s.attach(1, None, 1.0);
    s.run(1_000);
    assert_eq!(s.status.state, State::Live);
    assert!(s.status.started_at.is_some());
    s.src.as_mut().unwrap().stopped = true;
    s.input(Input::Ended { id: 1 });
    s.run(11_000);
    assert_eq!(s.status.state, State::Offline);
    assert!(s.status.now_playing.is_none());
    assert_eq!(s.idle, 2);
}

#[test]
fn listeners_hold_an_offline_channel_on_air_in_silence_and_it_idles_after_they_go() {
    let mut s = sim(false);
    s.attach(1, None, 1.0);
    s.run(2_000);
    assert_eq!(s.status.state, State::Live);
    // A progressive listener is connected when the source leaves.
    s.input(Input::Hold(true));
    s.src.as_mut().unwrap().stopped = true;
    s.input(Input::Ended { id: 1 });
    let parts_before = s.parts.len();
    s.run(20_000);
    assert_eq!(s.status.state, State::Offline);
    assert_eq!(s.idle, 0, "held: never idle");
    // Silence kept media time with the clock: parts went on, one per 320 ms.
    let held = s.parts.iter().filter(|p| p.rendition == 0).count()
        - s.parts[..parts_before]
            .iter()
            .filter(|p| p.rendition == 0)
            .count();
    assert!((60..=64).contains(&held), "{held} parts in 20 s");
    assert!(s
        .aired(s.media_ms() - 10_000, 10_000)
        .iter()
        .all(|&x| x == 0.0));
    // The listener goes: the channel idles after its timeout.
    s.input(Input::Hold(false));
    s.run(11_000);
    assert_eq!(s.idle, 1);
}

#[test]
fn a_tap_encodes_every_block_while_it_is_given_and_stops_when_taken() {
    let mut s = sim(true);
    s.run(1_000);
    let mp3 = veza_codecs::Mp3Encoder::new(SampleRate::LOSSY, 2, 128_000).unwrap();
    s.input(Input::Tap(Some(super::Tap(Box::new(mp3)))));
    s.run(3_000);
    // 3 s of blocks through LAME: 1152-sample frames, less its look-ahead.
    let (packets, samples) = s.tapped;
    assert!(
        (2 * RATE..=3 * RATE).contains(&samples),
        "{samples} samples"
    );
    assert_eq!(samples, packets * 1152);
    s.input(Input::Tap(None));
    s.run(1_000);
    assert_eq!(s.tapped.0, packets, "no packets once the tap is taken");
    assert!(s.frames > 0, "the renditions fan out as before");
}

#[test]
fn finishing_publishes_the_part_in_progress_and_goes_offline() {
    let mut s = sim(true);
    s.run(1_000);
    let before = s.parts.len();
    s.core.finish(s.now);
    s.drain();
    assert_eq!(s.parts.len(), before + 2, "one last part per rendition");
    assert_eq!(s.status.state, State::Offline);
    assert!(matches!(s.records.last(), Some(Event::ChannelOffline(_))));
}

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
