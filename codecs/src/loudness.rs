//! EBU R128 loudness (ITU-R BS.1770-4) and normalisation with a true-peak limiter, fed in pieces.
//!
//! [`Meter`] and [`Normalizer`] take PCM as it arrives and hold only what their filters and
//! gating need, so the packager measures a track of any length in one pass over its source and
//! normalises it in another, as ffmpeg's two-pass `loudnorm` does. [`measure`] and [`normalize`]
//! are the whole-clip conveniences on top of them.

use crate::units::{Pcm, SampleRate};
use crate::{Error, Result};
use ebur128::{EbuR128, Mode};
use serde::Serialize;
use std::collections::VecDeque;

/// Loudness figures of a signal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Loudness {
    /// Integrated loudness in LUFS; `None` when the signal stays below the -70 LUFS absolute gate
    /// (silence) or is shorter than one 400 ms block.
    pub integrated_lufs: Option<f64>,
    /// Loudness range in LU (EBU Tech 3342).
    pub range_lu: f64,
    /// True peak in dBTP (4× oversampled below 96 kHz), over all channels.
    pub true_peak_dbtp: f64,
    /// Sample peak in dBFS, over all channels.
    pub sample_peak_dbfs: f64,
}

/// Measures integrated loudness, loudness range, true peak and sample peak of a whole clip.
///
/// Mono is measured as one channel, not as dual mono, like ffmpeg's `ebur128` filter.
pub fn measure(pcm: &Pcm) -> Result<Loudness> {
    let mut meter = Meter::new(pcm.channels(), pcm.rate)?;
    meter.add(&pcm.plane_refs())?;
    meter.finish()
}

/// An EBU R128 meter fed in pieces: integrated loudness, loudness range, true peak and sample
/// peak of everything added. Its memory grows by a few bytes per 100 ms block (the gating history
/// BS.1770 and EBU Tech 3342 need), not with the samples.
pub struct Meter {
    inner: EbuR128,
    channels: usize,
}

impl Meter {
    /// A meter for `channels` planes at `rate`.
    pub fn new(channels: usize, rate: SampleRate) -> Result<Self> {
        let mode = Mode::I | Mode::LRA | Mode::TRUE_PEAK | Mode::SAMPLE_PEAK;
        let inner = EbuR128::new(channels as u32, rate.hz(), mode).map_err(ebu)?;
        Ok(Meter { inner, channels })
    }

    /// Adds planar samples (one slice per channel, all of one length).
    pub fn add(&mut self, planes: &[&[f32]]) -> Result<()> {
        add_planes(&mut self.inner, planes)
    }

    /// The figures of everything added so far.
    pub fn finish(&self) -> Result<Loudness> {
        let integrated = self.inner.loudness_global().map_err(ebu)?;
        let (mut tp, mut sp) = (0.0f64, 0.0f64);
        for ch in 0..self.channels as u32 {
            tp = tp.max(self.inner.true_peak(ch).map_err(ebu)?);
            sp = sp.max(self.inner.sample_peak(ch).map_err(ebu)?);
        }
        Ok(Loudness {
            integrated_lufs: gated(integrated),
            range_lu: self.inner.loudness_range().map_err(ebu)?,
            true_peak_dbtp: db(tp),
            sample_peak_dbfs: db(sp),
        })
    }
}

/// Integrated loudness only (no range or peaks), fed in pieces: what a normalisation pass checks
/// its limited output with.
pub struct IntegratedMeter(EbuR128);

impl IntegratedMeter {
    /// A meter for `channels` planes at `rate`.
    pub fn new(channels: usize, rate: SampleRate) -> Result<Self> {
        EbuR128::new(channels as u32, rate.hz(), Mode::I)
            .map(IntegratedMeter)
            .map_err(ebu)
    }

    /// Adds planar samples.
    pub fn add(&mut self, planes: &[&[f32]]) -> Result<()> {
        add_planes(&mut self.0, planes)
    }

    /// Integrated loudness of everything added; `None` below the absolute gate.
    pub fn finish(&self) -> Result<Option<f64>> {
        Ok(gated(self.0.loudness_global().map_err(ebu)?))
    }
}

