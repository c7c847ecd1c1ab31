//! Moving a packaged track later on the decode timeline, for playlists played as one stream.
//!
//! A stitched playlist (RFC 8216 4.3.2.3, `EXT-X-DISCONTINUITY` between tracks) plays each
//! track's own init and media segments. Some players (ffmpeg's HLS reader among them) read the
//! whole stream as one timeline and stop when the decode time goes back at a join. So each track
//! after the first is served shifted by the decode length of the tracks before it ([`timing`]
//! reads it from the init): every `tfdt` (ISO/IEC 14496-12 8.8.12) gains `shift`.
//!
//! The init segment, and so its edit list (8.6.6), is left as stored: players read its
//! `media_time` as the priming from the track's first decoded sample. Chromium applies the edit
//! when it places samples while hls.js, which sets the placement, reads only `tfdt`; an edit
//! shifted with the `tfdt` would make Chromium place the track `shift` early, and playback stalls
//! at the join (tested in `tests/playlists.rs`).
//!
//! The rewrite is a pure function of the stored bytes and the shift, costs microseconds, and
//! gives the same bytes every time, so the retimed segments are as immutable as the stored ones.

use crate::boxes::{bx, u32, u64};
use crate::{Error, Result};

/// What the init segment says about its track's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The media timescale (`mdhd`).
    pub timescale: u32,
    /// The media's decode length in that timescale (`mdhd` duration): priming plus the presented
    /// samples, what the next track of a stitched stream is shifted by.
    pub decode_len: u64,
    /// The first edit's `media_time` (0 without an edit list).
    pub media_time: u64,
}

/// A parsed box: its type and either its raw body or its children.
#[derive(Debug, Clone)]
struct Node {
    kind: [u8; 4],
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    Raw(Vec<u8>),
    Children(Vec<Node>),
}

fn bad(what: impl Into<String>) -> Error {
    Error::Malformed(what.into())
}

/// The boxes of `data`, each with a raw body. Sizes 0 (to the end) and 1 (64-bit) are read.
fn parse(data: &[u8]) -> Result<Vec<Node>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        let head = data
            .get(at..at + 8)
            .ok_or_else(|| bad(format!("a box header is cut short at byte {at}")))?;
        let mut size = u64::from(u32_at(head, 0));
        let mut header = 8usize;
        if size == 1 {
            let large = data
                .get(at + 8..at + 16)
                .ok_or_else(|| bad("a 64-bit box size is cut short"))?;
            size = u64::from_be_bytes(large.try_into().expect("8 bytes"));
            header = 16;
        } else if size == 0 {
            size = (data.len() - at) as u64;
        }
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| at.checked_add(s))
            .filter(|&e| e <= data.len() && size >= header as u64)
            .ok_or_else(|| {
                bad(format!(
                    "a box at byte {at} declares {size} bytes past the data"
                ))
            })?;
        out.push(Node {
            kind: head[4..8].try_into().expect("4 bytes"),
            body: Body::Raw(data[at + header..end].to_vec()),
        });
        at = end;
    }
    Ok(out)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn write(nodes: &[Node], out: &mut Vec<u8>) -> Result<()> {
    for n in nodes {
        let start = out.len();
        let mut failed = None;
        bx(out, &n.kind, |o| match &n.body {
            Body::Raw(b) => o.extend_from_slice(b),
            Body::Children(c) => failed = write(c, o).err(),
        });
        if let Some(e) = failed {
            return Err(e);
        }
        if out.len() - start > u32::MAX as usize {
            return Err(Error::Overflow("a box larger than 4 GiB".into()));
        }
    }
    Ok(())
}

impl Node {
    /// Parses a raw body into children (a container box).
    fn open(&mut self) -> Result<&mut Vec<Node>> {
        if let Body::Raw(raw) = &self.body {
            self.body = Body::Children(parse(raw)?);
        }
        match &mut self.body {
            Body::Children(c) => Ok(c),
            Body::Raw(_) => unreachable!("opened just above"),
        }
    }

    fn raw(&self) -> Result<&[u8]> {
        match &self.body {
            Body::Raw(b) => Ok(b),
            Body::Children(_) => Err(bad("a leaf box was opened as a container")),
        }
    }
}

fn find<'a>(nodes: &'a mut [Node], kind: &[u8; 4]) -> Result<&'a mut Node> {
    nodes
        .iter_mut()
        .find(|n| &n.kind == kind)
        .ok_or_else(|| bad(format!("no {} box", String::from_utf8_lossy(kind))))
}

/// A full box body's version and the rest after version and flags.
fn version(body: &[u8]) -> Result<(u8, &[u8])> {
    if body.len() < 4 {
        return Err(bad("a full box is shorter than its version and flags"));
    }
    Ok((body[0], &body[4..]))
}

