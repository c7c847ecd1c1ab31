//! `package`: one audio file in, one directory of HLS renditions out.
//!
//! The source is decoded once. Three branches then run on their own threads: the lossless
//! rendition (FLAC at the source rate, from the untouched samples), the lossy renditions (resampled
//! to 48 kHz once, normalised once, then every encoder in parallel from the same PCM), and the
//! analysis (loudness of the source, waveform). Everything is written into a temporary sibling of
//! the output directory, which is renamed into place only when every file is complete.

use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;
use veza_codecs::{
    encode_aligned, Codec, CodecConfig, Encoded, Encoder, FlacEncoder, Limits, Loudness,
    Normalization, NormalizeConfig, OpusEncoder, Pcm, SampleRate, SourceInfo, Waveform,
};
use veza_hls::{
    init_segment, media_segment, render_media, render_multivariant, MediaPlaylist, Plan,
    SampleEntry, SegmentRef, Segmenter, TrackInfo, Variant,
};

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
    let started = Instant::now();
    check_options(opts)?;
    let file = fs::File::open(input).map_err(|source| Error::Open {
        path: input.into(),
        source,
    })?;
    let ext = input
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let mut on_decode = |f: f32| progress(Stage::Decode, f);
    let decoded =
        veza_codecs::decode(Box::new(file), ext.as_deref(), &opts.limits, &mut on_decode)?;
    let mut info = decoded.info;
    let cover = decoded.cover;
    let pcm = veza_codecs::downmix(decoded.pcm, decoded.layout.as_ref());
    let built = build(&pcm, &info, opts, progress)?;
    progress(Stage::Write, 0.0);
    let analysis = Analysis {
        duration_seconds: pcm.seconds(),
        truncated: info.truncated,
        declared_duration_seconds: info.declared_seconds,
        warnings: std::mem::take(&mut info.warnings),
        source: info,
        loudness: built.loudness,
        normalization: built.normalization,
        renditions: built.renditions.iter().map(|r| r.report.clone()).collect(),
        cover: cover.as_ref().map(|c| format!("cover.{}", c.extension())),
    };
    write_atomically(outdir, |dir| {
        write_package(dir, &built, &analysis, cover.as_ref())
    })?;
    progress(Stage::Write, 1.0);
    Ok(Summary {
        analysis,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    })
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

/// A rendition ready to be written.
struct Built {
    renditions: Vec<BuiltRendition>,
    loudness: Loudness,
    normalization: Option<Normalization>,
    waveform: Waveform,
}

struct BuiltRendition {
    rendition: Rendition,
    init: Vec<u8>,
    segments: Vec<Vec<u8>>,
    playlist: String,
    report: RenditionReport,
}

fn build(
    pcm: &Pcm,
    info: &SourceInfo,
    opts: &Options,
    progress: &(dyn Fn(Stage, f32) + Sync),
) -> Result<Built> {
    let duration48 = SampleRate::LOSSY.convert_len(pcm.frames() as u64, pcm.rate);
    let plan = Plan::new(duration48, opts.segment_seconds);
    let lossy: Vec<Rendition> = opts
        .renditions
        .iter()
        .copied()
        .filter(|r| *r != Rendition::Flac)
        .collect();
    let want_flac = opts.renditions.contains(&Rendition::Flac);
    progress(Stage::Encode, 0.0);

    let (flac, lossy_out, analysis) = std::thread::scope(|s| {
        let flac = want_flac.then(|| s.spawn(|| encode_flac(pcm, info, &plan)));
        let analysis = s.spawn(|| -> Result<(Loudness, Waveform)> {
            Ok((veza_codecs::measure(pcm)?, Waveform::from_pcm(pcm, 100)))
        });
        let lossy_out =
            (!lossy.is_empty()).then(|| encode_lossy(pcm, &lossy, &plan, opts, progress));
        (flac.map(join), lossy_out, join(analysis))
    });
    let (loudness, waveform) = analysis?;
    let (mut encoded, normalization) = match lossy_out {
        Some(r) => r?,
        None => (Vec::new(), None),
    };
    if let Some(f) = flac {
        encoded.push((Rendition::Flac, f?));
    }
    // Keep the order the caller asked for.
    encoded.sort_by_key(|(r, _)| opts.renditions.iter().position(|x| x == r));
    let mut renditions = Vec::new();
    for (rendition, (enc, rate, channels, bits)) in encoded {
        renditions.push(mux(rendition, enc, rate, channels, bits, &plan)?);
    }
    progress(Stage::Encode, 1.0);
    Ok(Built {
        renditions,
        loudness,
        normalization,
        waveform,
    })
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    h.join().unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(Error::Panicked(what))
    })
}

/// An encoded rendition with its rate, channel count and (lossless) bit depth.
type EncodedRendition = (Encoded, SampleRate, usize, Option<u32>);

/// The lossy renditions and the normalisation applied to them.
type LossyOutput = (Vec<(Rendition, EncodedRendition)>, Option<Normalization>);

