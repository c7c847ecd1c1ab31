//! The presented window of an MP4 source: the edit list (ISO/IEC 14496-12 section 8.6.6) or the
//! iTunes gapless tag `iTunSMPB` (encoder delay and padding). These parsers read untrusted bytes:
//! every offset is checked, and a malformed box means "no window", never a panic.

use symphonia::core::io::MediaSource;

/// The presented part of the decoded stream, from container information Symphonia does not apply:
/// an MP4 edit list (ISO/IEC 14496-12 8.6.6) or iTunes gapless tag (AAC encoder delay and
/// padding), or a Matroska segment duration (Opus end padding).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Seconds to drop from the start of the decoded stream.
    pub skip_seconds: f64,
    /// Seconds to keep after that, when stated.
    pub keep_seconds: Option<f64>,
}

/// Reads the edit list of the first sound track, if the source is an MP4 file; rewinds the source.
pub(super) fn mp4_edit(source: &mut Box<dyn MediaSource>) -> Option<Window> {
    use std::io::{Read, Seek, SeekFrom};
    const MAX_MOOV: u64 = 64 << 20;
    let found = (|| -> Option<Vec<u8>> {
        let mut header = [0u8; 8];
        source.read_exact(&mut header).ok()?;
        if &header[4..8] != b"ftyp" {
            return None;
        }
        let mut at = 0u64;
        loop {
            source.seek(SeekFrom::Start(at)).ok()?;
            source.read_exact(&mut header).ok()?;
            let mut size = u64::from(u32::from_be_bytes(header[..4].try_into().ok()?));
            let mut body_at = at + 8;
            if size == 1 {
                let mut large = [0u8; 8];
                source.read_exact(&mut large).ok()?;
                size = u64::from_be_bytes(large);
                body_at += 8;
            }
            if size < 8 {
                return None;
            }
            if &header[4..8] == b"moov" {
                let len = size - (body_at - at);
                if len > MAX_MOOV {
                    return None;
                }
                let mut moov = vec![0u8; len as usize];
                source.read_exact(&mut moov).ok()?;
                return Some(moov);
            }
            at += size;
        }
    })();
    let _ = source.seek(SeekFrom::Start(0));
    moov_window(&found?)
}

pub(super) fn children(data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if at + 8 > data.len() {
            return None;
        }
        let size = u32::from_be_bytes(data[at..at + 4].try_into().ok()?) as usize;
        if size < 8 || at + size > data.len() {
            return None;
        }
        let item = (&data[at + 4..at + 8], &data[at + 8..at + size]);
        at += size;
        Some(item)
    })
}

pub(super) fn child<'a>(data: &'a [u8], kind: &[u8]) -> Option<&'a [u8]> {
    children(data).find(|(k, _)| *k == kind).map(|(_, b)| b)
}

