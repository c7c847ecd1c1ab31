//! Encoders behind one trait, and gapless whole-track encoding.

#[cfg(feature = "aac")]
pub mod aac;
pub mod flac;
pub mod mp3;
pub mod opus;

use crate::units::{Pcm, SampleRate};
use crate::{Error, Result};
use serde::Serialize;

/// The codecs of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Opus (RFC 6716), 48 kHz, 20 ms frames.
    Opus,
    /// MPEG-4 AAC-LC, 1024-sample frames.
    Aac,
    /// FLAC, lossless.
    Flac,
    /// MPEG-1 Layer III, 1152-sample frames (the progressive mounts only).
    Mp3,
}

/// What a decoder needs besides the packets: the sample entry's codec box contents.
#[derive(Debug, Clone, PartialEq)]
pub enum CodecConfig {
    /// Fields of the `dOps` box (Opus in ISO BMFF, section 4.3.2).
    Opus {
        /// Output channel count.
        channels: u8,
        /// Samples (at 48 kHz) to discard from the start of the decoded stream.
        pre_skip: u16,
        /// The original input rate, informational.
        input_rate: u32,
    },
    /// The AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) for the `esds` box.
    Aac {
        /// AudioSpecificConfig bytes.
        asc: Vec<u8>,
    },
    /// The 34-byte STREAMINFO block (RFC 9639 section 8.2) for the `dfLa` box.
    Flac {
        /// STREAMINFO body.
        streaminfo: Vec<u8>,
    },
    /// MP3 frames describe themselves: nothing beyond them.
    Mp3,
}

/// One encoded access unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// The bytes.
    pub data: Vec<u8>,
    /// Samples it decodes to, at the encoder's rate.
    pub duration: u32,
}

/// An audio encoder: PCM in, packets out.
pub trait Encoder: Send {
    /// Which codec this is.
    fn codec(&self) -> Codec;
    /// The rate packets are timed in.
    fn rate(&self) -> SampleRate;
    /// Channels encoded.
    fn channels(&self) -> usize;
    /// Samples per packet (the nominal one for FLAC).
    fn frame_len(&self) -> usize;
    /// The encoder's inherent delay in samples: decoded output sample `k + delay` is input `k`.
    fn delay(&self) -> usize;
    /// Target bitrate in bits per second (0 for lossless).
    fn bitrate(&self) -> u32;
    /// The smallest priming [`encode_aligned`] accepts: the encoder's delay, or one frame when
    /// that is shorter (whole leading frames of pure delay are then dropped).
    fn min_priming(&self) -> usize {
        self.delay().min(self.frame_len())
    }
    /// Encodes planar samples; any length, the encoder buffers to its frame size.
    fn push(&mut self, planes: &[&[f32]]) -> Result<Vec<Packet>>;
    /// Encodes whatever is buffered and ends the stream.
    fn flush(&mut self) -> Result<Vec<Packet>>;
    /// The decoder configuration, complete once the stream has been flushed.
    fn config(&self) -> CodecConfig;
}

/// A gaplessly encoded track.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The packets, in decode order.
    pub packets: Vec<Packet>,
    /// Samples at the start of the decoded stream that are not part of the track (encoder delay
    /// plus alignment); the edit list's `media_time` and Opus's pre-skip.
    pub priming: u32,
    /// Samples of the track: `priming + duration` is exactly the decoded length, so there is no
    /// trailing padding to trim.
    pub duration: u64,
    /// Decoder configuration (for Opus, with `pre_skip` = `priming`).
    pub config: CodecConfig,
}

/// Encodes a whole track so that decoding the packets and dropping the first `priming` samples
/// gives back exactly `pcm.frames()` samples, aligned with the input, with nothing after them.
/// The whole-clip form of [`Aligned`].
pub fn encode_aligned(encoder: &mut dyn Encoder, pcm: &Pcm, priming: u32) -> Result<Encoded> {
    if pcm.rate != encoder.rate() {
        return Err(Error::Encoder(
            "PCM shape does not match the encoder".into(),
        ));
    }
    let mut aligned = Aligned::new(encoder, priming, pcm.frames() as u64)?;
    let mut packets = Vec::new();
    let mut at = 0;
    let len = pcm.frames();
    let step = aligned.encoder.frame_len() * 8;
    while at < len {
        let end = (at + step).min(len);
        let planes: Vec<&[f32]> = pcm.planes.iter().map(|p| &p[at..end]).collect();
        packets.extend(aligned.push(&planes)?);
        at = end;
    }
    let (tail, config) = aligned.finish()?;
    packets.extend(tail);
    Ok(Encoded {
        packets,
        priming,
        duration: len as u64,
        config,
    })
}

