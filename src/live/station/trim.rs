//! Silence at a track's edges, dropped as the track decodes, and the crossfade between two
//! tracks.
//!
//! Leading silence is every frame before the first one at or above the threshold. Trailing
//! silence is held back as it decodes (up to [`Trim::new`]'s `hold` frames, after which it is
//! let through as the quiet passage it then is) and dropped when the track ends within it.

/// Drops a track's leading and trailing silence from its stereo PCM.
#[derive(Debug)]
pub struct Trim {
    threshold: Option<f32>,
    leading: bool,
    held: [Vec<f32>; 2],
    hold: usize,
}

impl Trim {
    /// Frames quieter than `threshold_dbfs` (in both channels) are silence; `None` keeps
    /// everything. At most `hold` quiet frames are held back at once.
    pub fn new(threshold_dbfs: Option<f64>, hold: usize) -> Trim {
        Trim {
            threshold: threshold_dbfs.map(|db| 10f64.powf(db / 20.0) as f32),
            leading: true,
            held: [Vec::new(), Vec::new()],
            hold,
        }
    }

    /// The part of `pcm` that plays now.
    pub fn push(&mut self, pcm: [Vec<f32>; 2]) -> [Vec<f32>; 2] {
        let Some(th) = self.threshold else {
            return pcm;
        };
        let [l, r] = pcm;
        let loud = |i: usize| l[i].abs() >= th || r[i].abs() >= th;
        let mut out = [Vec::new(), Vec::new()];
        let mut from = 0;
        if self.leading {
            match (0..l.len()).find(|&i| loud(i)) {
                Some(i) => {
                    self.leading = false;
                    from = i;
                }
                None => return out,
            }
        }
        // The frames after the last loud one are held; what came before them plays, with what
        // was held before.
        let last_loud = (from..l.len()).rev().find(|&i| loud(i));
        match last_loud {
            Some(k) => {
                out[0].append(&mut self.held[0]);
                out[1].append(&mut self.held[1]);
                out[0].extend_from_slice(&l[from..=k]);
                out[1].extend_from_slice(&r[from..=k]);
                self.held[0].extend_from_slice(&l[k + 1..]);
                self.held[1].extend_from_slice(&r[k + 1..]);
            }
            None => {
                self.held[0].extend_from_slice(&l[from..]);
                self.held[1].extend_from_slice(&r[from..]);
            }
        }
        if self.held[0].len() > self.hold {
            out[0].append(&mut self.held[0]);
            out[1].append(&mut self.held[1]);
        }
        out
    }

    /// The track ended: what is held is its trailing silence, dropped. Returns how many frames.
    pub fn finish(&mut self) -> usize {
        let n = self.held[0].len();
        self.held = [Vec::new(), Vec::new()];
        n
    }
}

/// Mixes `incoming` into the last `incoming` frames of `outgoing`, an equal-power crossfade:
/// the outgoing track fades out as the incoming one fades in. `outgoing` must hold at least as
/// many frames as `incoming`.
pub fn crossfade(outgoing: &mut [Vec<f32>; 2], incoming: &[Vec<f32>; 2]) {
    let n = incoming[0].len().min(outgoing[0].len());
    let base = outgoing[0].len() - n;
    for c in 0..2 {
        for i in 0..n {
            let x = (i as f32 + 0.5) / n as f32 * std::f32::consts::FRAC_PI_2;
            let o = &mut outgoing[c][base + i];
            *o = (*o * x.cos() + incoming[c][i] * x.sin()).clamp(-1.0, 1.0);
        }
    }
}
