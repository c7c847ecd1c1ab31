//! In-band titles of a live Ogg stream.
//!
//! An Icecast source sending Ogg announces a new title by starting a new logical stream (a chained
//! stream, RFC 3533 §4): a page with the beginning-of-stream flag, the codec's identification
//! header, then its comment header. [`OggTitles`] watches the bytes as they arrive, alongside the
//! decoder, and yields the tags of every comment header it completes:
//!
//! - Vorbis: the second packet, `\x03vorbis` then the comments (Vorbis I §5.2.1);
//! - Opus: the second packet, `OpusTags` then the comments (RFC 7845 §5.2);
//! - FLAC: a header packet holding a `VORBIS_COMMENT` metadata block (the Ogg FLAC mapping; RFC
//!   9639 §8.6);
//! - Speex: the second packet, the comments alone.
//!
//! Pages are found by their capture pattern and checked by their CRC, so damage between pages
//! costs nothing but the damaged page. Memory is bounded: a page is at most 65 307 bytes, a few
//! logical streams are followed at once, and a comment packet larger than [`MAX_COMMENTS`] (huge
//! embedded cover art) is skipped.

use crate::tags::{vorbis_comments, Tags};

/// Largest comment packet read; larger ones are skipped.
pub const MAX_COMMENTS: usize = 1 << 20;

/// Largest page (RFC 3533 §6: a 27-byte header, 255 lacing values, 255 × 255 bytes of body).
const MAX_PAGE: usize = 27 + 255 + 255 * 255;

/// Logical streams followed at once; a chain has one at a time, a grouped stream a few.
const MAX_STREAMS: usize = 8;

/// Header packets of an Ogg FLAC stream looked at for the comment block.
const MAX_FLAC_HEADERS: u32 = 16;

/// The codec of a logical stream, known from its first packet.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Codec {
    Vorbis,
    Opus,
    Flac,
    Speex,
    Other,
}

/// One logical stream being followed until its comment header is read.
#[derive(Debug)]
struct Logical {
    serial: u32,
    codec: Option<Codec>,
    /// Packets completed so far.
    packets: u32,
    /// The packet being put together from segments.
    partial: Vec<u8>,
    /// The partial packet grew past [`MAX_COMMENTS`]: its segments are dropped until it ends.
    skipping: bool,
}

/// Watches Ogg bytes for comment headers. Pure and incremental: feed it what arrives.
#[derive(Debug, Default)]
pub struct OggTitles {
    buffer: Vec<u8>,
    streams: Vec<Logical>,
}

impl OggTitles {
    /// A watcher with nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next bytes of the stream; returns the tags of every comment header completed in
    /// them, oldest first.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Tags> {
        self.buffer.extend_from_slice(bytes);
        let mut found = Vec::new();
        let mut at = 0;
        loop {
            let Some(start) = find_capture(&self.buffer[at..]).map(|s| at + s) else {
                // Keep the last three bytes: a capture pattern may straddle the pushes.
                at = self.buffer.len().saturating_sub(3);
                break;
            };
            match page_len(&self.buffer[start..]) {
                PageLen::Short => {
                    at = start;
                    break;
                }
                PageLen::Bad => at = start + 1,
                PageLen::Whole(len) => {
                    let page = &self.buffer[start..start + len];
                    if checksum_holds(page) {
                        let page = page.to_vec();
                        self.page(&page, &mut found);
                        at = start + len;
                    } else {
                        at = start + 1;
                    }
                }
            }
        }
        self.buffer.drain(..at);
        found
    }

    fn page(&mut self, page: &[u8], found: &mut Vec<Tags>) {
        let flags = page[5];
        let serial = u32::from_le_bytes([page[14], page[15], page[16], page[17]]);
        let continued = flags & 0x01 != 0;
        let first = flags & 0x02 != 0;
        let last = flags & 0x04 != 0;
        if first {
            self.streams.retain(|s| s.serial != serial);
            if self.streams.len() == MAX_STREAMS {
                self.streams.remove(0);
            }
            self.streams.push(Logical {
                serial,
                codec: None,
                packets: 0,
                partial: Vec::new(),
                skipping: false,
            });
        }
        let Some(index) = self.streams.iter().position(|s| s.serial == serial) else {
            return;
        };
        let stream = &mut self.streams[index];
        if !continued && !stream.partial.is_empty() {
            // A page was lost mid-packet: what was gathered is not that packet.
            stream.partial.clear();
            stream.skipping = false;
        }
        let segments = page[26] as usize;
        let lacing = &page[27..27 + segments];
        let mut body = 27 + segments;
        let mut done = false;
        for &lace in lacing {
            let piece = &page[body..body + lace as usize];
            body += lace as usize;
            if !stream.skipping {
                if stream.partial.len() + piece.len() > MAX_COMMENTS {
                    stream.partial = Vec::new();
                    stream.skipping = true;
                } else {
                    stream.partial.extend_from_slice(piece);
                }
            }
            if lace < 255 {
                let packet = std::mem::take(&mut stream.partial);
                let skipped = std::mem::replace(&mut stream.skipping, false);
                match stream.packet(&packet, skipped) {
                    Step::More => {}
                    Step::Tags(t) => {
                        found.push(t);
                        done = true;
                    }
                    Step::Done => done = true,
                }
                if done {
                    break;
                }
            }
        }
        if done || last {
            self.streams.remove(index);
        }
    }
}

