//! The segment grid shared by every rendition, and a push/flush segmenter.

/// The timescale of the lossy renditions (48 kHz samples).
pub const LOSSY_TIMESCALE: u32 = 48_000;

/// 320 ms at 48 kHz: the least common multiple of Opus's 960-sample and AAC's 1024-sample frames.
/// Segment lengths are multiples of it, so a boundary that is a frame boundary of one codec stays
/// one for the next segment too.
pub const GRID: u64 = 15_360;

/// Where a track's segments start and end, in every rendition.
///
/// The boundaries are counted back from the end of the track in whole segment lengths (multiples
/// of [`GRID`]); the first segment takes the remainder. Each lossy rendition is decoded from
/// `priming` samples that are not presented, followed by the track, with `priming + duration` a
/// multiple of its frame length ([`Plan::priming_for`]): the last frame ends exactly with the
/// track (no padding to trim, which matters to players that ignore edit lists at the end), and
/// because every boundary lies a multiple of [`GRID`] before the end, it is a frame boundary of
/// every codec whose frame divides [`GRID`]. So Opus and AAC cut at the same instants with at
/// most one frame of priming each, and the lossless rendition cuts at the nearest sample to those
/// instants at its own rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    duration: u64,
    segment_len: u64,
}

impl Plan {
    /// A plan for a track of `duration` samples at 48 kHz, with segments of about
    /// `target_seconds` (rounded to whole 320 ms steps, at least one).
    pub fn new(duration: u64, target_seconds: f64) -> Self {
        let steps = (target_seconds * f64::from(LOSSY_TIMESCALE) / GRID as f64)
            .round()
            .max(1.0);
        Plan {
            duration,
            segment_len: steps as u64 * GRID,
        }
    }

    /// The priming of a rendition whose frames are `frame` samples (a divisor of [`GRID`]): the
    /// smallest value of at least `min` for which `priming + duration` is a whole number of frames.
    /// `min` is the encoder's delay, or one frame when leading frames of pure delay may be dropped.
    pub fn priming_for(&self, frame: u32, min: u32) -> u32 {
        let frame = u64::from(frame.max(1));
        let rest = (frame - self.duration % frame) % frame;
        let extra = u64::from(min).saturating_sub(rest).div_ceil(frame) * frame;
        (rest + extra) as u32
    }

    /// Track length in samples at 48 kHz.
    pub fn duration(&self) -> u64 {
        self.duration
    }

    /// Segment length in samples at 48 kHz (a multiple of [`GRID`]).
    pub fn segment_len(&self) -> u64 {
        self.segment_len
    }

    /// Presentation times (48 kHz samples from the track start) of every segment start, the first
    /// being 0. A first segment shorter than one grid step is merged into the next.
    pub fn starts(&self) -> Vec<u64> {
        let first = self.duration % self.segment_len;
        let mut next = if first < GRID {
            first + self.segment_len
        } else {
            first
        };
        let mut starts = vec![0];
        while next < self.duration {
            starts.push(next);
            next += self.segment_len;
        }
        starts
    }

    /// Decode times where segments 1, 2, ... of a rendition with `priming` start.
    pub fn decode_boundaries(&self, priming: u32) -> Vec<u64> {
        self.starts()
            .into_iter()
            .skip(1)
            .map(|s| s + u64::from(priming))
            .collect()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.starts().len()
    }

    /// Segment start positions in samples at `rate` (for the lossless rendition), rounded to the
    /// nearest sample; the first is 0.
    pub fn starts_at_rate(&self, rate: u32) -> Vec<u64> {
        let (r, ts) = (u128::from(rate), u128::from(LOSSY_TIMESCALE));
        self.starts()
            .into_iter()
            .map(|s| ((u128::from(s) * r + ts / 2) / ts) as u64)
            .collect()
    }

    /// Presented duration of each segment in seconds, for the lossy renditions.
    pub fn segment_seconds(&self) -> Vec<f64> {
        let starts = self.starts();
        let mut ends: Vec<u64> = starts[1..].to_vec();
        ends.push(self.duration);
        starts
            .iter()
            .zip(ends)
            .map(|(s, e)| (e - s) as f64 / f64::from(LOSSY_TIMESCALE))
            .collect()
    }
}

/// A finished segment: its samples and where it starts in decode time.
#[derive(Debug, Clone, PartialEq)]
pub struct Fragment {
    /// Zero-based index of the segment.
    pub index: u32,
    /// Decode time of the first sample, in the track's timescale.
    pub base_time: u64,
    /// `(bytes, duration)` per sample.
    pub samples: Vec<(Vec<u8>, u32)>,
}