/// Loudness normalisation settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizeConfig {
    /// Target integrated loudness in LUFS.
    pub target_lufs: f64,
    /// True-peak ceiling in dBTP; peaks above it are limited, never clipped.
    pub ceiling_dbtp: f64,
    /// Largest gain applied, in dB, so near-silent recordings are not blown up into noise.
    pub max_gain_db: f64,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        NormalizeConfig {
            target_lufs: -14.0,
            ceiling_dbtp: -1.0,
            max_gain_db: 20.0,
        }
    }
}

impl NormalizeConfig {
    /// Passes at most: the first gain, then up to two corrections for what the limiter took.
    pub const MAX_PASSES: usize = 3;

    /// The gain of the first pass for a source measured at `input_lufs`.
    pub fn first_gain(&self, input_lufs: f64) -> f64 {
        (self.target_lufs - input_lufs).min(self.max_gain_db)
    }

    /// After a pass at `gain_db` whose limited output measured `output_lufs`, the gain of the next
    /// pass, or `None` when this pass is on target (within 0.05 LU) or the gain is at its cap.
    pub fn next_gain(&self, gain_db: f64, output_lufs: Option<f64>) -> Option<f64> {
        let miss = self.target_lufs - output_lufs?;
        if miss.abs() < 0.05 || gain_db >= self.max_gain_db {
            return None;
        }
        Some((gain_db + miss).min(self.max_gain_db))
    }

    /// Whether a source whose true peak is `true_peak_dbtp` can reach the limiter at `gain_db`.
    /// When it cannot, the output's loudness is exactly the input's plus the gain.
    pub fn may_limit(&self, true_peak_dbtp: f64, gain_db: f64) -> bool {
        // The limiter looks only at frames whose neighbourhood reaches half the ceiling (-6 dB);
        // 1 dB more margin covers peaks the resampler creates between the source's samples.
        true_peak_dbtp + gain_db > self.ceiling_dbtp - 7.0
    }
}

/// What [`normalize`] did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Normalization {
    /// Integrated loudness before, in LUFS (`None`: silence, left unchanged).
    pub input_lufs: Option<f64>,
    /// Gain applied before the limiter, in dB.
    pub gain_db: f64,
    /// Deepest gain reduction of the limiter, in dB (0 when it never engaged).
    pub limiter_reduction_db: f64,
    /// Integrated loudness after, in LUFS.
    pub output_lufs: Option<f64>,
}

/// Normalises a whole clip `pcm` in place towards `cfg.target_lufs`.
///
/// The gain is `target - measured`, capped at `cfg.max_gain_db`. Where the gain pushes the true
/// peak above the ceiling, a look-ahead limiter pulls it down smoothly instead of clipping; because
/// limiting lowers the loudness a little, the gain is then corrected (at most three passes) so the
/// result lands on the target. Silence (below the absolute gate) is left unchanged. The packager
/// runs the same steps as passes over its source with [`Normalizer`], never holding the track.
pub fn normalize(pcm: &mut Pcm, cfg: &NormalizeConfig) -> Result<Normalization> {
    let Some(input_lufs) = integrated(pcm)? else {
        return Ok(Normalization {
            input_lufs: None,
            gain_db: 0.0,
            limiter_reduction_db: 0.0,
            output_lufs: None,
        });
    };
    let original = pcm.planes.clone();
    let planes: Vec<&[f32]> = original.iter().map(Vec::as_slice).collect();
    let mut gain_db = cfg.first_gain(input_lufs);
    let mut reduction = 0.0;
    let mut output = Some(input_lufs);
    for _pass in 0..NormalizeConfig::MAX_PASSES {
        let mut n = Normalizer::new(pcm.channels(), pcm.rate, gain_db, cfg);
        let mut out = n.push(&planes);
        out.append(n.flush());
        pcm.planes = out.planes;
        reduction = n.reduction_db();
        if reduction == 0.0 {
            // A pure gain shifts integrated loudness by exactly that gain.
            output = Some(input_lufs + gain_db);
            break;
        }
        output = integrated(pcm)?;
        match cfg.next_gain(gain_db, output) {
            Some(g) => gain_db = g,
            None => break,
        }
    }
    Ok(Normalization {
        input_lufs: Some(input_lufs),
        gain_db,
        limiter_reduction_db: reduction,
        output_lufs: output,
    })
}

