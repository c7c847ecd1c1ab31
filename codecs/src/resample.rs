//! Resampling with rubato's FFT resampler, fed in pieces.
//!
//! [`Resampler`] takes PCM of any length as it arrives and gives back what is ready, so a track
//! of any duration (or an endless live source) is resampled in memory that does not grow with it.
//! [`resample()`] is the whole-clip convenience on top of it.

use crate::units::{Pcm, SampleRate};
use crate::{Error, Result};
use audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Indexing, Resampler as _};

/// Input frames per FFT chunk, for files: large chunks are the cheapest per sample.
const CHUNK: usize = 4096;

/// Input frames per FFT chunk for live sources ([`Resampler::live`]): a chunk is both latency and
/// the size of the bursts the output comes in, so live input is resampled in 10 ms pieces or so
/// (1024 frames is 21 ms at 48 kHz, 23 ms at 44.1 kHz).
const LIVE_CHUNK: usize = 1024;

/// A streaming resampler whose output is sample-aligned with its input.
///
/// rubato's filter delay is trimmed from the start, and [`Resampler::flush`] pumps the tail out,
/// so that over the whole stream the output holds exactly `ceil(frames · to / from)` frames and
/// output frame `k` sits at time `k / to` just as input frame `j` sits at `j / from`: the same
/// samples as rubato's whole-clip `process_all`, produced piece by piece. At equal rates the
/// input passes through unchanged.
pub struct Resampler {
    inner: Option<Fft<f32>>,
    from: SampleRate,
    to: SampleRate,
    channels: usize,
    /// Input frames per FFT chunk.
    chunk: usize,
    /// Input frames waiting for a whole chunk.
    pending: Vec<Vec<f32>>,
    /// Output frames of filter delay still to drop.
    to_trim: usize,
    /// Input frames pushed, and output frames given out, so far.
    frames_in: u64,
    frames_out: u64,
    out_buf: Vec<Vec<f32>>,
}

impl Resampler {
    /// A resampler from `from` to `to` for `channels` planes.
    ///
    /// # Errors
    /// [`Error::Encoder`] when rubato refuses the ratio.
    pub fn new(from: SampleRate, to: SampleRate, channels: usize) -> Result<Self> {
        Self::with_chunk(from, to, channels, CHUNK)
    }

    /// A resampler for a live source: the same output, in smaller pieces, sooner
    /// (1 024 input frames per chunk).
    pub fn live(from: SampleRate, to: SampleRate, channels: usize) -> Result<Self> {
        Self::with_chunk(from, to, channels, LIVE_CHUNK)
    }

    fn with_chunk(from: SampleRate, to: SampleRate, channels: usize, chunk: usize) -> Result<Self> {
        let inner = if from == to || channels == 0 {
            None
        } else {
            Some(
                Fft::<f32>::new(
                    from.hz() as usize,
                    to.hz() as usize,
                    chunk,
                    channels,
                    FixedSync::Input,
                )
                .map_err(|e| Error::Encoder(format!("resampler: {e}")))?,
            )
        };
        let to_trim = inner.as_ref().map_or(0, |r| r.output_delay());
        let out_len = inner.as_ref().map_or(0, |r| r.output_frames_max());
        Ok(Resampler {
            inner,
            from,
            to,
            channels,
            chunk,
            pending: vec![Vec::with_capacity(chunk); channels],
            to_trim,
            frames_in: 0,
            frames_out: 0,
            out_buf: vec![vec![0.0; out_len]; channels],
        })
    }

    /// The output rate.
    pub fn rate(&self) -> SampleRate {
        self.to
    }

    /// Channels resampled.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Resamples `planes` (one slice per channel, all of one length) and returns the output that
    /// is ready, possibly none.
    pub fn push(&mut self, planes: &[&[f32]]) -> Result<Pcm> {
        let n = planes.first().map_or(0, |p| p.len());
        self.frames_in += n as u64;
        let mut out = Pcm::new(self.to, self.channels);
        if self.inner.is_none() {
            for (dst, src) in out.planes.iter_mut().zip(planes) {
                dst.extend_from_slice(src);
            }
            self.frames_out += n as u64;
            return Ok(out);
        }
        let mut at = 0;
        while at < n {
            let room = self.chunk - self.pending[0].len();
            let take = room.min(n - at);
            for (dst, src) in self.pending.iter_mut().zip(planes) {
                dst.extend_from_slice(&src[at..at + take]);
            }
            at += take;
            if self.pending[0].len() == self.chunk {
                self.process(None, &mut out)?;
                self.pending.iter_mut().for_each(Vec::clear);
            }
        }
        Ok(out)
    }

