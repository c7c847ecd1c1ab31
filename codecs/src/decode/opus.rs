//! Opus through libopus: the identification header (RFC 7845 section 5.1, with the Matroska
//! and MP4 framings), channel mapping families 0 and 1, pre-skip and end trimming.

use super::types::DecodeFailure;
use crate::{Error, Result};
use symphonia::core::audio::{Channels, Position};
use symphonia::core::codecs::audio::AudioCodecParameters;
use symphonia::core::packet::Packet;

/// How the container frames Opus's identification header and pre-skip.
#[derive(Debug, Clone, Copy)]
pub(super) struct OpusFraming {
    pub(super) big_endian: bool,
    pub(super) pre_skip_in_window: bool,
}

/// Opus through libopus's multistream decoder, following RFC 7845: decode at 48 kHz, skip the
/// pre-skip, trim the end. One stream (mapping family 0, mono or stereo) is the simplest case of a
/// multistream; family 1 (up to 8 channels in the Vorbis order, such as 5.1 and 7.1) and family
/// 255 (unlabelled channels) name their streams and mapping table in the header (5.1.1).
pub(super) struct OpusSource {
    pub(super) decoder: opusic_c::multistream::Decoder,
    pub(super) channels: usize,
    /// For each output plane (in the order of [`OpusSource::layout`]), the decoded channel it takes.
    pub(super) order: Vec<usize>,
    /// The positions of the output planes, when the mapping family names them.
    pub(super) layout: Option<Channels>,
    /// Samples still to drop from the start when the container does not trim packets itself
    /// (Matroska and MP4 carry the pre-skip only in the header).
    pub(super) pre_skip_left: usize,
    pub(super) buf: Vec<f32>,
}

/// The fields of an Opus identification header (RFC 7845 5.1) that decoding needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OpusHead {
    pub(super) channels: usize,
    pub(super) pre_skip: usize,
    pub(super) gain: i16,
    pub(super) family: u8,
    pub(super) streams: u8,
    pub(super) coupled: u8,
    pub(super) mapping: Vec<u8>,
}

impl OpusHead {
    /// Most channels a multistream decoder is built for here: mapping family 1's limit.
    const MAX_CHANNELS: usize = 8;

    /// Reads `OpusHead`, or MP4's `dOps` behind the same magic (its fields are big-endian, Opus in
    /// ISO BMFF 4.3.2). Never reads past `head`.
    pub(super) fn parse(head: &[u8], big_endian: bool) -> Result<Self> {
        let bad = |why: &str| Error::Unsupported(format!("Opus header: {why}"));
        if head.len() < 19 || !head.starts_with(b"OpusHead") {
            return Err(bad("missing or shorter than 19 bytes"));
        }
        let u16_at = |i: usize| {
            let b = [head[i], head[i + 1]];
            if big_endian {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }
        };
        let channels = usize::from(head[9]);
        let family = head[18];
        let (streams, coupled, mapping) = if family == 0 {
            if !(1..=2).contains(&channels) {
                return Err(bad(&format!("mapping family 0 with {channels} channels")));
            }
            (1, channels as u8 - 1, (0..channels as u8).collect())
        } else {
            // Stream count, coupled count, then one mapping byte per output channel (5.1.1.2).
            let table = head
                .get(19..21 + channels)
                .ok_or_else(|| bad("the channel mapping table is cut short"))?;
            (table[0], table[1], table[2..].to_vec())
        };
        if !matches!(family, 0 | 1 | 255) {
            return Err(Error::Unsupported(format!(
                "Opus channel mapping family {family} (ambisonics); families 0, 1 and 255 are decoded"
            )));
        }
        if channels == 0 || channels > Self::MAX_CHANNELS || (family == 1 && channels > 8) {
            return Err(Error::Unsupported(format!(
                "Opus with {channels} channels (at most {})",
                Self::MAX_CHANNELS
            )));
        }
        let coded = usize::from(streams) + usize::from(coupled);
        if streams == 0 || coupled > streams || coded > 255 {
            return Err(bad(&format!(
                "{streams} streams of which {coupled} coupled"
            )));
        }
        if let Some(m) = mapping
            .iter()
            .find(|&&m| m != 255 && usize::from(m) >= coded)
        {
            return Err(bad(&format!(
                "mapping entry {m} names no coded channel (of {coded})"
            )));
        }
        Ok(OpusHead {
            channels,
            pre_skip: usize::from(u16_at(10)),
            gain: u16_at(16) as i16,
            family,
            streams,
            coupled,
            mapping,
        })
    }