fn encode_flac(pcm: &Pcm, info: &SourceInfo, plan: &Plan) -> Result<EncodedRendition> {
    // Lossless sources keep their depth (at most 24 bits, FLAC's practical limit here); lossy ones
    // become 16-bit.
    let bits = info
        .bits_per_sample
        .filter(|_| info.lossless)
        .unwrap_or(16)
        .clamp(8, 24);
    let cuts = plan.starts_at_rate(pcm.rate.hz());
    let mut enc = FlacEncoder::new(pcm.rate, pcm.channels(), bits, cuts)?;
    let mut packets = enc.push(&pcm.plane_refs())?;
    packets.extend(enc.flush()?);
    let encoded = Encoded {
        packets,
        priming: 0,
        duration: pcm.frames() as u64,
        config: enc.config(),
    };
    Ok((encoded, pcm.rate, pcm.channels(), Some(bits)))
}

fn encode_lossy(
    pcm: &Pcm,
    lossy: &[Rendition],
    plan: &Plan,
    opts: &Options,
    progress: &(dyn Fn(Stage, f32) + Sync),
) -> Result<LossyOutput> {
    let mut pcm48 = veza_codecs::resample(pcm, SampleRate::LOSSY)?;
    progress(Stage::Encode, 0.25);
    let normalization = match &opts.normalize {
        Some(cfg) => Some(veza_codecs::normalize(&mut pcm48, cfg)?),
        None => None,
    };
    progress(Stage::Encode, 0.4);
    let pcm48 = &pcm48;
    let results: Vec<Result<(Rendition, EncodedRendition)>> = std::thread::scope(|s| {
        let handles: Vec<_> = lossy
            .iter()
            .map(|&r| {
                s.spawn(move || -> Result<(Rendition, EncodedRendition)> {
                    if opts.panic_in_encoder {
                        panic!("injected encoder panic (jobs.fault = \"encoder-panic\")");
                    }
                    let mut enc = lossy_encoder(r, pcm48.channels())?;
                    let priming =
                        plan.priming_for(enc.frame_len() as u32, enc.min_priming() as u32);
                    let encoded = encode_aligned(enc.as_mut(), pcm48, priming)?;
                    Ok((r, (encoded, SampleRate::LOSSY, pcm48.channels(), None)))
                })
            })
            .collect();
        handles.into_iter().map(join).collect()
    });
    Ok((
        results.into_iter().collect::<Result<Vec<_>>>()?,
        normalization,
    ))
}

fn lossy_encoder(r: Rendition, channels: usize) -> Result<Box<dyn Encoder>> {
    Ok(match r {
        Rendition::Opus(k) => Box::new(OpusEncoder::new(channels, k * 1000)?),
        #[cfg(feature = "aac")]
        Rendition::Aac(k) => Box::new(veza_codecs::AacEncoder::new(
            SampleRate::LOSSY,
            channels,
            k * 1000,
        )?),
        #[cfg(not(feature = "aac"))]
        Rendition::Aac(_) => return Err(Error::Options("this build has no AAC encoder".into())),
        Rendition::Flac => return Err(Error::Options("FLAC is not a lossy rendition".into())),
    })
}

fn mux(
    rendition: Rendition,
    enc: Encoded,
    rate: SampleRate,
    channels: usize,
    bits: Option<u32>,
    plan: &Plan,
) -> Result<BuiltRendition> {
    let boundaries: Vec<u64> = if rendition == Rendition::Flac {
        plan.starts_at_rate(rate.hz()).into_iter().skip(1).collect()
    } else {
        plan.decode_boundaries(enc.priming)
    };
    let mut segmenter = Segmenter::new(boundaries);
    let mut fragments = Vec::new();
    for p in enc.packets {
        fragments.extend(segmenter.push(p.data, p.duration));
    }
    fragments.extend(segmenter.flush());

    let priming = u64::from(enc.priming);
    let end = priming + enc.duration;
    let mut segments = Vec::with_capacity(fragments.len());
    let mut refs = Vec::with_capacity(fragments.len());
    let (mut bytes_total, mut peak) = (0u64, 0u64);
    for f in &fragments {
        let decode_len: u64 = f.samples.iter().map(|(_, d)| u64::from(*d)).sum();
        let start = f.base_time.max(priming);
        let stop = (f.base_time + decode_len).min(end);
        let seconds = stop.saturating_sub(start) as f64 / f64::from(rate.hz());
        let seg = media_segment(f.index + 1, f.base_time, &f.samples)?;
        let payload: u64 = f.samples.iter().map(|(d, _)| d.len() as u64).sum();
        bytes_total += payload;
        if seconds > 0.0 {
            peak = peak.max((seg.len() as f64 * 8.0 / seconds).ceil() as u64);
        }
        refs.push(SegmentRef {
            uri: format!("seg_{:05}.m4s", f.index),
            seconds,
        });
        segments.push(seg);
    }
    let duration_s = enc.duration as f64 / f64::from(rate.hz());
    let average = if duration_s > 0.0 {
        (bytes_total as f64 * 8.0 / duration_s) as u64
    } else {
        0
    };
    let entry = match enc.config {
        CodecConfig::Opus {
            pre_skip,
            input_rate,
            ..
        } => SampleEntry::Opus {
            pre_skip,
            input_rate,
        },
        CodecConfig::Aac { asc } => SampleEntry::Aac { asc },
        CodecConfig::Flac { streaminfo } => SampleEntry::Flac { streaminfo },
    };
    let init = init_segment(&TrackInfo {
        entry,
        timescale: rate.hz(),
        channels: channels as u16,
        priming: enc.priming,
        duration: enc.duration,
        bitrate: (average as u32, peak.min(u64::from(u32::MAX)) as u32),
    })?;
    let playlist = render_media(&MediaPlaylist {
        map_uri: "init.mp4".into(),
        segments: refs,
    });
    let report = RenditionReport {
        name: rendition.name(),
        codec: rendition.codec(),
        codecs: rendition.codecs_attr().into(),
        sample_rate: rate.hz(),
        channels,
        bits_per_sample: bits,
        average_bitrate: average,
        peak_bitrate: peak.max(average),
        segments: segments.len(),
        priming_samples: enc.priming,
    };
    Ok(BuiltRendition {
        rendition,
        init,
        segments,
        playlist,
        report,
    })
}

