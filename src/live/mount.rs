//! Progressive mounts: a channel's audio as one endless byte stream per format (MP3, ADTS AAC,
//! Ogg Opus), as Icecast serves it. Each mount is written once by the channel's engine and read
//! by every listener from a shared window of chunks; a listener is a read position, not a copy.
//!
//! - **Chunks** start on a frame (or Ogg page) boundary and hold about [`CHUNK`] of audio, so
//!   that listeners are woken twice a second, not once per frame.
//! - **Burst on connect:** a new listener starts at the chunk that leaves at most `burst` bytes
//!   to the end, so its player fills its buffer at once.
//! - **A listener that falls behind** by more than `queue` bytes (it reads slower than real time,
//!   or not at all) is cut off and counted; the writer never waits for anyone. A listener whose
//!   connection is stuck (its socket full, so nothing polls its body) is found by the writer's
//!   scan and its connection closed.
//! - **Ogg** listeners get the current link's headers before any page; a title change starts a
//!   new link whose headers carry it.

use super::core::Stream;
use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::RwLock;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use veza_hls::{Adts, OggOpus};

/// Audio per chunk: listeners are woken, and their sockets written, about this often. Half a
/// second, not less: each wake and write is most of what a listener costs (at 2 000 listeners,
/// 100 ms chunks cost 1.7× icecast2's CPU per listener, 250 ms 1.1×, 500 ms 0.75×:
/// `benches/icecast.sh`), and a player holds seconds of burst, so the added half second of
/// latency goes unheard.
pub const CHUNK: Duration = Duration::from_millis(500);

/// A mount's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// MPEG-1 Layer III, encoded for the mount while it has listeners.
    Mp3,
    /// The AAC rendition's frames in ADTS.
    Aac,
    /// The Opus rendition's frames in Ogg.
    Opus,
}

impl Format {
    /// From a mount's file extension.
    pub fn from_extension(ext: &str) -> Option<Format> {
        match ext {
            "mp3" => Some(Format::Mp3),
            "aac" => Some(Format::Aac),
            "opus" => Some(Format::Opus),
            _ => None,
        }
    }

    /// Its file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Mp3 => "mp3",
            Format::Aac => "aac",
            Format::Opus => "opus",
        }
    }

    /// Its `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Mp3 => "audio/mpeg",
            Format::Aac => "audio/aac",
            Format::Opus => "audio/ogg",
        }
    }

    /// Every format, in the order mounts are listed.
    pub const ALL: [Format; 3] = [Format::Mp3, Format::Aac, Format::Opus];
}

/// A channel's mounts: MP3 always (encoded while it has listeners), AAC and Opus when the
/// channel has such a rendition (its frames, framed again).
pub struct Mounts {
    /// The MP3 mount.
    pub mp3: Arc<Mount>,
    /// Bits per second of the MP3 encoder.
    pub mp3_bitrate: u32,
    aac: Option<(Stream, Arc<Mount>)>,
    opus: Option<(Stream, Arc<Mount>)>,
    /// The rendition whose frames WebRTC listeners get.
    pub webrtc: Option<Stream>,
    /// Plain HLS in MPEG-TS of the AAC rendition's frames.
    pub ts: Option<Arc<super::ts::TsStream>>,
}

impl Mounts {
    /// The mounts of a channel: `aac` and `opus` name the rendition each frames.
    pub fn new(
        mp3_bitrate: u32,
        aac: Option<(usize, Mount)>,
        opus: Option<(usize, Mount)>,
        ts: Option<super::ts::TsStream>,
        b: Bounds,
    ) -> Mounts {
        let webrtc = opus.as_ref().map(|(i, _)| Stream::Rendition(*i));
        Mounts {
            mp3: Arc::new(Mount::mp3(b)),
            mp3_bitrate,
            aac: aac.map(|(i, m)| (Stream::Rendition(i), Arc::new(m))),
            opus: opus.map(|(i, m)| (Stream::Rendition(i), Arc::new(m))),
            webrtc,
            ts: ts.map(Arc::new),
        }
    }

