//! Tag blocks checked before decoding: tags never decide whether a track is playable.
//!
//! Symphonia stops probing at the first malformed FLAC metadata block, although the audio frames
//! after it are intact. So before decoding, the tag structures a file may carry are walked here,
//! reading nothing past any declared length:
//!
//! - an ID3v2 tag at the start (ID3v2.3/2.4 §3: header, frames of declared sizes);
//! - the FLAC metadata blocks (RFC 9639 §8): `VORBIS_COMMENT` (§8.6, the Vorbis comment header
//!   of Vorbis I §5.2.1) and `PICTURE` (§8.8) are checked field by field;
//! - an APEv2 tag at the end, before an optional ID3v1 tag (APEv2 specification: footer, items).
//!
//! Two container facts are checked here too, because the decoder reads past them silently or
//! refuses the file: an MP4 `mdat` box that declares more bytes than the file holds (a fast-start
//! file cut off: the box is shortened to what is there, and the samples past the cut read as the
//! end of the file), and an MPEG audio stream whose last frame ends past the file (MP3 cut
//! mid-frame: walked frame header by frame header, ISO/IEC 11172-3 2.4.1.3).
//!
//! A malformed FLAC block is masked as `PADDING` for the decoder (one byte of the type field, in
//! a read-only [`Overlay`] view of the source) so Symphonia skips it; what it held that still
//! reads (the complete comments before the damage) is kept. A malformed APEv2 tag is hidden from
//! the decoder the same way. Every problem becomes a warning naming the block and the damage.

use serde::Serialize;
use std::io::{Read, Seek, SeekFrom};
use symphonia::core::io::MediaSource;

/// Descriptive tags read from the source.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tags {
    /// Track title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Track artist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artist: Option<String>,
    /// Album title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub album: Option<String>,
    /// Track number within the album.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_number: Option<u64>,
    /// International Standard Recording Code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isrc: Option<String>,
    /// Year of release (or recording, when only that is given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub year: Option<u16>,
    /// Genre, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
}

/// The year a date tag starts with (`2019`, `2019-03-01`, `2019/03`), if it is a plausible one.
pub(crate) fn year_of(date: &str) -> Option<u16> {
    let digits: String = date.trim().chars().take(4).collect();
    let year: u16 = digits.parse().ok()?;
    (digits.len() == 4 && (1000..=2999).contains(&year)).then_some(year)
}

/// Largest tag block read whole for checking; bigger ones (huge cover art) are not checked.
const MAX_CHECKED: u64 = 64 << 20;

/// What the walk found: byte patches for the decoder's view, warnings and salvaged tags.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// `(offset, bytes)` to lay over the source.
    pub patches: Vec<(u64, Vec<u8>)>,
    /// One line per problem.
    pub warnings: Vec<String>,
    /// Tags read from blocks the decoder will not see.
    pub salvaged: Tags,
    /// Whether the file is cut off (an `mdat` or the last MPEG audio frame past its end).
    pub truncated: bool,
}

/// Walks the tag structures of `source` and rewinds it. I/O errors end the walk quietly: the
/// decoder reports them.
pub(crate) fn scan(source: &mut dyn MediaSource) -> Scan {
    let mut scan = Scan::default();
    let len = source.byte_len();
    let start = id3v2(source, &mut scan).unwrap_or(0);
    let _ = flac(source, start, len, &mut scan);
    if let Some(len) = len {
        let audio_end = ape(source, len, &mut scan).unwrap_or(len);
        let _ = mdat(source, len, &mut scan);
        let cut = is_mpeg_audio(source, start)
            .then(|| crate::mpeg::ends_mid_frame(source, start, audio_end))
            .flatten();
        if let Some(frames) = cut {
            scan.truncated = true;
            scan.warnings.push(format!(
                "the last MPEG audio frame (after {frames} whole ones) runs past the end of the file"
            ));
        }
    }
    let _ = source.seek(SeekFrom::Start(0));
    scan
}

