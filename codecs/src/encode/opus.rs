//! Opus through libopus (bundled by the `opus` crate, so no system library is needed).

use super::{Codec, CodecConfig, Encoder, Packet};
use crate::units::SampleRate;
use crate::{Error, Result};

/// 20 ms at 48 kHz: the frame size that divides the 320 ms segment grid.
pub const FRAME: usize = 960;

/// Opus encoder: 48 kHz, 20 ms frames, full-band music mode, constrained VBR.
pub struct OpusEncoder {
    inner: opus::Encoder,
    channels: usize,
    bitrate: u32,
    lookahead: usize,
    pending: Vec<Vec<f32>>,
    scratch: Vec<f32>,
    out: Vec<u8>,
}

impl OpusEncoder {
    /// A new encoder for mono or stereo at `bitrate` bits per second.
    pub fn new(channels: usize, bitrate: u32) -> Result<Self> {
        let layout = match channels {
            1 => opus::Channels::Mono,
            2 => opus::Channels::Stereo,
            n => {
                return Err(Error::Encoder(format!(
                    "Opus encoder takes 1 or 2 channels, not {n}"
                )))
            }
        };
        let mut inner = opus::Encoder::new(48_000, layout, opus::Application::Audio).map_err(op)?;
        inner
            .set_bitrate(opus::Bitrate::Bits(bitrate as i32))
            .map_err(op)?;
        inner.set_complexity(10).map_err(op)?;
        inner.set_vbr(true).map_err(op)?;
        inner.set_vbr_constraint(true).map_err(op)?;
        let lookahead = inner.get_lookahead().map_err(op)? as usize;
        Ok(OpusEncoder {
            inner,
            channels,
            bitrate,
            lookahead,
            pending: vec![Vec::new(); channels],
            scratch: Vec::with_capacity(FRAME * channels),
            out: vec![0; 4000],
        })
    }

    fn encode_frame(&mut self) -> Result<Packet> {
        self.scratch.clear();
        for i in 0..FRAME {
            for p in &self.pending {
                self.scratch.push(p[i]);
            }
        }
        for p in &mut self.pending {
            p.drain(..FRAME);
        }
        let n = self
            .inner
            .encode_float(&self.scratch, &mut self.out)
            .map_err(op)?;
        Ok(Packet {
            data: self.out[..n].to_vec(),
            duration: FRAME as u32,
        })
    }
}

fn op(e: opus::Error) -> Error {
    Error::Encoder(format!("opus: {e}"))
}

impl Encoder for OpusEncoder {
    fn codec(&self) -> Codec {
        Codec::Opus
    }
    fn rate(&self) -> SampleRate {
        SampleRate::LOSSY
    }
    fn channels(&self) -> usize {
        self.channels
    }
    fn frame_len(&self) -> usize {
        FRAME
    }
    fn delay(&self) -> usize {
        self.lookahead
    }
    fn bitrate(&self) -> u32 {
        self.bitrate
    }
    fn push(&mut self, planes: &[&[f32]]) -> Result<Vec<Packet>> {
        for (dst, src) in self.pending.iter_mut().zip(planes) {
            dst.extend_from_slice(src);
        }
        let mut out = Vec::new();
        while self.pending[0].len() >= FRAME {
            out.push(self.encode_frame()?);
        }
        Ok(out)
    }
    fn flush(&mut self) -> Result<Vec<Packet>> {
        if self.pending[0].is_empty() {
            return Ok(Vec::new());
        }
        for p in &mut self.pending {
            p.resize(FRAME, 0.0);
        }
        Ok(vec![self.encode_frame()?])
    }
    fn config(&self) -> CodecConfig {
        CodecConfig::Opus {
            channels: self.channels as u8,
            pre_skip: self.lookahead as u16,
            input_rate: 48_000,
        }
    }
}