    /// The mount of a format, if the channel has it.
    pub fn get(&self, f: Format) -> Option<&Arc<Mount>> {
        match f {
            Format::Mp3 => Some(&self.mp3),
            Format::Aac => self.aac.as_ref().map(|(_, m)| m),
            Format::Opus => self.opus.as_ref().map(|(_, m)| m),
        }
    }

    /// The mount framing a rendition's frames.
    pub fn of_rendition(&self, s: Stream) -> Option<&Arc<Mount>> {
        [&self.aac, &self.opus]
            .into_iter()
            .flatten()
            .find(|(from, _)| *from == s)
            .map(|(_, m)| m)
    }

    /// Listeners of every mount.
    pub fn listeners(&self) -> usize {
        Format::ALL
            .iter()
            .filter_map(|&f| self.get(f))
            .map(|m| m.listeners())
            .sum()
    }

    /// Now-playing changed.
    pub fn set_title(&self, title: &str) {
        if let Some(ts) = &self.ts {
            ts.set_title(title);
        }
        for f in Format::ALL {
            if let Some(m) = self.get(f) {
                m.set_title(title);
            }
        }
    }

    /// The channel stopped.
    pub fn end(&self) {
        if let Some(ts) = &self.ts {
            ts.end();
        }
        for f in Format::ALL {
            if let Some(m) = self.get(f) {
                m.end();
            }
        }
    }
}

/// How a mount frames its encoder's packets.
enum Framing {
    /// The packets are the stream (MP3 frames).
    Raw,
    Adts(Adts),
    Ogg(Box<OggOpus>),
}

/// One chunk of the stream.
#[derive(Clone)]
struct Chunk {
    /// Offset of its first byte in the stream.
    at: u64,
    bytes: Bytes,
    /// The Ogg headers in force at its start: what a listener starting here reads first.
    headers: Option<Bytes>,
}

/// What the writer holds.
struct Window {
    chunks: VecDeque<Chunk>,
    /// Offset of the next byte.
    end: u64,
    /// Bytes of the chunks held.
    held: usize,
    /// The chunk being filled, and the samples (48 kHz) it holds.
    filling: Vec<u8>,
    filling_samples: u64,
    /// The Ogg headers in force when the chunk being filled began.
    filling_headers: Option<Bytes>,
    framing: Framing,
    /// The Ogg headers in force.
    headers: Option<Bytes>,
}

/// A listener as the writer sees it.
struct Slot {
    /// Offset of the next byte it will read.
    at: AtomicU64,
    /// Closes its connection.
    close: CancellationToken,
    /// Cut off for falling behind.
    cut: AtomicBool,
}

/// One progressive mount of a channel.
pub struct Mount {
    /// Its format.
    pub format: Format,
    window: RwLock<Window>,
    /// The current title and a number bumped whenever it changes (for ICY).
    title: RwLock<(u64, String)>,
    /// Bumped with each chunk (and when the stream ends): listeners wait on it.
    tick: tokio::sync::watch::Sender<u64>,
    slots: DashMap<u64, Arc<Slot>>,
    next_slot: AtomicU64,
    listeners: AtomicUsize,
    peak: AtomicUsize,
    dropped: AtomicU64,
    /// Bytes kept: what a listener may fall behind, and at least the burst.
    keep: usize,
    queue: usize,
    burst: usize,
    ended: AtomicBool,
}

/// How a mount keeps its listeners (`[live]`).
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Bytes sent at once to a new listener.
    pub burst: usize,
    /// Bytes a listener may fall behind before it is cut off.
    pub queue: usize,
}

impl Mount {
    /// A mount of MP3 frames.
    pub fn mp3(b: Bounds) -> Mount {
        Mount::new(Format::Mp3, Framing::Raw, None, b)
    }

    /// A mount of the AAC frames an AudioSpecificConfig describes.
    pub fn aac(asc: &[u8], b: Bounds) -> Result<Mount, String> {
        let adts = Adts::new(asc).map_err(|e| e.to_string())?;
        Ok(Mount::new(Format::Aac, Framing::Adts(adts), None, b))
    }

