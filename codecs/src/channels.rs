//! Channel handling: mono stays mono, stereo stays stereo, more channels fold down to stereo.

use crate::decode::positions;
use crate::units::Pcm;
use symphonia::core::audio::{Channels, Position};

/// -3 dB, the ITU-R BS.775 weight of the centre and surround channels in a stereo downmix.
const MINUS_3DB: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// Folds more than two channels down to stereo with the ITU-R BS.775-3 (Table 2) coefficients:
/// `Lo = L + 0.707·C + 0.707·Ls`, `Ro = R + 0.707·C + 0.707·Rs`; LFE is dropped, as the
/// recommendation does. Mono and stereo are returned unchanged.
///
/// When the folded signal would exceed full scale, it is scaled down as a whole (a constant gain,
/// so nothing clips and the mix balance is kept). `layout` names the channel positions; without
/// it, the WAVE order (FL, FR, FC, LFE, BL, BR, ...) is assumed.
pub fn downmix(pcm: Pcm, layout: Option<&Channels>) -> Pcm {
    if pcm.channels() <= 2 {
        return pcm;
    }
    let pos = positions(layout, pcm.channels());
    let weights: Vec<(f32, f32)> = (0..pcm.channels())
        .map(|i| match pos.get(i).copied() {
            Some(p) => weight(p),
            // Unlabelled extra channels: spread them equally.
            None => (MINUS_3DB, MINUS_3DB),
        })
        .collect();
    let frames = pcm.frames();
    let mut left = vec![0.0f32; frames];
    let mut right = vec![0.0f32; frames];
    for (plane, &(wl, wr)) in pcm.planes.iter().zip(&weights) {
        if wl != 0.0 {
            left.iter_mut().zip(plane).for_each(|(o, s)| *o += wl * s);
        }
        if wr != 0.0 {
            right.iter_mut().zip(plane).for_each(|(o, s)| *o += wr * s);
        }
    }
    let peak = left
        .iter()
        .chain(&right)
        .fold(0.0f32, |m, s| m.max(s.abs()));
    if peak > 1.0 {
        let g = 1.0 / peak;
        left.iter_mut()
            .chain(right.iter_mut())
            .for_each(|s| *s *= g);
    }
    Pcm {
        rate: pcm.rate,
        planes: vec![left, right],
    }
}

fn weight(p: Position) -> (f32, f32) {
    if p == Position::FRONT_LEFT {
        (1.0, 0.0)
    } else if p == Position::FRONT_RIGHT {
        (0.0, 1.0)
    } else if p == Position::FRONT_CENTER {
        (MINUS_3DB, MINUS_3DB)
    } else if p == Position::LFE1 || p == Position::LFE2 {
        (0.0, 0.0)
    } else if [
        Position::REAR_LEFT,
        Position::SIDE_LEFT,
        Position::FRONT_LEFT_CENTER,
        Position::FRONT_LEFT_WIDE,
    ]
    .contains(&p)
    {
        (MINUS_3DB, 0.0)
    } else if [
        Position::REAR_RIGHT,
        Position::SIDE_RIGHT,
        Position::FRONT_RIGHT_CENTER,
        Position::FRONT_RIGHT_WIDE,
    ]
    .contains(&p)
    {
        (0.0, MINUS_3DB)
    } else {
        (0.5, 0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::SampleRate;

    fn pcm(planes: Vec<Vec<f32>>) -> Pcm {
        Pcm {
            rate: SampleRate::LOSSY,
            planes,
        }
    }

    #[test]
    fn mono_and_stereo_are_untouched() {
        let m = pcm(vec![vec![0.5, -0.5]]);
        assert_eq!(downmix(m.clone(), None), m);
        let s = pcm(vec![vec![0.1], vec![0.2]]);
        assert_eq!(downmix(s.clone(), None), s);
    }

    #[test]
    fn five_one_uses_bs775_weights_and_drops_lfe() {
        // FL FR FC LFE BL BR, each carrying a distinct value.
        let p = pcm(vec![
            vec![0.1],
            vec![0.2],
            vec![0.3],
            vec![0.9],
            vec![0.04],
            vec![0.05],
        ]);
        let out = downmix(p, None);
        let l = 0.1 + MINUS_3DB * 0.3 + MINUS_3DB * 0.04;
        let r = 0.2 + MINUS_3DB * 0.3 + MINUS_3DB * 0.05;
        assert!((out.planes[0][0] - l).abs() < 1e-6);
        assert!((out.planes[1][0] - r).abs() < 1e-6);
    }

    #[test]
    fn a_hot_fold_is_scaled_not_clipped() {
        let p = pcm(vec![vec![1.0], vec![1.0], vec![1.0]]);
        let out = downmix(p, None);
        assert!((out.planes[0][0] - 1.0).abs() < 1e-6);
        assert!((out.planes[1][0] - 1.0).abs() < 1e-6);
    }
}
