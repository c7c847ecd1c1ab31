//! What decoding gives and what bounds it: limits, the source's description, cover art, and the
//! header checks every input passes before anything is sized from it.

use crate::tags::Tags;
use crate::units::{Pcm, SampleRate};
use crate::{Error, Result};
use serde::Serialize;
use symphonia::core::audio::Channels;

/// Bounds on what one input may make us allocate.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest accepted input, in seconds of audio.
    pub max_seconds: f64,
    /// Most channels accepted in the source (they are downmixed afterwards).
    pub max_channels: usize,
    /// Largest embedded cover image kept, in bytes; larger ones are dropped, not fatal.
    pub max_cover_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_seconds: 6.0 * 3600.0,
            max_channels: 32,
            max_cover_bytes: 8 << 20,
        }
    }
}

/// An embedded cover image.
#[derive(Debug, Clone, PartialEq)]
pub struct Cover {
    /// MIME type, detected from the bytes (`image/jpeg` or `image/png`).
    pub media_type: &'static str,
    /// The encoded image.
    pub data: Vec<u8>,
}

impl Cover {
    /// The file extension matching the image type.
    pub fn extension(&self) -> &'static str {
        if self.media_type == "image/png" {
            "png"
        } else {
            "jpg"
        }
    }
}

/// What the source is, as found while decoding it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceInfo {
    /// Container short name (`wav`, `flac`, `isomp4`, `ogg`, ...).
    pub container: String,
    /// Codec short name (`pcm_s16le`, `mp3`, `aac`, `opus`, ...).
    pub codec: String,
    /// Source sample rate.
    pub sample_rate: SampleRate,
    /// Channels in the source, before any downmix.
    pub channels: usize,
    /// Bits per sample for PCM-like and lossless codecs; `None` for lossy codecs.
    pub bits_per_sample: Option<u32>,
    /// Whether the codec is lossless (PCM, FLAC, ALAC, ...).
    pub lossless: bool,
    /// Descriptive tags.
    pub tags: Tags,
    /// Packets that failed to decode and were skipped.
    pub skipped_packets: u64,
    /// Where the first skipped packet was, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_skip_seconds: Option<f64>,
    /// Whether the file ends before the audio it declares (cut off mid-frame, or a sample table
    /// pointing past the end): what decodes up to the cut is kept.
    #[serde(skip)]
    pub truncated: bool,
    /// The duration the container or codec header declares, in seconds, when it states one.
    #[serde(skip)]
    pub declared_seconds: Option<f64>,
    /// What was wrong but did not stop decoding (malformed tags, a cut-off end), one line each.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// A decoded source: its PCM, what it was, and its cover art.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Description of the source.
    pub info: SourceInfo,
    /// The decoded samples at the source rate, in the source's channel order.
    pub pcm: Pcm,
    /// The source's channel layout, when the container states one.
    pub layout: Option<Channels>,
    /// Embedded cover art (front cover preferred).
    pub cover: Option<Cover>,
}

/// Sample rates accepted from a header: 8 kHz (narrowband telephony) to 768 kHz (the highest rate
/// professional converters offer). Outside these, a header is lying or hostile, and every buffer
/// sized from the rate (resampler filters, waveform pixels) would be absurd.
pub const RATE_RANGE: std::ops::RangeInclusive<u32> = 8_000..=768_000;

pub(super) fn check_rate(rate: SampleRate) -> Result<SampleRate> {
    if RATE_RANGE.contains(&rate.hz()) {
        Ok(rate)
    } else {
        Err(Error::Limit(format!(
            "a sample rate of {} Hz (accepted: {} to {} Hz)",
            rate.hz(),
            RATE_RANGE.start(),
            RATE_RANGE.end()
        )))
    }
}

pub(super) fn check_channels(n: usize, limits: &Limits) -> Result<()> {
    if n > limits.max_channels {
        return Err(Error::Limit(format!(
            "{n} channels (at most {})",
            limits.max_channels
        )));
    }
    Ok(())
}

/// Why one packet did not decode.
pub(super) enum DecodeFailure {
    /// Damage in this packet only: skip it and count it.
    Recoverable(String),
    /// The decoder cannot go on.
    Fatal(Error),
}

/// Counts of packets that decoded and that were skipped as damaged.
#[derive(Debug, Default)]
pub(super) struct Damage {
    pub(super) good: u64,
    pub(super) bad: u64,
    pub(super) first_bad: Option<f64>,
}

impl Damage {
    /// Packets skipped before the damage is judged too much to recover from.
    const TOLERATED: u64 = 64;

    /// Records a skipped packet at `at` seconds; fails once broken packets outnumber good ones.
    pub(super) fn skip(&mut self, at: f64, detail: String) -> Result<()> {
        self.bad += 1;
        self.first_bad.get_or_insert(at);
        if self.bad > Self::TOLERATED && self.bad > self.good {
            return Err(self.corrupt(detail));
        }
        Ok(())
    }

    pub(super) fn corrupt(&self, detail: String) -> Error {
        Error::Corrupt {
            at_seconds: self.first_bad,
            detail,
        }
    }
}

/// What the first link of the stream was.
pub(super) struct FirstLink {
    pub(super) rate: SampleRate,
    pub(super) name: String,
    pub(super) lossless: bool,
}
