//! The segment grid shared by every rendition, and a push/flush segmenter.

/// The timescale of the lossy renditions (48 kHz samples).
pub const LOSSY_TIMESCALE: u32 = 48_000;

/// 320 ms at 48 kHz: the least common multiple of Opus's 960-sample and AAC's 1024-sample frames.
/// Every lossy segment boundary is a multiple of it in decode time, so both codecs can cut there.
pub const GRID: u64 = 15_360;

/// The smallest priming: one AAC frame, so a leading AAC frame that only carries encoder delay
/// can be dropped (see `veza_codecs::encode_aligned`).
const MIN_PRIMING: u64 = 1024;

/// Where a track's segments start and end, in every rendition.
///
/// Lossy renditions are decoded from `priming` silent samples followed by the track; `priming` is
/// chosen so that `priming + duration` is a multiple of [`GRID`]: the last packet ends exactly with
/// the track (no padding to trim, which matters to players that ignore edit lists at the end), and
/// segment boundaries at multiples of the segment length in decode time are frame boundaries of
/// both Opus and AAC. All lossy renditions share `priming`, so they cut at the same instants; the
/// lossless rendition cuts at the nearest sample to those instants at its own rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    priming: u32,
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
        let segment_len = steps as u64 * GRID;
        let rest = (GRID - duration % GRID) % GRID;
        let priming = if rest >= MIN_PRIMING {
            rest
        } else {
            rest + GRID
        };
        Plan {
            priming: priming as u32,
            duration,
            segment_len,
        }
    }

    /// Samples of silence before the track in every lossy rendition (edit list `media_time`,
    /// Opus pre-skip).
    pub fn priming(&self) -> u32 {
        self.priming
    }

    /// Track length in samples at 48 kHz.
    pub fn duration(&self) -> u64 {
        self.duration
    }

    /// Segment length in samples at 48 kHz (a multiple of [`GRID`]).
    pub fn segment_len(&self) -> u64 {
        self.segment_len
    }

    /// Decode times (48 kHz) where lossy segments 1, 2, ... start.
    pub fn decode_boundaries(&self) -> Vec<u64> {
        let end = u64::from(self.priming) + self.duration;
        let mut cuts: Vec<u64> = (1..)
            .map(|k| k * self.segment_len)
            .skip_while(|&b| b <= u64::from(self.priming))
            .take_while(|&b| b < end)
            .collect();
        // A last segment shorter than one grid step is merged into the one before it.
        if cuts.last().is_some_and(|&b| end - b < GRID) {
            cuts.pop();
        }
        cuts
    }

    /// Presentation times (48 kHz samples from the track start) of every segment start, the first
    /// being 0.
    pub fn starts(&self) -> Vec<u64> {
        std::iter::once(0)
            .chain(
                self.decode_boundaries()
                    .into_iter()
                    .map(|b| b - u64::from(self.priming)),
            )
            .collect()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.decode_boundaries().len() + 1
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
    fn priming_fills_the_grid() {
        for duration in [1, 441, 15_360, 15_359, 480_000, 8_640_000 + 7] {
            let plan = Plan::new(duration, 6.0);
            let p = u64::from(plan.priming());
            assert_eq!((p + duration) % GRID, 0, "duration {duration}");
            assert!((MIN_PRIMING..MIN_PRIMING + GRID).contains(&p));
        }
    }

    #[test]
    fn six_seconds_is_nineteen_grid_steps() {
        let plan = Plan::new(48_000 * 20, 6.0);
        assert_eq!(plan.segment_len(), 19 * GRID);
        let secs = plan.segment_seconds();
        assert!((secs.iter().sum::<f64>() - 20.0).abs() < 1e-9);
        assert!(secs[1..secs.len() - 1]
            .iter()
            .all(|&s| (s - 6.08).abs() < 1e-9));
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