/// Groups packets into segments at given decode-time boundaries: `push(packet)` returns the
/// finished segment when a packet starts at (or crosses) the next boundary; `flush()` returns the
/// last one.
#[derive(Debug)]
pub struct Segmenter {
    boundaries: Vec<u64>,
    next: usize,
    time: u64,
    current: Fragment,
}

impl Segmenter {
    /// A segmenter cutting at `boundaries` (decode times, ascending).
    pub fn new(boundaries: Vec<u64>) -> Self {
        Segmenter {
            boundaries,
            next: 0,
            time: 0,
            current: Fragment {
                index: 0,
                base_time: 0,
                samples: Vec::new(),
            },
        }
    }

    /// Adds one packet of `duration` samples.
    pub fn push(&mut self, data: Vec<u8>, duration: u32) -> Option<Fragment> {
        let mut done = None;
        if self
            .boundaries
            .get(self.next)
            .is_some_and(|&b| self.time >= b)
            && !self.current.samples.is_empty()
        {
            while self
                .boundaries
                .get(self.next)
                .is_some_and(|&b| self.time >= b)
            {
                self.next += 1;
            }
            let index = self.current.index + 1;
            let next = Fragment {
                index,
                base_time: self.time,
                samples: Vec::new(),
            };
            done = Some(std::mem::replace(&mut self.current, next));
        }
        self.current.samples.push((data, duration));
        self.time += u64::from(duration);
        done
    }

    /// Ends the stream, returning the last segment if it holds any packet.
    pub fn flush(&mut self) -> Option<Fragment> {
        let index = self.current.index + 1;
        let last = std::mem::replace(
            &mut self.current,
            Fragment {
                index,
                base_time: self.time,
                samples: Vec::new(),
            },
        );
        (!last.samples.is_empty()).then_some(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priming_ends_the_last_frame_with_the_track() {
        for duration in [1, 441, 15_360, 15_359, 480_000, 8_640_000 + 7] {
            let plan = Plan::new(duration, 6.0);
            for (frame, min) in [(960, 312), (1024, 1024)] {
                let p = u64::from(plan.priming_for(frame, min));
                assert_eq!((p + duration) % u64::from(frame), 0, "duration {duration}");
                assert!((u64::from(min)..u64::from(min + frame)).contains(&p));
            }
        }
    }

    #[test]
    fn boundaries_are_frame_boundaries_of_both_codecs() {
        for duration in [100_000, 480_000, 8_640_000 + 7] {
            let plan = Plan::new(duration, 6.0);
            for (frame, min) in [(960u32, 312u32), (1024, 1024)] {
                let p = plan.priming_for(frame, min);
                for b in plan.decode_boundaries(p) {
                    assert_eq!(b % u64::from(frame), 0);
                }
            }
            // Every segment but the first is a whole number of grid steps.
            let starts = plan.starts();
            for w in starts.windows(2).skip(1) {
                assert_eq!((w[1] - w[0]) % GRID, 0);
            }
            if starts.len() > 1 {
                assert_eq!((duration - starts.last().unwrap()) % GRID, 0);
            }
        }
    }

    #[test]
    fn six_seconds_is_nineteen_grid_steps() {
        let plan = Plan::new(48_000 * 20, 6.0);
        assert_eq!(plan.segment_len(), 19 * GRID);
        let secs = plan.segment_seconds();
        assert!((secs.iter().sum::<f64>() - 20.0).abs() < 1e-9);
        // 20 s = 1.76 s + 3 × 6.08 s: the short segment comes first.
        assert!((secs[0] - 1.76).abs() < 1e-9, "{secs:?}");
        assert!(secs[1..].iter().all(|&s| (s - 6.08).abs() < 1e-9));
    }

    #[test]
    fn lossless_starts_follow_the_same_instants() {
        let plan = Plan::new(48_000 * 20, 6.0);
        let at44 = plan.starts_at_rate(44_100);
        for (s48, s44) in plan.starts().iter().zip(&at44) {
            let t48 = *s48 as f64 / 48_000.0;
            let t44 = *s44 as f64 / 44_100.0;
            assert!((t48 - t44).abs() <= 0.5 / 44_100.0 + 1e-12);
        }
    }

    #[test]
    fn segmenter_cuts_on_boundaries() {
        let mut s = Segmenter::new(vec![3, 6]);
        let mut out = Vec::new();
        for i in 0..8u8 {
            out.extend(s.push(vec![i], 1));
        }
        out.extend(s.flush());
        let sizes: Vec<usize> = out.iter().map(|f| f.samples.len()).collect();
        assert_eq!(sizes, vec![3, 3, 2]);
        assert_eq!(out[2].base_time, 6);
        assert_eq!(out[2].index, 2);
    }
}
