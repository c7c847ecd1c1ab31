//! Resampling with rubato's FFT resampler, the offline high-quality choice.

use crate::units::{Pcm, SampleRate};
use crate::{Error, Result};
use audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Resampler};

/// Resamples `pcm` to `to`.
///
/// The output holds exactly `ceil(frames · to / from)` frames and is sample-aligned with the input:
/// rubato's filter delay is trimmed from the start and the tail is flushed, so output frame `k`
/// sits at time `k / to` just as input frame `j` sits at `j / from`. A signal already at `to` is
/// returned unchanged.
pub fn resample(pcm: &Pcm, to: SampleRate) -> Result<Pcm> {
    if pcm.rate == to || pcm.frames() == 0 {
        return Ok(Pcm {
            rate: to,
            planes: pcm.planes.clone(),
        });
    }
    let channels = pcm.channels();
    let frames = pcm.frames();
    let mut resampler = Fft::<f32>::new(
        pcm.rate.hz() as usize,
        to.hz() as usize,
        4096,
        channels,
        FixedSync::Input,
    )
    .map_err(|e| Error::Encoder(format!("resampler: {e}")))?;
    let input = SequentialSliceOfVecs::new(&pcm.planes, channels, frames)
        .map_err(|e| Error::Encoder(format!("resampler input: {e}")))?;
    let needed = resampler.process_all_needed_output_len(frames);
    let mut planes = vec![vec![0.0f32; needed]; channels];
    let (_, produced) = {
        let mut output = SequentialSliceOfVecs::new_mut(&mut planes, channels, needed)
            .map_err(|e| Error::Encoder(format!("resampler output: {e}")))?;
        resampler
            .process_all_into_buffer(&input, &mut output, frames, None)
            .map_err(|e| Error::Encoder(format!("resampler: {e}")))?
    };
    // rubato rounds the expected length up in floating point, which can add one frame; the exact
    // length is ceil(frames * to / from) in integers.
    let exact = to.convert_len(frames as u64, pcm.rate) as usize;
    for plane in &mut planes {
        plane.truncate(produced.min(exact));
    }
    Ok(Pcm { rate: to, planes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f64, frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|i| {
                (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() as f32 * 0.5
            })
            .collect()
    }

    #[test]
    fn output_length_and_alignment() {
        let from = SampleRate::new(44_100).unwrap();
        let pcm = Pcm {
            rate: from,
            planes: vec![sine(44_100, 1000.0, 44_100)],
        };
        let out = resample(&pcm, SampleRate::LOSSY).unwrap();
        assert_eq!(out.frames(), 48_000);
        // Sample-aligned: away from the edges the output is the same sine sampled at 48 kHz.
        let expect = sine(48_000, 1000.0, 48_000);
        let err = (1000..47_000)
            .map(|i| (out.planes[0][i] - expect[i]).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-3, "max error {err}");
    }

    #[test]
    fn same_rate_is_identity() {
        let pcm = Pcm {
            rate: SampleRate::LOSSY,
            planes: vec![vec![0.25; 10]],
        };
        assert_eq!(resample(&pcm, SampleRate::LOSSY).unwrap(), pcm);
    }
}
