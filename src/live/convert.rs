//! Any decoded PCM to what the channel core takes: stereo at 48 kHz.

use super::core::Pcm48;
use veza_codecs::{downmix, Pcm, Resampler, SampleRate};

/// Converts one source's PCM, piece by piece, keeping the resampler's state between pieces so
/// the joins are seamless.
#[derive(Default)]
pub struct ToStereo48 {
    /// The resampler and the input rate it was made for.
    resampler: Option<(Resampler, SampleRate)>,
}

impl ToStereo48 {
    /// Converts a piece. More than two channels are downmixed (ITU-R BS.775), mono is doubled.
    pub fn push(&mut self, pcm: Pcm) -> Result<Pcm48, String> {
        let rate = pcm.rate;
        let mut pcm = downmix(pcm, None);
        if pcm.planes.len() == 1 {
            let mono = pcm.planes[0].clone();
            pcm.planes.push(mono);
        }
        if pcm.planes.len() != 2 {
            return Err(format!("{} channels", pcm.planes.len()));
        }
        if rate == SampleRate::LOSSY {
            let [l, r]: [Vec<f32>; 2] = pcm.planes.try_into().map_err(|_| "two planes")?;
            return Ok([l, r]);
        }
        if self
            .resampler
            .as_ref()
            .is_none_or(|(_, from)| *from != rate)
        {
            let r = Resampler::live(rate, SampleRate::LOSSY, 2).map_err(|e| e.to_string())?;
            self.resampler = Some((r, rate));
        }
        let Some((r, _)) = self.resampler.as_mut() else {
            return Err("no resampler".into());
        };
        let out = r
            .push(&[&pcm.planes[0], &pcm.planes[1]])
            .map_err(|e| e.to_string())?;
        into_pair(out)
    }

    /// The resampler's tail at the end of the source.
    pub fn flush(&mut self) -> Result<Pcm48, String> {
        match self.resampler.take() {
            Some((mut r, _)) => into_pair(r.flush().map_err(|e| e.to_string())?),
            None => Ok([Vec::new(), Vec::new()]),
        }
    }
}

fn into_pair(pcm: Pcm) -> Result<Pcm48, String> {
    let [l, r]: [Vec<f32>; 2] = pcm
        .planes
        .try_into()
        .map_err(|_| "the resampler gave other than two planes".to_string())?;
    Ok([l, r])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono_44k1_becomes_stereo_48k_of_the_same_length() {
        let mut c = ToStereo48::default();
        let rate = SampleRate::new(44_100).unwrap();
        let mut frames = 0;
        for _ in 0..10 {
            let p = Pcm {
                rate,
                planes: vec![vec![0.25; 4_410]],
            };
            let out = c.push(p).unwrap();
            assert_eq!(out[0], out[1]);
            frames += out[0].len();
        }
        frames += c.flush().unwrap()[0].len();
        assert_eq!(frames, 48_000);
    }
}
