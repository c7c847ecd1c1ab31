//! FLAC through flacenc (pure Rust), at the source rate and bit depth.
//!
//! Frames use the variable-blocksize strategy (RFC 9639 section 9.1.1: each frame header carries
//! its first sample number), so a frame can end exactly on every segment boundary the caller
//! asks for, and segments of every rendition start at the same instant.

use super::{interleave, Codec, CodecConfig, Encoder, Fifo, Packet};
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
    pending: Fifo<i32>,
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
        // Mid/side plus independent coding and order-8 LPC: within a percent or two of flacenc's
        // exhaustive defaults in size at about half the time (the `flac -5` trade-off).
        let mut config = flacenc::config::Encoder::default();
        config.stereo_coding.use_leftside = false;
        config.stereo_coding.use_rightside = false;
        config.subframe_coding.qlpc.lpc_order = 8;
        let config = config
            .into_verified()
            .map_err(|(_, e)| Error::Encoder(format!("flacenc config: {e}")))?;
        // flacenc accepts rates up to 96 kHz; above that it encodes with a stand-in rate and
        // the frame headers are rewritten to defer to STREAMINFO (see `patch_header`).
        let stream_info = StreamInfo::new(rate.hz().min(96_000) as usize, channels, bits as usize)
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
            pending: Fifo::default(),
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
        if size < MIN_FLACENC_BLOCK {
            let data = verbatim_frame(
                self.pending.front(take),
                self.channels,
                self.bits,
                self.position,
            );
            self.pending.consume(take);
            return Ok(self.finish_block(data, size));
        }
        let mut fb = FrameBuf::with_size(self.channels, size)
            .map_err(|e| Error::Encoder(format!("flacenc: {e}")))?;
        fb.fill_interleaved(self.pending.front(take))
            .map_err(|e| Error::Encoder(format!("flacenc: {e}")))?;
        self.pending.consume(take);
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
        let mut data = sink.into_inner();
        if self.rate.hz() > 96_000 {
            patch_header(&mut data);
        }
        Ok(self.finish_block(data, size))
    }

    fn finish_block(&mut self, data: Vec<u8>, size: usize) -> Packet {
        self.position += size as u64;
        self.min_block = self.min_block.min(size);
        self.max_block = self.max_block.max(size);
        Packet {
            data,
            duration: size as u32,
        }
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
        // Exact for integer sources of up to 24 bits (see `Pcm`).
        self.pending
            .extend(interleave(planes).map(|s| ((s * scale).round() as i64).clamp(lo, hi) as i32));
        self.drain(false)
    }
    fn flush(&mut self) -> Result<Vec<Packet>> {
        self.drain(true)
    }
    fn config(&self) -> CodecConfig {
        let (min, max) = if self.max_block == 0 {
            (BLOCK, BLOCK)
        } else {
            (self.min_block, self.max_block)
        };
        CodecConfig::Flac {
            streaminfo: streaminfo(
                min.max(16),
                max.max(16),
                self.rate.hz(),
                self.channels,
                self.bits,
                self.position,
            ),
        }
    }
}

/// flacenc's smallest block; shorter blocks (only in tracks of a few samples) are written verbatim.
const MIN_FLACENC_BLOCK: usize = 32;

/// The 34-byte STREAMINFO body (RFC 9639 section 8.2). Frame sizes and MD5 are left 0 (unknown),
/// which the format allows.
fn streaminfo(
    min_block: usize,
    max_block: usize,
    rate: u32,
    channels: usize,
    bits: u32,
    total: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(34);
    out.extend_from_slice(&(min_block as u16).to_be_bytes());
    out.extend_from_slice(&(max_block as u16).to_be_bytes());
    out.extend_from_slice(&[0; 6]);
    // 20 bits rate, 3 bits channels-1, 5 bits bits-1, 36 bits total samples
    let packed: u64 = (u64::from(rate) << 44)
        | (((channels as u64) - 1) << 41)
        | (u64::from(bits - 1) << 36)
        | (total & 0xF_FFFF_FFFF);
    out.extend_from_slice(&packed.to_be_bytes());
    out.extend_from_slice(&[0; 16]);
    out
}

/// Sets a frame header's sample-rate field to 0000 ("from STREAMINFO", RFC 9639 9.1.2) and
/// recomputes both CRCs. Used for rates flacenc does not accept itself.
fn patch_header(frame: &mut [u8]) {
    if frame.len() < 8 {
        return;
    }
    let rate_code = frame[2] & 0x0F;
    frame[2] &= 0xF0;
    // Length of the coded number (UTF-8-like), then optional block size and rate bytes.
    let lead = frame[4].leading_ones() as usize;
    let mut at = 4 + lead.max(1);
    at += match frame[2] >> 4 {
        6 => 1,
        7 => 2,
        _ => 0,
    };
    // A rate code of 12..=14 had extra bytes; they are dropped by the rewrite below.
    let extra = match rate_code {
        12 => 1,
        13 | 14 => 2,
        _ => 0,
    };
    let mut fixed: Vec<u8> = frame[..at].to_vec();
    fixed.push(crc8(&fixed));
    fixed.extend_from_slice(&frame[at + extra + 1..frame.len() - 2]);
    let crc = crc16(&fixed);
    fixed.extend_from_slice(&crc.to_be_bytes());
    frame.copy_from_slice(&fixed[..frame.len().min(fixed.len())]);
}

