//! # veza-hls: the pure HLS packaging core of Veza Stream
//!
//! This crate turns encoded audio packets into CMAF fragmented MP4 and HLS playlists. It owns:
//!
//! - **fmp4**: ISO/IEC 14496-12 box writers for CMAF (ISO/IEC 23000-19) audio tracks: the init
//!   segment (`ftyp`, `moov` with `mvex`/`trex`, the `Opus`/`mp4a`/`fLaC` sample entry and an edit
//!   list) and media segments (`styp`, `moof`, `mdat`) ([`init_segment`], [`media_segment`]);
//! - **segment**: the segment grid shared by every rendition and a push/flush segmenter
//!   ([`Plan`], [`Segmenter`]);
//! - **retime**: a packaged track's segments moved later on the decode timeline (`tfdt`), for
//!   playlists played as one stream ([`retime_segment`], [`timing`]);
//! - **playlist**: multivariant and VOD media playlists rendered from plain data (RFC 8216)
//!   ([`render_multivariant`], [`render_media`]);
//! - **part**: live frames cut into LL-HLS parts, one CMAF chunk each, on the 320 ms grid
//!   ([`PartCutter`]);
//! - **live**: live and Low-Latency HLS media playlists rendered from a [`LiveSnapshot`] (parts,
//!   server control, preload hints, rendition reports, delta updates) ([`render_live`]);
//! - **progressive**: the framing of Icecast-style streams: ADTS, Ogg Opus pages and ICY
//!   metadata ([`Adts`], [`OggOpus`], [`IcyWriter`]);
//! - **reload**: the blocking-reload rules of `_HLS_msn`/`_HLS_part` ([`decide`]);
//! - **time**: media time with its timescale ([`MediaTime`]).
//!
//! It does not encode audio, touch files or read clocks: every function maps values to bytes, so
//! tests compare exact output and fuzzers drive it with arbitrary input.
//!
//! ```
//! use veza_hls::{Plan, Segmenter};
//!
//! // 10 s of audio at 48 kHz, segments of about 6 s on the 320 ms grid, Opus frames of 960
//! // samples after a 312-sample encoder delay.
//! let plan = Plan::new(480_000, 6.0);
//! let priming = plan.priming_for(960, 312);
//! assert_eq!((u64::from(priming) + plan.duration()) % 960, 0);
//! let mut segmenter = Segmenter::new(plan.decode_boundaries(priming));
//! let mut fragments = Vec::new();
//! for _ in 0..(u64::from(priming) + plan.duration()) / 960 {
//!     fragments.extend(segmenter.push(vec![0u8; 3], 960));
//! }
//! fragments.extend(segmenter.flush());
//! assert_eq!(fragments.len(), plan.segment_count());
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod boxes;
mod error;
mod fmp4;
mod live;
mod part;
mod playlist;
mod progressive;
mod reload;
mod retime;
mod segment;
mod slots;
mod time;
mod ts;

pub use error::{Error, Result};
pub use fmp4::{
    chunk, emsg_id3, id3_title, init_segment, media_segment, styp, SampleEntry, TrackInfo,
    ID3_SCHEME,
};
pub use live::{render_live, DateRange, LivePart, LiveSegment, LiveSnapshot, RenditionReport};
pub use part::{Part, PartCutter};
pub use playlist::{
    parse_media, render_media, render_multivariant, render_stitched, MediaPlaylist, SegmentRef,
    Variant,
};
pub use progressive::{icy_block, stream_title, Adts, IcyReader, IcyWriter, OggOpus, ICY_METAINT};
pub use reload::{advance_parts, decide, parse_query, Decision, Edge, Request};
pub use retime::{retime_segment, timing, Timing};
pub use segment::{Fragment, Plan, Segmenter, GRID, LOSSY_TIMESCALE};
pub use slots::UriSlots;
pub use time::MediaTime;
pub use ts::{render_ts_media, TsEntry, TsSegment, TsSegmenter};