    /// The speaker positions of mapping family 1's output channels, in the Vorbis I order
    /// (Vorbis I 4.3.9, which RFC 7845 5.1.1.2 adopts).
    pub(super) fn vorbis_positions(channels: usize) -> Option<Vec<Position>> {
        use Position as P;
        let (fl, fr, fc, lfe) = (P::FRONT_LEFT, P::FRONT_RIGHT, P::FRONT_CENTER, P::LFE1);
        let (rl, rr, rc, sl, sr) = (
            P::REAR_LEFT,
            P::REAR_RIGHT,
            P::REAR_CENTER,
            P::SIDE_LEFT,
            P::SIDE_RIGHT,
        );
        Some(match channels {
            1 => vec![fc],
            2 => vec![fl, fr],
            3 => vec![fl, fc, fr],
            4 => vec![fl, fr, rl, rr],
            5 => vec![fl, fc, fr, rl, rr],
            6 => vec![fl, fc, fr, rl, rr, lfe],
            7 => vec![fl, fc, fr, sl, sr, rc, lfe],
            8 => vec![fl, fc, fr, sl, sr, rl, rr, lfe],
            _ => return None,
        })
    }
}

/// A multistream decoder for `head`; the mapping's length fixes the channel count at compile time
/// in opusic-c, so each supported count has its arm.
pub(super) fn multistream(head: &OpusHead) -> Result<opusic_c::multistream::Decoder> {
    use opusic_c::multistream::{Config, Decoder};
    use opusic_c::SampleRate as Rate;
    macro_rules! build {
        ($($n:literal),*) => {
            match head.mapping.len() {
                $($n => {
                    let mut mapping = [0u8; $n];
                    mapping.copy_from_slice(&head.mapping);
                    Config::<$n>::try_new(head.streams, head.coupled, mapping)
                        .map(|c| Decoder::new(c, Rate::Hz48000))
                })*
                _ => None,
            }
        };
    }
    build!(1, 2, 3, 4, 5, 6, 7, 8)
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "Opus with {} streams ({} coupled) for {} channels",
                head.streams, head.coupled, head.channels
            ))
        })?
        .map_err(|e| Error::Unsupported(format!("libopus: {}", e.message())))
}

impl OpusSource {
    pub(super) fn new(params: &AudioCodecParameters, framing: OpusFraming) -> Result<Self> {
        let head = match params.extra_data.as_deref() {
            Some(h) => OpusHead::parse(h, framing.big_endian)?,
            // No header at all: a plain stereo or mono stream, as the container states.
            None => {
                let channels = params
                    .channels
                    .as_ref()
                    .map_or(2, Channels::count)
                    .clamp(1, 2);
                OpusHead {
                    channels,
                    pre_skip: 0,
                    gain: 0,
                    family: 0,
                    streams: 1,
                    coupled: channels as u8 - 1,
                    mapping: (0..channels as u8).collect(),
                }
            }
        };
        let mut decoder = multistream(&head)?;
        decoder
            .set_gain(i32::from(head.gain))
            .map_err(|e| Error::Unsupported(format!("libopus: {}", e.message())))?;
        // Family 1 names positions: order the planes as their position bits (the WAVE order the
        // downmix reads). Other families keep the coded order.
        let (order, layout) = match OpusHead::vorbis_positions(head.channels)
            .filter(|_| head.family == 1 && head.channels > 2)
        {
            Some(positions) => {
                let mut order: Vec<usize> = (0..head.channels).collect();
                order.sort_by_key(|&i| positions[i].bits());
                let mask = positions.iter().fold(Position::empty(), |m, &p| m | p);
                (order, Some(Channels::Positioned(mask)))
            }
            None => ((0..head.channels).collect(), None),
        };
        // Containers that turn the pre-skip into per-packet trims are detected on the first
        // packet (see `decode`); until then the pre-skip is ours to apply.
        let pre_skip_left = if framing.pre_skip_in_window {
            0
        } else {
            head.pre_skip
        };
        Ok(OpusSource {
            decoder,
            channels: head.channels,
            order,
            layout,
            pre_skip_left,
            // 120 ms at 48 kHz, the longest Opus packet (RFC 6716 3.2.5).
            buf: vec![0.0; 5760 * head.channels],
        })
    }

    pub(super) fn decode(
        &mut self,
        packet: &Packet,
        out: &mut Vec<Vec<f32>>,
    ) -> std::result::Result<(), DecodeFailure> {
        let n = self
            .decoder
            .decode_float_to_slice(&packet.data, &mut self.buf, false)
            .map_err(|e| DecodeFailure::Recoverable(e.message().to_string()))?;
        let trim_start = (packet.trim_start.get() as usize).min(n);
        if trim_start > 0 {
            // The container applies the pre-skip itself (Ogg does, through granule positions).
            self.pre_skip_left = 0;
        }
        let trim_end = (packet.trim_end.get() as usize).min(n - trim_start);
        let mut start = trim_start;
        let skip = self.pre_skip_left.min(n - trim_end - start);
        self.pre_skip_left -= skip;
        start += skip;
        let end = n - trim_end;
        out.resize_with(self.channels, Vec::new);
        for (plane, &ch) in out.iter_mut().zip(&self.order) {
            plane.clear();
            plane.extend((start..end).map(|i| self.buf[i * self.channels + ch]));
        }
        Ok(())
    }
}