fn integrated(pcm: &Pcm) -> Result<Option<f64>> {
    let mut meter = IntegratedMeter::new(pcm.channels(), pcm.rate)?;
    meter.add(&pcm.plane_refs())?;
    meter.finish()
}

fn add_planes(meter: &mut EbuR128, planes: &[&[f32]]) -> Result<()> {
    // Feed in blocks so the meter's internal buffers stay small.
    const BLOCK: usize = 1 << 16;
    let frames = planes.first().map_or(0, |p| p.len());
    let mut at = 0;
    while at < frames {
        let end = (at + BLOCK).min(frames);
        let part: Vec<&[f32]> = planes.iter().map(|p| &p[at..end]).collect();
        meter.add_frames_planar_f32(&part).map_err(ebu)?;
        at = end;
    }
    Ok(())
}

fn gated(lufs: f64) -> Option<f64> {
    (lufs.is_finite() && lufs > -70.0).then_some(lufs)
}

fn db(linear: f64) -> f64 {
    if linear > 0.0 {
        20.0 * linear.log10()
    } else {
        -f64::INFINITY
    }
}

fn ebu(e: ebur128::Error) -> Error {
    Error::Encoder(format!("loudness meter: {e}"))
}

/// A gain followed by a look-ahead true-peak limiter, fed in pieces.
///
/// For every frame the gain needed to keep its true peak (4× oversampled, as BS.1770 measures it)
/// under the ceiling is computed; a sliding minimum over the look-ahead window (2.5 ms) followed
/// by a moving average of the same length turns it into a smooth gain curve that is never above
/// the needed gain at any frame, and a one-pole release (50 ms) lets it recover slowly.
///
/// Output lags input by the look-ahead plus the interpolator's reach; [`Normalizer::flush`] gives
/// the rest, so the output has exactly as many frames as the input, and the same samples whether
/// the input comes whole or in pieces.
pub struct Normalizer {
    rate: SampleRate,
    gain: f32,
    ceiling: f32,
    quiet: f32,
    look: u64,
    release: f32,
    phases: [[f32; TAPS]; 3],
    /// Gained input from absolute frame `x_base` on: three frames of history before the next
    /// frame whose need is computed, then what is not yet output.
    x: Vec<Vec<f32>>,
    x_base: u64,
    /// Next frame whose needed gain is computed.
    need_at: u64,
    /// Sliding-minimum deque of (frame, need) over the look-ahead window; values increase from
    /// front to back, so the front is the window's minimum.
    window: VecDeque<(u64, f32)>,
    /// The last `look` window minima, for the moving average, and their sum.
    minima: VecDeque<f32>,
    sum: f64,
    /// Next frame to output.
    out_at: u64,
    g_prev: f32,
    deepest: f32,
    finished: bool,
}

/// Frames after a frame that its true peak reads (the interpolator reaches four ahead), plus one.
const REACH: u64 = 5;
/// Frames before a frame that its true peak reads.
const HISTORY: u64 = 3;

impl Normalizer {
    /// Applies `gain_db`, then limits true peaks to `cfg.ceiling_dbtp`.
    pub fn new(channels: usize, rate: SampleRate, gain_db: f64, cfg: &NormalizeConfig) -> Self {
        let hz = rate.hz() as usize;
        let ceiling = 10f32.powf(cfg.ceiling_dbtp as f32 / 20.0);
        Normalizer {
            rate,
            gain: 10f32.powf(gain_db as f32 / 20.0),
            ceiling,
            // Inter-sample overshoot of band-limited audio stays well under 6 dB, so frames whose
            // neighbourhood is below half the ceiling cannot reach it and skip the interpolation.
            quiet: ceiling * 0.5,
            look: (hz / 400).max(1) as u64,
            release: (-1.0 / (0.050 * hz as f32)).exp(),
            phases: interpolation_phases(),
            x: vec![Vec::new(); channels],
            x_base: 0,
            need_at: 0,
            window: VecDeque::new(),
            minima: VecDeque::new(),
            sum: 0.0,
            out_at: 0,
            g_prev: 1.0,
            deepest: 1.0,
            finished: false,
        }
    }

