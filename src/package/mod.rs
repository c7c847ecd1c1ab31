//! `package`: one audio file in, one directory of HLS renditions out.
//!
//! The source is streamed, never held whole: memory does not grow with its duration.
//!
//! 1. A survey pass decodes it once for what normalisation needs first: its exact length, its
//!    loudness and true peak (and the waveform on the way), as ffmpeg's two-pass `loudnorm` does.
//! 2. An encode pass decodes it again. The lossless rendition (FLAC at the source rate, from the
//!    untouched samples) and the lossy branch (resampled to 48 kHz once, normalised once, then
//!    every encoder in parallel from the same samples) run on their own threads, and each
//!    rendition's segments are written as they are cut.
//! 3. Only when the limiter took loudness away does a further pass re-encode the lossy renditions
//!    with a corrected gain.
//!
//! Everything is written into a temporary sibling of the output directory, which is renamed into
//! place only when every file is complete. A cancellation flag is checked between pieces.

mod output;
mod pass;

use output::write_atomically;
use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use veza_codecs::{
    Codec, Limits, Loudness, Normalization, NormalizeConfig, SampleRate, SourceInfo, StreamDecoder,
};
use veza_hls::Plan;

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

/// One rendition of the ladder, named as on the command line: `opus-96`, `aac-128`, `flac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rendition {
    /// Opus at the given kb/s.
    Opus(u32),
    /// AAC-LC at the given kb/s.
    Aac(u32),
    /// FLAC at the source rate and bit depth.
    Flac,
}

impl Rendition {
    /// The name used for directories and playlists.
    pub fn name(&self) -> String {
        match self {
            Rendition::Opus(k) => format!("opus-{k}"),
            Rendition::Aac(k) => format!("aac-{k}"),
            Rendition::Flac => "flac".into(),
        }
    }

    /// The codec family: one multivariant playlist per family.
    pub fn codec(&self) -> Codec {
        match self {
            Rendition::Opus(_) => Codec::Opus,
            Rendition::Aac(_) => Codec::Aac,
            Rendition::Flac => Codec::Flac,
        }
    }

    fn codecs_attr(&self) -> &'static str {
        match self {
            Rendition::Opus(_) => "Opus",
            Rendition::Aac(_) => "mp4a.40.2",
            Rendition::Flac => "fLaC",
        }
    }
}

impl FromStr for Rendition {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if s == "flac" {
            return Ok(Rendition::Flac);
        }
        let (codec, kbps) = s
            .split_once('-')
            .ok_or_else(|| format!("'{s}': expected opus-<kbps>, aac-<kbps> or flac"))?;
        let kbps: u32 = kbps
            .parse()
            .map_err(|_| format!("'{s}': bitrate must be a whole number of kb/s"))?;
        match codec {
            "opus" if (6..=510).contains(&kbps) => Ok(Rendition::Opus(kbps)),
            "aac" if (32..=320).contains(&kbps) => Ok(Rendition::Aac(kbps)),
            "opus" => Err(format!("'{s}': Opus takes 6 to 510 kb/s")),
            "aac" => Err(format!("'{s}': AAC takes 32 to 320 kb/s")),
            _ => Err(format!("'{s}': unknown codec '{codec}' (opus, aac, flac)")),
        }
    }
}

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

/// Packages `input` into `outdir`. On error, `outdir` is left as it was.
pub fn package(
    input: &Path,
    outdir: &Path,
    opts: &Options,
    progress: &(dyn Fn(Stage, f32) + Sync),
) -> Result<Summary> {
    package_cancellable(input, outdir, opts, progress, &AtomicBool::new(false))
}

/// [`package`], stopping with [`Error::Cancelled`] soon after `cancel` is set: every pass checks
/// it between pieces of the source, so a running job ends within a fraction of a second of a
/// `DELETE` or a shutdown, whatever the track's length.
pub fn package_cancellable(
    input: &Path,
    outdir: &Path,
    opts: &Options,
    progress: &(dyn Fn(Stage, f32) + Sync),
    cancel: &AtomicBool,
) -> Result<Summary> {
    let started = Instant::now();
    check_options(opts)?;
    let ext = input
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let open = || -> Result<StreamDecoder> {
        let file = fs::File::open(input).map_err(|source| Error::Open {
            path: input.into(),
            source,
        })?;
        Ok(StreamDecoder::open(
            Box::new(file),
            ext.as_deref(),
            &opts.limits,
        )?)
    };
    let survey = pass::survey(&open, progress, cancel)?;
    let plan = Plan::new(
        SampleRate::LOSSY.convert_len(survey.frames, survey.rate),
        opts.segment_seconds,
    );
    let lossy: Vec<Rendition> = opts
        .renditions
        .iter()
        .copied()
        .filter(|r| *r != Rendition::Flac)
        .collect();
    progress(Stage::Encode, 0.0);
    let analysis = write_atomically(outdir, |dir| {
        let (renditions, normalization) =
            encode(&open, opts, &survey, &plan, &lossy, dir, progress, cancel)?;
        progress(Stage::Write, 0.0);
        let mut info = survey.info.clone();
        let analysis = Analysis {
            duration_seconds: survey.frames as f64 / f64::from(survey.rate.hz()),
            truncated: info.truncated,
            declared_duration_seconds: info.declared_seconds,
            warnings: std::mem::take(&mut info.warnings),
            cover: survey
                .cover
                .as_ref()
                .map(|c| format!("cover.{}", c.extension())),
            source: info,
            loudness: survey.loudness,
            normalization,
            renditions,
        };
        write_rest(dir, &analysis, &survey)?;
        Ok(analysis)
    })?;
    progress(Stage::Write, 1.0);
    Ok(Summary {
        analysis,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    })
}

