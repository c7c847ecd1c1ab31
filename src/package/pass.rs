//! The two kinds of pass over the source.
//!
//! - The **survey** decodes the source once to learn what normalisation needs before any lossy
//!   rendition can be encoded: its exact length, loudness and true peak (and the waveform, on the
//!   way).
//! - An **encode pass** decodes it again and streams it through the renditions. One thread
//!   decodes; the lossless rendition encodes the untouched samples on its own thread; another
//!   thread resamples to 48 kHz once and applies the gain and limiter once; every lossy encoder
//!   runs on its own thread from those shared samples. Threads are joined by bounded channels of
//!   shared pieces, so what is in flight is a few pieces, whatever the duration.
//!
//! When the limiter takes loudness away, a further pass re-encodes the lossy renditions with a
//! corrected gain (at most [`NormalizeConfig::MAX_PASSES`] in all), as the whole-clip
//! `veza_codecs::normalize` does.

use super::output::RenditionWriter;
use super::types::{Error, Options, Rendition, RenditionReport, Result, Stage};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use veza_codecs::{
    Aligned, Cover, Encoder, FlacEncoder, IntegratedMeter, Loudness, Meter, NormalizeConfig,
    Normalizer, Pcm, Resampler, SampleRate, SourceInfo, StreamDecoder, Waveform, WaveformBuilder,
};
use veza_hls::Plan;

/// Pieces in flight between two threads.
const DEPTH: usize = 4;

/// What flows between the threads of a pass.
enum Msg {
    Piece(Arc<Pcm>),
    End,
}

/// Sends, or reports that the receiving thread has stopped (its own error says why).
fn send(tx: &SyncSender<Msg>, msg: Msg) -> Result<()> {
    tx.send(msg).map_err(|_| Error::Stopped)
}

/// The next piece, `None` at the end, or [`Error::Stopped`] when the sender stopped without
/// ending the stream.
fn recv(rx: &Receiver<Msg>) -> Result<Option<Arc<Pcm>>> {
    match rx.recv() {
        Ok(Msg::Piece(p)) => Ok(Some(p)),
        Ok(Msg::End) => Ok(None),
        Err(_) => Err(Error::Stopped),
    }
}