/// `mvhd`/`mdhd` timescale and duration (8.2.2, 8.4.2: the same layout up to the duration).
fn header_times(body: &[u8]) -> Result<(u32, u64)> {
    let (v, rest) = version(body)?;
    let short = || bad("a movie or media header is cut short");
    if v == 1 {
        let b = rest.get(..28).ok_or_else(short)?;
        Ok((
            u32_at(b, 16),
            u64::from_be_bytes(b[20..28].try_into().expect("8 bytes")),
        ))
    } else {
        let b = rest.get(..16).ok_or_else(short)?;
        Ok((u32_at(b, 8), u64::from(u32_at(b, 12))))
    }
}

/// The `media_time` of the first edit of an `elst` body.
fn first_edit(body: &[u8]) -> Result<i64> {
    let (v, rest) = version(body)?;
    let short = || bad("an edit list is cut short");
    let count = u32_at(rest.get(..4).ok_or_else(short)?, 0);
    if count == 0 {
        return Err(bad("an edit list without entries"));
    }
    if v == 1 {
        let e = rest.get(4..24).ok_or_else(short)?;
        Ok(i64::from_be_bytes(e[8..16].try_into().expect("8 bytes")))
    } else {
        let e = rest.get(4..16).ok_or_else(short)?;
        Ok(i64::from(u32_at(e, 4) as i32))
    }
}

/// What `init` (an init segment of one audio track) says about the track's timeline.
///
/// # Errors
/// [`Error::Malformed`] when the boxes do not parse or the movie, track or media header is
/// missing.
pub fn timing(init: &[u8]) -> Result<Timing> {
    let mut top = parse(init)?;
    let moov = find(&mut top, b"moov")?.open()?;
    let trak = find(moov, b"trak")?.open()?;
    let media_time = match trak.iter_mut().find(|n| &n.kind == b"edts") {
        Some(edts) => {
            let media_time = first_edit(find(edts.open()?, b"elst")?.raw()?)?;
            media_time.max(0) as u64
        }
        None => 0,
    };
    let mdia = find(trak, b"mdia")?.open()?;
    let (timescale, decode_len) = header_times(find(mdia, b"mdhd")?.raw()?)?;
    if timescale == 0 {
        return Err(bad("a media timescale of 0"));
    }
    Ok(Timing {
        timescale,
        decode_len,
        media_time,
    })
}

/// A media segment moved `shift` ticks later: every `tfdt` of every `moof` gains `shift`.
///
/// Version 1 `tfdt` boxes (what this crate writes) are rewritten in place; a version 0 one whose
/// shifted time needs 64 bits becomes version 1, and the `trun` data offsets, which count from the
/// `moof` (default-base-is-moof), grow with it.
///
/// # Errors
/// [`Error::Malformed`] when a `moof` does not parse, has no `tfdt`, or places its data by an
/// absolute offset that the rewrite would move; [`Error::Overflow`] past 2^64.
pub fn retime_segment(segment: &[u8], shift: u64) -> Result<Vec<u8>> {
    let mut top = parse(segment)?;
    for moof in top.iter_mut().filter(|n| &n.kind == b"moof") {
        let mut grown = 0usize;
        for traf in moof.open()?.iter_mut().filter(|n| &n.kind == b"traf") {
            let children = traf.open()?;
            let tfdt = find(children, b"tfdt")?;
            let (v, rest) = version(tfdt.raw()?)?;
            let time = if v == 1 {
                u64::from_be_bytes(
                    rest.get(..8)
                        .ok_or_else(|| bad("a tfdt is cut short"))?
                        .try_into()
                        .expect("8 bytes"),
                )
            } else {
                u64::from(u32_at(
                    rest.get(..4).ok_or_else(|| bad("a tfdt is cut short"))?,
                    0,
                ))
            };
            let shifted = time
                .checked_add(shift)
                .ok_or_else(|| Error::Overflow("a shifted tfdt past 2^64".into()))?;
            let mut body = Vec::with_capacity(12);
            if v == 1 || shifted > u64::from(u32::MAX) {
                grown += usize::from(v == 0) * 4;
                body.extend_from_slice(&[1, 0, 0, 0]);
                u64(&mut body, shifted);
            } else {
                body.extend_from_slice(&[0, 0, 0, 0]);
                u32(&mut body, shifted as u32);
            }
            tfdt.body = Body::Raw(body);
        }
        if grown > 0 {
            for traf in moof.open()?.iter_mut().filter(|n| &n.kind == b"traf") {
                move_data_offsets(traf.open()?, grown)?;
            }
        }
    }
    let mut out = Vec::with_capacity(segment.len() + 8);
    write(&top, &mut out)?;
    Ok(out)
}