/// The multivariant playlists: `master.m3u8` holds the most compatible family (AAC, or the first
/// family present), and every family also gets `master_<codec>.m3u8`.
fn masters(renditions: &[BuiltRendition]) -> Vec<(String, String)> {
    let mut families: Vec<Codec> = Vec::new();
    for r in renditions {
        if !families.contains(&r.rendition.codec()) {
            families.push(r.rendition.codec());
        }
    }
    let primary = if families.contains(&Codec::Aac) {
        Codec::Aac
    } else {
        families[0]
    };
    let variants = |codec: Codec| -> Vec<Variant> {
        let mut v: Vec<&BuiltRendition> = renditions
            .iter()
            .filter(|r| r.rendition.codec() == codec)
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.report.average_bitrate));
        v.iter()
            .map(|r| Variant {
                name: r.report.name.clone(),
                uri: format!("{}/index.m3u8", r.report.name),
                bandwidth: r.report.peak_bitrate,
                average_bandwidth: r.report.average_bitrate,
                codecs: r.report.codecs.clone(),
                channels: r.report.channels as u16,
            })
            .collect()
    };
    let mut out = vec![(
        "master.m3u8".to_string(),
        render_multivariant(&variants(primary)),
    )];
    for codec in families {
        let name = match codec {
            Codec::Opus => "master_opus.m3u8",
            Codec::Aac => "master_aac.m3u8",
            Codec::Flac => "master_flac.m3u8",
        };
        out.push((name.to_string(), render_multivariant(&variants(codec))));
    }
    out
}

fn write_package(
    dir: &Path,
    built: &Built,
    analysis: &Analysis,
    cover: Option<&veza_codecs::Cover>,
) -> std::io::Result<()> {
    for r in &built.renditions {
        let rdir = dir.join(r.rendition.name());
        fs::create_dir(&rdir)?;
        fs::write(rdir.join("init.mp4"), &r.init)?;
        for (i, seg) in r.segments.iter().enumerate() {
            fs::write(rdir.join(format!("seg_{i:05}.m4s")), seg)?;
        }
        fs::write(rdir.join("index.m3u8"), &r.playlist)?;
    }
    for (name, text) in masters(&built.renditions) {
        fs::write(dir.join(name), text)?;
    }
    fs::write(
        dir.join("waveform.json"),
        serde_json::to_vec(&built.waveform)?,
    )?;
    fs::write(
        dir.join("analysis.json"),
        serde_json::to_vec_pretty(analysis)?,
    )?;
    if let Some(c) = cover {
        fs::write(dir.join(format!("cover.{}", c.extension())), &c.data)?;
    }
    Ok(())
}

/// Runs `fill` on a fresh temporary sibling of `outdir`, then renames it into place (replacing an
/// older `outdir`). On any failure the temporary directory is removed and `outdir` is untouched.
fn write_atomically(outdir: &Path, fill: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
    let parent = match outdir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = outdir
        .file_name()
        .ok_or_else(|| Error::Options(format!("{} is not a directory name", outdir.display())))?
        .to_string_lossy()
        .into_owned();
    let out_err = |source| Error::Output {
        path: outdir.into(),
        source,
    };
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempdir_in(&parent)
        .map_err(out_err)?;
    fill(tmp.path()).map_err(out_err)?;
    let staged = tmp.keep();
    let result = (|| -> std::io::Result<()> {
        if outdir.exists() {
            let old = tempfile::Builder::new()
                .prefix(&format!(".{name}.old-"))
                .tempdir_in(&parent)?
                .keep();
            fs::rename(outdir, old.join("previous"))?;
            fs::rename(&staged, outdir)?;
            fs::remove_dir_all(old)
        } else {
            fs::rename(&staged, outdir)
        }
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&staged);
    }
    result.map_err(out_err)
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