fn check(cancel: &AtomicBool) -> Result<()> {
    if cancel.load(Ordering::Relaxed) {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

/// Joins a pass's thread, turning a panic into [`Error::Panicked`].
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

/// The first error that says why a pass failed: a thread's own failure rather than the
/// [`Error::Stopped`] its neighbours saw.
fn first_error(results: Vec<Result<()>>) -> Result<()> {
    let mut stopped = false;
    for r in results {
        match r {
            Ok(()) => {}
            Err(Error::Stopped) => stopped = true,
            Err(e) => return Err(e),
        }
    }
    if stopped {
        Err(Error::Stopped)
    } else {
        Ok(())
    }
}

/// Opens the source for one pass.
pub(super) type Open<'a> = &'a (dyn Fn() -> Result<StreamDecoder> + Sync);

/// What the survey learned.
pub(super) struct Survey {
    pub info: SourceInfo,
    pub cover: Option<Cover>,
    /// Frames at the source rate, after the downmix.
    pub frames: u64,
    pub channels: usize,
    pub rate: SampleRate,
    pub loudness: Loudness,
    pub waveform: Waveform,
}

/// Decodes the whole source once: its length, loudness (on a second thread) and waveform.
pub(super) fn survey(
    open: Open<'_>,
    progress: &(dyn Fn(Stage, f32) + Sync),
    cancel: &AtomicBool,
) -> Result<Survey> {
    let _decode = tracing::info_span!("decode", otel.name = "decode source").entered();
    let parent = tracing::Span::current();
    let mut dec = open()?;
    let rate = dec.rate();
    let layout = dec.layout().cloned();
    let (tx, rx) = sync_channel::<Msg>(DEPTH);
    std::thread::scope(|s| {
        let meter = s.spawn(move || -> Result<Option<Loudness>> {
            let _analysis =
                tracing::info_span!(parent: &parent, "analysis", otel.name = "measure loudness")
                    .entered();
            let mut meter: Option<Meter> = None;
            while let Some(p) = recv(&rx)? {
                if meter.is_none() {
                    meter = Some(Meter::new(p.channels(), p.rate)?);
                }
                if let Some(m) = meter.as_mut() {
                    m.add(&p.plane_refs())?;
                }
            }
            meter.map(|m| m.finish()).transpose().map_err(Error::from)
        });
        let decoded = (|| -> Result<(u64, usize, Waveform)> {
            let mut waveform = WaveformBuilder::new(rate, 100);
            let (mut frames, mut channels) = (0u64, 0usize);
            while let Some(piece) = dec.next_chunk()? {
                check(cancel)?;
                let piece = veza_codecs::downmix(piece, layout.as_ref());
                waveform.add(&piece.plane_refs());
                frames += piece.frames() as u64;
                channels = piece.channels();
                send(&tx, Msg::Piece(Arc::new(piece)))?;
                if let Some(f) = dec.progress() {
                    progress(Stage::Decode, f);
                }
            }
            send(&tx, Msg::End)?;
            Ok((frames, channels, waveform.finish()))
        })();
        drop(tx);
        let loudness = join(meter);
        let (frames, channels, waveform) = match decoded {
            Ok(d) => d,
            Err(Error::Stopped) => return Err(loudness.err().unwrap_or(Error::Stopped)),
            Err(e) => return Err(e),
        };
        let (info, cover) = dec.finish()?;
        let loudness = loudness?.ok_or_else(|| {
            Error::Input(veza_codecs::Error::Empty(
                "the audio track holds no samples".into(),
            ))
        })?;
        Ok(Survey {
            info,
            cover,
            frames,
            channels,
            rate,
            loudness,
            waveform,
        })
    })
}

/// The gain stage of the lossy renditions in one pass.
#[derive(Debug, Clone, Copy)]
pub(super) struct Gain {
    pub db: f64,
    pub config: NormalizeConfig,
    /// Whether the limiter can engage (see [`NormalizeConfig::may_limit`]); when it cannot, the
    /// gain is a plain multiplication and the output is not measured again.
    pub may_limit: bool,
}

/// What an encode pass did to the lossy renditions' level.
pub(super) struct Levels {
    /// Deepest limiter reduction in dB (0: the limiter never engaged).
    pub reduction_db: f64,
    /// Integrated loudness of the limited output, when it was measured.
    pub output_lufs: Option<f64>,
}

/// One encode pass.
pub(super) struct EncodePass<'a> {
    pub open: Open<'a>,
    pub opts: &'a Options,
    pub survey: &'a Survey,
    pub plan: &'a Plan,
    pub dir: &'a std::path::Path,
    /// Encode the lossless rendition in this pass (the first one only).
    pub lossless: bool,
    /// The lossy renditions to encode.
    pub lossy: &'a [Rendition],
    pub gain: Option<Gain>,
    pub progress: &'a (dyn Fn(Stage, f32) + Sync),
    pub cancel: &'a AtomicBool,
}

impl EncodePass<'_> {
    /// Runs the pass; returns the reports of the renditions it wrote and the lossy levels.
    pub(super) fn run(&self) -> Result<(Vec<RenditionReport>, Levels)> {
        let (to_flac, from_decoder) = sync_channel::<Msg>(DEPTH);
        let (to_lossy, to_resample) = sync_channel::<Msg>(DEPTH);
        let lanes: Vec<_> = self
            .lossy
            .iter()
            .map(|_| sync_channel::<Msg>(DEPTH))
            .collect();
        // Each encoder is a span of the pass, on its own thread.
        let parent = tracing::Span::current();
        let parent = &parent;
        let encoding = move |name: String| tracing::info_span!(parent: parent, "encode", otel.name = %format_args!("encode {name}"), rendition = %name);
        std::thread::scope(|s| {
            let flac = self.lossless.then(|| {
                s.spawn(move || {
                    let _span = encoding("flac".into()).entered();
                    self.flac(from_decoder)
                })
            });
            let (outs, ins): (Vec<_>, Vec<_>) = lanes.into_iter().unzip();
            let encoders: Vec<_> = self
                .lossy
                .iter()
                .zip(ins)
                .map(|(&r, rx)| {
                    s.spawn(move || {
                        let _span = encoding(r.name()).entered();
                        self.lossy_rendition(r, rx)
                    })
                })
                .collect();
            let lossy = (!self.lossy.is_empty())
                .then(|| s.spawn(move || self.lossy_stage(to_resample, outs)));
            let decoded = self.decode(
                self.lossless.then_some(to_flac),
                (!self.lossy.is_empty()).then_some(to_lossy),
            );
            let mut results = vec![decoded];
            let mut reports = Vec::new();
            let mut levels = Levels {
                reduction_db: 0.0,
                output_lufs: None,
            };
            if let Some(h) = lossy {
                match join(h) {
                    Ok(l) => levels = l,
                    Err(e) => results.push(Err(e)),
                }
            }
            for h in encoders.into_iter().chain(flac) {
                match join(h) {
                    Ok(r) => reports.push(r),
                    Err(e) => results.push(Err(e)),
                }
            }
            first_error(results)?;
            Ok((reports, levels))
        })
    }

    /// Decodes and downmixes the source, sending each piece to the branches.
    fn decode(&self, flac: Option<SyncSender<Msg>>, lossy: Option<SyncSender<Msg>>) -> Result<()> {
        let mut dec = (self.open)()?;
        let layout = dec.layout().cloned();
        let outs: Vec<SyncSender<Msg>> = flac.into_iter().chain(lossy).collect();
        while let Some(piece) = dec.next_chunk()? {
            check(self.cancel)?;
            let piece = Arc::new(veza_codecs::downmix(piece, layout.as_ref()));
            for tx in &outs {
                send(tx, Msg::Piece(piece.clone()))?;
            }
            if let Some(f) = dec.progress() {
                (self.progress)(Stage::Encode, f);
            }
        }
        for tx in &outs {
            send(tx, Msg::End)?;
        }
        Ok(())
    }

    /// FLAC at the source rate and bit depth, from the untouched samples.
    fn flac(&self, rx: Receiver<Msg>) -> Result<RenditionReport> {
        let info = &self.survey.info;
        // Lossless sources keep their depth (at most 24 bits, FLAC's practical limit here); lossy
        // ones become 16-bit.
        let bits = info
            .bits_per_sample
            .filter(|_| info.lossless)
            .unwrap_or(16)
            .clamp(8, 24);
        let rate = self.survey.rate;
        let channels = self.survey.channels;
        let cuts = self.plan.starts_at_rate(rate.hz());
        let mut enc = FlacEncoder::new(rate, channels, bits, cuts.clone())?;
        let mut out = RenditionWriter::new(
            self.dir.join(Rendition::Flac.name()),
            cuts.into_iter().skip(1).collect(),
            rate.hz(),
            0,
            self.survey.frames,
        )?;
        while let Some(p) = recv(&rx)? {
            out.push(enc.push(&p.plane_refs())?)?;
        }
        out.push(enc.flush()?)?;
        out.finish(Rendition::Flac, enc.config(), channels, Some(bits))
    }

    /// Resamples to 48 kHz and applies the gain and limiter, once for every lossy encoder.
    fn lossy_stage(&self, rx: Receiver<Msg>, outs: Vec<SyncSender<Msg>>) -> Result<Levels> {
        let channels = self.survey.channels;
        let mut resampler = Resampler::new(self.survey.rate, SampleRate::LOSSY, channels)?;
        let mut limiter = self
            .gain
            .filter(|g| g.may_limit)
            .map(|g| Normalizer::new(channels, SampleRate::LOSSY, g.db, &g.config));
        let mut meter = match limiter {
            Some(_) => Some(IntegratedMeter::new(channels, SampleRate::LOSSY)?),
            None => None,
        };
        let plain = self
            .gain
            .filter(|g| !g.may_limit)
            .map(|g| 10f32.powf(g.db as f32 / 20.0));
        let forward = |mut pcm: Pcm, meter: &mut Option<IntegratedMeter>| -> Result<()> {
            if let Some(g) = plain {
                pcm.planes
                    .iter_mut()
                    .for_each(|p| p.iter_mut().for_each(|s| *s *= g));
            }
            if pcm.frames() == 0 {
                return Ok(());
            }
            if let Some(m) = meter.as_mut() {
                m.add(&pcm.plane_refs())?;
            }
            let pcm = Arc::new(pcm);
            for tx in &outs {
                send(tx, Msg::Piece(pcm.clone()))?;
            }
            Ok(())
        };
        let mut stage = |pcm: Pcm, meter: &mut Option<IntegratedMeter>| -> Result<()> {
            match limiter.as_mut() {
                Some(l) => forward(l.push(&pcm.plane_refs()), meter),
                None => forward(pcm, meter),
            }
        };
        while let Some(p) = recv(&rx)? {
            stage(resampler.push(&p.plane_refs())?, &mut meter)?;
        }
        stage(resampler.flush()?, &mut meter)?;
        let reduction_db = match limiter.as_mut() {
            Some(l) => {
                let tail = l.flush();
                forward(tail, &mut meter)?;
                l.reduction_db()
            }
            None => 0.0,
        };
        for tx in &outs {
            send(tx, Msg::End)?;
        }
        Ok(Levels {
            reduction_db,
            output_lufs: meter.map(|m| m.finish()).transpose()?.flatten(),
        })
    }

    /// One lossy rendition from the shared 48 kHz samples.
    fn lossy_rendition(&self, r: Rendition, rx: Receiver<Msg>) -> Result<RenditionReport> {
        if self.opts.panic_in_encoder {
            panic!("injected encoder panic (jobs.fault = \"encoder-panic\")");
        }
        let channels = self.survey.channels;
        let mut enc = lossy_encoder(r, channels)?;
        let priming = self
            .plan
            .priming_for(enc.frame_len() as u32, enc.min_priming() as u32);
        let duration = self.plan.duration();
        let mut out = RenditionWriter::new(
            self.dir.join(r.name()),
            self.plan.decode_boundaries(priming),
            SampleRate::LOSSY.hz(),
            priming,
            duration,
        )?;
        let mut aligned = Aligned::new(enc.as_mut(), priming, duration)?;
        while let Some(p) = recv(&rx)? {
            out.push(aligned.push(&p.plane_refs())?)?;
        }
        let (tail, config) = aligned.finish()?;
        out.push(tail)?;
        out.finish(r, config, channels, None)
    }
}

fn lossy_encoder(r: Rendition, channels: usize) -> Result<Box<dyn Encoder>> {
    r.lossy_encoder(channels).map_err(Error::Options)
}