    /// Gains and limits `planes`; returns the frames that are ready.
    pub fn push(&mut self, planes: &[&[f32]]) -> Pcm {
        let gain = self.gain;
        for (dst, src) in self.x.iter_mut().zip(planes) {
            dst.extend(src.iter().map(|s| s * gain));
        }
        self.run()
    }

    /// Ends the stream and returns the remaining frames.
    pub fn flush(&mut self) -> Pcm {
        self.finished = true;
        self.run()
    }

    /// The deepest gain reduction so far, in dB (0 when the limiter never engaged).
    pub fn reduction_db(&self) -> f64 {
        if self.deepest >= 1.0 {
            0.0
        } else {
            -20.0 * f64::from(self.deepest).log10()
        }
    }

    fn run(&mut self) -> Pcm {
        let end = self.x_base + self.x.first().map_or(0, Vec::len) as u64;
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); self.x.len()];
        while self.out_at < end {
            let j = self.out_at;
            // m[j] = min(need[j .. j + look]): compute needs up to the window's end, never
            // beyond it (a smaller need past the window would hide the window's minimum).
            while self.need_at < (j + self.look).min(end)
                && (self.finished || self.need_at + REACH <= end)
            {
                let i = self.need_at;
                let need = self.need(i, end);
                while self.window.back().is_some_and(|&(_, v)| v >= need) {
                    self.window.pop_back();
                }
                self.window.push_back((i, need));
                self.need_at += 1;
            }
            if self.need_at < (j + self.look).min(end) {
                break; // more input first
            }
            while self.window.front().is_some_and(|&(k, _)| k < j) {
                self.window.pop_front();
            }
            let m = self.window.front().map_or(1.0, |&(_, v)| v);
            // Moving average of m over [j + 1 - look, j]: every term covers frame j, so
            // avg <= need[j]. Before the window fills, the missing terms are 1.0 (no reduction
            // needed before the start).
            self.sum += f64::from(m);
            self.minima.push_back(m);
            if self.minima.len() as u64 > self.look {
                self.sum -= f64::from(self.minima.pop_front().unwrap_or(1.0));
            }
            let look = self.look as f64;
            let avg = ((self.sum + (look - self.minima.len() as f64)) / look) as f32;
            let g = if avg < self.g_prev {
                avg
            } else {
                (avg + (self.g_prev - avg) * self.release).min(avg)
            };
            self.g_prev = g;
            self.deepest = self.deepest.min(g);
            let at = (j - self.x_base) as usize;
            for (dst, plane) in out.iter_mut().zip(&self.x) {
                dst.push(plane[at] * g);
            }
            self.out_at += 1;
        }
        let keep_from = self
            .out_at
            .min(self.need_at.saturating_sub(HISTORY))
            .max(self.x_base);
        let drop = (keep_from - self.x_base) as usize;
        if drop > 0 {
            for plane in &mut self.x {
                plane.drain(..drop);
            }
            self.x_base = keep_from;
        }
        Pcm {
            rate: self.rate,
            planes: out,
        }
    }

    /// The gain frame `i` needs to keep its true peak under the ceiling; frames from `end` on are
    /// not known (past the end of the stream once it is finished).
    fn need(&self, i: u64, end: u64) -> f32 {
        let lo = i.saturating_sub(HISTORY).max(self.x_base);
        let hi = (i + REACH).min(end);
        let (a, b) = ((lo - self.x_base) as usize, (hi - self.x_base) as usize);
        let peak = self
            .x
            .iter()
            .map(|p| {
                let near = &p[a..b];
                if near.iter().all(|s| s.abs() < self.quiet) {
                    0.0
                } else {
                    true_peak_at(near, (i - lo) as usize, &self.phases)
                }
            })
            .fold(0.0f32, f32::max);
        if peak > self.ceiling {
            self.ceiling / peak
        } else {
            1.0
        }
    }
}

const TAPS: usize = 8;

/// The largest magnitude among sample `i` and the three 4× interpolated points after it.
fn true_peak_at(x: &[f32], i: usize, phases: &[[f32; TAPS]; 3]) -> f32 {
    let mut peak = x[i].abs();
    for phase in phases {
        let mut acc = 0.0f32;
        for (t, c) in phase.iter().enumerate() {
            let idx = i as isize + t as isize - (TAPS as isize / 2 - 1);
            if idx >= 0 && (idx as usize) < x.len() {
                acc += c * x[idx as usize];
            }
        }
        peak = peak.max(acc.abs());
    }
    peak
}

