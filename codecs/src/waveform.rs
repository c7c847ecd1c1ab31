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
    /// Peaks of the mono mix of a whole clip `pcm`, about `pixels_per_second` pixels per second.
    pub fn from_pcm(pcm: &Pcm, pixels_per_second: u32) -> Self {
        let mut b = WaveformBuilder::new(pcm.rate, pixels_per_second);
        b.add(&pcm.plane_refs());
        b.finish()
    }
}

/// Builds a [`Waveform`] from PCM fed in pieces; it holds two bytes per pixel.
#[derive(Debug, Clone)]
pub struct WaveformBuilder {
    rate: u32,
    spp: usize,
    /// Frames in the current pixel, and its extremes.
    filled: usize,
    lo: f32,
    hi: f32,
    data: Vec<i8>,
}

impl WaveformBuilder {
    /// A builder for PCM at `rate`, about `pixels_per_second` pixels per second of audio.
    pub fn new(rate: crate::SampleRate, pixels_per_second: u32) -> Self {
        WaveformBuilder {
            rate: rate.hz(),
            spp: (rate.hz() / pixels_per_second.max(1)).max(1) as usize,
            filled: 0,
            lo: f32::MAX,
            hi: f32::MIN,
            data: Vec::new(),
        }
    }

    /// Adds planar samples (one slice per channel).
    pub fn add(&mut self, planes: &[&[f32]]) {
        let frames = planes.first().map_or(0, |p| p.len());
        let channels = planes.len().max(1) as f32;
        for i in 0..frames {
            let s = planes.iter().map(|p| p[i]).sum::<f32>() / channels;
            self.lo = self.lo.min(s);
            self.hi = self.hi.max(s);
            self.filled += 1;
            if self.filled == self.spp {
                self.end_pixel();
            }
        }
    }

    fn end_pixel(&mut self) {
        self.data.push(quantize(self.lo));
        self.data.push(quantize(self.hi));
        self.filled = 0;
        self.lo = f32::MAX;
        self.hi = f32::MIN;
    }

    /// The waveform of everything added; a last partial pixel counts.
    pub fn finish(mut self) -> Waveform {
        if self.filled > 0 {
            self.end_pixel();
        }
        Waveform {
            version: 2,
            channels: 1,
            sample_rate: self.rate,
            samples_per_pixel: self.spp as u32,
            bits: 8,
            length: (self.data.len() / 2) as u32,
            data: self.data,
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
