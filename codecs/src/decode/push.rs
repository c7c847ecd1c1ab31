//! [`PushDecoder`]: decoding bytes as they arrive, for sources that are an endless body (an
//! Icecast `PUT`/`SOURCE`, a relay) rather than a file.
//!
//! The caller pushes whatever the network gave it and gets back the PCM those bytes completed.
//! Symphonia's readers pull and cannot resume after running out of data mid-packet, so the decoder
//! reads only while more than a reserve of unread bytes is buffered: at least the largest unit its
//! container can hold (an MPEG audio frame, an ADTS frame, an Ogg page, a FLAC frame). The reserve
//! is the decoder's added latency; [`PushDecoder::finish`] reads the rest. Nothing here blocks,
//! spawns or reads a clock.

use super::stream::StreamDecoder;
use super::types::Limits;
use crate::units::{Pcm, SampleRate};
use crate::{Error, Result};
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex, MutexGuard};
use symphonia::core::io::MediaSource;

/// Bytes needed before the container is probed.
const PROBE_BYTES: usize = 16 << 10;

/// Most bytes held unread: a source pushing faster than it can be decoded is refused.
const MAX_BUFFERED: usize = 8 << 20;

/// Most bytes the probe waits for. A container whose headers and first audio unit need more
/// than [`PROBE_BYTES`] (ffmpeg's Ogg FLAC puts a second of audio, up to 64 KiB, in each page)
/// is probed again with twice as many bytes, up to this.
const MAX_PROBE: usize = 1 << 20;

/// The unread bytes, shared by the pushing side and the reader inside the decoder.
#[derive(Default)]
struct Buffer {
    bytes: VecDeque<u8>,
    ended: bool,
    /// A read found nothing before the end: the reader ran ahead of what has arrived.
    ran_dry: bool,
}

/// The decoder's view of the buffer: a forward-only source that reports the end only once the
/// stream has ended.
#[derive(Clone, Default)]
struct Pushed(Arc<Mutex<Buffer>>);

impl Pushed {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A panic while holding this lock leaves bytes, not broken invariants: keep going.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Most bytes handed to the reader at once. Symphonia's stream buffer fetches only when it has
/// run dry and keeps what a fetch gave: small fetches keep that read-ahead, which the reserve
/// cannot see, to a kilobyte.
const READ_AT_ONCE: usize = 1 << 10;

impl Read for Pushed {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let mut b = self.lock();
        let n = out.len().min(b.bytes.len()).min(READ_AT_ONCE);
        if n == 0 && !out.is_empty() && !b.ended {
            b.ran_dry = true;
        }
        for (o, byte) in out.iter_mut().zip(b.bytes.drain(..n)) {
            *o = byte;
        }
        Ok(n)
    }
}

impl Seek for Pushed {
    fn seek(&mut self, _: SeekFrom) -> std::io::Result<u64> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "a pushed stream cannot seek",
        ))
    }
}

impl MediaSource for Pushed {
    fn is_seekable(&self) -> bool {
        false
    }

    fn byte_len(&self) -> Option<u64> {
        None
    }
}

/// Decodes pushed bytes to PCM at the source's rate.
pub struct PushDecoder {
    buffer: Pushed,
    decoder: Option<StreamDecoder>,
    extension: Option<String>,
    limits: Limits,
    reserve: usize,
}

impl PushDecoder {
    /// A decoder for a stream whose format is probed from its first bytes; `extension` (`mp3`,
    /// `aac`, `ogg`, `opus`, `flac`) is a hint, as a Content-Type would give.
    pub fn new(extension: Option<&str>, limits: Limits) -> PushDecoder {
        PushDecoder {
            buffer: Pushed::default(),
            decoder: None,
            extension: extension.map(str::to_owned),
            limits,
            reserve: PROBE_BYTES,
        }
    }

    /// The source's sample rate, once probed.
    pub fn rate(&self) -> Option<SampleRate> {
        self.decoder.as_ref().map(StreamDecoder::rate)
    }

    /// The container, once probed (`mp3`, `aac` for ADTS, `ogg`, `flac`).
    pub fn container(&self) -> Option<&str> {
        self.decoder.as_ref().map(StreamDecoder::container)
    }

    /// Bytes held until more arrive: the latency the decoder adds.
    pub fn reserve(&self) -> usize {
        self.reserve
    }

