//! Opus through libopus (bundled by the `opus` crate, so no system library is needed).

use super::{interleave, Codec, CodecConfig, Encoder, Fifo, Packet};
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
    pending: Fifo<f32>,
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
            pending: Fifo::default(),
            out: vec![0; 4000],
        })
    }

    fn encode_frame(&mut self) -> Result<Packet> {
        let take = FRAME * self.channels;
        let n = self
            .inner
            .encode_float(self.pending.front(take), &mut self.out)
            .map_err(op)?;
        self.pending.consume(take);
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
        self.pending.extend(interleave(planes));
        let mut out = Vec::new();
        while self.pending.len() >= FRAME * self.channels {
            out.push(self.encode_frame()?);
        }
        Ok(out)
    }
    fn flush(&mut self) -> Result<Vec<Packet>> {
        let left = self.pending.len();
        if left == 0 {
            return Ok(Vec::new());
        }
        self.pending
            .extend(std::iter::repeat_n(0.0, FRAME * self.channels - left));
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
