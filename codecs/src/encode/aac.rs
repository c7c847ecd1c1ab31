//! AAC-LC through the Fraunhofer FDK AAC library (bundled by the `fdk-aac` crate).
//!
//! The FDK licence grants no patent rights; this module sits behind the `aac` cargo feature.

use super::{interleave_i16, Codec, CodecConfig, Encoder, Fifo, Packet};
use crate::units::SampleRate;
use crate::{Error, Result};
use fdk_aac::enc::{AudioObjectType, BitRate, ChannelMode, EncoderParams, Transport};

/// Samples per AAC-LC frame.
pub const FRAME: usize = 1024;

/// AAC-LC encoder, raw access units (no ADTS), constant bitrate.
pub struct AacEncoder {
    inner: fdk_aac::enc::Encoder,
    channels: usize,
    rate: SampleRate,
    bitrate: u32,
    delay: usize,
    asc: Vec<u8>,
    pending: Fifo<i16>,
    out: Vec<u8>,
}

impl AacEncoder {
    /// A new encoder for mono or stereo.
    pub fn new(rate: SampleRate, channels: usize, bitrate: u32) -> Result<Self> {
        let mode = match channels {
            1 => ChannelMode::Mono,
            2 => ChannelMode::Stereo,
            n => {
                return Err(Error::Encoder(format!(
                    "AAC encoder takes 1 or 2 channels, not {n}"
                )))
            }
        };
        let inner = fdk_aac::enc::Encoder::new(EncoderParams {
            bit_rate: BitRate::Cbr(bitrate),
            sample_rate: rate.hz(),
            transport: Transport::Raw,
            channels: mode,
            audio_object_type: AudioObjectType::Mpeg4LowComplexity,
        })
        .map_err(|e| Error::Encoder(format!("fdk-aac: {e}")))?;
        let info = inner
            .info()
            .map_err(|e| Error::Encoder(format!("fdk-aac: {e}")))?;
        let asc = info.confBuf[..info.confSize as usize].to_vec();
        Ok(AacEncoder {
            inner,
            channels,
            rate,
            bitrate,
            delay: info.nDelay as usize,
            asc,
            pending: Fifo::default(),
            out: vec![0; 8192],
        })
    }

    fn drain(&mut self, out: &mut Vec<Packet>) -> Result<()> {
        let step = FRAME * self.channels;
        while self.pending.len() >= step {
            let info = self
                .inner
                .encode(self.pending.front(step), &mut self.out)
                .map_err(|e| Error::Encoder(format!("fdk-aac: {e}")))?;
            self.pending.consume(info.input_consumed.min(step));
            if info.output_size > 0 {
                out.push(Packet {
                    data: self.out[..info.output_size].to_vec(),
                    duration: FRAME as u32,
                });
            }
            if info.input_consumed == 0 && info.output_size == 0 {
                return Err(Error::Encoder("fdk-aac consumed no input".into()));
            }
        }
        Ok(())
    }
}

impl Encoder for AacEncoder {
    fn codec(&self) -> Codec {
        Codec::Aac
    }
    fn rate(&self) -> SampleRate {
        self.rate
    }
    fn channels(&self) -> usize {
        self.channels
    }
    fn frame_len(&self) -> usize {
        FRAME
    }
    fn delay(&self) -> usize {
        self.delay
    }
    fn bitrate(&self) -> u32 {
        self.bitrate
    }
    fn push(&mut self, planes: &[&[f32]]) -> Result<Vec<Packet>> {
        self.pending.extend(interleave_i16(planes));
        let mut out = Vec::new();
        self.drain(&mut out)?;
        Ok(out)
    }
    fn flush(&mut self) -> Result<Vec<Packet>> {
        // The FDK binding cannot signal end of stream; silence pushes the delay line out.
        let mut out = Vec::new();
        let rem = self.pending.len() % (FRAME * self.channels);
        if rem > 0 {
            self.pending
                .extend(std::iter::repeat_n(0, FRAME * self.channels - rem));
        }
        self.drain(&mut out)?;
        Ok(out)
    }
    fn config(&self) -> CodecConfig {
        CodecConfig::Aac {
            asc: self.asc.clone(),
        }
    }
}
