//! Waveform peaks in the BBC audiowaveform JSON format, version 2
//! (<https://github.com/bbc/audiowaveform/blob/master/doc/DataFormat.md>), which peaks.js and
//! wavesurfer.js read as they are.

use crate::units::Pcm;
use serde::Serialize;

/// audiowaveform data: interleaved min/max pairs per pixel, 8-bit resolution, one channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Waveform {
    /// Always 2.
    pub version: u32,
    /// Channels in `data`; the waveform is of the mono mix, so 1.
    pub channels: u32,
    /// The source sample rate.
    pub sample_rate: u32,
    /// Source frames per pixel.
    pub samples_per_pixel: u32,
    /// Bits per value (8: values are -128..=127).
    pub bits: u32,
    /// Number of pixels.
    pub length: u32,
    /// `[min0, max0, min1, max1, ...]`.
    pub data: Vec<i8>,
}

impl Waveform {
    /// Peaks of the mono mix of `pcm`, about `pixels_per_second` pixels per second of audio.
    pub fn from_pcm(pcm: &Pcm, pixels_per_second: u32) -> Self {
        let spp = (pcm.rate.hz() / pixels_per_second.max(1)).max(1) as usize;
        let frames = pcm.frames();
        let channels = pcm.channels().max(1) as f32;
        let mut data = Vec::with_capacity(2 * frames.div_ceil(spp));
        let mut start = 0;
        while start < frames {
            let end = (start + spp).min(frames);
            let (mut lo, mut hi) = (f32::MAX, f32::MIN);
            for i in start..end {
                let s = pcm.planes.iter().map(|p| p[i]).sum::<f32>() / channels;
                lo = lo.min(s);
                hi = hi.max(s);
            }
            data.push(quantize(lo));
            data.push(quantize(hi));
            start = end;
        }
        Waveform {
            version: 2,
            channels: 1,
            sample_rate: pcm.rate.hz(),
            samples_per_pixel: spp as u32,
            bits: 8,
            length: (data.len() / 2) as u32,
            data,
        }
    }
}

fn quantize(s: f32) -> i8 {
    (s * 128.0).round().clamp(-128.0, 127.0) as i8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::SampleRate;

    #[test]
    fn peaks_per_pixel() {
        let pcm = Pcm {
            rate: SampleRate::LOSSY,
            planes: vec![vec![0.5, -0.25, 0.0, 1.0, -1.0]],
        };
        let w = Waveform::from_pcm(&pcm, 24_000); // 2 frames per pixel
        assert_eq!(w.samples_per_pixel, 2);
        assert_eq!(w.length, 3);
        assert_eq!(w.data, vec![-32, 64, 0, 127, -128, -128]);
    }
}