/// Whether the data at `start` is not one of the other containers (whose bytes may hold sync
/// words by chance), so it may be an MPEG audio elementary stream.
fn is_mpeg_audio(source: &mut dyn MediaSource, start: u64) -> bool {
    let Ok(magic) = read_at(source, start, 12) else {
        return false;
    };
    let other = [
        &b"RIFF"[..],
        b"RF64",
        b"fLaC",
        b"OggS",
        b"FORM",
        b"caff",
        b"\x1A\x45\xDF\xA3",
    ];
    !(other.iter().any(|m| magic.starts_with(m)) || &magic[4..8] == b"ftyp")
}

fn read_at(source: &mut dyn MediaSource, at: u64, len: usize) -> std::io::Result<Vec<u8>> {
    source.seek(SeekFrom::Start(at))?;
    let mut buf = vec![0u8; len];
    source.read_exact(&mut buf)?;
    Ok(buf)
}

/// Checks an ID3v2 tag at the start; returns where the data after it begins.
fn id3v2(source: &mut dyn MediaSource, scan: &mut Scan) -> Option<u64> {
    let head = read_at(source, 0, 10).ok()?;
    if &head[..3] != b"ID3" {
        return None;
    }
    let syncsafe = |b: &[u8]| {
        b.iter()
            .fold(0u32, |acc, &x| (acc << 7) | u32::from(x & 0x7F))
    };
    let (major, flags) = (head[3], head[5]);
    let size = syncsafe(&head[6..10]);
    let footer = if major == 4 && flags & 0x10 != 0 {
        10
    } else {
        0
    };
    let end = 10 + u64::from(size) + footer;
    // Unsynchronised or extended-header tags are left to the decoder's reader, which copes.
    if !(3..=4).contains(&major) || flags & 0xC0 != 0 || u64::from(size) > MAX_CHECKED {
        return Some(end);
    }
    let Ok(body) = read_at(source, 10, size as usize) else {
        scan.warnings.push(format!(
            "ID3v2 tag declares {size} bytes, past the end of the file"
        ));
        return Some(end);
    };
    let mut at = 0usize;
    while at + 10 <= body.len() {
        let id = &body[at..at + 4];
        if id.iter().all(|&b| b == 0) {
            break; // padding
        }
        let frame = if major == 4 {
            syncsafe(&body[at + 4..at + 8])
        } else {
            u32::from_be_bytes([body[at + 4], body[at + 5], body[at + 6], body[at + 7]])
        } as usize;
        let name = String::from_utf8_lossy(id).into_owned();
        if !id
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            scan.warnings.push(format!(
                "ID3v2 tag: an invalid frame id at byte {}; the rest of the tag is ignored",
                10 + at
            ));
            break;
        }
        if frame > body.len() - at - 10 {
            scan.warnings.push(format!(
                "ID3v2 frame {name} declares {frame} bytes, past the end of the tag; the rest of the tag is ignored"
            ));
            break;
        }
        at += 10 + frame;
    }
    Some(end)
}

/// Checks the FLAC metadata blocks that start at `start`, masking broken ones.
fn flac(
    source: &mut dyn MediaSource,
    start: u64,
    len: Option<u64>,
    scan: &mut Scan,
) -> std::io::Result<()> {
    if read_at(source, start, 4)? != b"fLaC" {
        return Ok(());
    }
    let mut at = start + 4;
    for _ in 0..1024 {
        let head = read_at(source, at, 4)?;
        let (last, kind) = (head[0] & 0x80, head[0] & 0x7F);
        let length = u32::from_be_bytes([0, head[1], head[2], head[3]]);
        let body_at = at + 4;
        if len.is_some_and(|l| body_at + u64::from(length) > l) {
            // The block runs past the file: there is no audio after it to save.
            return Ok(());
        }
        if matches!(kind, 4 | 6) && u64::from(length) <= MAX_CHECKED {
            let body = read_at(source, body_at, length as usize)?;
            let (name, problem) = if kind == 4 {
                let (tags, problem) = vorbis_comments(&body);
                if problem.is_some() {
                    merge(&mut scan.salvaged, tags);
                }
                ("VORBIS_COMMENT", problem)
            } else {
                ("PICTURE", picture(&body).err())
            };
            if let Some(problem) = problem {
                scan.warnings.push(format!(
                    "FLAC {name} block at byte {at}: {problem}; the block is ignored"
                ));
                // Type 1, PADDING (RFC 9639 8.3), keeping the last-block flag.
                scan.patches.push((at, vec![last | 1]));
            }
        }
        if last != 0 {
            break;
        }
        at = body_at + u64::from(length);
    }
    Ok(())
}