/// Gapless encoding of a track whose length is known, fed in pieces.
///
/// Decoding the packets and dropping the first `priming` samples gives back exactly the `len`
/// samples pushed, aligned with the input, with nothing after them. `priming` must be at least
/// [`Encoder::min_priming`], and `priming + len` a multiple of the frame length: the caller picks
/// it (see `veza_hls::Plan::priming_for`) so that packet boundaries fall on the segment boundaries.
/// Silence is fed before the track so the encoder's own delay ends exactly at `priming`; when the
/// encoder's delay is larger than `priming`, whole leading packets that carry only that silence
/// are dropped (an MDCT frame whose window saw only zeros has all-zero coefficients, so a decoder
/// starting after it produces identical output, and the first kept frame's own output lies inside
/// the priming).
pub struct Aligned<'a> {
    encoder: &'a mut dyn Encoder,
    priming: u32,
    len: u64,
    pushed: u64,
    /// Leading packets of pure delay to drop, and the packets wanted in all (dropped included).
    dropped: usize,
    wanted: usize,
    /// Packets the encoder has produced so far.
    produced: usize,
    silence_left: usize,
}

impl<'a> Aligned<'a> {
    /// Starts encoding a track of `len` samples with `priming` samples before it.
    ///
    /// # Errors
    /// [`Error::Encoder`] when the priming does not fit the frames.
    pub fn new(encoder: &'a mut dyn Encoder, priming: u32, len: u64) -> Result<Self> {
        let frame = encoder.frame_len();
        let delay = encoder.delay();
        let p = priming as usize;
        if p < encoder.min_priming() || !(p as u64 + len).is_multiple_of(frame as u64) {
            return Err(Error::Encoder(format!(
                "priming {p} with {len} samples does not fit {frame}-sample frames"
            )));
        }
        let dropped = if p >= delay {
            0
        } else {
            (delay - p).div_ceil(frame)
        };
        let silence = p + dropped * frame - delay;
        let wanted = ((p as u64 + len) / frame as u64) as usize + dropped;
        Ok(Aligned {
            encoder,
            priming,
            len,
            pushed: 0,
            dropped,
            wanted,
            produced: 0,
            silence_left: silence,
        })
    }

    /// Keeps the packets of the track: drops leading packets of pure delay and anything past the
    /// last one wanted.
    fn keep(&mut self, packets: Vec<Packet>) -> Vec<Packet> {
        let first = self.produced;
        self.produced += packets.len();
        packets
            .into_iter()
            .enumerate()
            .filter(|(i, _)| (self.dropped..self.wanted).contains(&(first + i)))
            .map(|(_, p)| p)
            .collect()
    }

    fn feed(&mut self, planes: &[&[f32]]) -> Result<Vec<Packet>> {
        if self.produced >= self.wanted {
            return Ok(Vec::new());
        }
        let packets = self.encoder.push(planes)?;
        Ok(self.keep(packets))
    }

    fn feed_silence(&mut self, n: usize) -> Result<Vec<Packet>> {
        let zeros = vec![0.0f32; n];
        let planes = vec![&zeros[..]; self.encoder.channels()];
        self.feed(&planes)
    }

    /// Encodes the next samples of the track (one slice per channel).
    pub fn push(&mut self, planes: &[&[f32]]) -> Result<Vec<Packet>> {
        if planes.len() != self.encoder.channels() {
            return Err(Error::Encoder(
                "PCM shape does not match the encoder".into(),
            ));
        }
        let mut out = Vec::new();
        if self.silence_left > 0 {
            let n = std::mem::take(&mut self.silence_left);
            out.extend(self.feed_silence(n)?);
        }
        self.pushed += planes.first().map_or(0, |p| p.len()) as u64;
        if self.pushed > self.len {
            return Err(Error::Encoder(format!(
                "more than the {} samples announced",
                self.len
            )));
        }
        out.extend(self.feed(planes)?);
        Ok(out)
    }