    /// A mount of Opus frames in Ogg, its decoder skipping `pre_skip` samples.
    pub fn opus(pre_skip: u16, serial: u32, b: Bounds) -> Result<Mount, String> {
        let ogg = OggOpus::new(serial, pre_skip, 2, "").map_err(|e| e.to_string())?;
        let headers = Bytes::copy_from_slice(ogg.headers());
        Ok(Mount::new(
            Format::Opus,
            Framing::Ogg(Box::new(ogg)),
            Some(headers),
            b,
        ))
    }

    fn new(format: Format, framing: Framing, headers: Option<Bytes>, b: Bounds) -> Mount {
        Mount {
            format,
            window: RwLock::new(Window {
                chunks: VecDeque::new(),
                end: 0,
                held: 0,
                filling: Vec::new(),
                filling_samples: 0,
                filling_headers: headers.clone(),
                framing,
                headers,
            }),
            title: RwLock::new((0, String::new())),
            tick: tokio::sync::watch::channel(0).0,
            slots: DashMap::new(),
            next_slot: AtomicU64::new(0),
            listeners: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            keep: b.queue.max(b.burst) + (64 << 10),
            queue: b.queue.max(1),
            burst: b.burst,
            ended: AtomicBool::new(false),
        }
    }

    /// Listeners connected now.
    pub fn listeners(&self) -> usize {
        self.listeners.load(Ordering::Acquire)
    }

    /// The most listeners connected at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Listeners cut off for falling behind since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }

    /// The current title and its version.
    pub fn title(&self) -> (u64, String) {
        self.title.read().clone()
    }

    /// Now-playing changed. Ogg mounts start a new link whose headers carry it.
    pub fn set_title(&self, title: &str) {
        // Every status update passes here; most leave the title as it is.
        if self.title.read().1 == title {
            return;
        }
        {
            let mut t = self.title.write();
            if t.1 == title {
                return;
            }
            *t = (t.0 + 1, title.to_string());
        }
        let mut w = self.window.write();
        if let Framing::Ogg(ogg) = &mut w.framing {
            match ogg.relink(2, title) {
                Ok(bytes) => {
                    // The link ends and the next begins inside the chunk being filled; a
                    // listener starting at the next chunk reads the new headers first.
                    w.headers = Some(Bytes::copy_from_slice(ogg.headers()));
                    w.filling.extend_from_slice(&bytes);
                }
                Err(e) => tracing::warn!(error = %e, "an Ogg link could not be started"),
            }
        }
    }

    /// Adds one encoded packet of `samples` samples at 48 kHz.
    pub fn push(&self, packet: &[u8], samples: u32) {
        let chunk = {
            let mut w = self.window.write();
            // MP3 frames go in as they are, without a copy of their own.
            let bytes = match &mut w.framing {
                Framing::Raw => Some(std::borrow::Cow::Borrowed(packet)),
                Framing::Adts(a) => a.frame(packet).ok().map(std::borrow::Cow::Owned),
                Framing::Ogg(ogg) => ogg
                    .push(packet, samples)
                    .ok()
                    .flatten()
                    .map(std::borrow::Cow::Owned),
            };
            if let Some(b) = bytes {
                w.filling.extend_from_slice(&b);
            }
            w.filling_samples += u64::from(samples);
            // Only whole frames and pages are ever appended: any chunk ends on a boundary.
            let due = w.filling_samples * 1000 >= CHUNK.as_millis() as u64 * 48_000;
            if !due || w.filling.is_empty() {
                return;
            }
            w.filling_samples = 0;
            let bytes = Bytes::from(std::mem::take(&mut w.filling));
            let next = w.headers.clone();
            let headers = std::mem::replace(&mut w.filling_headers, next);
            let at = w.end;
            w.end += bytes.len() as u64;
            w.held += bytes.len();
            w.chunks.push_back(Chunk { at, bytes, headers });
            while w.held > self.keep {
                match w.chunks.pop_front() {
                    Some(c) => w.held -= c.bytes.len(),
                    None => break,
                }
            }
            w.end
        };
        self.tick.send_replace(chunk);
        self.cut_laggards(chunk);
    }

    /// Forgets what was written (an encoder that stopped: its next listener must not hear the
    /// old audio joined to the new).
    pub fn reset(&self) {
        let mut w = self.window.write();
        w.chunks.clear();
        w.held = 0;
        w.filling.clear();
        w.filling_samples = 0;
        w.filling_headers = w.headers.clone();
    }