/// A little-endian u32 at `at`, if `body` holds it.
fn le32(body: &[u8], at: usize) -> Option<usize> {
    body.get(at..at.checked_add(4)?)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// The Vorbis comments of a block (Vorbis I 5.2.1): every comment that is whole, and what broke.
pub(crate) fn vorbis_comments(body: &[u8]) -> (Tags, Option<String>) {
    let mut tags = Tags::default();
    let Some(vendor) = le32(body, 0) else {
        return (tags, Some("it is shorter than its vendor length".into()));
    };
    let mut at = 4usize;
    if vendor > body.len() - at {
        return (
            tags,
            Some(format!(
                "the vendor string declares {vendor} bytes, past the block"
            )),
        );
    }
    at += vendor;
    let Some(count) = le32(body, at) else {
        return (tags, Some("the comment count is cut short".into()));
    };
    at += 4;
    for i in 0..count {
        let Some(n) = le32(body, at) else {
            return (
                tags,
                Some(format!("it declares {count} comments but holds {i}")),
            );
        };
        at += 4;
        if n > body.len() - at {
            return (
                tags,
                Some(format!(
                    "comment {} declares {n} bytes, past the block",
                    i + 1
                )),
            );
        }
        if let Some((key, value)) = std::str::from_utf8(&body[at..at + n])
            .ok()
            .and_then(|c| c.split_once('='))
        {
            set(&mut tags, key, value);
        }
        at += n;
    }
    (tags, None)
}

/// Checks a PICTURE block's fields against its length (RFC 9639 8.8).
fn picture(body: &[u8]) -> Result<(), String> {
    let be32 = |at: usize| {
        body.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| format!("it is cut short at byte {at}"))
    };
    let mut at = 4; // picture type
    let mime = be32(at)?;
    at += 4;
    if mime > body.len().saturating_sub(at) {
        return Err(format!(
            "the media type declares {mime} bytes, past the block"
        ));
    }
    at += mime;
    let description = be32(at)?;
    at += 4;
    if description > body.len().saturating_sub(at) {
        return Err(format!(
            "the description declares {description} bytes, past the block"
        ));
    }
    at += description + 16; // width, height, depth, colours
    let data = be32(at)?;
    at += 4;
    if data > body.len().saturating_sub(at) {
        return Err(format!("the picture declares {data} bytes, past the block"));
    }
    Ok(())
}

/// Shortens a top-level `mdat` box that declares more bytes than the file holds (ISO/IEC
/// 14496-12 4.2), so the decoder reads the samples that are there.
fn mdat(source: &mut dyn MediaSource, len: u64, scan: &mut Scan) -> std::io::Result<()> {
    if read_at(source, 4, 4)? != b"ftyp" {
        return Ok(());
    }
    let mut at = 0u64;
    while at + 8 <= len {
        let head = read_at(source, at, 8)?;
        let mut size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let large = size == 1;
        if large {
            let b = read_at(source, at + 8, 8)?;
            size = u64::from_be_bytes(b.try_into().expect("8 bytes"));
        }
        if size == 0 {
            return Ok(()); // runs to the end by definition
        }
        if size < 8 {
            return Ok(());
        }
        if at.saturating_add(size) > len {
            if &head[4..8] == b"mdat" {
                let there = len - at;
                scan.warnings.push(format!(
                    "the mdat box declares {size} bytes but the file ends {there} bytes into it"
                ));
                scan.truncated = true;
                scan.patches.push(if large {
                    (at + 8, there.to_be_bytes().to_vec())
                } else {
                    (at, (there as u32).to_be_bytes().to_vec())
                });
            }
            return Ok(());
        }
        at += size;
    }
    Ok(())
}