/// The encode passes: the first writes every rendition; further ones re-encode the lossy
/// renditions with a corrected gain when the limiter took loudness away.
#[allow(clippy::too_many_arguments)]
fn encode(
    open: pass::Open<'_>,
    opts: &Options,
    survey: &pass::Survey,
    plan: &Plan,
    lossy: &[Rendition],
    dir: &Path,
    progress: &(dyn Fn(Stage, f32) + Sync),
    cancel: &AtomicBool,
) -> Result<(Vec<RenditionReport>, Option<Normalization>)> {
    let input_lufs = survey.loudness.integrated_lufs;
    let mut gain = match (&opts.normalize, input_lufs) {
        (Some(cfg), Some(lufs)) if !lossy.is_empty() => {
            let db = cfg.first_gain(lufs);
            Some(pass::Gain {
                db,
                config: *cfg,
                may_limit: cfg.may_limit(survey.loudness.true_peak_dbtp, db),
            })
        }
        _ => None,
    };
    let mut pass = pass::EncodePass {
        open,
        opts,
        survey,
        plan,
        dir,
        lossless: opts.renditions.contains(&Rendition::Flac),
        lossy,
        gain,
        progress,
        cancel,
    };
    let (mut reports, mut levels) = pass.run()?;
    let mut passes = 1;
    while let Some(g) = gain.filter(|_| levels.reduction_db > 0.0) {
        let Some(db) = g.config.next_gain(g.db, levels.output_lufs) else {
            break;
        };
        if passes >= NormalizeConfig::MAX_PASSES {
            break;
        }
        passes += 1;
        for r in lossy {
            let rdir = dir.join(r.name());
            fs::remove_dir_all(&rdir).map_err(|source| Error::Output { path: rdir, source })?;
        }
        gain = Some(pass::Gain { db, ..g });
        pass.gain = gain;
        pass.lossless = false;
        let (again, l) = pass.run()?;
        reports.retain(|r| r.codec == Codec::Flac);
        reports.extend(again);
        levels = l;
    }
    // Keep the order the caller asked for.
    reports.sort_by_key(|r| opts.renditions.iter().position(|x| x.name() == r.name));
    let normalization = match (&opts.normalize, input_lufs) {
        _ if lossy.is_empty() => None,
        (Some(_), None) => Some(Normalization {
            input_lufs: None,
            gain_db: 0.0,
            limiter_reduction_db: 0.0,
            output_lufs: None,
        }),
        (Some(_), Some(lufs)) => gain.map(|g| Normalization {
            input_lufs: Some(lufs),
            gain_db: g.db,
            limiter_reduction_db: levels.reduction_db,
            output_lufs: if levels.reduction_db > 0.0 {
                levels.output_lufs
            } else {
                // A pure gain shifts integrated loudness by exactly that gain.
                Some(lufs + g.db)
            },
        }),
        (None, _) => None,
    };
    Ok((reports, normalization))
}

/// The multivariant playlists, the waveform, the analysis and the cover.
fn write_rest(dir: &Path, analysis: &Analysis, survey: &pass::Survey) -> Result<()> {
    for (name, text) in output::masters(&analysis.renditions) {
        output::write(&dir.join(name), text.as_bytes())?;
    }
    let json = |e: serde_json::Error| Error::Output {
        path: dir.into(),
        source: e.into(),
    };
    output::write(
        &dir.join("waveform.json"),
        &serde_json::to_vec(&survey.waveform).map_err(json)?,
    )?;
    output::write(
        &dir.join("analysis.json"),
        &serde_json::to_vec_pretty(analysis).map_err(json)?,
    )?;
    if let Some(c) = &survey.cover {
        output::write(&dir.join(format!("cover.{}", c.extension())), &c.data)?;
    }
    Ok(())
}

fn check_options(opts: &Options) -> Result<()> {
    if opts.renditions.is_empty() {
        return Err(Error::Options("no renditions".into()));
    }
    let mut names: Vec<String> = opts.renditions.iter().map(Rendition::name).collect();
    names.sort();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::Options("a rendition is listed twice".into()));
    }
    if !(0.32..=60.0).contains(&opts.segment_seconds) {
        return Err(Error::Options(
            "segment length must be between 0.32 and 60 seconds".into(),
        ));
    }
    #[cfg(not(feature = "aac"))]
    if opts.renditions.iter().any(|r| r.codec() == Codec::Aac) {
        return Err(Error::Options(
            "this build has no AAC encoder (feature `aac` is off)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendition_names_parse() {
        assert_eq!("opus-96".parse::<Rendition>(), Ok(Rendition::Opus(96)));
        assert_eq!(" aac-128".parse::<Rendition>(), Ok(Rendition::Aac(128)));
        assert_eq!("flac".parse::<Rendition>(), Ok(Rendition::Flac));
        assert!("mp3-128".parse::<Rendition>().is_err());
        assert!("aac-9999".parse::<Rendition>().is_err());
        assert!("opus".parse::<Rendition>().is_err());
    }

    #[test]
    fn stages_cover_zero_to_one() {
        assert_eq!(Stage::Decode.overall(0.0), 0.0);
        assert!((Stage::Write.overall(1.0) - 1.0).abs() < 1e-6);
    }
}