    /// Adds `bytes` and returns the PCM they completed (possibly none).
    ///
    /// # Errors
    /// What [`StreamDecoder::open`] and [`StreamDecoder::next_chunk`] refuse, and
    /// [`Error::Limit`] when more than 8 MiB are waiting unread.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Pcm>> {
        {
            let mut b = self.buffer.lock();
            if b.bytes.len() + bytes.len() > MAX_BUFFERED {
                return Err(Error::Limit(format!(
                    "more than {MAX_BUFFERED} bytes of the stream are waiting to be decoded"
                )));
            }
            b.bytes.extend(bytes);
        }
        self.decode()
    }

    /// Ends the stream: decodes what is left.
    pub fn finish(mut self) -> Result<Vec<Pcm>> {
        self.buffer.lock().ended = true;
        self.reserve = 0;
        let mut out = self.decode()?;
        if let Some(d) = self.decoder.as_mut() {
            while let Some(p) = d.next_chunk()? {
                out.push(p);
            }
        }
        Ok(out)
    }

    fn unread(&self) -> usize {
        self.buffer.lock().bytes.len()
    }

    /// Whether the reader can take its next packet without running dry. For Ogg that is known
    /// from the pages buffered, so an Ogg source waits for one page rather than the largest
    /// possible one; past the reserve it is assumed either way (damage that hides the pages
    /// then fails the reader, which the caller resyncs).
    fn ready(&self) -> bool {
        let mut b = self.buffer.lock();
        if b.bytes.len() > self.reserve {
            return true;
        }
        let ogg = self.container() == Some("ogg");
        ogg && !b.bytes.is_empty() && crate::ogg::packet_ready(b.bytes.make_contiguous())
    }

    fn decode(&mut self) -> Result<Vec<Pcm>> {
        let mut out = Vec::new();
        if self.decoder.is_none() {
            if self.unread() < self.reserve && !self.buffer.lock().ended {
                return Ok(out);
            }
            // The probe reads what has arrived; if it runs out before it has seen enough, the
            // bytes are put back and it tries again once twice as many are here.
            let before = {
                let mut b = self.buffer.lock();
                b.ran_dry = false;
                (!b.ended).then(|| b.bytes.clone())
            };
            let d = match StreamDecoder::open(
                Box::new(self.buffer.clone()),
                self.extension.as_deref(),
                &self.limits,
            ) {
                Ok(d) => d,
                Err(e) => {
                    let mut b = self.buffer.lock();
                    match before {
                        Some(bytes) if b.ran_dry && self.reserve < MAX_PROBE => {
                            b.bytes = bytes;
                            self.reserve = (self.reserve * 2).min(MAX_PROBE);
                            return Ok(out);
                        }
                        _ => return Err(e),
                    }
                }
            };
            // After the end nothing more will come: everything may be read.
            if !self.buffer.lock().ended {
                self.reserve = reserve_for(d.container(), d.rate().hz());
            }
            self.decoder = Some(d);
        }
        // The reader may hold up to READ_AT_ONCE bytes of its own beyond what it has used.
        while self.ready() {
            let Some(d) = self.decoder.as_mut() else {
                break;
            };
            match d.next_chunk()? {
                Some(p) => out.push(p),
                None => break,
            }
        }
        Ok(out)
    }
}

/// The largest unit a container's reader may need whole. An MPEG Layer III frame is at most
/// 144 × 320 kb/s ÷ rate bytes at MPEG-1 rates and 72 × 160 kb/s ÷ rate below them, plus a
/// padding byte (ISO/IEC 11172-3 2.4.3.1, ISO/IEC 13818-3 2.4.3.1): 1 045 bytes at 44.1 kHz,
/// 65 ms of a 128 kb/s stream, where a fixed 4 KiB would hold back 256 ms. Other MPEG audio
/// layers' frames are at most 2 881 bytes; ADTS frames 8 191 (ISO/IEC 13818-7), Ogg pages
/// 65 307 (RFC 3533), and FLAC frames are unbounded in principle but under 64 KiB for any
/// streaming encoder setting.
fn reserve_for(container: &str, rate: u32) -> usize {
    const HEADER_AND_SLACK: usize = 64;
    match container {
        "mp3" if rate >= 32_000 => 144 * 320_000 / rate as usize + 1 + HEADER_AND_SLACK,
        "mp3" if rate >= 8_000 => 72 * 160_000 / rate as usize + 1 + HEADER_AND_SLACK,
        "mp3" | "mpa" => 4 << 10,
        "aac" | "adts" => 12 << 10,
        _ => 68 << 10,
    }
}
