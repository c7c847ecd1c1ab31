//! [`OpusPackets`]: bare Opus packets (the payloads of RTP, RFC 7587) to stereo 48 kHz, for a
//! WebRTC publisher. A packet that never arrived is concealed by libopus (packet loss
//! concealment), so the timeline stays whole.

use crate::{Error, Result};

/// Largest Opus packet duration: 120 ms at 48 kHz (RFC 6716 §3.2.5).
const MAX_FRAMES: usize = 5_760;

/// Decodes one publisher's Opus packets.
pub struct OpusPackets {
    inner: opus::Decoder,
    interleaved: Vec<f32>,
}

impl OpusPackets {
    /// A stereo 48 kHz decoder (mono packets come out on both channels).
    ///
    /// # Errors
    /// When libopus cannot create the decoder.
    pub fn new() -> Result<OpusPackets> {
        let inner = opus::Decoder::new(48_000, opus::Channels::Stereo)
            .map_err(|e| Error::Unsupported(format!("libopus decoder: {e}")))?;
        Ok(OpusPackets {
            inner,
            interleaved: vec![0.0; MAX_FRAMES * 2],
        })
    }

    /// Decodes one packet to left and right planes.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a packet libopus refuses (damage or garbage).
    pub fn decode(&mut self, packet: &[u8]) -> Result<[Vec<f32>; 2]> {
        if packet.is_empty() {
            return Err(corrupt("an empty Opus packet".into()));
        }
        let n = self
            .inner
            .decode_float(packet, &mut self.interleaved, false)
            .map_err(|e| corrupt(format!("Opus packet: {e}")))?;
        Ok(self.planes(n))
    }

    /// Conceals `frames` lost samples (rounded to whole 2.5 ms steps, at most 120 ms).
    ///
    /// # Errors
    /// When libopus fails, which it does not for a valid length.
    pub fn conceal(&mut self, frames: usize) -> Result<[Vec<f32>; 2]> {
        let frames = (frames.min(MAX_FRAMES) / 120) * 120;
        if frames == 0 {
            return Ok([Vec::new(), Vec::new()]);
        }
        let n = self
            .inner
            .decode_float(&[], &mut self.interleaved[..frames * 2], false)
            .map_err(|e| corrupt(format!("Opus concealment: {e}")))?;
        Ok(self.planes(n))
    }

    fn planes(&self, frames: usize) -> [Vec<f32>; 2] {
        let s = &self.interleaved[..frames * 2];
        [
            s.iter().step_by(2).copied().collect(),
            s.iter().skip(1).step_by(2).copied().collect(),
        ]
    }
}

fn corrupt(detail: String) -> Error {
    Error::Corrupt {
        at_seconds: None,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Encoder, OpusEncoder};

    #[test]
    fn encoded_frames_decode_and_losses_are_concealed() {
        let mut enc = OpusEncoder::new(2, 128_000).unwrap();
        let tone: Vec<f32> = (0..48_000)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin() * 0.5)
            .collect();
        let packets = enc.push(&[&tone, &tone]).unwrap();
        assert!(packets.len() >= 45);
        let mut d = OpusPackets::new().unwrap();
        let mut left = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            if i == 20 {
                let c = d.conceal(960).unwrap();
                assert_eq!(c[0].len(), 960);
                left.extend(c[0].iter());
                continue;
            }
            let [l, r] = d.decode(&p.data).unwrap();
            assert_eq!(l.len(), 960);
            // Both channels carried the same tone; joint stereo coding leaves them within
            // rounding of each other, not bit-identical.
            let apart = l
                .iter()
                .zip(&r)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(apart < 1e-3, "channels {apart} apart");
            left.extend(l);
        }
        let peak = left[10_000..].iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!((0.4..0.6).contains(&peak), "peak {peak}");
        assert!(d.decode(b"").is_err());
        assert!(d.conceal(0).unwrap()[0].is_empty());
    }
}