/// A frame of VERBATIM subframes (RFC 9639 9.2.4), for blocks too short for flacenc.
fn verbatim_frame(interleaved: &[i32], channels: usize, bits: u32, start: u64) -> Vec<u8> {
    let size = interleaved.len() / channels;
    let mut w = BitWriter::default();
    w.put(0xFFF9, 16); // sync, reserved 0, variable blocksize
    w.put(7, 4); // block size: 16-bit value follows
    w.put(0, 4); // sample rate from STREAMINFO
    w.put((channels as u64) - 1, 4); // independent channels
    w.put(
        match bits {
            8 => 1,
            12 => 2,
            16 => 4,
            20 => 5,
            24 => 6,
            _ => 0,
        },
        3,
    );
    w.put(0, 1);
    for b in utf8_number(start) {
        w.put(u64::from(b), 8);
    }
    w.put(size as u64 - 1, 16);
    let crc = crc8(&w.bytes);
    w.put(u64::from(crc), 8);
    for ch in 0..channels {
        w.put(0b0000_0010, 8); // zero pad bit, type VERBATIM, no wasted bits
        for i in 0..size {
            let v = interleaved[i * channels + ch] as i64 as u64 & ((1u64 << bits) - 1);
            w.put(v, bits);
        }
    }
    w.align();
    let crc = crc16(&w.bytes);
    w.put(u64::from(crc), 16);
    w.bytes
}

fn utf8_number(n: u64) -> Vec<u8> {
    if n < 0x80 {
        return vec![n as u8];
    }
    let mut len = 2;
    while len < 7 && n >= 1u64 << (5 * len + 1) {
        len += 1;
    }
    let mut out = vec![0u8; len];
    let mut v = n;
    for b in out[1..].iter_mut().rev() {
        *b = 0x80 | (v & 0x3F) as u8;
        v >>= 6;
    }
    out[0] = (0xFFu8 << (8 - len)) | v as u8;
    out
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn put(&mut self, value: u64, bits: u32) {
        for i in (0..bits).rev() {
            self.acc = (self.acc << 1) | ((value >> i) & 1);
            self.n += 1;
            if self.n == 8 {
                self.bytes.push(self.acc as u8);
                self.acc = 0;
                self.n = 0;
            }
        }
    }
    fn align(&mut self) {
        if self.n > 0 {
            let pad = 8 - self.n;
            self.put(0, pad);
        }
    }
}

/// CRC-8, polynomial x^8 + x^2 + x + 1 (RFC 9639 9.1.8).
fn crc8(data: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &b in data {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// CRC-16, polynomial x^16 + x^15 + x^2 + 1 (RFC 9639 9.3).
fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x8005
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Pcm;
    use symphonia::core::codecs::audio::AudioDecoderOptions;

    fn decode_frames(streaminfo: &[u8], packets: &[Packet], channels: usize) -> Vec<Vec<f32>> {
        // Build a native FLAC stream and decode it with symphonia.
        let mut file = b"fLaC".to_vec();
        file.push(0x80);
        file.extend_from_slice(&[0, 0, 34]);
        file.extend_from_slice(streaminfo);
        for p in packets {
            file.extend_from_slice(&p.data);
        }
        let decoded = crate::decode(
            Box::new(std::io::Cursor::new(file)),
            Some("flac"),
            &Default::default(),
            &mut |_| {},
        )
        .expect("symphonia reads our FLAC");
        let _ = AudioDecoderOptions::default();
        assert_eq!(decoded.pcm.channels(), channels);
        decoded.pcm.planes
    }

    fn signal(n: usize, bits: u32) -> Vec<f32> {
        let scale = (1i64 << (bits - 1)) as f32;
        (0..n)
            .map(|i| (((i * 7919) % 2001) as f32 - 1000.0).round() / scale)
            .collect()
    }

    #[test]
    fn round_trip_is_bit_exact_with_cuts_and_tiny_blocks() {
        // Blocks under 32 samples (verbatim frames) are checked with ffmpeg by the corpus test:
        // symphonia cannot read a FLAC file that is a single tiny frame.
        for (rate, bits, n) in [
            (44_100, 16, 10_000),
            (192_000, 24, 5_000),
            (96_000, 24, 3_010),
        ] {
            let rate = SampleRate::new(rate).unwrap();
            let pcm = Pcm {
                rate,
                planes: vec![signal(n, bits), signal(n, bits).into_iter().rev().collect()],
            };
            let mut enc = FlacEncoder::new(rate, 2, bits, vec![0, 3_000, 6_001]).unwrap();
            let mut packets = enc.push(&pcm.plane_refs()).unwrap();
            packets.extend(enc.flush().unwrap());
            let CodecConfig::Flac { streaminfo } = enc.config() else {
                unreachable!()
            };
            assert_eq!(streaminfo.len(), 34);
            assert_eq!(
                packets.iter().map(|p| p.duration as usize).sum::<usize>(),
                n
            );
            let mut at = 0u64;
            for p in &packets {
                if n > 3_000 && at < 3_000 {
                    assert!(
                        at + u64::from(p.duration) <= 3_000,
                        "a frame straddles a cut"
                    );
                }
                at += u64::from(p.duration);
            }
            assert_eq!(decode_frames(&streaminfo, &packets, 2), pcm.planes);
        }
    }
}
