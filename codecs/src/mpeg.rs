//! MPEG audio frame headers (ISO/IEC 11172-3 2.4.1.3, ISO/IEC 13818-3 2.4.2.3), walked to tell
//! whether a stream's last frame is cut off by the end of the file.

use std::io::SeekFrom;
use symphonia::core::io::MediaSource;

/// Bit rates in kb/s by (MPEG-1?, layer), for indexes 1 to 14.
fn bitrate(mpeg1: bool, layer: u8, index: usize) -> u32 {
    const V1: [[u32; 14]; 3] = [
        [
            32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
        ],
        [
            32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
        ],
        [
            32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
        ],
    ];
    const V2: [[u32; 14]; 2] = [
        [
            32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
        ],
        [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    ];
    let row = usize::from(layer - 1);
    if mpeg1 {
        V1[row][index - 1]
    } else {
        V2[row.min(1)][index - 1]
    }
}

/// The length in bytes of the frame whose header is `h`, or `None` if `h` is not a header (or a
/// free-format one, whose length the header does not state).
pub(crate) fn frame_len(h: [u8; 4]) -> Option<u64> {
    if h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (h[1] >> 3) & 0x3; // 0: 2.5, 2: 2, 3: 1
    let layer = match (h[1] >> 1) & 0x3 {
        3 => 1,
        2 => 2,
        1 => 3,
        _ => return None,
    };
    let (rate_index, sr_index) = (usize::from(h[2] >> 4), usize::from((h[2] >> 2) & 0x3));
    if version == 1 || rate_index == 0 || rate_index == 15 || sr_index == 3 {
        return None;
    }
    let mpeg1 = version == 3;
    let rate: u32 = [44_100, 48_000, 32_000][sr_index] >> [2, 0, 1, 0][usize::from(version)];
    let kbps = u64::from(bitrate(mpeg1, layer, rate_index));
    let pad = u64::from((h[2] >> 1) & 0x1);
    let rate = u64::from(rate);
    Some(match layer {
        1 => (12 * kbps * 1000 / rate + pad) * 4,
        2 => 144 * kbps * 1000 / rate + pad,
        _ if mpeg1 => 144 * kbps * 1000 / rate + pad,
        _ => 72 * kbps * 1000 / rate + pad,
    })
}

/// Reads 4-byte headers at arbitrary positions through a 64 KiB window.
struct Window<'a> {
    source: &'a mut dyn MediaSource,
    at: u64,
    buf: Vec<u8>,
}

impl Window<'_> {
    fn header(&mut self, pos: u64) -> Option<[u8; 4]> {
        if pos < self.at || pos + 4 > self.at + self.buf.len() as u64 {
            self.source.seek(SeekFrom::Start(pos)).ok()?;
            self.buf.resize(64 << 10, 0);
            let mut filled = 0;
            while filled < self.buf.len() {
                match self.source.read(&mut self.buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => return None,
                }
            }
            self.buf.truncate(filled);
            self.at = pos;
            if self.buf.len() < 4 {
                return None;
            }
        }
        let i = (pos - self.at) as usize;
        Some(self.buf[i..i + 4].try_into().expect("4 bytes"))
    }
}

/// Whether the MPEG audio stream in `start..end` ends inside a frame: `Some(whole frames)` when
/// the last frame runs past `end`, `None` when it ends cleanly or the data is not MPEG audio.
///
/// The first frame must be confirmed by a second header right after it (sync words occur by
/// chance in tag data); damage in the middle is skipped by resynchronising, like a decoder.
pub(crate) fn ends_mid_frame(source: &mut dyn MediaSource, start: u64, end: u64) -> Option<u64> {
    let mut w = Window {
        source,
        at: 0,
        buf: Vec::new(),
    };
    let confirmed = |w: &mut Window<'_>, p: u64| -> Option<u64> {
        let len = frame_len(w.header(p)?)?;
        let next = p + len;
        (next >= end || w.header(next).and_then(frame_len).is_some()).then_some(len)
    };
    // The first frame, within 64 KiB of the start.
    let mut p = (start..(start + (64 << 10)).min(end)).find(|&p| confirmed(&mut w, p).is_some())?;
    let mut frames = 0u64;
    loop {
        let len = match w.header(p).and_then(frame_len) {
            Some(len) => len,
            None => {
                // Damage: resynchronise within 8 KiB, as a decoder would.
                p = (p + 1..(p + (8 << 10)).min(end)).find(|&q| confirmed(&mut w, q).is_some())?;
                continue;
            }
        };
        if p + len > end {
            return Some(frames);
        }
        frames += 1;
        p += len;
        if end - p < 4 {
            let _ = w.source.seek(SeekFrom::Start(0));
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// MPEG-1 Layer III, 128 kb/s, 44.1 kHz, no padding: 417 bytes.
    const HEADER: [u8; 4] = [0xFF, 0xFB, 0x90, 0x00];

    #[test]
    fn frame_lengths_follow_the_standard() {
        assert_eq!(frame_len(HEADER), Some(417));
        assert_eq!(frame_len([0xFF, 0xFB, 0x92, 0x00]), Some(418), "padding");
        // MPEG-2 Layer III, 64 kb/s, 22.05 kHz: 72 * 64000 / 22050 = 208.
        assert_eq!(frame_len([0xFF, 0xF3, 0x82, 0x00]), Some(209));
        // Layer II at 48 kHz, 192 kb/s: 576.
        assert_eq!(frame_len([0xFF, 0xFD, 0xA4, 0x00]), Some(576));
        assert_eq!(frame_len([0xFF, 0xFB, 0xF0, 0x00]), None, "bad bit rate");
        assert_eq!(frame_len([0xFF, 0xFB, 0x0C, 0x00]), None, "free format");
        assert_eq!(frame_len([0x00, 0xFB, 0x90, 0x00]), None);
    }

    fn stream(frames: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for _ in 0..frames {
            v.extend_from_slice(&HEADER);
            v.resize(v.len() + 413, 0);
        }
        v
    }

    #[test]
    fn a_cut_last_frame_is_found() {
        let whole = stream(10);
        let mut src = Cursor::new(whole.clone());
        assert_eq!(ends_mid_frame(&mut src, 0, whole.len() as u64), None);
        let cut = &whole[..whole.len() - 100];
        let mut src = Cursor::new(cut.to_vec());
        assert_eq!(ends_mid_frame(&mut src, 0, cut.len() as u64), Some(9));
        let mut src = Cursor::new(b"not audio at all".to_vec());
        assert_eq!(ends_mid_frame(&mut src, 0, 16), None);
    }
}
