//! A channel's plain HLS in MPEG-TS (`/hls/live/{channel}/master_ts.m3u8`): the AAC rendition's
//! frames, cut into segments of about [`TS_SEGMENT`] by [`veza_hls::TsSegmenter`], with
//! now-playing as timed ID3, and a window of the newest segments for players to fetch. For
//! Sonos, Alexa and the players that take no fragmented MP4; written by the engine, read by every
//! request.

use super::core::Stream;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::collections::VecDeque;
use std::time::Duration;
use veza_hls::{render_ts_media, TsEntry, TsSegment, TsSegmenter};

/// Length of a TS segment: what Apple's authoring guide recommends for plain HLS.
pub const TS_SEGMENT: Duration = Duration::from_secs(6);

/// Segments kept: a minute, of which players read the last few.
const KEPT: usize = 10;

/// Segments a playlist lists: players start three target durations from the end.
const LISTED: usize = 6;

/// The segmenter and when its open segment began.
struct Writer {
    segmenter: TsSegmenter,
    /// Unix ms of the open segment's first frame.
    opened_ms: Option<i64>,
}

/// The segments players can fetch.
struct Window {
    segments: VecDeque<(TsEntry, Bytes)>,
    next: u64,
    ended: bool,
}

/// One channel's TS rendition.
pub struct TsStream {
    /// The rendition whose frames it segments.
    pub from: Stream,
    /// Its bits per second (the AAC rendition's).
    pub bitrate: u32,
    writer: Mutex<Writer>,
    window: RwLock<Window>,
}

impl TsStream {
    /// The TS rendition of the AAC rendition `from` (its AudioSpecificConfig `asc`), whose first
    /// segment is numbered `first`.
    pub fn new(from: Stream, asc: &[u8], bitrate: u32, first: u64) -> Result<TsStream, String> {
        let samples = TS_SEGMENT.as_secs() * 48_000;
        let segmenter = TsSegmenter::new(asc, samples).map_err(|e| e.to_string())?;
        Ok(TsStream {
            from,
            bitrate,
            writer: Mutex::new(Writer {
                segmenter,
                opened_ms: None,
            }),
            window: RwLock::new(Window {
                segments: VecDeque::new(),
                next: first,
                ended: false,
            }),
        })
    }

    /// Adds one AAC access unit of `samples` samples at `pts` (48 kHz), encoded at `now_ms`.
    pub fn push(&self, access_unit: &[u8], pts: u64, samples: u32, now_ms: i64) {
        let mut w = self.writer.lock();
        let closed = match w.segmenter.push(access_unit, pts, samples) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "a frame could not be written to the TS rendition");
                return;
            }
        };
        // The frame that closed a segment opened the next.
        let started = w.opened_ms;
        if closed.is_some() || started.is_none() {
            w.opened_ms = Some(now_ms);
        }
        drop(w);
        if let Some(seg) = closed {
            self.publish(seg, started.unwrap_or(now_ms));
        }
    }

    fn publish(&self, seg: TsSegment, opened_ms: i64) {
        // The segment's wall-clock start is when its first frame was encoded: late by the
        // encoder's latency, the same for every segment.
        let mut w = self.window.write();
        let entry = TsEntry {
            sequence: w.next,
            seconds: seg.seconds(),
            program_date_time_ms: opened_ms,
        };
        w.next += 1;
        w.segments.push_back((entry, Bytes::from(seg.bytes)));
        while w.segments.len() > KEPT {
            w.segments.pop_front();
        }
    }

    /// Now-playing changed.
    pub fn set_title(&self, title: &str) {
        self.writer.lock().segmenter.set_title(title);
    }

    /// The channel stopped: the open segment is published and the playlist ends.
    pub fn end(&self) {
        let (seg, opened) = {
            let mut w = self.writer.lock();
            (w.segmenter.finish(), w.opened_ms.take())
        };
        if let (Ok(Some(seg)), Some(at)) = (seg, opened) {
            self.publish(seg, at);
        }
        self.window.write().ended = true;
    }

    /// The media playlist, each segment URI followed by `query`; `None` before the first
    /// segment is complete.
    pub fn playlist(&self, query: &str) -> Option<String> {
        let w = self.window.read();
        if w.segments.is_empty() {
            return None;
        }
        let skip = w.segments.len().saturating_sub(LISTED);
        let entries: Vec<TsEntry> = w
            .segments
            .iter()
            .skip(skip)
            .map(|(e, _)| e.clone())
            .collect();
        Some(render_ts_media(&entries, query, w.ended))
    }

    /// Segment `sequence`, while it is kept.
    pub fn segment(&self, sequence: u64) -> Option<Bytes> {
        let w = self.window.read();
        w.segments
            .iter()
            .find(|(e, _)| e.sequence == sequence)
            .map(|(_, b)| b.clone())
    }
}
