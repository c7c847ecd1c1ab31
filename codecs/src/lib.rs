//! # veza-codecs: the pure audio core of Veza Stream
//!
//! This crate turns encoded audio into PCM and PCM into the encoded packets of the streaming
//! ladder. It owns:
//!
//! - **decode**: every container and codec Symphonia reads, plus Opus (in Ogg, Matroska/WebM and
//!   MP4; mono, stereo and multichannel, RFC 7845 families 0, 1 and 255) through libopus's
//!   multistream decoder, with tags and cover art. [`StreamDecoder`] gives the PCM piece by piece,
//!   in memory that does not grow with the duration, after checking what the headers declare
//!   (sample rate within [`RATE_RANGE`], channels and duration within [`Limits`]) before anything
//!   is sized from it; [`decode()`] joins the pieces. Malformed tag blocks become warnings and a
//!   cut-off file keeps what decodes ([`SourceInfo`]);
//! - **channels**: ITU-R BS.775 downmix of more than two channels to stereo ([`downmix`]);
//! - **resample**: rubato's FFT resampler fed in pieces, delay-compensated so the output is
//!   sample-aligned with the input ([`Resampler`], and [`resample()`] for a whole clip);
//! - **loudness**: EBU R128 integrated loudness, loudness range and true peak ([`Meter`]), and
//!   normalisation with a look-ahead true-peak limiter ([`Normalizer`]), both fed in pieces, with
//!   whole-clip forms ([`measure`], [`normalize`]);
//! - **encode**: Opus, AAC-LC (feature `aac`) and FLAC behind one [`Encoder`] trait, and
//!   gapless encoding with a chosen priming, fed in pieces ([`Aligned`], [`encode_aligned`]);
//! - **waveform**: BBC audiowaveform version 2 peaks ([`WaveformBuilder`], [`Waveform`]).
//!
//! It does not own files, threads or clocks: sources are `Read + Seek` values, and every
//! function is synchronous and deterministic, so it can be tested on exact samples and fuzzed.
//! Parallelism is the caller's business (the server runs encoders on separate threads).
//!
//! ```
//! use veza_codecs::{decode, Limits};
//! use std::io::Cursor;
//!
//! // A 16-bit mono WAV of 480 zero samples at 48 kHz.
//! let mut wav = Vec::new();
//! let data_len = 480u32 * 2;
//! wav.extend_from_slice(b"RIFF");
//! wav.extend_from_slice(&(36 + data_len).to_le_bytes());
//! wav.extend_from_slice(b"WAVEfmt ");
//! wav.extend_from_slice(&16u32.to_le_bytes());
//! wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
//! wav.extend_from_slice(&1u16.to_le_bytes()); // mono
//! wav.extend_from_slice(&48_000u32.to_le_bytes());
//! wav.extend_from_slice(&96_000u32.to_le_bytes());
//! wav.extend_from_slice(&2u16.to_le_bytes());
//! wav.extend_from_slice(&16u16.to_le_bytes());
//! wav.extend_from_slice(b"data");
//! wav.extend_from_slice(&data_len.to_le_bytes());
//! wav.resize(wav.len() + data_len as usize, 0);
//!
//! let decoded = decode(Box::new(Cursor::new(wav)), Some("wav"), &Limits::default(), &mut |_| {})
//!     .unwrap();
//! assert_eq!(decoded.pcm.frames(), 480);
//! assert_eq!(decoded.info.sample_rate.hz(), 48_000);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod channels;
mod decode;
mod encode;
mod error;
mod loudness;
mod mpeg;
mod ogg;
mod resample;
mod tags;
mod units;
mod waveform;

pub use channels::downmix;
pub use decode::{
    decode, moov_window, Cover, Decoded, Limits, OpusPackets, PushDecoder, SourceInfo,
    StreamDecoder, Window, RATE_RANGE,
};
#[cfg(feature = "aac")]
pub use encode::aac::AacEncoder;
pub use encode::{
    encode_aligned,
    flac::FlacEncoder,
    mp3::{Mp3Encoder, BITRATES as MP3_BITRATES},
    opus::OpusEncoder,
    Aligned, Codec, CodecConfig, Encoded, Encoder, Packet,
};
pub use error::{Error, Result};
pub use loudness::{
    measure, normalize, IntegratedMeter, Loudness, Meter, Normalization, NormalizeConfig,
    Normalizer,
};
pub use ogg::OggTitles;
pub use resample::{resample, Resampler};
pub use tags::Tags;
pub use units::{Pcm, SampleRate};
pub use waveform::{Waveform, WaveformBuilder};