/// What one completed packet told.
enum Step {
    /// Keep following the stream.
    More,
    /// The comment header, read.
    Tags(Tags),
    /// Nothing more to read in this stream.
    Done,
}

impl Logical {
    fn packet(&mut self, packet: &[u8], skipped: bool) -> Step {
        let n = self.packets;
        self.packets += 1;
        if n == 0 {
            self.codec = Some(match packet {
                [0x01, b'v', b'o', b'r', b'b', b'i', b's', ..] => Codec::Vorbis,
                [b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', ..] => Codec::Opus,
                [0x7F, b'F', b'L', b'A', b'C', ..] => Codec::Flac,
                [b'S', b'p', b'e', b'e', b'x', b' ', b' ', b' ', ..] => Codec::Speex,
                _ => Codec::Other,
            });
            return match self.codec {
                Some(Codec::Other) => Step::Done,
                _ => Step::More,
            };
        }
        if skipped {
            return match self.codec {
                Some(Codec::Flac) if n < MAX_FLAC_HEADERS => Step::More,
                _ => Step::Done,
            };
        }
        let body = match self.codec {
            Some(Codec::Vorbis) => packet.strip_prefix(b"\x03vorbis"),
            Some(Codec::Opus) => packet.strip_prefix(b"OpusTags"),
            Some(Codec::Speex) => Some(packet),
            Some(Codec::Flac) => {
                // A metadata block: a type byte (high bit: the last one), a 24-bit length.
                return match packet.first() {
                    Some(t) if t & 0x7F == 4 && packet.len() >= 4 => {
                        Step::Tags(vorbis_comments(&packet[4..]).0)
                    }
                    Some(t) if t & 0x80 == 0 && n < MAX_FLAC_HEADERS => Step::More,
                    _ => Step::Done,
                };
            }
            Some(Codec::Other) | None => None,
        };
        match body {
            Some(b) => Step::Tags(vorbis_comments(b).0),
            None => Step::Done,
        }
    }
}

/// Whether the unread bytes of an Ogg stream, whose reader stands at most a page before them,
/// can give the reader its next piece without running dry: from the first whole page on (what
/// precedes it finishes the reader's current page), whole pages up to the second packet end.
/// Two, because a decoder may take a packet that yields no samples (Vorbis's first) and read the
/// next one in the same call.
///
/// A new link of a chained stream (an Icecast source's title change) is read in one go: its
/// beginning page, its header pages and its first audio page, which the reader needs before it
/// gives anything. So once a header page (granule position 0) is among the pages, they must
/// reach a whole page with audio (a granule position past 0); a reader that ran dry among them
/// would lose the link.
pub(crate) fn packet_ready(bytes: &[u8]) -> bool {
    let mut at = 0;
    // The first whole page whose checksum holds.
    let mut start = None;
    while let Some(s) = find_capture(&bytes[at..]).map(|s| at + s) {
        match page_len(&bytes[s..]) {
            PageLen::Short => return false,
            PageLen::Whole(len) if checksum_holds(&bytes[s..s + len]) => {
                start = Some(s);
                break;
            }
            _ => at = s + 1,
        }
    }
    let Some(mut at) = start else { return false };
    let mut ends = 0;
    let mut in_headers = false;
    loop {
        if !bytes[at..].starts_with(b"OggS") {
            return false;
        }
        let PageLen::Whole(len) = page_len(&bytes[at..]) else {
            return false;
        };
        let granule = u64::from_le_bytes(bytes[at + 6..at + 14].try_into().expect("8 bytes"));
        match granule {
            0 => in_headers = true,
            // No packet ends on the page: it says nothing yet.
            u64::MAX => {}
            _ => in_headers = false,
        }
        let segments = bytes[at + 26] as usize;
        ends += bytes[at + 27..at + 27 + segments]
            .iter()
            .filter(|&&l| l < 255)
            .count();
        if ends >= 2 && !in_headers {
            return true;
        }
        at += len;
    }
}

fn checksum_holds(page: &[u8]) -> bool {
    crc(page) == u32::from_le_bytes([page[22], page[23], page[24], page[25]])
}

/// Where the next capture pattern `OggS` starts.
fn find_capture(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"OggS")
}