/// Checks an APEv2 tag at the end of the file (before an ID3v1 tag), hiding a broken one.
/// Returns where the audio ends (before the tags).
fn ape(source: &mut dyn MediaSource, len: u64, scan: &mut Scan) -> std::io::Result<u64> {
    let id3v1 = len >= 128 && read_at(source, len - 128, 3)? == b"TAG";
    let end = if id3v1 { len - 128 } else { len };
    if end < 32 {
        return Ok(end);
    }
    let footer_at = end - 32;
    let footer = read_at(source, footer_at, 32)?;
    if &footer[..8] != b"APETAGEX" {
        return Ok(end);
    }
    let size = le32(&footer, 12).unwrap_or(0) as u64; // items + footer
    let count = le32(&footer, 16).unwrap_or(0);
    let has_header = le32(&footer, 20).unwrap_or(0) & 0x8000_0000 != 0;
    let hide = |scan: &mut Scan, why: String| {
        scan.warnings.push(format!(
            "APEv2 tag at byte {footer_at}: {why}; the tag is ignored"
        ));
        // The decoder no longer recognises the footer (or the header) as a tag.
        scan.patches.push((footer_at, b"APEbroke".to_vec()));
        if has_header && size + 32 <= footer_at + 32 {
            scan.patches
                .push((footer_at + 32 - size - 32, b"APEbroke".to_vec()));
        }
    };
    if size < 32 || size > footer_at + 32 || size > MAX_CHECKED {
        hide(
            scan,
            format!("it declares {size} bytes, more than the file holds"),
        );
        return Ok(end);
    }
    let items_at = footer_at + 32 - size;
    // Where the tag, and so the audio before it, ends.
    let tag_start = items_at.saturating_sub(if has_header { 32 } else { 0 });
    let items = read_at(source, items_at, (size - 32) as usize)?;
    let mut tags = Tags::default();
    let mut at = 0usize;
    for i in 0..count {
        let (Some(n), Some(_flags)) = (le32(&items, at), le32(&items, at + 4)) else {
            merge(&mut scan.salvaged, tags);
            hide(scan, format!("it declares {count} items but holds {i}"));
            return Ok(tag_start);
        };
        at += 8;
        let Some(key_len) = items[at.min(items.len())..].iter().position(|&b| b == 0) else {
            merge(&mut scan.salvaged, tags);
            hide(scan, format!("item {} has no terminated key", i + 1));
            return Ok(tag_start);
        };
        let key = String::from_utf8_lossy(&items[at..at + key_len]).into_owned();
        at += key_len + 1;
        if n > items.len() - at {
            merge(&mut scan.salvaged, tags);
            hide(scan, format!("item {key} declares {n} bytes, past the tag"));
            return Ok(tag_start);
        }
        if let Ok(value) = std::str::from_utf8(&items[at..at + n]) {
            set(&mut tags, &key, value);
        }
        at += n;
    }
    Ok(tag_start)
}