    /// Ends the track: flushes the encoder's delay line with silence until the last real sample
    /// is out, and returns the last packets and the decoder configuration (for Opus, with
    /// `pre_skip` = `priming`).
    pub fn finish(mut self) -> Result<(Vec<Packet>, CodecConfig)> {
        if self.pushed != self.len {
            return Err(Error::Encoder(format!(
                "{} samples pushed of the {} announced",
                self.pushed, self.len
            )));
        }
        let frame = self.encoder.frame_len();
        let mut out = Vec::new();
        if self.silence_left > 0 {
            let n = std::mem::take(&mut self.silence_left);
            out.extend(self.feed_silence(n)?);
        }
        let mut guard = 0;
        while self.produced < self.wanted {
            out.extend(self.feed_silence(frame)?);
            guard += 1;
            if guard > 64 + self.encoder.delay() / frame {
                return Err(Error::Encoder("encoder stopped producing packets".into()));
            }
        }
        let config = match self.encoder.config() {
            CodecConfig::Opus {
                channels,
                input_rate,
                ..
            } => {
                let pre_skip = u16::try_from(self.priming)
                    .map_err(|_| Error::Encoder("pre-skip too long".into()))?;
                CodecConfig::Opus {
                    channels,
                    pre_skip,
                    input_rate,
                }
            }
            other => other,
        };
        Ok((out, config))
    }
}

/// Interleaved samples waiting for an encoder, consumed from the front.
///
/// Consuming moves a read position instead of shifting the buffer, and the consumed part is
/// dropped only when new samples arrive, so feeding a whole track at once costs one copy per
/// sample, not one per frame.
#[derive(Debug, Default)]
pub(crate) struct Fifo<T> {
    buf: Vec<T>,
    read: usize,
}

impl<T: Copy> Fifo<T> {
    /// Appends samples, first dropping what was consumed.
    pub(crate) fn extend(&mut self, samples: impl IntoIterator<Item = T>) {
        if self.read > 0 {
            self.buf.drain(..self.read);
            self.read = 0;
        }
        self.buf.extend(samples);
    }

    /// Samples not yet consumed.
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.read
    }

    /// The first `n` unconsumed samples (`n <= len()`).
    pub(crate) fn front(&self, n: usize) -> &[T] {
        &self.buf[self.read..self.read + n]
    }

    /// Marks the first `n` unconsumed samples as consumed.
    pub(crate) fn consume(&mut self, n: usize) {
        self.read = (self.read + n).min(self.buf.len());
    }
}

/// Interleaves planar f32 into i16 with rounding and clipping.
#[cfg_attr(not(feature = "aac"), allow(dead_code))]
pub(crate) fn interleave_i16<'a>(planes: &'a [&'a [f32]]) -> impl Iterator<Item = i16> + 'a {
    interleave(planes).map(|s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
}

/// Planar samples in interleaved order.
pub(crate) fn interleave<'a>(planes: &'a [&'a [f32]]) -> impl Iterator<Item = f32> + 'a {
    let n = planes.first().map_or(0, |p| p.len());
    (0..n).flat_map(move |i| planes.iter().map(move |p| p[i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_consumes_from_the_front_and_compacts_on_extend() {
        let mut f = Fifo::default();
        f.extend([1, 2, 3, 4]);
        assert_eq!(f.front(2), &[1, 2]);
        f.consume(3);
        assert_eq!(f.len(), 1);
        f.extend([5]);
        assert_eq!(f.front(2), &[4, 5]);
        f.consume(10);
        assert_eq!(f.len(), 0);
    }

    #[test]
    fn interleave_orders_frames_then_channels() {
        let (l, r) = ([1.0f32, 2.0], [-1.0f32, -2.0]);
        let planes = [&l[..], &r[..]];
        assert_eq!(
            interleave(&planes).collect::<Vec<_>>(),
            vec![1.0, -1.0, 2.0, -2.0]
        );
        assert_eq!(
            interleave_i16(&planes).collect::<Vec<_>>(),
            vec![32767, -32768, 32767, -32768]
        );
    }
}
