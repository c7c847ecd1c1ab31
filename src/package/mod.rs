//! `package`: one audio file in, one directory of HLS renditions out.
//!
//! The source is streamed, never held whole: memory does not grow with its duration.
//!
//! 1. A survey pass decodes it once for what normalisation needs first: its exact length, its
//!    loudness and true peak (and the waveform on the way), as ffmpeg's two-pass `loudnorm` does.
//! 2. An encode pass decodes it again. The lossless rendition (FLAC at the source rate, from the
//!    untouched samples; only for a lossless source) and the lossy branch (resampled to 48 kHz once, normalised once, then
//!    every encoder in parallel from the same samples) run on their own threads, and each
//!    rendition's segments are written as they are cut.
//! 3. Only when the limiter took loudness away does a further pass re-encode the lossy renditions
//!    with a corrected gain.
//!
//! Everything is written into a temporary sibling of the output directory, which is renamed into
//! place only when every file is complete. A cancellation flag is checked between pieces.

mod output;
mod pass;
mod types;

pub use types::*;

use output::write_atomically;
use std::fs;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use veza_codecs::{Codec, Normalization, NormalizeConfig, SampleRate, StreamDecoder};
use veza_hls::Plan;

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
        let (renditions, normalization) = {
            let _pass = tracing::info_span!("encode passes").entered();
            encode(&open, opts, &survey, &plan, &lossy, dir, progress, cancel)?
        };
        progress(Stage::Write, 0.0);
        let _write = tracing::info_span!("write", otel.name = "write package").entered();
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
        // FLAC of a decoded lossy stream is no more faithful than the lossy source and several
        // times larger: the lossless rendition is made for lossless sources only (or when it is
        // the only one asked for, so that something plays).
        lossless: opts.renditions.contains(&Rendition::Flac)
            && (survey.info.lossless || lossy.is_empty()),
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