    /// The stream ends (the channel stopped): listeners read what is left, then their
    /// response ends.
    pub fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.tick.send_modify(|t| *t += 1);
    }

    fn cut_laggards(&self, end: u64) {
        for s in self.slots.iter() {
            let at = s.at.load(Ordering::Acquire);
            if end.saturating_sub(at) > self.queue as u64 && !s.cut.swap(true, Ordering::AcqRel) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                s.close.cancel();
            }
        }
    }

    /// A new listener, counted until it is dropped. `close` closes its connection (when the
    /// transport gives one): the writer uses it on a listener too far behind to be polled.
    pub fn listen(self: &Arc<Mount>, close: CancellationToken) -> Reader {
        let (at, first) = {
            let w = self.window.read();
            let start = w
                .chunks
                .iter()
                .find(|c| w.end - c.at <= self.burst as u64)
                .cloned();
            match start {
                Some(c) => (c.at, c.headers.clone()),
                // The chunk being filled comes first: the headers in force when it began (a
                // title change since then starts its new link inside it).
                None => (w.end, w.filling_headers.clone()),
            }
        };
        let id = self.next_slot.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            at: AtomicU64::new(at),
            close,
            cut: AtomicBool::new(false),
        });
        self.slots.insert(id, slot.clone());
        let n = self.listeners.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(n, Ordering::Relaxed);
        Reader {
            mount: self.clone(),
            id,
            slot,
            first,
            tick: self.tick.subscribe(),
        }
    }
}

/// One listener's read position in a mount. Dropping it stops counting the listener.
pub struct Reader {
    mount: Arc<Mount>,
    id: u64,
    slot: Arc<Slot>,
    first: Option<Bytes>,
    tick: tokio::sync::watch::Receiver<u64>,
}

