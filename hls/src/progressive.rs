//! The formats of progressive (Icecast-style) streams, as radio players read them over plain
//! HTTP: ADTS framing of AAC access units (ISO/IEC 13818-7 6.2), Ogg Opus pages (RFC 7845) and
//! ICY metadata blocks interleaved into the audio bytes (the SHOUTcast convention Icecast
//! follows).

use crate::{Error, Result};
use std::borrow::Cow;

/// Bytes of audio between two ICY metadata blocks (`icy-metaint`), as Icecast sends.
pub const ICY_METAINT: usize = 16_000;

/// The largest ICY metadata block body: its length byte counts 16-byte units.
const ICY_MAX: usize = 255 * 16;

/// An ADTS header writer for one AAC configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adts {
    profile: u8,
    rate_index: u8,
    channels: u8,
}

impl Adts {
    /// The header of the stream an AudioSpecificConfig describes. ADTS carries only the
    /// object types 1 to 4 (Main, LC, SSR, LTP), an indexed sampling rate and channel
    /// configurations 1 to 7.
    pub fn new(asc: &[u8]) -> Result<Adts> {
        let bad = |why: &str| Error::Overflow(format!("AudioSpecificConfig {asc:02x?}: {why}"));
        let [a, b, ..] = *asc else {
            return Err(bad("shorter than 2 bytes"));
        };
        let object = a >> 3;
        let rate_index = ((a & 0x07) << 1) | (b >> 7);
        let channels = (b >> 3) & 0x0F;
        if !(1..=4).contains(&object) {
            return Err(bad("not an object type ADTS carries"));
        }
        if rate_index > 12 {
            return Err(bad("no indexed sampling rate"));
        }
        if !(1..=7).contains(&channels) {
            return Err(bad("no channel configuration"));
        }
        Ok(Adts {
            profile: object - 1,
            rate_index,
            channels,
        })
    }

    /// One access unit in an ADTS frame (no CRC, one raw data block).
    pub fn frame(&self, access_unit: &[u8]) -> Result<Vec<u8>> {
        let len = access_unit.len() + 7;
        if len >= 1 << 13 {
            return Err(Error::Overflow(format!(
                "an AAC access unit of {} bytes does not fit an ADTS frame",
                access_unit.len()
            )));
        }
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&[
            0xFF,
            0xF1, // MPEG-4, layer 0, no CRC
            (self.profile << 6) | (self.rate_index << 2) | (self.channels >> 2),
            ((self.channels & 0x03) << 6) | ((len >> 11) as u8 & 0x03),
            (len >> 3) as u8,
            ((len as u8 & 0x07) << 5) | 0x1F, // buffer fullness 0x7FF: variable
            0xFC,                             // ... and one raw data block
        ]);
        out.extend_from_slice(access_unit);
        Ok(out)
    }
}

/// Ogg Opus (RFC 7845) for a live stream, one page per group of packets.
///
/// Every listener gets [`OggOpus::headers`] first, then pages from any page boundary on; the
/// granule positions count from this writer's first packet. A title change is a new link of a
/// chained stream ([`OggOpus::relink`]): the current one ends, and a new one begins with
/// headers whose comments carry the title, which is how Ogg players learn titles.
pub struct OggOpus {
    serial: u32,
    pre_skip: u16,
    granule: u64,
    headers: Vec<u8>,
    pending: usize,
    /// The last packet, written with the next (or, at a new link, as the one ending the old:
    /// an empty packet would be an invalid Opus packet to decoders).
    held: Option<Vec<u8>>,
    out: ogg::PacketWriter<'static, Vec<u8>>,
}

/// Opus packets per Ogg page: 100 ms of 20 ms frames, a join point for listeners every 100 ms
/// at under 3 kb/s of page overhead.
const PACKETS_PER_PAGE: usize = 5;

impl OggOpus {
    /// A stream whose decoder discards `pre_skip` samples, its first link titled `title`.
    pub fn new(serial: u32, pre_skip: u16, channels: u8, title: &str) -> Result<OggOpus> {
        let mut w = OggOpus {
            serial,
            pre_skip,
            granule: 0,
            headers: Vec::new(),
            pending: 0,
            held: None,
            out: ogg::PacketWriter::new(Vec::new()),
        };
        w.headers = w.link(channels, title)?;
        Ok(w)
    }

    /// The current link's two header pages: what a listener reads before any audio page.
    pub fn headers(&self) -> &[u8] {
        &self.headers
    }