/// Files one `KEY=value` comment or APE item under the tags we keep.
fn set(tags: &mut Tags, key: &str, value: &str) {
    let value = value.trim_end_matches('\0').trim();
    if value.is_empty() {
        return;
    }
    let slot = match key.to_ascii_uppercase().as_str() {
        "TITLE" => &mut tags.title,
        "ARTIST" => &mut tags.artist,
        "ALBUM" => &mut tags.album,
        "ISRC" => &mut tags.isrc,
        "GENRE" => &mut tags.genre,
        "DATE" | "YEAR" | "ORIGINALDATE" | "ORIGINALYEAR" => {
            if let Some(y) = year_of(value) {
                tags.year.get_or_insert(y);
            }
            return;
        }
        "TRACKNUMBER" | "TRACK" => {
            if let Some(n) = value.split('/').next().and_then(|n| n.trim().parse().ok()) {
                tags.track_number.get_or_insert(n);
            }
            return;
        }
        _ => return,
    };
    slot.get_or_insert_with(|| value.to_string());
}

/// Fills what `into` lacks from `from`.
pub(crate) fn merge(into: &mut Tags, from: Tags) {
    into.title = into.title.take().or(from.title);
    into.artist = into.artist.take().or(from.artist);
    into.album = into.album.take().or(from.album);
    into.track_number = into.track_number.or(from.track_number);
    into.isrc = into.isrc.take().or(from.isrc);
    into.year = into.year.or(from.year);
    into.genre = into.genre.take().or(from.genre);
}

/// A read-only view of a source with byte patches laid over it.
pub(crate) struct Overlay {
    inner: Box<dyn MediaSource>,
    patches: Vec<(u64, Vec<u8>)>,
    pos: u64,
}

impl Overlay {
    pub(crate) fn new(inner: Box<dyn MediaSource>, patches: Vec<(u64, Vec<u8>)>) -> Self {
        Overlay {
            inner,
            patches,
            pos: 0,
        }
    }
}

impl Read for Overlay {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let (from, to) = (self.pos, self.pos + n as u64);
        for (at, bytes) in &self.patches {
            let (p_from, p_to) = (*at, *at + bytes.len() as u64);
            let (lo, hi) = (from.max(p_from), to.min(p_to));
            if lo < hi {
                buf[(lo - from) as usize..(hi - from) as usize]
                    .copy_from_slice(&bytes[(lo - p_from) as usize..(hi - p_from) as usize]);
            }
        }
        self.pos = to;
        Ok(n)
    }
}

impl Seek for Overlay {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = self.inner.seek(to)?;
        Ok(self.pos)
    }
}

impl MediaSource for Overlay {
    fn is_seekable(&self) -> bool {
        self.inner.is_seekable()
    }

