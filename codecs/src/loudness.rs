//! EBU R128 loudness (ITU-R BS.1770-4) and normalisation with a true-peak limiter.

use crate::units::Pcm;
use crate::{Error, Result};
use ebur128::{EbuR128, Mode};
use serde::Serialize;

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

/// Measures integrated loudness, loudness range, true peak and sample peak.
///
/// Mono is measured as one channel, not as dual mono, like ffmpeg's `ebur128` filter.
pub fn measure(pcm: &Pcm) -> Result<Loudness> {
    let mut meter = meter(
        pcm,
        Mode::I | Mode::LRA | Mode::TRUE_PEAK | Mode::SAMPLE_PEAK,
    )?;
    add(&mut meter, pcm)?;
    let integrated = meter.loudness_global().map_err(ebu)?;
    let (mut tp, mut sp) = (0.0f64, 0.0f64);
    for ch in 0..pcm.channels() as u32 {
        tp = tp.max(meter.true_peak(ch).map_err(ebu)?);
        sp = sp.max(meter.sample_peak(ch).map_err(ebu)?);
    }
    Ok(Loudness {
        integrated_lufs: gated(integrated),
        range_lu: meter.loudness_range().map_err(ebu)?,
        true_peak_dbtp: db(tp),
        sample_peak_dbfs: db(sp),
    })
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

/// Normalises `pcm` in place towards `cfg.target_lufs`.
///
/// The gain is `target - measured`, capped at `cfg.max_gain_db`. Where the gain pushes the true
/// peak above the ceiling, a look-ahead limiter pulls it down smoothly instead of clipping; because
/// limiting lowers the loudness a little, the gain is then corrected (at most three passes) so the
/// result lands on the target. Silence (below the absolute gate) is left unchanged.
pub fn normalize(pcm: &mut Pcm, cfg: &NormalizeConfig) -> Result<Normalization> {
    let input = integrated(pcm)?;
    let Some(input_lufs) = input else {
        return Ok(Normalization {
            input_lufs: None,
            gain_db: 0.0,
            limiter_reduction_db: 0.0,
            output_lufs: None,
        });
    };
    let original = pcm.planes.clone();
    let mut gain_db = (cfg.target_lufs - input_lufs).min(cfg.max_gain_db);
    let ceiling = 10f32.powf(cfg.ceiling_dbtp as f32 / 20.0);
    let mut reduction = 0.0;
    let mut output = input;
    for _pass in 0..3 {
        let g = 10f32.powf(gain_db as f32 / 20.0);
        for (dst, src) in pcm.planes.iter_mut().zip(&original) {
            dst.iter_mut().zip(src).for_each(|(d, s)| *d = s * g);
        }
        reduction = limit(pcm, ceiling);
        if reduction == 0.0 {
            // A pure gain shifts integrated loudness by exactly that gain.
            output = Some(input_lufs + gain_db);
            break;
        }
        output = integrated(pcm)?;
        let Some(out) = output else { break };
        let miss = cfg.target_lufs - out;
        if miss.abs() < 0.05 || gain_db >= cfg.max_gain_db {
            break;
        }
        gain_db = (gain_db + miss).min(cfg.max_gain_db);
    }
    Ok(Normalization {
        input_lufs: Some(input_lufs),
        gain_db,
        limiter_reduction_db: reduction,
        output_lufs: output,
    })
}

fn integrated(pcm: &Pcm) -> Result<Option<f64>> {
    let mut meter = meter(pcm, Mode::I)?;
    add(&mut meter, pcm)?;
    Ok(gated(meter.loudness_global().map_err(ebu)?))
}

fn meter(pcm: &Pcm, mode: Mode) -> Result<EbuR128> {
    EbuR128::new(pcm.channels() as u32, pcm.rate.hz(), mode).map_err(ebu)
}

fn add(meter: &mut EbuR128, pcm: &Pcm) -> Result<()> {
    // Feed in blocks so the meter's internal buffers stay small.
    const BLOCK: usize = 1 << 16;
    let mut at = 0;
    while at < pcm.frames() {
        let end = (at + BLOCK).min(pcm.frames());
        let planes: Vec<&[f32]> = pcm.planes.iter().map(|p| &p[at..end]).collect();
        meter.add_frames_planar_f32(&planes).map_err(ebu)?;
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

/// Look-ahead true-peak limiter. Returns the deepest reduction in dB.
///
/// For every frame the gain needed to keep its true peak (4× oversampled, as BS.1770 measures it)
/// under `ceiling` is computed; a sliding minimum over the look-ahead window followed by a moving
/// average of the same length turns it into a smooth gain curve that is never above the needed
/// gain at any frame, and a one-pole release lets it recover slowly.
fn limit(pcm: &mut Pcm, ceiling: f32) -> f64 {
    let frames = pcm.frames();
    let rate = pcm.rate.hz() as usize;
    let look = (rate / 400).max(1); // 2.5 ms
    let peak = pcm
        .planes
        .iter()
        .flatten()
        .fold(0.0f32, |m, s| m.max(s.abs()));
    if peak < ceiling * 0.5 {
        return 0.0;
    }
    let phases = interpolation_phases();
    // Inter-sample overshoot of band-limited audio stays well under 6 dB, so frames whose
    // neighbourhood is below half the ceiling cannot reach it and skip the interpolation.
    let quiet = ceiling * 0.5;
    let need: Vec<f32> = (0..frames)
        .map(|i| {
            let peak = pcm
                .planes
                .iter()
                .map(|p| {
                    let near = &p[i.saturating_sub(3)..(i + 5).min(p.len())];
                    if near.iter().all(|s| s.abs() < quiet) {
                        0.0
                    } else {
                        true_peak_at(p, i, &phases)
                    }
                })
                .fold(0.0f32, f32::max);
            if peak > ceiling {
                ceiling / peak
            } else {
                1.0
            }
        })
        .collect();
    if need.iter().all(|&g| g >= 1.0) {
        return 0.0;
    }
    // m[i] = min(need[i .. i + look])
    let mut m = vec![1.0f32; frames];
    let mut deque: std::collections::VecDeque<usize> = Default::default();
    for j in (0..frames).rev() {
        while deque.back().is_some_and(|&k| need[k] >= need[j]) {
            deque.pop_back();
        }
        deque.push_back(j);
        while deque.front().is_some_and(|&k| k >= j + look) {
            deque.pop_front();
        }
        // Values increase from front to back, so the front is the window's minimum.
        m[j] = deque.front().map_or(1.0, |&k| need[k]);
    }
    // Moving average of m over [i + 1 - look, i]: every term covers frame i, so avg <= need[i].
    let release = (-1.0 / (0.050 * rate as f32)).exp();
    let mut sum = 0.0f64;
    let mut g_prev = 1.0f32;
    let mut deepest = 1.0f32;
    for i in 0..frames {
        sum += f64::from(m[i]);
        if i >= look {
            sum -= f64::from(m[i - look]);
        }
        let count = (i + 1).min(look) as f64;
        // Before the window fills, the missing terms are 1.0 (no reduction needed before start).
        let avg = ((sum + (look as f64 - count)) / look as f64) as f32;
        let g = if avg < g_prev {
            avg
        } else {
            (avg + (g_prev - avg) * release).min(avg)
        };
        g_prev = g;
        deepest = deepest.min(g);
        for plane in pcm.planes.iter_mut() {
            plane[i] *= g;
        }
    }
    -20.0 * f64::from(deepest).log10()
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
    use crate::units::SampleRate;

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
}
