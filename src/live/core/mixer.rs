//! The PCM switch between a channel's sources: one stereo stream at 48 kHz out, whichever source
//! plays, with an equal-power crossfade when the source changes, so the encoders see one
//! continuous signal and the encoded output never restarts.

/// Stereo planes.
pub type Block = [Vec<f32>; 2];

/// Which source a block comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A live source (Icecast, WHIP).
    Live,
    /// The auto-DJ.
    AutoDj,
    /// Nothing: silence.
    Silence,
}

/// Crossfades between the previous input and the current one over `len` frames.
#[derive(Debug)]
pub struct Mixer {
    len: usize,
    current: Input,
    previous: Input,
    /// Frames of the fade done; `len` when no fade is running.
    at: usize,
}

impl Mixer {
    /// A mixer whose fades last `len` frames, starting on `input`.
    pub fn new(len: usize, input: Input) -> Mixer {
        Mixer {
            len,
            current: input,
            previous: input,
            at: len,
        }
    }

    /// The input playing now.
    pub fn current(&self) -> Input {
        self.current
    }

    /// The input fading out, while a fade runs.
    pub fn fading(&self) -> Option<Input> {
        (self.at < self.len && self.previous != self.current).then_some(self.previous)
    }

    /// Switches to `input`; a fade from the current one starts with the next block.
    pub fn switch(&mut self, input: Input) {
        if input == self.current {
            return;
        }
        self.previous = self.current;
        self.current = input;
        self.at = 0;
    }

    /// Mixes one block: `next` from the current input, `prev` from the one fading out (absent
    /// when that input has nothing more, which fades from silence). Returns the mix, `next`'s
    /// length.
    pub fn mix(&mut self, mut next: Block, prev: Option<&Block>) -> Block {
        if self.at >= self.len {
            return next;
        }
        let frames = next[0].len();
        for i in 0..frames {
            let t = ((self.at + i) as f32 / self.len as f32).min(1.0);
            // Equal power: the sum of the squared gains is 1 at every point.
            let (g_in, g_out) = (
                (t * std::f32::consts::FRAC_PI_2).sin(),
                (t * std::f32::consts::FRAC_PI_2).cos(),
            );
            for (c, plane) in next.iter_mut().enumerate() {
                let old = prev.and_then(|p| p[c].get(i)).copied().unwrap_or(0.0);
                plane[i] = plane[i] * g_in + old * g_out;
            }
        }
        self.at = (self.at + frames).min(self.len);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(v: f32, n: usize) -> Block {
        [vec![v; n], vec![v; n]]
    }

    #[test]
    fn without_a_switch_blocks_pass_unchanged() {
        let mut m = Mixer::new(100, Input::AutoDj);
        assert_eq!(m.mix(block(0.5, 10), None), block(0.5, 10));
        assert_eq!(m.fading(), None);
    }

    #[test]
    fn a_switch_fades_over_its_length_and_is_continuous() {
        let mut m = Mixer::new(40, Input::AutoDj);
        m.switch(Input::Live);
        assert_eq!(m.fading(), Some(Input::AutoDj));
        let mut out = Vec::new();
        for _ in 0..6 {
            let prev = block(1.0, 10);
            let b = m.mix(block(-1.0, 10), m.fading().map(|_| &prev));
            out.extend(b[0].clone());
        }
        // Starts on the old input, ends on the new one, never jumps by more than a fade step.
        assert!((out[0] - 1.0).abs() < 1e-6);
        assert!(out[40..].iter().all(|&x| (x + 1.0).abs() < 1e-6));
        assert!(out.windows(2).all(|w| (w[1] - w[0]).abs() < 0.1));
        assert_eq!(m.fading(), None);
    }

    #[test]
    fn a_fade_from_a_source_that_ended_is_a_fade_in() {
        let mut m = Mixer::new(20, Input::Live);
        m.switch(Input::AutoDj);
        let b = m.mix(block(1.0, 20), None);
        assert_eq!(b[0][0], 0.0);
        assert!(b[0][19] > 0.99);
    }
}
