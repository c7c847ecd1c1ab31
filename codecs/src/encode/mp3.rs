//! MPEG-1 Layer III through LAME (the `mp3lame-encoder` crate, which builds libmp3lame from
//! source): constant bitrate, for the progressive mounts radio players read.
//!
//! LAME hands back whole frames; they are split into one [`Packet`] per frame (1152 samples at
//! 32 kHz and above), so that every packet starts on a frame header and a listener can join at
//! any of them.

use super::{Codec, CodecConfig, Encoder, Packet};
use crate::mpeg::frame_len;
use crate::units::SampleRate;
use crate::{Error, Result};
use mp3lame_encoder::{Bitrate, Builder, DualPcm, FlushNoGap, MonoPcm, Quality};

/// Samples per MPEG-1 Layer III frame.
pub const FRAME: usize = 1152;

/// The bitrates (kb/s) an MPEG-1 Layer III stream can have at constant bitrate.
pub const BITRATES: [u32; 14] = [
    32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
];

/// LAME's encoder delay at 48 kHz with default settings: 576 samples of its own plus its decoder
/// delay of 529 (what `--nogap` decoders trim).
const DELAY: usize = 576 + 529;

/// An MP3 CBR encoder for mono or stereo at 32, 44.1 or 48 kHz.
pub struct Mp3Encoder {
    inner: mp3lame_encoder::Encoder,
    channels: usize,
    rate: SampleRate,
    bitrate: u32,
    /// Encoded bytes not yet cut into frames (LAME may end a call inside one).
    bytes: Vec<u8>,
}

impl Mp3Encoder {
    /// A new encoder; `bitrate` in bits per second, one of [`BITRATES`] (in kb/s).
    pub fn new(rate: SampleRate, channels: usize, bitrate: u32) -> Result<Self> {
        let kbps = match bitrate / 1000 {
            32 => Bitrate::Kbps32,
            40 => Bitrate::Kbps40,
            48 => Bitrate::Kbps48,
            64 => Bitrate::Kbps64,
            80 => Bitrate::Kbps80,
            96 => Bitrate::Kbps96,
            112 => Bitrate::Kbps112,
            128 => Bitrate::Kbps128,
            160 => Bitrate::Kbps160,
            192 => Bitrate::Kbps192,
            224 => Bitrate::Kbps224,
            256 => Bitrate::Kbps256,
            320 => Bitrate::Kbps320,
            k => {
                return Err(Error::Encoder(format!(
                    "MP3 takes one of {BITRATES:?} kb/s, not {k}"
                )))
            }
        };
        if !matches!(rate.hz(), 32_000 | 44_100 | 48_000) {
            return Err(Error::Encoder(format!(
                "MP3 (MPEG-1) takes 32, 44.1 or 48 kHz, not {} Hz",
                rate.hz()
            )));
        }
        if !(1..=2).contains(&channels) {
            return Err(Error::Encoder(format!(
                "MP3 encoder takes 1 or 2 channels, not {channels}"
            )));
        }
        let lame = |e: mp3lame_encoder::BuildError| Error::Encoder(format!("LAME: {e:?}"));
        let mut b = Builder::new().ok_or_else(|| Error::Encoder("LAME: out of memory".into()))?;
        b.set_num_channels(channels as u8).map_err(lame)?;
        b.set_sample_rate(rate.hz()).map_err(lame)?;
        b.set_brate(kbps).map_err(lame)?;
        b.set_quality(Quality::Good).map_err(lame)?;
        // A stream, not a file: no Xing/LAME tag frame at its start.
        b.set_to_write_vbr_tag(false).map_err(lame)?;
        let inner = b.build().map_err(lame)?;
        Ok(Mp3Encoder {
            inner,
            channels,
            rate,
            bitrate: (bitrate / 1000) * 1000,
            bytes: Vec::new(),
        })
    }