    /// Ends the stream: resamples what is buffered and pumps out the filter's tail, so the total
    /// output is exactly `ceil(frames_in · to / from)` frames.
    pub fn flush(&mut self) -> Result<Pcm> {
        let mut out = Pcm::new(self.to, self.channels);
        if self.inner.is_none() {
            return Ok(out);
        }
        let expected = self.to.convert_len(self.frames_in, self.from);
        if self.frames_in == 0 {
            return Ok(out);
        }
        let partial = self.pending[0].len();
        if partial > 0 {
            self.process(Some(partial), &mut out)?;
            self.pending.iter_mut().for_each(Vec::clear);
        }
        let mut guard = 0;
        while self.frames_out + (out.frames() as u64) < expected {
            self.process(Some(0), &mut out)?;
            guard += 1;
            if guard > 64 {
                return Err(Error::Encoder("resampler stopped producing output".into()));
            }
        }
        let keep = (expected - self.frames_out) as usize;
        for plane in &mut out.planes {
            plane.truncate(keep);
        }
        self.frames_out += out.frames() as u64;
        Ok(out)
    }

    /// Runs one chunk (or the partial last one, or zeros) and appends the trimmed output.
    fn process(&mut self, partial: Option<usize>, out: &mut Pcm) -> Result<()> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(());
        };
        if partial.is_some() {
            // rubato reads a full chunk's worth of slice even for a partial one.
            for p in &mut self.pending {
                p.resize(self.chunk, 0.0);
            }
        }
        let input = SequentialSliceOfVecs::new(&self.pending, self.channels, self.chunk)
            .map_err(|e| Error::Encoder(format!("resampler input: {e}")))?;
        let out_len = self.out_buf[0].len();
        let mut output = SequentialSliceOfVecs::new_mut(&mut self.out_buf, self.channels, out_len)
            .map_err(|e| Error::Encoder(format!("resampler output: {e}")))?;
        let indexing = Indexing {
            input_offset: 0,
            output_offset: 0,
            active_channels_mask: None,
            partial_len: partial,
        };
        let (_, produced) = inner
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .map_err(|e| Error::Encoder(format!("resampler: {e}")))?;
        let trim = self.to_trim.min(produced);
        self.to_trim -= trim;
        for (dst, src) in out.planes.iter_mut().zip(&self.out_buf) {
            dst.extend_from_slice(&src[trim..produced]);
        }
        // Output of the partial last chunk and the pumped tail is counted by `flush`, once it is
        // cut to the exact length.
        if partial.is_none() {
            self.frames_out += (produced - trim) as u64;
        }
        Ok(())
    }
}

/// Resamples a whole clip `pcm` to `to`: exactly `ceil(frames · to / from)` frames,
/// sample-aligned with the input (see [`Resampler`]). A signal already at `to` is returned
/// unchanged.
pub fn resample(pcm: &Pcm, to: SampleRate) -> Result<Pcm> {
    let mut r = Resampler::new(pcm.rate, to, pcm.channels())?;
    let mut out = r.push(&pcm.plane_refs())?;
    out.append(r.flush()?);
    Ok(out)
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
    fn the_live_resampler_is_as_exact_and_answers_within_a_chunk() {
        let from = SampleRate::new(44_100).unwrap();
        let plane = sine(44_100, 1000.0, 44_100);
        let mut r = Resampler::live(from, SampleRate::LOSSY, 1).unwrap();
        let mut out: Vec<f32> = Vec::new();
        for (i, piece) in plane.chunks(441).enumerate() {
            out.extend(r.push(&[piece]).unwrap().planes[0].iter());
            // 10 ms pieces: output starts once a live chunk (and the filter delay) is in.
            if i == 4 {
                assert!(!out.is_empty(), "nothing after {} input frames", 5 * 441);
            }
        }
        out.extend(r.flush().unwrap().planes[0].iter());
        assert_eq!(out.len(), 48_000);
        let expect = sine(48_000, 1000.0, 48_000);
        let err = (1000..47_000)
            .map(|i| (out[i] - expect[i]).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-3, "max error {err}");
    }

    #[test]
    fn pieces_give_the_same_samples_as_one_push() {
        let from = SampleRate::new(44_100).unwrap();
        let plane = sine(44_100, 440.0, 30_001);
        let whole = resample(
            &Pcm {
                rate: from,
                planes: vec![plane.clone(), plane.clone()],
            },
            SampleRate::LOSSY,
        )
        .unwrap();
        let mut r = Resampler::new(from, SampleRate::LOSSY, 2).unwrap();
        let mut got: Vec<f32> = Vec::new();
        for piece in plane.chunks(777) {
            got.extend(r.push(&[piece, piece]).unwrap().planes[0].iter());
        }
        got.extend(r.flush().unwrap().planes[0].iter());
        assert_eq!(got.len(), 32_655); // ceil(30 001 · 48 000 / 44 100)
        assert_eq!(got, whole.planes[0]);
    }

    #[test]
    fn short_clip_is_exact_too() {
        let from = SampleRate::new(22_050).unwrap();
        let pcm = Pcm {
            rate: from,
            planes: vec![sine(22_050, 100.0, 10)],
        };
        assert_eq!(resample(&pcm, SampleRate::LOSSY).unwrap().frames(), 22);
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
