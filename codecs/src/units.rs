//! Newtypes for audio units.

use serde::Serialize;

/// A sample rate in hertz (frames per second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SampleRate(u32);

impl SampleRate {
    /// The rate every lossy rendition is encoded at: Opus only runs at 48 kHz, and sharing it
    /// lets AAC and Opus cut segments at the same instants.
    pub const LOSSY: SampleRate = SampleRate(48_000);

    /// A sample rate, or `None` for zero.
    pub const fn new(hz: u32) -> Option<Self> {
        if hz == 0 {
            None
        } else {
            Some(SampleRate(hz))
        }
    }

    /// The rate in hertz.
    pub const fn hz(self) -> u32 {
        self.0
    }

    /// The number of frames at this rate that corresponds to `frames` at `from`, rounded up.
    /// This is the length rubato's whole-clip resampling produces.
    pub fn convert_len(self, frames: u64, from: SampleRate) -> u64 {
        (frames * u64::from(self.0)).div_ceil(u64::from(from.0))
    }
}

/// Planar 32-bit float PCM: one `Vec` per channel, all of the same length, nominally in
/// [-1.0, 1.0].
///
/// f32 holds every integer sample of up to 24 bits exactly, so a lossless source survives the
/// round trip through this type bit for bit.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    /// The sample rate of every channel.
    pub rate: SampleRate,
    /// The samples, one plane per channel.
    pub planes: Vec<Vec<f32>>,
}

impl Pcm {
    /// Silent PCM with `channels` empty planes.
    pub fn new(rate: SampleRate, channels: usize) -> Self {
        Pcm {
            rate,
            planes: vec![Vec::new(); channels],
        }
    }

    /// Frames per channel.
    pub fn frames(&self) -> usize {
        self.planes.first().map_or(0, Vec::len)
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.planes.len()
    }

    /// Duration in seconds.
    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / f64::from(self.rate.hz())
    }

    /// Appends `other`'s frames (same rate and channel count) after this PCM's.
    pub fn append(&mut self, other: Pcm) {
        if self.planes.is_empty() {
            self.planes = other.planes;
            return;
        }
        for (dst, src) in self.planes.iter_mut().zip(other.planes) {
            dst.extend_from_slice(&src);
        }
    }

    /// Borrowed planes, the shape most DSP APIs take.
    pub fn plane_refs(&self) -> Vec<&[f32]> {
        self.planes.iter().map(Vec::as_slice).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convert_len_rounds_up() {
        let r44 = SampleRate::new(44_100).unwrap();
        assert_eq!(SampleRate::LOSSY.convert_len(44_100, r44), 48_000);
        assert_eq!(SampleRate::LOSSY.convert_len(1, r44), 2);
        assert_eq!(SampleRate::LOSSY.convert_len(0, r44), 0);
        assert!(SampleRate::new(0).is_none());
    }
}