    /// Cuts the whole frames buffered into packets.
    fn frames(&mut self, out: &mut Vec<Packet>) {
        let mut at = 0;
        while let Some(head) = self.bytes.get(at..at + 4) {
            let Some(len) = frame_len([head[0], head[1], head[2], head[3]]) else {
                // LAME writes nothing between frames; keep the rest for the next call.
                break;
            };
            let end = at + len as usize;
            if end > self.bytes.len() {
                break;
            }
            out.push(Packet {
                data: self.bytes[at..end].to_vec(),
                duration: FRAME as u32,
            });
            at = end;
        }
        self.bytes.drain(..at);
    }

    fn grow(&mut self, samples: usize) {
        self.bytes
            .reserve(mp3lame_encoder::max_required_buffer_size(samples));
    }
}

impl Encoder for Mp3Encoder {
    fn codec(&self) -> Codec {
        Codec::Mp3
    }
    fn rate(&self) -> SampleRate {
        self.rate
    }
    fn channels(&self) -> usize {
        self.channels
    }
    fn frame_len(&self) -> usize {
        FRAME
    }
    fn delay(&self) -> usize {
        DELAY
    }
    fn bitrate(&self) -> u32 {
        self.bitrate
    }
    fn push(&mut self, planes: &[&[f32]]) -> Result<Vec<Packet>> {
        let n = planes.first().map_or(0, |p| p.len());
        if planes.len() != self.channels || planes.iter().any(|p| p.len() != n) {
            return Err(Error::Encoder(
                "PCM shape does not match the encoder".into(),
            ));
        }
        self.grow(n);
        let r = if self.channels == 1 {
            self.inner
                .encode_to_vec(MonoPcm(planes[0]), &mut self.bytes)
        } else {
            self.inner.encode_to_vec(
                DualPcm {
                    left: planes[0],
                    right: planes[1],
                },
                &mut self.bytes,
            )
        };
        r.map_err(|e| Error::Encoder(format!("LAME: {e:?}")))?;
        let mut out = Vec::new();
        self.frames(&mut out);
        Ok(out)
    }
    fn flush(&mut self) -> Result<Vec<Packet>> {
        self.grow(FRAME * 2);
        self.inner
            .flush_to_vec::<FlushNoGap>(&mut self.bytes)
            .map_err(|e| Error::Encoder(format!("LAME: {e:?}")))?;
        let mut out = Vec::new();
        self.frames(&mut out);
        Ok(out)
    }
    fn config(&self) -> CodecConfig {
        CodecConfig::Mp3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(n: usize, at: usize) -> Vec<f32> {
        (at..at + n)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin() * 0.5)
            .collect()
    }

    #[test]
    fn every_packet_is_one_whole_frame_at_the_bitrate() {
        let mut e = Mp3Encoder::new(SampleRate::new(48_000).unwrap(), 2, 128_000).unwrap();
        let mut packets = Vec::new();
        // Blocks of 960, as the channel core gives them: not a multiple of the frame.
        for i in 0..100 {
            let s = sine(960, i * 960);
            packets.extend(e.push(&[&s, &s]).unwrap());
        }
        packets.extend(e.flush().unwrap());
        assert!(packets.len() >= 96_000 / FRAME - 1, "{}", packets.len());
        for p in &packets {
            // 128 kb/s at 48 kHz: 144 * 128000 / 48000 = 384 bytes, never padded.
            assert_eq!(p.data.len(), 384);
            assert_eq!(&p.data[..2], &[0xFF, 0xFB]);
            assert_eq!(p.duration, FRAME as u32);
        }
    }

    #[test]
    fn unsupported_settings_are_refused() {
        let r48 = SampleRate::new(48_000).unwrap();
        assert!(Mp3Encoder::new(r48, 2, 100_000).is_err());
        assert!(Mp3Encoder::new(r48, 3, 128_000).is_err());
        assert!(Mp3Encoder::new(SampleRate::new(22_050).unwrap(), 2, 128_000).is_err());
    }
}