/// How long the page at the start of `bytes` is.
enum PageLen {
    /// More bytes are needed to tell.
    Short,
    /// Not a page (a capture pattern inside other bytes).
    Bad,
    /// The page's whole length.
    Whole(usize),
}

fn page_len(bytes: &[u8]) -> PageLen {
    if bytes.len() < 27 {
        return PageLen::Short;
    }
    if bytes[4] != 0 || bytes[5] & !0x07 != 0 {
        return PageLen::Bad;
    }
    let segments = bytes[26] as usize;
    let Some(lacing) = bytes.get(27..27 + segments) else {
        return PageLen::Short;
    };
    let len = 27 + segments + lacing.iter().map(|&l| l as usize).sum::<usize>();
    debug_assert!(len <= MAX_PAGE);
    if bytes.len() < len {
        PageLen::Short
    } else {
        PageLen::Whole(len)
    }
}

/// The page checksum (RFC 3533 §6: CRC-32, polynomial 0x04c11db7, not reflected, initial 0),
/// computed with the checksum field read as zero.
fn crc(page: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut r = (i as u32) << 24;
            for _ in 0..8 {
                r = if r & 0x8000_0000 != 0 {
                    (r << 1) ^ 0x04c1_1db7
                } else {
                    r << 1
                };
            }
            *slot = r;
        }
        t
    });
    let mut c = 0u32;
    for (i, &b) in page.iter().enumerate() {
        let b = if (22..26).contains(&i) { 0 } else { b };
        c = (c << 8) ^ table[((c >> 24) as u8 ^ b) as usize];
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page of `packets` in logical stream `serial` (each packet shorter than 255 × 255 bytes).
    fn page(serial: u32, flags: u8, packets: &[&[u8]]) -> Vec<u8> {
        let mut lacing = Vec::new();
        let mut body = Vec::new();
        for p in packets {
            let mut left = p.len();
            while left >= 255 {
                lacing.push(255);
                left -= 255;
            }
            lacing.push(left as u8);
            body.extend_from_slice(p);
        }
        let mut page = b"OggS\0".to_vec();
        page.push(flags);
        page.extend_from_slice(&0u64.to_le_bytes());
        page.extend_from_slice(&serial.to_le_bytes());
        page.extend_from_slice(&0u32.to_le_bytes());
        page.extend_from_slice(&[0; 4]);
        page.push(lacing.len() as u8);
        page.extend_from_slice(&lacing);
        page.extend_from_slice(&body);
        let c = crc(&page);
        page[22..26].copy_from_slice(&c.to_le_bytes());
        page
    }

    fn comments(entries: &[&str]) -> Vec<u8> {
        let mut b = 3u32.to_le_bytes().to_vec();
        b.extend_from_slice(b"lib");
        b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for e in entries {
            b.extend_from_slice(&(e.len() as u32).to_le_bytes());
            b.extend_from_slice(e.as_bytes());
        }
        b
    }

    fn opus_stream(serial: u32, title: &str) -> Vec<u8> {
        let mut tags = b"OpusTags".to_vec();
        tags.extend(comments(&[&format!("TITLE={title}"), "ARTIST=Someone"]));
        let mut s = page(serial, 0x02, &[b"OpusHead\x01\x02\0\0\x80\xbb\0\0\0\0\0"]);
        s.extend(page(serial, 0, &[&tags]));
        s.extend(page(serial, 0x04, &[b"audio"]));
        s
    }

    #[test]
    fn each_link_of_a_chain_gives_its_title_byte_by_byte() {
        let mut chain = opus_stream(1, "First");
        chain.extend(opus_stream(2, "Second"));
        let mut w = OggTitles::new();
        let mut titles = Vec::new();
        for b in &chain {
            titles.extend(w.push(std::slice::from_ref(b)).into_iter().map(|t| t.title));
        }
        assert_eq!(titles, vec![Some("First".into()), Some("Second".into())]);
        assert!(w.streams.is_empty(), "finished streams are forgotten");
        assert!(w.buffer.len() <= 3);
    }

    #[test]
    fn vorbis_speex_and_flac_comment_headers_are_read() {
        let mut vorbis = b"\x03vorbis".to_vec();
        vorbis.extend(comments(&["title=V"]));
        let mut s = page(7, 0x02, &[b"\x01vorbis\0\0\0\0\x02"]);
        s.extend(page(7, 0, &[&vorbis]));
        let mut flac_block = vec![0x84, 0, 0, 0];
        flac_block.extend(comments(&["TITLE=F"]));
        s.extend(page(8, 0x02, &[b"\x7FFLAC\x01\0\0\x01fLaC"]));
        s.extend(page(8, 0, &[&[0x02, 0, 0, 1, 0], &flac_block]));
        s.extend(page(9, 0x02, &[b"Speex   1.2"]));
        s.extend(page(9, 0, &[&comments(&["TITLE=S"])]));
        let titles: Vec<_> = OggTitles::new()
            .push(&s)
            .into_iter()
            .map(|t| t.title.unwrap())
            .collect();
        assert_eq!(titles, ["V", "F", "S"]);
    }

    #[test]
    fn a_packet_across_pages_is_put_together() {
        let mut tags = b"OpusTags".to_vec();
        tags.extend(comments(&[
            "TITLE=Long",
            &format!("X={}", "x".repeat(70_000)),
        ]));
        // Split the packet at a 255-byte boundary across two pages.
        let cut = 255 * 200;
        let mut s = page(3, 0x02, &[b"OpusHead"]);
        let mut first = page(3, 0, &[&tags[..cut + 255]]);
        // The first page ends on a 255 lace: drop the terminating 0 lace it got.
        let segments = first[26] as usize;
        first.remove(27 + segments - 1);
        first[26] -= 1;
        first[22..26].copy_from_slice(&[0; 4]);
        let c = crc(&first);
        first[22..26].copy_from_slice(&c.to_le_bytes());
        s.extend(first);
        s.extend(page(3, 0x01, &[&tags[cut + 255..]]));
        let found = OggTitles::new().push(&s);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].title.as_deref(), Some("Long"));
    }

    #[test]
    fn damaged_pages_and_garbage_are_skipped() {
        let mut s = b"garbage OggS more garbage".to_vec();
        let mut broken = opus_stream(4, "Broken");
        let last = broken.len() - 1;
        broken[60] ^= 0xFF; // inside the tags page: its CRC no longer matches
        broken[last] ^= 0xFF;
        s.extend(broken);
        s.extend(opus_stream(5, "Whole"));
        let found = OggTitles::new().push(&s);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].title.as_deref(), Some("Whole"));
    }

    #[test]
    fn oversized_comments_are_skipped_and_memory_stays_bounded() {
        let mut w = OggTitles::new();
        w.push(&page(6, 0x02, &[b"OpusHead"]));
        let big = vec![0u8; 255 * 255 - 1];
        for _ in 0..(MAX_COMMENTS / big.len() + 2) {
            // Continuation pages of one endless packet: every lace is 255 but the last page's.
            let mut p = page(6, 0x01, &[&big[..255 * 254]]);
            let segments = p[26] as usize;
            p.remove(27 + segments - 1);
            p[26] -= 1;
            p[22..26].copy_from_slice(&[0; 4]);
            let c = crc(&p);
            p[22..26].copy_from_slice(&c.to_le_bytes());
            assert!(w.push(&p).is_empty());
            assert!(w.streams.iter().all(|s| s.partial.len() <= MAX_COMMENTS));
        }
        assert!(w.buffer.len() < MAX_PAGE);
    }
}
