//! What goes into the channel core and what comes out of it: plain values, so that the driver
//! and the tests speak to it the same way.

use super::super::status::{ChannelEvent, SourceInfo, Status};
use crate::store::{ChannelId, Event, TrackId};
use std::time::{Duration, Instant};
use veza_codecs::Encoder;
use veza_hls::{DateRange, Part, PartCutter};

/// Stereo PCM at 48 kHz.
pub type Pcm48 = [Vec<f32>; 2];

/// A track the auto-DJ started within a block.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    /// The track.
    pub track: TrackId,
    /// Its title.
    pub title: String,
    /// Why it plays: a slot's track, an event's, or an interstitial.
    pub kind: super::super::station::Kind,
    /// How many frames into the block it starts.
    pub offset: usize,
}

/// One rendition as the core encodes it: its encoder and part cutter.
pub struct Encoding {
    /// Takes the blocks.
    pub encoder: Box<dyn Encoder>,
    /// Cuts the packets into parts.
    pub cutter: PartCutter,
    /// Whether its frames also come out one by one ([`Output::Frame`]), for push consumers
    /// (WebRTC, the progressive mounts).
    pub fan_out: bool,
    pub(super) pts: u64,
    pub(super) emsg: Option<Vec<u8>>,
}

impl Encoding {
    /// A rendition whose first packet starts at the cutter's origin, `origin` ticks.
    pub fn new(
        encoder: Box<dyn Encoder>,
        cutter: PartCutter,
        origin: u64,
        fan_out: bool,
    ) -> Encoding {
        Encoding {
            encoder,
            cutter,
            fan_out,
            pts: origin,
            emsg: None,
        }
    }
}

/// The channel's fixed facts and policy settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The channel.
    pub channel: ChannelId,
    /// Its owner, named in its events.
    pub owner: String,
    /// Its title: what a source that announces nothing is shown as, after its `ice-name`.
    pub title: String,
    /// The timeline's first tick.
    pub origin: u64,
    /// How much of a source's PCM the core takes ahead of what it plays (`live.lead_seconds`).
    pub lead: Duration,
    /// Crossfade length when the input changes.
    pub crossfade: Duration,
    /// How long an idle channel (no source, no auto-DJ) waits before [`Output::Idle`].
    pub idle_after: Duration,
    /// Whether an auto-DJ feeds the channel.
    pub autodj: bool,
}

/// What happened, handed to [`Core::handle_input`](super::Core::handle_input) with the instant it happened.
#[derive(Debug)]
pub enum Input {
    /// A source was admitted; it replaces any other at once.
    Attach {
        /// Its number.
        id: u64,
        /// What the API shows of it.
        info: SourceInfo,
    },
    /// Decoded PCM from source `id`.
    Pcm {
        /// The source.
        id: u64,
        /// Its samples.
        pcm: Pcm48,
    },
    /// A title from source `id` (`/admin/metadata`, in-band tags).
    Title {
        /// The source.
        id: u64,
        /// The title.
        title: String,
    },
    /// Source `id` ended: what it sent still plays.
    Ended {
        /// The source.
        id: u64,
    },
    /// Source `id` must go at once, what it sent included (its key was rotated, another source
    /// took over).
    Dropped {
        /// The source.
        id: u64,
    },
    /// The auto-DJ's next block, with the tracks that start in it.
    AutoDj {
        /// The block.
        pcm: Pcm48,
        /// Tracks starting in it.
        started: Vec<Started>,
    },
    /// The auto-DJ has nothing more to play.
    AutoDjEnded,
    /// An encoder to feed every block from now on besides the renditions, its packets coming
    /// out as [`Output::Frame`] from [`Stream::Tap`] (the MP3 mount's, while it has
    /// listeners); `None` stops the one there is.
    Tap(Option<Tap>),
    /// Whether listeners hold the channel on air (progressive listeners stay connected): an
    /// offline channel then plays silence instead of nothing, and is never idle.
    Hold(bool),
    /// Nothing happened: the time the core asked for came.
    Tick,
}

/// An encoder handed to the core with [`Input::Tap`].
pub struct Tap(pub Box<dyn Encoder>);

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tap({:?} at {} b/s)", self.0.codec(), self.0.bitrate())
    }
}

/// Which encoder a frame came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The rendition at this index of those given to [`Core::new`](super::Core::new).
    Rendition(usize),
    /// The encoder given with [`Input::Tap`].
    Tap,
}

/// What the core decided, drained with [`Core::poll_output`](super::Core::poll_output).
#[derive(Debug)]
pub enum Output {
    /// A part of rendition `rendition`, dated `pdt_ms` (Unix ms).
    Part {
        /// Index in the renditions given to [`Core::new`](super::Core::new).
        rendition: usize,
        /// The part.
        part: Part,
        /// Its `EXT-X-PROGRAM-DATE-TIME`.
        pdt_ms: i64,
    },
    /// An encoded frame of a fan-out rendition or of the tap, for push consumers.
    Frame {
        /// Its encoder.
        from: Stream,
        /// The packet.
        data: Vec<u8>,
        /// Its decode time, ticks (the rendition's timeline; the tap's counts from its start).
        pts: u64,
        /// Samples it decodes to, at 48 kHz.
        samples: u32,
    },
    /// The status changed; this is the whole of it.
    Status(Status),
    /// For the channel's SSE feed.
    Announce(ChannelEvent),
    /// For the outbox.
    Record(Event),
    /// A now-playing interval for the media playlists (`EXT-X-DATERANGE`).
    DateRange(DateRange),
    /// Nothing has played for `idle_after`: the driver may stop the channel.
    Idle,
    /// An encoder failed: the channel cannot go on.
    Failed(String),
    /// The tap encoder failed and was dropped; the channel goes on.
    TapFailed(String),
    /// Nothing more now: call [`Core::handle_input`](super::Core::handle_input) with [`Input::Tick`] at this instant, or
    /// earlier with other input.
    Timeout(Instant),
}