/// Hann-windowed sinc interpolators for the points 1/4, 2/4 and 3/4 of the way from a sample to
/// the next (BS.1770-4 Annex 2 oversamples by 4 the same way, with a longer filter).
fn interpolation_phases() -> [[f32; TAPS]; 3] {
    let mut out = [[0.0f32; TAPS]; 3];
    for (p, phase) in out.iter_mut().enumerate() {
        let frac = (p + 1) as f64 / 4.0;
        let mut sum = 0.0;
        for (t, c) in phase.iter_mut().enumerate() {
            // Tap t sits at offset (t - 3) samples; the point lies at `frac`.
            let x = frac - (t as f64 - 3.0);
            let sinc = if x == 0.0 {
                1.0
            } else {
                (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
            };
            let w = 0.5 + 0.5 * (std::f64::consts::PI * x / 4.5).cos();
            *c = (sinc * w) as f32;
            sum += sinc * w;
        }
        // Unity gain at DC.
        phase
            .iter_mut()
            .for_each(|c| *c = (f64::from(*c) / sum) as f32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(amp: f32, secs: f32) -> Pcm {
        let n = (48_000.0 * secs) as usize;
        let plane: Vec<f32> = (0..n)
            .map(|i| amp * (2.0 * std::f32::consts::PI * 997.0 * i as f32 / 48_000.0).sin())
            .collect();
        Pcm {
            rate: SampleRate::LOSSY,
            planes: vec![plane.clone(), plane],
        }
    }

    #[test]
    fn quiet_tone_is_raised_to_target_and_peak_limited() {
        let mut pcm = tone(0.1, 5.0);
        let n = normalize(&mut pcm, &NormalizeConfig::default()).unwrap();
        let out = measure(&pcm).unwrap();
        let lufs = out.integrated_lufs.unwrap();
        assert!((lufs + 14.0).abs() < 0.2, "loudness {lufs}");
        assert!(
            out.true_peak_dbtp <= -0.9,
            "true peak {}",
            out.true_peak_dbtp
        );
        assert!(n.gain_db > 0.0);
    }

    #[test]
    fn silence_is_left_alone() {
        let mut pcm = tone(0.0, 1.0);
        let n = normalize(&mut pcm, &NormalizeConfig::default()).unwrap();
        assert_eq!(n.input_lufs, None);
        assert!(pcm.planes[0].iter().all(|&s| s == 0.0));
    }

    #[test]
    fn loud_tone_is_turned_down_without_limiting() {
        let mut pcm = tone(0.5, 3.0);
        let n = normalize(&mut pcm, &NormalizeConfig::default()).unwrap();
        assert!(n.gain_db < 0.0);
        assert_eq!(n.limiter_reduction_db, 0.0);
    }

    #[test]
    fn normalizer_in_pieces_matches_one_push() {
        let pcm = tone(0.9, 1.0);
        let cfg = NormalizeConfig::default();
        let planes = pcm.plane_refs();
        let mut whole = Normalizer::new(2, SampleRate::LOSSY, 6.0, &cfg);
        let mut a = whole.push(&planes);
        a.append(whole.flush());
        let mut pieces = Normalizer::new(2, SampleRate::LOSSY, 6.0, &cfg);
        let mut b = Pcm::new(SampleRate::LOSSY, 2);
        for at in (0..pcm.frames()).step_by(1000) {
            let end = (at + 1000).min(pcm.frames());
            b.append(pieces.push(&[&planes[0][at..end], &planes[1][at..end]]));
        }
        b.append(pieces.flush());
        assert_eq!(a.frames(), pcm.frames());
        assert_eq!(a, b);
        assert!(whole.reduction_db() > 5.0);
        // Past the first look-ahead window (whose missing history counts as unlimited), no
        // sample is above the ceiling.
        let peak = a.planes[0][120..]
            .iter()
            .fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak <= 10f32.powf(-1.0 / 20.0) + 1e-4, "peak {peak}");
    }
}