    fn byte_len(&self) -> Option<u64> {
        self.inner.byte_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn comments(entries: &[&[u8]], count: u32) -> Vec<u8> {
        let mut b = 3u32.to_le_bytes().to_vec();
        b.extend_from_slice(b"abc");
        b.extend_from_slice(&count.to_le_bytes());
        for e in entries {
            b.extend_from_slice(&(e.len() as u32).to_le_bytes());
            b.extend_from_slice(e);
        }
        b
    }

    #[test]
    fn whole_comments_are_read() {
        let (tags, problem) = vorbis_comments(&comments(&[b"TITLE=A", b"tracknumber=3/9"], 2));
        assert_eq!(problem, None);
        assert_eq!(tags.title.as_deref(), Some("A"));
        assert_eq!(tags.track_number, Some(3));
    }

    #[test]
    fn comments_before_the_damage_are_kept() {
        let (tags, problem) = vorbis_comments(&comments(&[b"TITLE=A", b"ARTIST=B"], 1000));
        assert_eq!(tags.artist.as_deref(), Some("B"));
        assert!(problem.unwrap().contains("1000 comments but holds 2"));
        let mut body = comments(&[b"TITLE=A"], 2);
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        let (tags, problem) = vorbis_comments(&body);
        assert_eq!(tags.title.as_deref(), Some("A"));
        assert!(problem.unwrap().contains("comment 2 declares"));
        assert!(vorbis_comments(&[1, 2]).1.is_some());
        assert!(vorbis_comments(&u32::MAX.to_le_bytes()).1.is_some());
    }

    #[test]
    fn pictures_are_checked_against_their_length() {
        let mut ok = 3u32.to_be_bytes().to_vec();
        for field in [&b"image/png"[..], b""] {
            ok.extend_from_slice(&(field.len() as u32).to_be_bytes());
            ok.extend_from_slice(field);
        }
        ok.extend_from_slice(&[0; 16]);
        ok.extend_from_slice(&2u32.to_be_bytes());
        ok.extend_from_slice(&[1, 2]);
        assert_eq!(picture(&ok), Ok(()));
        assert!(picture(&ok[..ok.len() - 1]).is_err());
        assert!(picture(&[0, 0, 0, 3, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
    }

    #[test]
    fn the_overlay_patches_any_read() {
        let data: Vec<u8> = (0..100).collect();
        let mut o = Overlay::new(
            Box::new(Cursor::new(data)),
            vec![(10, vec![0xAA, 0xBB]), (99, vec![0xCC])],
        );
        let mut buf = [0u8; 11];
        o.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[9..], &[9, 0xAA]);
        let mut rest = Vec::new();
        o.read_to_end(&mut rest).unwrap();
        assert_eq!(rest[0], 0xBB);
        assert_eq!(*rest.last().unwrap(), 0xCC);
        o.seek(SeekFrom::Start(10)).unwrap();
        let mut one = [0u8; 1];
        o.read_exact(&mut one).unwrap();
        assert_eq!(one, [0xAA]);
    }

    fn ftyp() -> Vec<u8> {
        let mut f = vec![0, 0, 0, 16];
        f.extend_from_slice(b"ftypM4A \0\0\0\0");
        f
    }

    #[test]
    fn a_cut_mdat_is_shortened_to_what_is_there() {
        let mut f = ftyp();
        f.extend_from_slice(&1000u32.to_be_bytes());
        f.extend_from_slice(b"mdat");
        f.extend_from_slice(&[7; 100]);
        let mut src: Box<dyn MediaSource> = Box::new(Cursor::new(f));
        let s = scan(src.as_mut());
        assert!(s.truncated);
        assert_eq!(s.patches, vec![(16, 108u32.to_be_bytes().to_vec())]);
        // A 64-bit size far past the file (even 2^64 - 1) is shortened in its 64-bit field.
        let mut f = ftyp();
        f.extend_from_slice(&1u32.to_be_bytes());
        f.extend_from_slice(b"mdat");
        f.extend_from_slice(&u64::MAX.to_be_bytes());
        f.extend_from_slice(&[7; 10]);
        let mut src: Box<dyn MediaSource> = Box::new(Cursor::new(f));
        let s = scan(src.as_mut());
        assert_eq!(s.patches, vec![(24, 26u64.to_be_bytes().to_vec())]);
        // A whole file is left alone.
        let mut f = ftyp();
        f.extend_from_slice(&12u32.to_be_bytes());
        f.extend_from_slice(b"mdat\x01\x02\x03\x04");
        let mut src: Box<dyn MediaSource> = Box::new(Cursor::new(f));
        let s = scan(src.as_mut());
        assert!(!s.truncated && s.patches.is_empty());
    }

    #[test]
    fn a_flac_block_with_broken_comments_becomes_padding() {
        let mut f = b"fLaC".to_vec();
        f.extend_from_slice(&[0, 0, 0, 34]);
        f.extend_from_slice(&[0; 34]);
        let body = comments(&[b"TITLE=Kept"], 9);
        f.push(0x80 | 4);
        f.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        f.extend_from_slice(&body);
        f.extend_from_slice(&[0xFF, 0xF8, 1, 2]);
        let mut src: Box<dyn MediaSource> = Box::new(Cursor::new(f));
        let s = scan(src.as_mut());
        assert_eq!(s.patches, vec![(42, vec![0x81])]);
        assert_eq!(s.salvaged.title.as_deref(), Some("Kept"));
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    }
}