    /// Adds a packet decoding to `samples` (at 48 kHz). Returns a page when one is complete.
    /// Each packet is written when the next arrives, so that a new link can end the old one on
    /// a real packet.
    pub fn push(&mut self, packet: &[u8], samples: u32) -> Result<Option<Vec<u8>>> {
        let Some(prev) = self.held.replace(packet.to_vec()) else {
            self.granule += u64::from(samples);
            return Ok(None);
        };
        self.pending += 1;
        let end = if self.pending >= PACKETS_PER_PAGE {
            ogg::PacketWriteEndInfo::EndPage
        } else {
            ogg::PacketWriteEndInfo::NormalPacket
        };
        // `prev` ends where the new packet begins.
        let granule = self.granule + u64::from(self.pre_skip);
        self.granule += u64::from(samples);
        self.write(prev, end, granule)?;
        if end == ogg::PacketWriteEndInfo::EndPage {
            self.pending = 0;
            return Ok(Some(std::mem::take(self.out.inner_mut())));
        }
        Ok(None)
    }

    /// Ends the current link and starts a new one titled `title`. Returns the bytes that end
    /// the old link and begin the new one (its headers, also what [`OggOpus::headers`] gives
    /// from now on).
    pub fn relink(&mut self, channels: u8, title: &str) -> Result<Vec<u8>> {
        let granule = self.granule + u64::from(self.pre_skip);
        // The last packet ends the stream; with none since the last link began, an empty one.
        let last = self.held.take().unwrap_or_default();
        self.write(last, ogg::PacketWriteEndInfo::EndStream, granule)?;
        let mut out = std::mem::take(self.out.inner_mut());
        self.serial = self.serial.wrapping_add(1);
        self.granule = 0;
        self.pending = 0;
        self.headers = self.link(channels, title)?;
        out.extend_from_slice(&self.headers);
        Ok(out)
    }

    fn link(&mut self, channels: u8, title: &str) -> Result<Vec<u8>> {
        let mut head = b"OpusHead".to_vec();
        head.push(1);
        head.push(channels);
        head.extend_from_slice(&self.pre_skip.to_le_bytes());
        head.extend_from_slice(&48_000u32.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes());
        head.push(0);
        let vendor = b"veza-stream";
        let mut tags = b"OpusTags".to_vec();
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        let comment = format!("TITLE={title}");
        let comments: &[&str] = if title.is_empty() { &[] } else { &[&comment] };
        tags.extend_from_slice(&(comments.len() as u32).to_le_bytes());
        for c in comments {
            tags.extend_from_slice(&(c.len() as u32).to_le_bytes());
            tags.extend_from_slice(c.as_bytes());
        }
        self.write(head, ogg::PacketWriteEndInfo::EndPage, 0)?;
        self.write(tags, ogg::PacketWriteEndInfo::EndPage, 0)?;
        Ok(std::mem::take(self.out.inner_mut()))
    }

    fn write(&mut self, packet: Vec<u8>, end: ogg::PacketWriteEndInfo, granule: u64) -> Result<()> {
        self.out
            .write_packet(Cow::Owned(packet), self.serial, end, granule)
            .map_err(|e| Error::Overflow(format!("writing an Ogg page: {e}")))
    }
}

/// The ICY metadata block announcing `title` (`StreamTitle='…';`), padded to 16-byte units
/// after its length byte. The title goes in as UTF-8 and as is, quotes included, as Icecast
/// writes it; one too long for a block (4 080 bytes) is cut at a character boundary.
pub fn icy_block(title: &str) -> Vec<u8> {
    const HEAD: &str = "StreamTitle='";
    const TAIL: &str = "';";
    let room = ICY_MAX - HEAD.len() - TAIL.len();
    let mut cut = title.len().min(room);
    while !title.is_char_boundary(cut) {
        cut -= 1;
    }
    // A NUL would end the block early for players that read it as a C string.
    let title: String = title[..cut].chars().filter(|&c| c != '\0').collect();
    let body = format!("{HEAD}{title}{TAIL}");
    let units = body.len().div_ceil(16);
    let mut out = Vec::with_capacity(1 + units * 16);
    out.push(units as u8);
    out.extend_from_slice(body.as_bytes());
    out.resize(1 + units * 16, 0);
    out
}

/// Interleaves ICY metadata into one listener's audio bytes: after every `metaint` bytes of
/// audio, a block. The block is the current title's when this listener has not been sent it
/// yet, and the empty block (one zero byte) otherwise, as Icecast does.
#[derive(Debug, Clone)]
pub struct IcyWriter {
    metaint: usize,
    since: usize,
    sent: Option<u64>,
}

impl IcyWriter {
    /// A listener that has been sent nothing yet. `metaint` is at least 1.
    pub fn new(metaint: usize) -> IcyWriter {
        IcyWriter {
            metaint: metaint.max(1),
            since: 0,
            sent: None,
        }
    }