impl Reader {
    /// The next bytes for this listener, waiting for them; `None` when the stream ended or the
    /// listener fell too far behind.
    pub async fn next(&mut self) -> Option<Bytes> {
        if let Some(h) = self.first.take() {
            return Some(h);
        }
        loop {
            if self.slot.cut.load(Ordering::Acquire) {
                return None;
            }
            let at = self.slot.at.load(Ordering::Acquire);
            {
                let w = self.mount.window.read();
                if w.end.saturating_sub(at) > self.mount.queue as u64 {
                    drop(w);
                    if !self.slot.cut.swap(true, Ordering::AcqRel) {
                        self.mount.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    return None;
                }
                if at < w.end {
                    // The chunk holding `at` (chunks are contiguous): all of it from `at`.
                    let i = w
                        .chunks
                        .partition_point(|c| c.at + c.bytes.len() as u64 <= at);
                    if let Some(c) = w.chunks.get(i) {
                        let from = (at.saturating_sub(c.at)) as usize;
                        let bytes = c.bytes.slice(from.min(c.bytes.len())..);
                        self.slot
                            .at
                            .store(c.at + c.bytes.len() as u64, Ordering::Release);
                        return Some(bytes);
                    }
                    // Reset under it (its encoder restarted): go on from the end.
                    self.slot.at.store(w.end, Ordering::Release);
                }
            }
            if self.mount.ended.load(Ordering::Acquire) {
                return None;
            }
            if self.tick.changed().await.is_err() {
                return None;
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.mount.slots.remove(&self.id);
        self.mount.listeners.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(burst: usize, queue: usize) -> Bounds {
        Bounds { burst, queue }
    }

    /// MP3 frames of 384 bytes (128 kb/s at 48 kHz), numbered in their first byte after the
    /// header.
    fn frame(i: u8) -> Vec<u8> {
        let mut f = vec![0u8; 384];
        f[..4].copy_from_slice(&[0xFF, 0xFB, 0x94, 0x64]);
        f[4] = i;
        f
    }

    /// Packets of `samples` samples in one chunk.
    fn per_chunk(samples: u32) -> usize {
        (CHUNK.as_millis() as u32 * 48).div_ceil(samples) as usize
    }

    #[tokio::test]
    async fn a_new_listener_gets_the_burst_from_a_chunk_boundary_then_what_follows() {
        let per = per_chunk(1152);
        let chunk = per * 384;
        // A burst that holds one whole chunk, not two.
        let m = Arc::new(Mount::mp3(bounds(chunk + 100, 100_000)));
        for i in 0..4 * per {
            m.push(&frame(i as u8), 1152);
        }
        let mut r = m.listen(CancellationToken::new());
        assert_eq!(m.listeners(), 1);
        let first = r.next().await.unwrap();
        // The burst: the last whole chunk, from its first frame.
        assert_eq!(first.len(), chunk);
        assert_eq!(&first[..2], &[0xFF, 0xFB]);
        assert_eq!(first[4], (3 * per) as u8);
        assert!(tokio::time::timeout(Duration::from_millis(20), r.next())
            .await
            .is_err());
        for i in 4 * per..5 * per {
            m.push(&frame(i as u8), 1152);
        }
        let next = r.next().await.unwrap();
        assert_eq!(next[4], (4 * per) as u8);
        drop(r);
        assert_eq!(m.listeners(), 0);
        assert_eq!(m.peak(), 1);
    }

    #[tokio::test]
    async fn a_listener_that_does_not_read_is_cut_off_and_counted() {
        let per = per_chunk(1152);
        // A queue of one chunk and a little: two behind is too far.
        let m = Arc::new(Mount::mp3(bounds(0, per * 384 + 100)));
        let close = CancellationToken::new();
        let mut r = m.listen(close.clone());
        let mut ok = m.listen(CancellationToken::new());
        for i in 0..3 * per {
            m.push(&frame(i as u8), 1152);
            // A listener that reads each chunk as it comes keeps up.
            if (i + 1) % per == 0 {
                assert!(ok.next().await.is_some());
            }
        }
        assert!(close.is_cancelled(), "its connection is closed");
        assert_eq!(m.take_dropped(), 1);
        assert!(r.next().await.is_none());
        assert_eq!(m.take_dropped(), 0);
    }

    #[tokio::test]
    async fn ogg_listeners_start_with_the_headers_of_the_link_in_force() {
        let per = per_chunk(960);
        let m = Arc::new(Mount::opus(312, 1, bounds(100_000, 100_000)).unwrap());
        let mut before = m.listen(CancellationToken::new());
        let h = before.next().await.unwrap();
        assert_eq!(&h[..4], b"OggS");
        m.set_title("Song");
        // Joining inside the chunk where the new link begins, before it is complete: the old
        // link's headers, since the chunk ends that link before it begins the new one.
        let mut inside = m.listen(CancellationToken::new());
        for _ in 0..per {
            m.push(&[0xFC, 0xFF, 0xFE], 960);
        }
        let h = inside.next().await.unwrap();
        assert!(!h.windows(10).any(|w| w == b"TITLE=Song"));
        // Joining at that chunk, with the burst: the same.
        let mut after = m.listen(CancellationToken::new());
        let h = after.next().await.unwrap();
        assert!(h.windows(8).any(|w| w == b"OpusTags"));
        assert!(!h.windows(10).any(|w| w == b"TITLE=Song"));
        let body = after.next().await.unwrap();
        assert!(body.windows(10).any(|w| w == b"TITLE=Song"));
        assert_eq!(body, before.next().await.unwrap());
        assert_eq!(body, inside.next().await.unwrap());
        for _ in 0..per {
            m.push(&[0xFC, 0xFF, 0xFE], 960);
        }
        // Joining later: the new link's headers.
        let mut later = m.listen(CancellationToken::new());
        drop(before);
        let h = later.next().await.unwrap();
        let h2 = later.next().await.unwrap();
        assert!(
            h.windows(10).any(|w| w == b"TITLE=Song") || h2.windows(10).any(|w| w == b"TITLE=Song")
        );
        assert_eq!(m.title(), (1, "Song".to_string()));
    }

    #[tokio::test]
    async fn the_end_of_the_stream_ends_every_reader() {
        let m = Arc::new(Mount::mp3(bounds(0, 10_000)));
        let mut r = m.listen(CancellationToken::new());
        m.end();
        assert!(r.next().await.is_none());
    }
}
