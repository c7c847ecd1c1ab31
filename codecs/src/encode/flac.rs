//! FLAC through flacenc (pure Rust), at the source rate and bit depth.
//!
//! Frames use the variable-blocksize strategy (RFC 9639 section 9.1.1: each frame header carries
//! its first sample number), so a frame can end exactly on every segment boundary the caller
//! asks for, and segments of every rendition start at the same instant.

use super::{Codec, CodecConfig, Encoder, Packet};
use crate::units::SampleRate;
use crate::{Error, Result};
use flacenc::bitsink::MemSink;
use flacenc::component::{BitRepr, Frame, FrameOffset, StreamInfo};
use flacenc::error::Verify;
use flacenc::source::{Fill, FrameBuf};

/// The usual FLAC block size; segment boundaries split blocks into near-equal parts.
pub const BLOCK: usize = 4096;

/// FLAC encoder whose frames end on given sample positions.
pub struct FlacEncoder {
    config: flacenc::error::Verified<flacenc::config::Encoder>,
    stream_info: StreamInfo,
    rate: SampleRate,
    channels: usize,
    bits: u32,
    /// Sample positions (from the start) where a frame must end, ascending.
    cuts: Vec<u64>,
    next_cut: usize,
    /// Interleaved integer samples not yet encoded.
    pending: Vec<i32>,
    /// Samples already encoded.
    position: u64,
    min_block: usize,
    max_block: usize,
}

impl FlacEncoder {
    /// A new encoder. `bits` is 8 to 24; `cuts` are the sample positions where segments start.
    pub fn new(rate: SampleRate, channels: usize, bits: u32, mut cuts: Vec<u64>) -> Result<Self> {
        if !(1..=8).contains(&channels) || !(8..=24).contains(&bits) {
            return Err(Error::Encoder(format!(
                "FLAC takes 1-8 channels and 8-24 bits, not {channels} and {bits}"
            )));
        }
        let config = flacenc::config::Encoder::default()
            .into_verified()
            .map_err(|(_, e)| Error::Encoder(format!("flacenc config: {e}")))?;
        let stream_info = StreamInfo::new(rate.hz() as usize, channels, bits as usize)
            .map_err(|e| Error::Encoder(format!("flacenc stream info: {e}")))?;
        cuts.sort_unstable();
        cuts.dedup();
        Ok(FlacEncoder {
            config,
            stream_info,
            rate,
            channels,
            bits,
            cuts,
            next_cut: 0,
            pending: Vec::new(),
            position: 0,
            min_block: usize::MAX,
            max_block: 0,
        })
    }

    /// The size of the next frame, given `available` buffered samples per channel; `None` when
    /// more input is needed first.
    fn next_block(&mut self, available: usize, flushing: bool) -> Option<usize> {
        while self.next_cut < self.cuts.len() && self.cuts[self.next_cut] <= self.position {
            self.next_cut += 1;
        }
        let to_cut = self
            .cuts
            .get(self.next_cut)
            .map(|&c| (c - self.position) as usize);
        let span = match to_cut {
            // Split the stretch up to the cut into equal blocks of at most BLOCK.
            Some(d) => d.div_ceil(d.div_ceil(BLOCK)),
            None => BLOCK,
        };
        if available >= span {
            Some(span)
        } else if flushing && available > 0 {
            Some(available)
        } else {
            None
        }
    }

    fn encode_block(&mut self, size: usize) -> Result<Packet> {
        let take = size * self.channels;
        let mut fb = FrameBuf::with_size(self.channels, size)
            .map_err(|e| Error::Encoder(format!("flacenc: {e}")))?;
        fb.fill_interleaved(&self.pending[..take])
            .map_err(|e| Error::Encoder(format!("flacenc: {e}")))?;
        self.pending.drain(..take);
        let frame = flacenc::encode_fixed_size_frame(&self.config, &fb, 0, &self.stream_info)
            .map_err(|e| Error::Encoder(format!("flacenc: {e}")))?;
        let (mut header, subframes) = frame.into_parts();
        header.set_frame_offset(FrameOffset::StartSample(self.position));
        let frame = Frame::new(header, subframes.into_iter())
            .map_err(|e| Error::Encoder(format!("flacenc: {e}")))?;
        let mut sink = MemSink::<u8>::with_capacity(frame.count_bits() / 8 + 16);
        frame
            .write(&mut sink)
            .map_err(|e| Error::Encoder(format!("flacenc write: {e}")))?;
        self.position += size as u64;
        self.min_block = self.min_block.min(size);
        self.max_block = self.max_block.max(size);
        Ok(Packet {
            data: sink.into_inner(),
            duration: size as u32,
        })
    }

    fn drain(&mut self, flushing: bool) -> Result<Vec<Packet>> {
        let mut out = Vec::new();
        while let Some(size) = self.next_block(self.pending.len() / self.channels, flushing) {
            out.push(self.encode_block(size)?);
        }
        Ok(out)
    }
}

impl Encoder for FlacEncoder {
    fn codec(&self) -> Codec {
        Codec::Flac
    }
    fn rate(&self) -> SampleRate {
        self.rate
    }
    fn channels(&self) -> usize {
        self.channels
    }
    fn frame_len(&self) -> usize {
        BLOCK
    }
    fn delay(&self) -> usize {
        0
    }
    fn bitrate(&self) -> u32 {
        0
    }
    fn push(&mut self, planes: &[&[f32]]) -> Result<Vec<Packet>> {
        let scale = (1i64 << (self.bits - 1)) as f32;
        let (lo, hi) = (-(1i64 << (self.bits - 1)), (1i64 << (self.bits - 1)) - 1);
        let n = planes.first().map_or(0, |p| p.len());
        self.pending.reserve(n * self.channels);
        for i in 0..n {
            for p in planes {
                // Exact for integer sources of up to 24 bits (see `Pcm`).
                self.pending
                    .push(((p[i] * scale).round() as i64).clamp(lo, hi) as i32);
            }
        }
        self.drain(false)
    }
    fn flush(&mut self) -> Result<Vec<Packet>> {
        self.drain(true)
    }
    fn config(&self) -> CodecConfig {
        let mut info = self.stream_info.clone();
        let (min, max) = if self.max_block == 0 {
            (BLOCK, BLOCK)
        } else {
            (self.min_block, self.max_block)
        };
        // STREAMINFO's minimum excludes the last block; block sizes below 16 only occur there.
        let _ = info.set_block_sizes(min.max(16).min(max), max);
        info.set_total_samples(self.position as usize);
        let mut sink = MemSink::<u8>::with_capacity(34);
        // A 34-byte write into a growable memory sink cannot fail.
        let _ = info.write(&mut sink);
        CodecConfig::Flac {
            streaminfo: sink.into_inner(),
        }
    }
}