    /// Appends `audio` to `out`, with the blocks that fall within it. `title` gives the
    /// current title and a version that changes whenever it does.
    pub fn write(&mut self, audio: &[u8], title: &dyn Fn() -> (u64, String), out: &mut Vec<u8>) {
        let mut rest = audio;
        while !rest.is_empty() {
            let n = (self.metaint - self.since).min(rest.len());
            out.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            self.since += n;
            if self.since == self.metaint {
                self.since = 0;
                let (version, text) = title();
                if self.sent == Some(version) {
                    out.push(0);
                } else {
                    self.sent = Some(version);
                    out.extend_from_slice(&icy_block(&text));
                }
            }
        }
    }
}

/// Reads a stream fetched with `Icy-MetaData: 1` (what a relay gets from another Icecast
/// server): separates the audio bytes from the metadata blocks that come after every `metaint`
/// of them, and gives the title each non-empty block announces.
#[derive(Debug, Clone)]
pub struct IcyReader {
    metaint: usize,
    /// Audio bytes left before the next block.
    audio_left: usize,
    /// The block being read: its length (once its length byte came) and what came of it.
    block: Option<(Option<usize>, Vec<u8>)>,
}

impl IcyReader {
    /// A reader of a stream whose `icy-metaint` is `metaint` (at least 1).
    pub fn new(metaint: usize) -> IcyReader {
        IcyReader {
            metaint: metaint.max(1),
            audio_left: metaint.max(1),
            block: None,
        }
    }

    /// Takes the next bytes of the stream: appends its audio to `audio`, and returns the titles
    /// of the blocks completed within them.
    pub fn push(&mut self, mut input: &[u8], audio: &mut Vec<u8>) -> Vec<String> {
        let mut titles = Vec::new();
        while !input.is_empty() {
            match &mut self.block {
                None => {
                    let n = self.audio_left.min(input.len());
                    audio.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.audio_left -= n;
                    if self.audio_left == 0 {
                        self.block = Some((None, Vec::new()));
                    }
                }
                Some((len @ None, _)) => {
                    *len = Some(usize::from(input[0]) * 16);
                    input = &input[1..];
                }
                Some((Some(len), body)) => {
                    let n = (*len - body.len()).min(input.len());
                    body.extend_from_slice(&input[..n]);
                    input = &input[n..];
                }
            }
            if let Some((Some(len), body)) = &self.block {
                if body.len() == *len {
                    titles.extend(stream_title(body));
                    self.block = None;
                    self.audio_left = self.metaint;
                }
            }
        }
        titles
    }
}

