//! One decoder per source: symphonia's, or libopus for Opus (which symphonia does not decode);
//! how their failures are classified; and plane remapping for chained links.

use super::opus::{OpusFraming, OpusSource};
use super::types::DecodeFailure;
use crate::units::SampleRate;
use crate::{Error, Result};
use symphonia::core::audio::{Channels, Position};
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::packet::Packet;

/// Symphonia's decoders, plus libopus for Opus.
pub(super) enum Decoder {
    /// A Symphonia decoder, and the integer width of the buffers it produced.
    Symphonia(Box<dyn AudioDecoder>, Option<u32>),
    Opus(OpusSource),
}

impl Decoder {
    pub(super) fn new(params: &AudioCodecParameters, opus: OpusFraming) -> Result<Self> {
        if params.codec == CODEC_ID_OPUS {
            return OpusSource::new(params, opus).map(Decoder::Opus);
        }
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
            .map_err(|e| Error::Unsupported(format!("codec: {e}")))?;
        Ok(Decoder::Symphonia(decoder, None))
    }

    pub(super) fn name(&self) -> String {
        match self {
            Decoder::Symphonia(d, _) => d.codec_info().short_name.to_string(),
            Decoder::Opus(_) => "opus".into(),
        }
    }

    pub(super) fn lossless(&self) -> bool {
        let name = self.name();
        name.starts_with("pcm") || ["flac", "alac", "wavpack"].contains(&name.as_str())
    }

    pub(super) fn bits(&self) -> Option<u32> {
        match self {
            Decoder::Symphonia(d, seen) => d.codec_params().bits_per_sample.or(*seen),
            Decoder::Opus(_) => None,
        }
    }

    pub(super) fn rate(&self) -> Option<SampleRate> {
        match self {
            Decoder::Symphonia(d, _) => d.codec_params().sample_rate.and_then(SampleRate::new),
            Decoder::Opus(_) => Some(SampleRate::LOSSY),
        }
    }

    pub(super) fn channels(&self) -> Option<usize> {
        match self {
            Decoder::Symphonia(d, _) => d.codec_params().channels.as_ref().map(Channels::count),
            Decoder::Opus(o) => Some(o.channels),
        }
    }

    pub(super) fn decode(
        &mut self,
        packet: &Packet,
        out: &mut Vec<Vec<f32>>,
    ) -> std::result::Result<(), DecodeFailure> {
        match self {
            Decoder::Symphonia(d, seen) => match d.decode(packet) {
                Ok(buf) => {
                    use symphonia::core::audio::GenericAudioBufferRef as B;
                    *seen = match buf {
                        B::U8(_) | B::S8(_) => Some(8),
                        B::U16(_) | B::S16(_) => Some(16),
                        B::U24(_) | B::S24(_) => Some(24),
                        B::U32(_) | B::S32(_) => Some(32),
                        _ => None,
                    };
                    out.iter_mut().for_each(Vec::clear);
                    buf.copy_to_vecs_planar::<f32>(out);
                    out.truncate(buf.spec().channels().count());
                    for plane in out.iter_mut() {
                        plane.truncate(buf.frames());
                    }
                    Ok(())
                }
                Err(SymphoniaError::DecodeError(e)) => {
                    Err(DecodeFailure::Recoverable(e.to_string()))
                }
                Err(SymphoniaError::IoError(e)) => Err(DecodeFailure::Recoverable(e.to_string())),
                Err(SymphoniaError::Unsupported(e)) => {
                    Err(DecodeFailure::Fatal(Error::Unsupported(e.to_string())))
                }
                Err(SymphoniaError::ResetRequired) => Err(DecodeFailure::Fatal(
                    Error::Unsupported("the stream changes its parameters mid-file".into()),
                )),
                Err(e) => Err(DecodeFailure::Recoverable(e.to_string())),
            },
            Decoder::Opus(o) => o.decode(packet, out),
        }
    }
}

/// `planes` with `want` channels: unchanged, mono duplicated, or folded by averaging.
pub(super) fn remap(planes: &[Vec<f32>], want: usize) -> std::borrow::Cow<'_, [Vec<f32>]> {
    use std::borrow::Cow;
    if planes.len() == want || planes.is_empty() {
        return Cow::Borrowed(planes);
    }
    let n = planes[0].len();
    Cow::Owned(if planes.len() == 1 {
        vec![planes[0].clone(); want]
    } else if want == 1 {
        let scale = 1.0 / planes.len() as f32;
        vec![(0..n)
            .map(|i| planes.iter().map(|p| p[i]).sum::<f32>() * scale)
            .collect()]
    } else {
        (0..want)
            .map(|ch| planes[ch.min(planes.len() - 1)].clone())
            .collect()
    })
}

pub(super) fn classify(e: SymphoniaError, at_seconds: Option<f64>) -> Error {
    match e {
        SymphoniaError::Unsupported(what) => Error::Unsupported(what.to_string()),
        SymphoniaError::LimitError(what) => Error::Limit(what.to_string()),
        SymphoniaError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::Corrupt {
                at_seconds,
                detail: "the data ends before its headers do".into(),
            }
        }
        SymphoniaError::IoError(io) => Error::Io(io),
        other => Error::Corrupt {
            at_seconds,
            detail: other.to_string(),
        },
    }
}

/// Channel positions of the planes symphonia produced, for the downmix.
pub(crate) fn positions(layout: Option<&Channels>, count: usize) -> Vec<Position> {
    match layout {
        Some(Channels::Positioned(mask)) if mask.bits().count_ones() as usize == count => {
            mask.iter().collect()
        }
        _ => Position::from_count(count as u32)
            .map(|m| m.iter().collect())
            .unwrap_or_default(),
    }
}
