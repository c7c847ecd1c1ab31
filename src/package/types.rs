//! What packaging takes and gives: options, renditions, stages, the analysis and the summary,
//! and the one error type.

use serde::Serialize;
use std::path::{Path, PathBuf};
use veza_codecs::{Codec, Limits, Loudness, Normalization, NormalizeConfig, SourceInfo};

/// Why packaging failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input could not be read or decoded. Reject it; the message names the problem.
    #[error(transparent)]
    Input(#[from] veza_codecs::Error),
    /// The input file could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The input path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The output could not be written. Nothing was left behind; fix the destination.
    #[error("cannot write {path}: {source}")]
    Output {
        /// What could not be written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The options are inconsistent (no renditions, a rendition listed twice, AAC without the
    /// `aac` feature). Fix the command line.
    #[error("invalid options: {0}")]
    Options(String),
    /// Packaging the encoded audio failed: a bug. Report it.
    #[error(transparent)]
    Packaging(#[from] veza_hls::Error),
    /// A packaging thread panicked: a bug, not the input's fault. Retry later; report it.
    #[error("a packaging thread panicked: {0}")]
    Panicked(String),
    /// The caller cancelled the run (the track was deleted, the server is stopping). Nothing was
    /// left behind.
    #[error("packaging was cancelled")]
    Cancelled,
    /// A thread of a pass stopped because its neighbour did; the neighbour's own error says why.
    /// Only seen inside a pass.
    #[error("a packaging thread stopped early")]
    Stopped,
}

/// The result type of this module.
pub type Result<T> = std::result::Result<T, Error>;

pub use crate::rendition::Rendition;

/// Packaging options.
#[derive(Debug, Clone)]
pub struct Options {
    /// The ladder.
    pub renditions: Vec<Rendition>,
    /// Target segment length in seconds.
    pub segment_seconds: f64,
    /// Loudness normalisation of the lossy renditions; `None` keeps the source level.
    pub normalize: Option<NormalizeConfig>,
    /// Input bounds.
    pub limits: Limits,
    /// Test-only fault injection: every lossy encoder thread panics (`jobs.fault =
    /// "encoder-panic"`), to show that a panic is a retryable failure.
    pub panic_in_encoder: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            renditions: vec![Rendition::Opus(96), Rendition::Aac(128), Rendition::Flac],
            segment_seconds: 6.0,
            normalize: Some(NormalizeConfig::default()),
            limits: Limits::default(),
            panic_in_encoder: false,
        }
    }
}

/// A stage of the pipeline, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Decoding the source.
    Decode,
    /// Resampling, measuring and encoding.
    Encode,
    /// Writing files.
    Write,
}

impl Stage {
    /// A short label.
    pub fn name(&self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::Encode => "encode",
            Stage::Write => "write",
        }
    }

    /// Overall progress (0 to 1) given progress within this stage.
    pub fn overall(&self, fraction: f32) -> f32 {
        let (start, span) = match self {
            Stage::Decode => (0.0, 0.2),
            Stage::Encode => (0.2, 0.7),
            Stage::Write => (0.9, 0.1),
        };
        start + span * fraction.clamp(0.0, 1.0)
    }
}

/// `analysis.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// What the source is.
    pub source: SourceInfo,
    /// Source duration in seconds: what decodes (up to the cut, for a truncated file).
    pub duration_seconds: f64,
    /// Whether the file ends before the audio it declares; what decoded up to the cut is packaged.
    pub truncated: bool,
    /// The duration the file's headers declare, when they state one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_duration_seconds: Option<f64>,
    /// What was wrong with the file but did not stop it playing (malformed tags, a cut-off end,
    /// damaged packets skipped), one line each.
    pub warnings: Vec<String>,
    /// Loudness of the source (before any gain).
    pub loudness: Loudness,
    /// Normalisation applied to the lossy renditions, if any.
    pub normalization: Option<Normalization>,
    /// Each rendition.
    pub renditions: Vec<RenditionReport>,
    /// Cover file name, when the source has cover art.
    pub cover: Option<String>,
}

/// One rendition in `analysis.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RenditionReport {
    /// Name (`aac-128`).
    pub name: String,
    /// Codec.
    pub codec: Codec,
    /// RFC 6381 codec string.
    pub codecs: String,
    /// Sample rate.
    pub sample_rate: u32,
    /// Channels.
    pub channels: usize,
    /// Bits per sample (lossless only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits_per_sample: Option<u32>,
    /// Average bitrate of the media in bits per second.
    pub average_bitrate: u64,
    /// Peak segment bitrate in bits per second.
    pub peak_bitrate: u64,
    /// Number of segments.
    pub segments: usize,
    /// Decoded samples before the track starts (edit list `media_time`, Opus pre-skip); 0 for
    /// lossless.
    pub priming_samples: u32,
}

/// What a package run produced.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The analysis written to `analysis.json`.
    pub analysis: Analysis,
    /// Wall time of the run in seconds.
    pub elapsed_seconds: f64,
}

impl Summary {
    /// Segments per rendition (every rendition has the same count).
    pub fn segments(&self) -> usize {
        self.analysis.renditions.first().map_or(0, |r| r.segments)
    }

    /// Seconds of audio packaged per second of wall time.
    pub fn realtime_factor(&self) -> f64 {
        self.analysis.duration_seconds / self.elapsed_seconds.max(1e-9)
    }

    /// The `--json` summary line.
    pub fn json_line(&self, outdir: &Path) -> serde_json::Value {
        serde_json::json!({
            "status": "ok",
            "outdir": outdir,
            "duration_seconds": self.analysis.duration_seconds,
            "truncated": self.analysis.truncated,
            "warnings": self.analysis.warnings,
            "renditions": self.analysis.renditions,
            "loudness": self.analysis.loudness,
            "normalization": self.analysis.normalization,
            "segments": self.segments(),
            "elapsed_seconds": self.elapsed_seconds,
            "realtime_factor": self.realtime_factor(),
        })
    }
}