/// The title of an ICY metadata block (`StreamTitle='…';StreamUrl='…';`, NUL-padded), if it
/// has one. Icecast puts quotes in titles as they are, so the title ends at the last `';`
/// before `StreamUrl=` or the end; invalid UTF-8 is replaced.
pub fn stream_title(block: &[u8]) -> Option<String> {
    const HEAD: &[u8] = b"StreamTitle='";
    let end = block.iter().position(|&b| b == 0).unwrap_or(block.len());
    let block = &block[..end];
    let start = block.windows(HEAD.len()).position(|w| w == HEAD)? + HEAD.len();
    let rest = &block[start..];
    let stop = rest
        .windows(13)
        .position(|w| w == b"';StreamUrl='")
        .or_else(|| rest.windows(2).rposition(|w| w == b"';"))
        .unwrap_or(rest.len());
    Some(String::from_utf8_lossy(&rest[..stop]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_separates_audio_and_titles_however_the_bytes_are_cut() {
        let mut w = IcyWriter::new(10);
        let mut stream = Vec::new();
        let mut version = 0;
        let mut audio = Vec::new();
        for i in 0..40u8 {
            if i % 13 == 0 {
                version += 1;
            }
            let title = format!("It's song {version}");
            let chunk = vec![i; usize::from(i % 7) + 1];
            w.write(&chunk, &|| (version, title.clone()), &mut stream);
            audio.extend_from_slice(&chunk);
        }
        for cut in [1, 2, 5, 16, 1000] {
            let mut r = IcyReader::new(10);
            let (mut got, mut titles) = (Vec::new(), Vec::new());
            for piece in stream.chunks(cut) {
                titles.extend(r.push(piece, &mut got));
            }
            assert_eq!(got, audio, "cut {cut}");
            // The fourth title came after the last block.
            assert_eq!(titles, ["It's song 1", "It's song 2", "It's song 3"]);
        }
        assert_eq!(
            stream_title(b"StreamTitle='A - B';StreamUrl='http://x';\0\0"),
            Some("A - B".into())
        );
        assert_eq!(stream_title(b"StreamUrl='x';"), None);
        assert_eq!(
            stream_title(b"StreamTitle='unterminated"),
            Some("unterminated".into())
        );
    }

    #[test]
    fn adts_headers_state_the_configuration_and_length() {
        // AAC-LC, 48 kHz (index 3), stereo: 0x11 0x90.
        let a = Adts::new(&[0x11, 0x90]).unwrap();
        let f = a.frame(&[0xAB; 100]).unwrap();
        assert_eq!(f.len(), 107);
        assert_eq!(&f[..2], &[0xFF, 0xF1]);
        assert_eq!(f[2] >> 6, 1, "profile LC");
        assert_eq!((f[2] >> 2) & 0x0F, 3, "48 kHz");
        let channels = ((f[2] & 1) << 2) | (f[3] >> 6);
        assert_eq!(channels, 2);
        let len =
            ((usize::from(f[3]) & 3) << 11) | (usize::from(f[4]) << 3) | (usize::from(f[5]) >> 5);
        assert_eq!(len, 107);
        assert!(Adts::new(&[0x11]).is_err());
        assert!(Adts::new(&[0x29, 0x90]).is_err(), "object type 5 (SBR)");
        assert!(a.frame(&vec![0; 9000]).is_err());
    }

    #[test]
    fn icy_blocks_are_padded_and_keep_quotes_as_icecast_does() {
        let b = icy_block("It's a 'song'");
        let body = "StreamTitle='It's a 'song'';";
        assert_eq!(usize::from(b[0]) * 16 + 1, b.len());
        assert_eq!(&b[1..1 + body.len()], body.as_bytes());
        assert!(b[1 + body.len()..].iter().all(|&x| x == 0));
        // Too long: cut at a character boundary, the block still ends with `';`.
        let long = "é".repeat(3000);
        let b = icy_block(&long);
        assert_eq!(b[0], 255);
        let text = std::str::from_utf8(&b[1..]).unwrap().trim_end_matches('\0');
        assert!(text.ends_with("';"), "{}", &text[text.len() - 10..]);
    }

    #[test]
    fn metadata_falls_every_metaint_bytes_and_is_empty_when_unchanged() {
        let mut w = IcyWriter::new(10);
        let mut out = Vec::new();
        let title = || (1, "A".to_string());
        for chunk in [&[1u8; 7][..], &[2; 7], &[3; 16]] {
            w.write(chunk, &title, &mut out);
        }
        // 30 audio bytes: blocks after bytes 10, 20 and 30.
        let block = icy_block("A");
        assert_eq!(&out[..10], &[1, 1, 1, 1, 1, 1, 1, 2, 2, 2]);
        assert_eq!(&out[10..10 + block.len()], &block[..]);
        let after = 10 + block.len();
        assert_eq!(&out[after..after + 10], &[2, 2, 2, 2, 3, 3, 3, 3, 3, 3]);
        assert_eq!(out[after + 10], 0, "nothing changed: the empty block");
        assert_eq!(out.len(), 30 + block.len() + 2);
    }

    #[test]
    fn ogg_opus_pages_carry_headers_granules_and_new_links() {
        let mut w = OggOpus::new(7, 312, 2, "First").unwrap();
        let h = w.headers().to_vec();
        assert_eq!(&h[..4], b"OggS");
        assert!(h.windows(8).any(|x| x == b"OpusHead"));
        assert!(h.windows(11).any(|x| x == b"TITLE=First"));
        let mut pages = Vec::new();
        for _ in 0..10 {
            if let Some(p) = w.push(&[0xFC, 0xFF, 0xFE], 960).unwrap() {
                pages.push(p);
            }
        }
        assert_eq!(pages.len(), 1);
        // Ten packets pushed, nine written (the last waits for the next): the first page ends
        // at 5 packets, granule 4800 + pre-skip.
        let g = u64::from_le_bytes(pages[0][6..14].try_into().unwrap());
        assert_eq!(g, 4800 + 312);
        for _ in 0..2 {
            if let Some(p) = w.push(&[0xFC, 0xFF, 0xFE], 960).unwrap() {
                pages.push(p);
            }
        }
        assert_eq!(pages.len(), 2);
        let g = u64::from_le_bytes(pages[1][6..14].try_into().unwrap());
        assert_eq!(g, 9600 + 312);
        let next = w.relink(2, "Second").unwrap();
        assert!(next.windows(12).any(|x| x == b"TITLE=Second"));
        // The old link ends on its last real packet, flagged end-of-stream, at its granule.
        assert_eq!(&next[..4], b"OggS");
        assert_eq!(next[5], 4, "end of stream");
        let g = u64::from_le_bytes(next[6..14].try_into().unwrap());
        assert_eq!(g, 12 * 960 + 312);
        assert!(w.headers().windows(12).any(|x| x == b"TITLE=Second"));
    }
}
