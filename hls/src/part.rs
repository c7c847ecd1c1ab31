//! LL-HLS parts: encoded frames cut into CMAF chunks on the part grid, grouped into segments.
//!
//! A live channel encodes once and this cutter turns its frames into parts of
//! [`GRID`](crate::GRID) ticks (15 360 samples at 48 kHz, 320 ms: the least common multiple of
//! Opus's 960-sample and AAC's 1024-sample frames, so both codecs cut at the same instants). Every
//! part is one `moof`+`mdat` (a CMAF chunk, ISO/IEC 23000-19 7.3.2.3) that decodes on its own;
//! audio frames are all sync samples, so every part is `INDEPENDENT=YES` (RFC 8216bis 4.4.4.9).
//! The first part of a segment also carries the segment's `styp`, so a segment is exactly the
//! concatenation of its parts and the same bytes serve `EXT-X-PART` and segment requests.
//!
//! Boundaries are multiples of the part length on the decode timeline, so renditions cut alike
//! whatever their frame size; a stream that starts off the grid gets one short first part.

use crate::fmp4::{chunk, styp};
use crate::time::MediaTime;
use crate::{Error, Result};

/// One part, ready to serve.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// Media sequence number of the segment it belongs to.
    pub msn: u64,
    /// Its index within that segment, from 0.
    pub index: u32,
    /// Decode time of its first sample.
    pub start: MediaTime,
    /// Its length.
    pub duration: MediaTime,
    /// Whether it starts with a sync sample (always, for audio).
    pub independent: bool,
    /// Whether it is the last part of its segment.
    pub ends_segment: bool,
    /// The chunk: `moof` + `mdat`, after a `styp` when `index` is 0.
    pub data: Vec<u8>,
}

/// Cuts a stream of frames into parts and segments.
#[derive(Debug)]
pub struct PartCutter {
    timescale: u32,
    part_len: u64,
    parts_per_segment: u32,
    msn: u64,
    index: u32,
    sequence: u32,
    start: u64,
    pending: Vec<(Vec<u8>, u32)>,
    pending_len: u64,
}

impl PartCutter {
    /// A cutter for a track of `timescale`, whose first frame decodes at `start` (in that
    /// timescale) and belongs to segment `first_msn`. Parts are `part_len` ticks; a segment is
    /// `parts_per_segment` of them.
    pub fn new(
        timescale: u32,
        part_len: u64,
        parts_per_segment: u32,
        start: u64,
        first_msn: u64,
    ) -> Result<PartCutter> {
        if timescale == 0 || part_len == 0 || parts_per_segment == 0 {
            return Err(Error::Overflow(format!(
                "a part grid of {part_len} ticks at {timescale} Hz, {parts_per_segment} per segment"
            )));
        }
        Ok(PartCutter {
            timescale,
            part_len,
            parts_per_segment,
            msn: first_msn,
            index: 0,
            sequence: 1,
            start,
            pending: Vec::new(),
            pending_len: 0,
        })
    }

    /// The media sequence number and part index the next part will have.
    pub fn next(&self) -> (u64, u32) {
        (self.msn, self.index)
    }

    /// Adds one encoded frame of `duration` ticks. Returns the part it completes, if any.
    pub fn push(&mut self, frame: Vec<u8>, duration: u32) -> Result<Option<Part>> {
        self.pending.push((frame, duration));
        self.pending_len += u64::from(duration);
        let end = self.start + self.pending_len;
        let boundary = (self.start / self.part_len + 1) * self.part_len;
        if end >= boundary {
            return self.cut().map(Some);
        }
        Ok(None)
    }

    /// Ends the stream: the frames held so far, as a last (short) part that ends its segment.
    pub fn flush(&mut self) -> Result<Option<Part>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let mut p = self.cut()?;
        if !p.ends_segment {
            p.ends_segment = true;
            self.msn += 1;
            self.index = 0;
        }
        Ok(Some(p))
    }

    fn cut(&mut self) -> Result<Part> {
        let samples = std::mem::take(&mut self.pending);
        let len = std::mem::take(&mut self.pending_len);
        let mut data = if self.index == 0 { styp() } else { Vec::new() };
        data.extend(chunk(self.sequence, self.start, &samples)?);
        let end = self.start + len;
        let segment_len = self.part_len * u64::from(self.parts_per_segment);
        // A part ends its segment when it reaches or crosses a segment line of the timeline.
        let ends_segment = end / segment_len > self.start / segment_len;
        let part = Part {
            msn: self.msn,
            index: self.index,
            start: MediaTime::new(self.start, self.timescale),
            duration: MediaTime::new(len, self.timescale),
            independent: true,
            ends_segment,
            data,
        };
        self.sequence = self.sequence.wrapping_add(1);
        self.start = end;
        if ends_segment {
            self.msn += 1;
            self.index = 0;
        } else {
            self.index += 1;
        }
        Ok(part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{media_segment, GRID, LOSSY_TIMESCALE};

    fn run(frame: u32, frames: usize, start: u64) -> Vec<Part> {
        let mut c = PartCutter::new(LOSSY_TIMESCALE, GRID, 4, start, 0).unwrap();
        let mut parts = Vec::new();
        for i in 0..frames {
            parts.extend(c.push(vec![i as u8; 3], frame).unwrap());
        }
        parts.extend(c.flush().unwrap());
        parts
    }

    #[test]
    fn opus_and_aac_cut_at_the_same_instants() {
        // 2.56 s: eight parts of 320 ms, two segments of four.
        let opus = run(960, 128, 0);
        let aac = run(1024, 120, 0);
        assert_eq!(opus.len(), 8);
        let at = |p: &[Part]| {
            p.iter()
                .map(|p| {
                    (
                        p.msn,
                        p.index,
                        p.start.ticks(),
                        p.duration.ticks(),
                        p.ends_segment,
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(at(&opus), at(&aac));
        assert_eq!(at(&opus)[3], (0, 3, 3 * GRID, GRID, true));
        assert_eq!(at(&opus)[4], (1, 0, 4 * GRID, GRID, false));
        assert!(opus.iter().all(|p| p.independent));
    }

    #[test]
    fn a_segment_is_its_parts_end_to_end() {
        let parts = run(960, 64, 0);
        assert_eq!(parts.len(), 4);
        // Parts after the first are bare chunks: moof first.
        assert_eq!(&parts[0].data[4..8], b"styp");
        assert_eq!(&parts[1].data[4..8], b"moof");
        // The first part equals a one-chunk segment of the same frames.
        let frames: Vec<(Vec<u8>, u32)> = (0..16).map(|i| (vec![i as u8; 3], 960)).collect();
        assert_eq!(parts[0].data, media_segment(1, 0, &frames).unwrap());
    }

    #[test]
    fn a_start_off_the_grid_gets_one_short_part_and_the_end_flushes() {
        // Start 312 ticks before the grid line (an encoder delay), 20 frames of 960.
        let parts = run(960, 20, GRID - 312);
        assert_eq!(parts[0].duration.ticks(), 960);
        assert_eq!(parts[1].start.ticks(), GRID - 312 + 960);
        let last = parts.last().unwrap();
        assert!(last.ends_segment);
        let total: u64 = parts.iter().map(|p| p.duration.ticks()).sum();
        assert_eq!(total, 20 * 960);
    }

    #[test]
    fn a_zero_grid_is_refused() {
        assert!(PartCutter::new(48_000, 0, 4, 0, 0).is_err());
        assert!(PartCutter::new(0, GRID, 4, 0, 0).is_err());
    }
}