pub(super) fn be(data: &[u8], at: usize, len: usize) -> Option<u64> {
    data.get(at..at + len)
        .map(|b| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

/// The window a `moov` box's body states: its first sound track's edit list, else its iTunes
/// gapless tag; `None` when neither is there or readable.
pub fn moov_window(moov: &[u8]) -> Option<Window> {
    elst_edit(moov).or_else(|| itunes_edit(moov))
}

/// iTunes gapless info: `moov/udta/meta/ilst/----` named `iTunSMPB`, whose value lists (in hex)
/// a reserved field, the priming, the padding and the sample count. Times are at the track rate,
/// which `mdhd` states.
pub(super) fn itunes_edit(moov: &[u8]) -> Option<Window> {
    let meta = child(child(moov, b"udta")?, b"meta")?;
    let ilst = child(meta.get(4..)?, b"ilst")?;
    let rate = children(moov)
        .filter(|(k, _)| *k == b"trak")
        .find_map(|(_, t)| child(t, b"mdia").and_then(|m| child(m, b"mdhd")))
        .and_then(|mdhd| {
            if mdhd.first()? == &1 {
                be(mdhd, 20, 4)
            } else {
                be(mdhd, 12, 4)
            }
        })?;
    for (kind, item) in children(ilst) {
        if kind != b"----" {
            continue;
        }
        let name = child(item, b"name").and_then(|n| n.get(4..));
        if name != Some(b"iTunSMPB".as_slice()) {
            continue;
        }
        let value = std::str::from_utf8(child(item, b"data")?.get(8..)?).ok()?;
        let fields: Vec<u64> = value
            .split_whitespace()
            .filter_map(|f| u64::from_str_radix(f, 16).ok())
            .collect();
        let (priming, total) = (*fields.get(1)?, *fields.get(3)?);
        if rate == 0 || priming >= 1 << 20 {
            return None;
        }
        return Some(Window {
            skip_seconds: priming as f64 / rate as f64,
            keep_seconds: (total > 0).then(|| total as f64 / rate as f64),
        });
    }
    None
}

pub(super) fn elst_edit(moov: &[u8]) -> Option<Window> {
    let mvhd = child(moov, b"mvhd")?;
    let movie_ts = if mvhd.first()? == &1 {
        be(mvhd, 20, 4)?
    } else {
        be(mvhd, 12, 4)?
    };
    for (kind, trak) in children(moov) {
        if kind != b"trak" {
            continue;
        }
        let mdia = child(trak, b"mdia")?;
        if child(mdia, b"hdlr").and_then(|h| h.get(8..12)) != Some(b"soun".as_slice()) {
            continue;
        }
        let mdhd = child(mdia, b"mdhd")?;
        let media_ts = if mdhd.first()? == &1 {
            be(mdhd, 20, 4)?
        } else {
            be(mdhd, 12, 4)?
        };
        let elst = child(child(trak, b"edts")?, b"elst")?;
        let version = *elst.first()?;
        let count = be(elst, 4, 4)?;
        let entry = if version == 1 { 20 } else { 12 };
        for i in 0..count.min(16) as usize {
            let at = 8 + i * entry;
            let (duration, media_time) = if version == 1 {
                (be(elst, at, 8)?, be(elst, at + 8, 8)? as i64)
            } else {
                (
                    be(elst, at, 4)?,
                    i64::from(be(elst, at + 4, 4)? as u32 as i32),
                )
            };
            if media_time < 0 {
                continue; // an empty edit (a delay), not a trim
            }
            if movie_ts == 0 || media_ts == 0 {
                return None;
            }
            return Some(Window {
                skip_seconds: media_time as f64 / media_ts as f64,
                keep_seconds: (duration > 0).then(|| duration as f64 / movie_ts as f64),
            });
        }
        return None;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ISO BMFF box: 32-bit size, type, body.
    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    /// A version-0 `mvhd` or `mdhd` body with `timescale` at offset 12.
    fn header_v0(timescale: u32) -> Vec<u8> {
        let mut b = vec![0u8; 12];
        b.extend_from_slice(&timescale.to_be_bytes());
        b.extend_from_slice(&[0u8; 8]);
        b
    }

    fn hdlr(kind: &[u8; 4]) -> Vec<u8> {
        let mut b = vec![0u8; 8];
        b.extend_from_slice(kind);
        b.extend_from_slice(&[0u8; 13]);
        bx(b"hdlr", &b)
    }

    /// A version-0 `elst` of (segment duration, media time) entries.
    fn elst_v0(entries: &[(u32, i32)]) -> Vec<u8> {
        let mut b = vec![0u8; 4];
        b.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for (d, t) in entries {
            b.extend_from_slice(&d.to_be_bytes());
            b.extend_from_slice(&t.to_be_bytes());
            b.extend_from_slice(&0x0001_0000u32.to_be_bytes());
        }
        bx(b"elst", &b)
    }

    fn trak(handler: &[u8; 4], media_ts: u32, edts: Option<Vec<u8>>) -> Vec<u8> {
        let mdia = bx(
            b"mdia",
            &[bx(b"mdhd", &header_v0(media_ts)), hdlr(handler)].concat(),
        );
        let mut body = Vec::new();
        if let Some(e) = edts {
            body.extend(bx(b"edts", &e));
        }
        body.extend(mdia);
        bx(b"trak", &body)
    }

    fn moov_body(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn an_edit_list_trims_the_priming_and_keeps_the_stated_duration() {
        // AAC at 44.1 kHz: 2112 samples of priming, two seconds presented (movie timescale 1000).
        let moov = moov_body(&[
            bx(b"mvhd", &header_v0(1000)),
            trak(b"soun", 44_100, Some(elst_v0(&[(2000, 2112)]))),
        ]);
        let w = moov_window(&moov).expect("a window");
        assert_eq!(w.skip_seconds, 2112.0 / 44_100.0);
        assert_eq!(w.keep_seconds, Some(2.0));
    }

    #[test]
    fn an_empty_edit_is_a_delay_not_a_trim_and_video_tracks_are_passed_over() {
        let moov = moov_body(&[
            bx(b"mvhd", &header_v0(600)),
            trak(b"vide", 90_000, Some(elst_v0(&[(600, 3000)]))),
            trak(b"soun", 48_000, Some(elst_v0(&[(300, -1), (1200, 312)]))),
        ]);
        let w = moov_window(&moov).expect("a window");
        assert_eq!(w.skip_seconds, 312.0 / 48_000.0);
        assert_eq!(w.keep_seconds, Some(2.0));
    }

    #[test]
    fn a_version_1_edit_list_reads_64_bit_fields() {
        let mut e = vec![1u8, 0, 0, 0];
        e.extend_from_slice(&1u32.to_be_bytes());
        e.extend_from_slice(&48_000u64.to_be_bytes());
        e.extend_from_slice(&1024u64.to_be_bytes());
        e.extend_from_slice(&0x0001_0000u32.to_be_bytes());
        let moov = moov_body(&[
            bx(b"mvhd", &header_v0(48_000)),
            trak(b"soun", 48_000, Some(bx(b"elst", &e))),
        ]);
        let w = moov_window(&moov).expect("a window");
        assert_eq!(w.skip_seconds, 1024.0 / 48_000.0);
        assert_eq!(w.keep_seconds, Some(1.0));
    }

    /// `moov/udta/meta/ilst/----` named `iTunSMPB` with `value`.
    fn itunes(value: &str) -> Vec<u8> {
        let mut name = vec![0u8; 4];
        name.extend_from_slice(b"iTunSMPB");
        let mut data = vec![0u8; 8];
        data.extend_from_slice(value.as_bytes());
        let item = bx(
            b"----",
            &[
                bx(b"mean", b"\0\0\0\0com.apple.iTunes"),
                bx(b"name", &name),
                bx(b"data", &data),
            ]
            .concat(),
        );
        let ilst = bx(b"ilst", &item);
        let meta = bx(b"meta", &[vec![0u8; 4], ilst].concat());
        bx(b"udta", &meta)
    }

    #[test]
    fn the_itunes_tag_gives_priming_and_length_at_the_track_rate() {
        // 0x840 = 2112 samples of priming, 0x15888 = 88200 samples (2 s at 44.1 kHz).
        let moov = moov_body(&[
            trak(b"soun", 44_100, None),
            itunes(" 00000000 00000840 000001C0 0000000000015888 00000000"),
        ]);
        let w = moov_window(&moov).expect("a window");
        assert_eq!(w.skip_seconds, 2112.0 / 44_100.0);
        assert_eq!(w.keep_seconds, Some(2.0));
    }

    #[test]
    fn malformed_boxes_give_no_window_and_never_panic() {
        assert_eq!(moov_window(&[]), None);
        // A tag with too few fields, and one whose priming is absurd.
        for value in [" 00000000 00000840", " 0 FFFFFFFF 0 10"] {
            let moov = moov_body(&[trak(b"soun", 44_100, None), itunes(value)]);
            assert_eq!(moov_window(&moov), None, "{value}");
        }
        // An edit list that claims more entries than it holds.
        let mut e = vec![0u8; 4];
        e.extend_from_slice(&u32::MAX.to_be_bytes());
        let moov = moov_body(&[
            bx(b"mvhd", &header_v0(1000)),
            trak(b"soun", 44_100, Some(bx(b"elst", &e))),
        ]);
        assert_eq!(moov_window(&moov), None);
        // A zero timescale cannot be divided by.
        let moov = moov_body(&[
            bx(b"mvhd", &header_v0(0)),
            trak(b"soun", 44_100, Some(elst_v0(&[(2000, 2112)]))),
        ]);
        assert_eq!(moov_window(&moov), None);
        // Every cut of a valid box, and sizes that run past the end.
        let good = moov_body(&[
            bx(b"mvhd", &header_v0(1000)),
            trak(b"soun", 44_100, Some(elst_v0(&[(2000, 2112)]))),
            itunes(" 00000000 00000840 000001C0 0000000000015888"),
        ]);
        for n in 0..good.len() {
            let _ = moov_window(&good[..n]);
            let mut bent = good.clone();
            bent[n] = 0xFF;
            let _ = moov_window(&bent);
        }
    }
}