/// Adds `by` to the `trun` data offsets of a `traf` whose `moof` grew by `by` bytes.
fn move_data_offsets(traf: &mut [Node], by: usize) -> Result<()> {
    let tfhd = find(traf, b"tfhd")?.raw()?;
    let flags = u32_at(tfhd, 0) & 0x00FF_FFFF;
    if flags & 0x1 != 0 {
        return Err(bad("a tfhd with an absolute base data offset"));
    }
    for trun in traf.iter_mut().filter(|n| &n.kind == b"trun") {
        let mut body = trun.raw()?.to_vec();
        if u32_at(&body, 0) & 0x1 != 0 {
            let at = 8;
            let offset = body
                .get(at..at + 4)
                .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
                .ok_or_else(|| bad("a trun is cut short"))?;
            let moved = offset
                .checked_add(by as i32)
                .ok_or_else(|| Error::Overflow("a trun data offset".into()))?;
            body[at..at + 4].copy_from_slice(&moved.to_be_bytes());
        }
        trun.body = Body::Raw(body);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{init_segment, media_segment, SampleEntry, TrackInfo};

    fn opus_init(priming: u32, duration: u64) -> Vec<u8> {
        init_segment(&TrackInfo {
            entry: SampleEntry::Opus {
                pre_skip: 312,
                input_rate: 48_000,
            },
            timescale: 48_000,
            channels: 2,
            priming,
            duration,
            bitrate: (96_000, 96_000),
        })
        .unwrap()
    }

    #[test]
    fn timing_reads_the_media_length_and_the_edit() {
        let t = timing(&opus_init(960, 48_000)).unwrap();
        assert_eq!(
            t,
            Timing {
                timescale: 48_000,
                decode_len: 48_960,
                media_time: 960
            }
        );
    }

    fn tfdt_of(seg: &[u8]) -> u64 {
        let at = seg.windows(4).position(|w| w == b"tfdt").unwrap();
        assert_eq!(seg[at + 4], 1);
        u64::from_be_bytes(seg[at + 8..at + 16].try_into().unwrap())
    }

    #[test]
    fn retimed_segment_shifts_tfdt_and_keeps_the_payload() {
        let seg = media_segment(3, 9_600, &[(vec![1, 2, 3], 960), (vec![4], 960)]).unwrap();
        let moved = retime_segment(&seg, 48_000).unwrap();
        assert_eq!(moved.len(), seg.len());
        assert_eq!(tfdt_of(&moved), 57_600);
        assert_eq!(&moved[moved.len() - 4..], &[1, 2, 3, 4]);
        let tfdt = seg.windows(4).position(|w| w == b"tfdt").unwrap();
        let diff: Vec<usize> = (0..seg.len()).filter(|&i| seg[i] != moved[i]).collect();
        assert!(
            diff.iter().all(|&i| (tfdt + 8..tfdt + 16).contains(&i)),
            "only the tfdt time changes: {diff:?}"
        );
    }

    #[test]
    fn a_version_0_tfdt_grows_and_moves_the_data_offset() {
        let seg = media_segment(1, 10, &[(vec![9, 8, 7], 960)]).unwrap();
        // Rewrite the tfdt as version 0 by hand: a 16-byte box instead of 20.
        let mut top = parse(&seg).unwrap();
        let moof = top.iter_mut().find(|n| &n.kind == b"moof").unwrap();
        {
            let traf = find(moof.open().unwrap(), b"traf").unwrap();
            let tfdt = find(traf.open().unwrap(), b"tfdt").unwrap();
            tfdt.body = Body::Raw(vec![0, 0, 0, 0, 0, 0, 0, 10]);
            let trun = find(traf.open().unwrap(), b"trun").unwrap();
            let mut b = trun.raw().unwrap().to_vec();
            let off = i32::from_be_bytes(b[8..12].try_into().unwrap()) - 4;
            b[8..12].copy_from_slice(&off.to_be_bytes());
            trun.body = Body::Raw(b);
        }
        let mut v0 = Vec::new();
        write(&top, &mut v0).unwrap();
        let moved = retime_segment(&v0, u64::from(u32::MAX)).unwrap();
        assert_eq!(moved, retime_segment(&seg, u64::from(u32::MAX)).unwrap());
        assert_eq!(tfdt_of(&moved), u64::from(u32::MAX) + 10);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\0\0\0\x09moof",
            b"\0\0\0\x10moov\0\0\0\x04trak",
            &[0xFF; 40],
        ] {
            assert!(timing(bytes).is_err());
            let _ = retime_segment(bytes, 1);
        }
        assert!(timing(b"\0\0\0\x08free").is_err());
    }
}
