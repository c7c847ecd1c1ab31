//! Media time: a count of ticks with the timescale that gives them meaning (ISO/IEC 14496-12
//! `mdhd`/`tfdt` times). Never a bare number across the crate's surface.

use std::fmt;

/// A point or a length on a media timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MediaTime {
    ticks: u64,
    timescale: u32,
}

impl MediaTime {
    /// `ticks` of `1 / timescale` seconds. A timescale of 0 is taken as 1.
    pub fn new(ticks: u64, timescale: u32) -> MediaTime {
        MediaTime {
            ticks,
            timescale: timescale.max(1),
        }
    }

    /// The tick count.
    pub fn ticks(self) -> u64 {
        self.ticks
    }

    /// Ticks per second.
    pub fn timescale(self) -> u32 {
        self.timescale
    }

    /// Seconds, for display and playlists.
    pub fn seconds(self) -> f64 {
        self.ticks as f64 / f64::from(self.timescale)
    }

    /// The same instant in another timescale, rounded to the nearest tick.
    pub fn rescale(self, timescale: u32) -> MediaTime {
        let timescale = timescale.max(1);
        let t = u128::from(self.ticks) * u128::from(timescale);
        let ticks = (t + u128::from(self.timescale) / 2) / u128::from(self.timescale);
        MediaTime::new(u64::try_from(ticks).unwrap_or(u64::MAX), timescale)
    }

    /// `self + ticks` of the same timescale.
    pub fn plus(self, ticks: u64) -> MediaTime {
        MediaTime::new(self.ticks.saturating_add(ticks), self.timescale)
    }
}

impl fmt::Display for MediaTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ticks, self.timescale)
    }
}

#[cfg(test)]
mod tests {
    use super::MediaTime;

    #[test]
    fn times_keep_their_scale() {
        let t = MediaTime::new(15_360, 48_000);
        assert_eq!(t.seconds(), 0.32);
        assert_eq!(t.rescale(44_100).ticks(), 14_112);
        assert_eq!(t.rescale(1000).ticks(), 320);
        assert_eq!(t.plus(960).ticks(), 16_320);
        assert_eq!(MediaTime::new(5, 0).timescale(), 1);
        assert_eq!(t.to_string(), "15360/48000");
    }
}
