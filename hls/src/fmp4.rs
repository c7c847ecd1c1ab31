//! CMAF fragmented MP4 for one audio track (ISO/IEC 14496-12, ISO/IEC 23000-19).

use crate::boxes::{bx, full, u16, u32, u64, zeros};
use crate::{Error, Result};

/// The codec-specific part of the sample entry.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleEntry {
    /// `Opus` with `dOps` (Encapsulation of Opus in ISO BMFF, section 4.3).
    Opus {
        /// `PreSkip`: samples to discard from the decoder output.
        pre_skip: u16,
        /// `InputSampleRate`, informational.
        input_rate: u32,
    },
    /// `mp4a` with `esds` (ISO/IEC 14496-14 5.6), carrying the AudioSpecificConfig.
    Aac {
        /// AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1).
        asc: Vec<u8>,
    },
    /// `fLaC` with `dfLa` (Encapsulation of FLAC in ISO BMFF, section 3.3.2).
    Flac {
        /// The 34-byte STREAMINFO body.
        streaminfo: Vec<u8>,
    },
}

/// Everything the init segment states about the track.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackInfo {
    /// Sample entry.
    pub entry: SampleEntry,
    /// The media timescale, equal to the sample rate.
    pub timescale: u32,
    /// Channels.
    pub channels: u16,
    /// Samples at the start of the decoded stream that are not presented (encoder delay plus
    /// alignment); written as the edit list's `media_time`.
    pub priming: u32,
    /// Presented samples; the edit list's `segment_duration`.
    pub duration: u64,
    /// Average and peak bitrates in bits per second, for `esds`.
    pub bitrate: (u32, u32),
}

const TRACK_ID: u32 = 1;
const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// Renders the init segment: `ftyp` and `moov`.
///
/// The edit list (`edts/elst`, ISO/IEC 14496-12 8.6.6) presents `duration` samples starting at
/// `priming`, which trims encoder delay at the start and leaves no padding at the end. AAC also gets
/// an iTunes `iTunSMPB` tag with the same values, because ffmpeg's fragmented-MP4 reader honours
/// that tag but not the edit list when skipping AAC priming.
pub fn init_segment(track: &TrackInfo) -> Result<Vec<u8>> {
    let fields = audio_fields(track)?;
    let ts = track.timescale;
    let media_duration = u64::from(track.priming) + track.duration;
    let long = media_duration > u64::from(u32::MAX);
    let mut out = Vec::with_capacity(1024);
    bx(&mut out, b"ftyp", |o| {
        o.extend_from_slice(b"iso6");
        u32(o, 0);
        for brand in [b"iso6", b"cmfc", b"mp41"] {
            o.extend_from_slice(brand);
        }
    });
    bx(&mut out, b"moov", |o| {
        full(o, b"mvhd", u8::from(long), 0, |o| {
            times(o, long, ts, track.duration);
            u32(o, 0x0001_0000); // rate 1.0
            u16(o, 0x0100); // volume 1.0
            zeros(o, 10);
            UNITY_MATRIX.iter().for_each(|&m| u32(o, m));
            zeros(o, 24);
            u32(o, TRACK_ID + 1);
        });
        bx(o, b"trak", |o| {
            // flags: track_enabled | track_in_movie
            full(o, b"tkhd", u8::from(long), 0x3, |o| {
                if long {
                    u64(o, 0);
                    u64(o, 0);
                } else {
                    u32(o, 0);
                    u32(o, 0);
                }
                u32(o, TRACK_ID);
                u32(o, 0);
                if long {
                    u64(o, track.duration);
                } else {
                    u32(o, track.duration as u32);
                }
                zeros(o, 8);
                u16(o, 0); // layer
                u16(o, 1); // alternate_group: audio
                u16(o, 0x0100); // volume
                u16(o, 0);
                UNITY_MATRIX.iter().for_each(|&m| u32(o, m));
                u32(o, 0);
                u32(o, 0);
            });
            if track.priming > 0 {
                bx(o, b"edts", |o| {
                    full(o, b"elst", u8::from(long), 0, |o| {
                        u32(o, 1);
                        if long {
                            u64(o, track.duration);
                            u64(o, u64::from(track.priming));
                        } else {
                            u32(o, track.duration as u32);
                            u32(o, track.priming);
                        }
                        u16(o, 1); // media_rate_integer
                        u16(o, 0);
                    });
                });
            }
            bx(o, b"mdia", |o| {
                full(o, b"mdhd", u8::from(long), 0, |o| {
                    times(o, long, ts, media_duration);
                    u16(o, 0x55C4); // 'und'
                    u16(o, 0);
                });
                full(o, b"hdlr", 0, 0, |o| {
                    u32(o, 0);
                    o.extend_from_slice(b"soun");
                    zeros(o, 12);
                    o.extend_from_slice(b"SoundHandler\0");
                });
                bx(o, b"minf", |o| {
                    full(o, b"smhd", 0, 0, |o| u32(o, 0));
                    bx(o, b"dinf", |o| {
                        full(o, b"dref", 0, 0, |o| {
                            u32(o, 1);
                            full(o, b"url ", 0, 1, |_| {});
                        });
                    });
                    bx(o, b"stbl", |o| {
                        full(o, b"stsd", 0, 0, |o| {
                            u32(o, 1);
                            sample_entry(o, track, fields);
                        });
                        full(o, b"stts", 0, 0, |o| u32(o, 0));
                        full(o, b"stsc", 0, 0, |o| u32(o, 0));
                        full(o, b"stsz", 0, 0, |o| {
                            u32(o, 0);
                            u32(o, 0);
                        });
                        full(o, b"stco", 0, 0, |o| u32(o, 0));
                    });
                });
            });
        });
        bx(o, b"mvex", |o| {
            full(o, b"trex", 0, 0, |o| {
                u32(o, TRACK_ID);
                u32(o, 1); // default_sample_description_index
                u32(o, 0);
                u32(o, 0);
                u32(o, 0);
            });
        });
        if matches!(track.entry, SampleEntry::Aac { .. }) && track.priming > 0 {
            itunes_gapless(o, track.priming, track.duration);
        }
    });
    Ok(out)
}

fn times(o: &mut Vec<u8>, long: bool, timescale: u32, duration: u64) {
    if long {
        u64(o, 0);
        u64(o, 0);
        u32(o, timescale);
        u64(o, duration);
    } else {
        u32(o, 0);
        u32(o, 0);
        u32(o, timescale);
        u32(o, duration as u32);
    }
}

/// The `channelcount`, `samplesize` and 16.16 `samplerate` fields of the AudioSampleEntry
/// (ISO/IEC 14496-12 12.2.3), as each codec's encapsulation defines them.
///
/// - FLAC (Encapsulation of FLAC in ISO BMFF, 3.3.1): all three equal STREAMINFO's channels, bits
///   per sample and sample rate. Browsers check this (Chromium refuses an init whose sample size
///   differs from STREAMINFO's). A rate above 65 535 Hz, which 16.16 cannot hold, is written as
///   its greatest expressible regular division (48 000 for 96 and 192 kHz), or 65 535 when it has
///   none; readers take the real rate from STREAMINFO.
/// - Opus (Encapsulation of Opus in ISO BMFF, 4.3): `OutputChannelCount`, 16 and 48 000.
/// - AAC (ISO/IEC 14496-14 6.7): the channel count, 16 and the track's rate.
fn audio_fields(track: &TrackInfo) -> Result<(u16, u16, u32)> {
    match &track.entry {
        SampleEntry::Flac { streaminfo } => {
            let info = StreamInfo::parse(streaminfo)?;
            if u32::from(info.channels) != u32::from(track.channels)
                || info.sample_rate != track.timescale
            {
                return Err(Error::Overflow(format!(
                    "STREAMINFO says {} channels at {} Hz, the track {} at {}",
                    info.channels, info.sample_rate, track.channels, track.timescale
                )));
            }
            Ok((
                u16::from(info.channels),
                u16::from(info.bits_per_sample),
                entry_rate(info.sample_rate),
            ))
        }
        SampleEntry::Opus { .. } | SampleEntry::Aac { .. } => {
            Ok((track.channels, 16, entry_rate(track.timescale)))
        }
    }
}

/// `rate` in the 16.16 `samplerate` field: exact up to 65 535 Hz, else halved while it stays
/// whole (the FLAC encapsulation's "regular division"), else 65 535.
fn entry_rate(rate: u32) -> u32 {
    let mut r = rate;
    while r > 0xFFFF && r.is_multiple_of(2) {
        r /= 2;
    }
    r.min(0xFFFF) << 16
}

/// The fields of a FLAC STREAMINFO block that the sample entry repeats (RFC 9639 8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StreamInfo {
    sample_rate: u32,
    channels: u8,
    bits_per_sample: u8,
}

impl StreamInfo {
    fn parse(body: &[u8]) -> Result<Self> {
        if body.len() != 34 {
            return Err(Error::Overflow(format!(
                "STREAMINFO of {} bytes, not 34",
                body.len()
            )));
        }
        // Bytes 10..13: sample rate (20 bits), channels - 1 (3 bits), bits per sample - 1 (5 bits).
        let packed = u32::from_be_bytes([body[10], body[11], body[12], body[13]]);
        Ok(StreamInfo {
            sample_rate: packed >> 12,
            channels: ((packed >> 9) & 0x7) as u8 + 1,
            bits_per_sample: ((packed >> 4) & 0x1F) as u8 + 1,
        })
    }
}

fn sample_entry(o: &mut Vec<u8>, track: &TrackInfo, fields: (u16, u16, u32)) {
    let kind = match track.entry {
        SampleEntry::Opus { .. } => b"Opus",
        SampleEntry::Aac { .. } => b"mp4a",
        SampleEntry::Flac { .. } => b"fLaC",
    };
    let (channelcount, samplesize, samplerate) = fields;
    bx(o, kind, |o| {
        // SampleEntry (8.5.2): reserved, data_reference_index
        zeros(o, 6);
        u16(o, 1);
        // AudioSampleEntry (12.2.3): reserved, channelcount, samplesize, pre_defined, reserved,
        // samplerate
        zeros(o, 8);
        u16(o, channelcount);
        u16(o, samplesize);
        u32(o, 0);
        u32(o, samplerate);
        match &track.entry {
            SampleEntry::Opus {
                pre_skip,
                input_rate,
            } => bx(o, b"dOps", |o| {
                o.push(0); // Version
                o.push(track.channels as u8);
                u16(o, *pre_skip);
                u32(o, *input_rate);
                u16(o, 0); // OutputGain
                o.push(0); // ChannelMappingFamily 0: mono or stereo
            }),
            SampleEntry::Aac { asc } => full(o, b"esds", 0, 0, |o| esds(o, asc, track.bitrate)),
            SampleEntry::Flac { streaminfo } => full(o, b"dfLa", 0, 0, |o| {
                o.push(0x80); // last-metadata-block flag, type 0 STREAMINFO
                o.extend_from_slice(&34u32.to_be_bytes()[1..]);
                o.extend_from_slice(streaminfo);
            }),
        }
    });
}

/// ES_Descriptor (ISO/IEC 14496-1 7.2.6.5) with its DecoderConfigDescriptor and
/// DecoderSpecificInfo; every descriptor here is shorter than 128 bytes, so lengths take one byte.
fn esds(o: &mut Vec<u8>, asc: &[u8], (avg, max): (u32, u32)) {
    let dsi_len = asc.len() as u8;
    let dcd_len = 13 + 2 + dsi_len;
    o.push(0x03);
    o.push(3 + 2 + dcd_len + 3);
    u16(o, 1); // ES_ID
    o.push(0);
    o.push(0x04);
    o.push(dcd_len);
    o.push(0x40); // objectTypeIndication: MPEG-4 Audio
    o.push(0x15); // streamType 5 (audio) << 2 | 1
    o.extend_from_slice(&[0, 0x18, 0]); // bufferSizeDB: 6144 bytes
    u32(o, max);
    u32(o, avg);
    o.push(0x05);
    o.push(dsi_len);
    o.extend_from_slice(asc);
    o.push(0x06); // SLConfigDescriptor
    o.push(1);
    o.push(0x02);
}

/// `udta/meta/ilst/----` with `iTunSMPB`: " 00000000 <priming> <padding> <samples> ..." in hex.
fn itunes_gapless(o: &mut Vec<u8>, priming: u32, duration: u64) {
    let value = format!(
        " 00000000 {priming:08X} 00000000 {duration:016X} 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000"
    );
    bx(o, b"udta", |o| {
        full(o, b"meta", 0, 0, |o| {
            full(o, b"hdlr", 0, 0, |o| {
                u32(o, 0);
                o.extend_from_slice(b"mdir");
                o.extend_from_slice(b"appl");
                zeros(o, 8);
                o.push(0);
            });
            bx(o, b"ilst", |o| {
                bx(o, b"----", |o| {
                    full(o, b"mean", 0, 0, |o| {
                        o.extend_from_slice(b"com.apple.iTunes")
                    });
                    full(o, b"name", 0, 0, |o| o.extend_from_slice(b"iTunSMPB"));
                    bx(o, b"data", |o| {
                        u32(o, 1); // UTF-8
                        u32(o, 0);
                        o.extend_from_slice(value.as_bytes());
                    });
                });
            });
        });
    });
}

/// Renders one media segment: `styp`, `moof` (`mfhd`, `traf` with `tfhd`, `tfdt`, `trun`) and
/// `mdat`. `samples` are `(bytes, duration)` in decode order; `base_time` is the decode time of the
/// first, in the track's timescale.
pub fn media_segment(sequence: u32, base_time: u64, samples: &[(Vec<u8>, u32)]) -> Result<Vec<u8>> {
    let mut out = styp();
    out.extend(chunk(sequence, base_time, samples)?);
    Ok(out)
}

/// The `styp` box that opens a media segment (ISO/IEC 23000-19 7.3.3: brands `msdh`, `msix` and
/// `cmfs`).
pub fn styp() -> Vec<u8> {
    let mut out = Vec::with_capacity(28);
    bx(&mut out, b"styp", |o| {
        o.extend_from_slice(b"msdh");
        u32(o, 0);
        for brand in [b"msdh", b"msix", b"cmfs"] {
            o.extend_from_slice(brand);
        }
    });
    out
}

/// Renders one CMAF chunk (ISO/IEC 23000-19 7.3.2.3): a `moof` and its `mdat`, decodable on its
/// own. A media segment is a `styp` followed by its chunks; an LL-HLS part is one chunk.
pub fn chunk(sequence: u32, base_time: u64, samples: &[(Vec<u8>, u32)]) -> Result<Vec<u8>> {
    let payload: usize = samples.iter().map(|(d, _)| d.len()).sum();
    if samples.len() > u32::MAX as usize / 8 || payload > u32::MAX as usize - 1024 {
        return Err(Error::Overflow(format!(
            "{} samples of {payload} bytes in one segment",
            samples.len()
        )));
    }
    let mut out = Vec::with_capacity(payload + 64 + samples.len() * 8);
    let moof_start = out.len();
    let mut offset_at = 0;
    bx(&mut out, b"moof", |o| {
        full(o, b"mfhd", 0, 0, |o| u32(o, sequence));
        bx(o, b"traf", |o| {
            // default-base-is-moof: data offsets count from this moof.
            full(o, b"tfhd", 0, 0x02_0000, |o| u32(o, TRACK_ID));
            full(o, b"tfdt", 1, 0, |o| u64(o, base_time));
            // data-offset-present | sample-duration-present | sample-size-present
            full(o, b"trun", 0, 0x000301, |o| {
                u32(o, samples.len() as u32);
                offset_at = o.len();
                u32(o, 0);
                for (data, duration) in samples {
                    u32(o, *duration);
                    u32(o, data.len() as u32);
                }
            });
        });
    });
    let data_offset = (out.len() - moof_start + 8) as u32;
    out[offset_at..offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    bx(&mut out, b"mdat", |o| {
        for (data, _) in samples {
            o.extend_from_slice(data);
        }
    });
    Ok(out)
}

/// The `emsg` scheme of ID3 timed metadata in CMAF (AOM "Carriage of ID3 Timed Metadata in the
/// Common Media Application Format", 2.1).
pub const ID3_SCHEME: &str = "https://aomedia.org/emsg/ID3";

/// An `emsg` box, version 1 (ISO/IEC 23009-1 5.10.3.3), carrying an ID3v2.4 tag whose `TIT2`
/// frame is `title`: a now-playing cue at `presentation_time` (in `timescale`). It goes before
/// the `moof` of the chunk it belongs to; players (hls.js) surface it as a metadata cue.
pub fn emsg_id3(timescale: u32, presentation_time: u64, id: u32, title: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + title.len());
    full(&mut out, b"emsg", 1, 0, |o| {
        u32(o, timescale);
        u64(o, presentation_time);
        u32(o, 0xFFFF_FFFF); // event_duration: until the next one
        u32(o, id);
        o.extend_from_slice(ID3_SCHEME.as_bytes());
        o.push(0);
        o.push(0); // value: empty
        o.extend_from_slice(&id3_title(title));
    });
    out
}

/// An ID3v2.4 tag (id3.org, "ID3 tag version 2.4.0 - Main Structure") with one UTF-8 `TIT2` frame.
pub fn id3_title(title: &str) -> Vec<u8> {
    // Sizes are 28-bit synchsafe integers: keep the frame well inside that.
    let text: &str = &title[..floor_char_boundary(title, 4096)];
    let frame_len = 1 + text.len() as u32;
    let mut frame = Vec::with_capacity(10 + frame_len as usize);
    frame.extend_from_slice(b"TIT2");
    frame.extend_from_slice(&synchsafe(frame_len));
    frame.extend_from_slice(&[0, 0]);
    frame.push(3); // UTF-8
    frame.extend_from_slice(text.as_bytes());
    let mut tag = Vec::with_capacity(10 + frame.len());
    tag.extend_from_slice(b"ID3\x04\x00\x00");
    tag.extend_from_slice(&synchsafe(frame.len() as u32));
    tag.extend_from_slice(&frame);
    tag
}

fn synchsafe(n: u32) -> [u8; 4] {
    [
        (n >> 21 & 0x7F) as u8,
        (n >> 14 & 0x7F) as u8,
        (n >> 7 & 0x7F) as u8,
        (n & 0x7F) as u8,
    ]
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emsg_carries_an_id3_title() {
        let e = emsg_id3(48_000, 96_000, 7, "Artist – Song");
        assert_eq!(&e[4..8], b"emsg");
        assert_eq!(
            u32::from_be_bytes(e[0..4].try_into().unwrap()) as usize,
            e.len()
        );
        assert_eq!(e[8], 1, "version 1");
        assert_eq!(u32::from_be_bytes(e[12..16].try_into().unwrap()), 48_000);
        assert_eq!(u64::from_be_bytes(e[16..24].try_into().unwrap()), 96_000);
        assert_eq!(u32::from_be_bytes(e[28..32].try_into().unwrap()), 7);
        let scheme_end = 32 + ID3_SCHEME.len();
        assert_eq!(&e[32..scheme_end], ID3_SCHEME.as_bytes());
        assert_eq!(&e[scheme_end..scheme_end + 2], &[0, 0]);
        let tag = &e[scheme_end + 2..];
        assert_eq!(&tag[..5], b"ID3\x04\x00");
        assert_eq!(&tag[10..14], b"TIT2");
        assert_eq!(tag[20], 3);
        assert_eq!(std::str::from_utf8(&tag[21..]).unwrap(), "Artist – Song");
        assert_eq!(synchsafe(200), [0, 0, 1, 0x48]);
    }

    #[test]
    fn media_segment_layout() {
        let seg = media_segment(7, 960, &[(vec![1, 2, 3], 960), (vec![4], 960)]).unwrap();
        // styp (28) + moof + mdat header (8) + 4 payload bytes
        assert_eq!(&seg[4..8], b"styp");
        let moof_len = u32::from_be_bytes(seg[28..32].try_into().unwrap()) as usize;
        assert_eq!(&seg[32..36], b"moof");
        let mdat = 28 + moof_len;
        assert_eq!(&seg[mdat + 4..mdat + 8], b"mdat");
        assert_eq!(&seg[mdat + 8..], &[1, 2, 3, 4]);
        // the trun data offset points at the first payload byte, counted from moof
        let trun = seg.windows(4).position(|w| w == b"trun").unwrap();
        let offset = u32::from_be_bytes(seg[trun + 12..trun + 16].try_into().unwrap()) as usize;
        assert_eq!(28 + offset, mdat + 8);
    }

    #[test]
    fn opus_init_has_dops_and_edit_list() {
        let init = init_segment(&TrackInfo {
            entry: SampleEntry::Opus {
                pre_skip: 1336,
                input_rate: 44_100,
            },
            timescale: 48_000,
            channels: 2,
            priming: 1336,
            duration: 48_000,
            bitrate: (96_000, 96_000),
        })
        .unwrap();
        let dops = init.windows(4).position(|w| w == b"dOps").unwrap();
        assert_eq!(
            &init[dops + 4..dops + 15],
            &[0, 2, 0x05, 0x38, 0, 0, 0xAC, 0x44, 0, 0, 0]
        );
        let elst = init.windows(4).position(|w| w == b"elst").unwrap();
        assert_eq!(
            &init[elst + 8..elst + 20],
            &[0, 0, 0, 1, 0, 0, 0xBB, 0x80, 0, 0, 0x05, 0x38]
        );
        assert!(!init.windows(8).any(|w| w == b"iTunSMPB"));
    }

    #[test]
    fn aac_init_carries_itunsmpb() {
        let init = init_segment(&TrackInfo {
            entry: SampleEntry::Aac {
                asc: vec![0x11, 0x90],
            },
            timescale: 48_000,
            channels: 2,
            priming: 2048,
            duration: 1000,
            bitrate: (128_000, 128_000),
        })
        .unwrap();
        let text = String::from_utf8_lossy(&init);
        assert!(text.contains(" 00000000 00000800 00000000 00000000000003E8"));
        assert!(init.windows(4).any(|w| w == b"esds"));
    }

    /// A STREAMINFO body for `rate`, `channels` and `bits` (RFC 9639 8.2).
    fn streaminfo(rate: u32, channels: u8, bits: u8) -> Vec<u8> {
        let mut s = vec![0x10, 0x00, 0x10, 0x00, 0, 0, 0, 0, 0, 0];
        let packed = (rate << 12) | (u32::from(channels - 1) << 9) | (u32::from(bits - 1) << 4);
        s.extend_from_slice(&packed.to_be_bytes());
        s.resize(34, 0);
        s
    }

    /// `(channelcount, samplesize, samplerate)` of the init's sample entry of type `kind`.
    fn entry_fields(init: &[u8], kind: &[u8; 4]) -> (u16, u16, u32) {
        let at = init.windows(4).position(|w| w == kind).unwrap() + 4;
        let f = &init[at + 16..at + 28];
        (
            u16::from_be_bytes([f[0], f[1]]),
            u16::from_be_bytes([f[2], f[3]]),
            u32::from_be_bytes([f[8], f[9], f[10], f[11]]),
        )
    }

    fn flac_track(rate: u32, channels: u8, bits: u8) -> TrackInfo {
        TrackInfo {
            entry: SampleEntry::Flac {
                streaminfo: streaminfo(rate, channels, bits),
            },
            timescale: rate,
            channels: u16::from(channels),
            priming: 0,
            duration: 10,
            bitrate: (0, 0),
        }
    }

    #[test]
    fn flac_sample_entry_agrees_with_streaminfo() {
        for (rate, field) in [
            (44_100, 44_100),
            (48_000, 48_000),
            (88_200, 44_100),
            (96_000, 48_000),
            (176_400, 44_100),
            (192_000, 48_000),
            (384_000, 48_000),
            (65_535, 65_535),
            // No whole halving fits: the encapsulation's fallback.
            (100_001, 65_535),
        ] {
            for bits in [16, 24] {
                for channels in [1, 2] {
                    let init = init_segment(&flac_track(rate, channels, bits)).unwrap();
                    assert_eq!(
                        entry_fields(&init, b"fLaC"),
                        (u16::from(channels), u16::from(bits), field << 16),
                        "{rate} Hz, {bits} bits, {channels} channels"
                    );
                    let dfla = init.windows(4).position(|w| w == b"dfLa").unwrap();
                    assert_eq!(
                        &init[dfla + 8..dfla + 12],
                        &[0x80, 0, 0, 34],
                        "one last block, STREAMINFO"
                    );
                }
            }
        }
    }

    #[test]
    fn flac_streaminfo_must_match_the_track() {
        let mut track = flac_track(96_000, 2, 24);
        track.timescale = 48_000;
        assert!(init_segment(&track).is_err());
        let mut track = flac_track(48_000, 2, 24);
        track.channels = 1;
        assert!(init_segment(&track).is_err());
    }

    #[test]
    fn lossy_sample_entries_state_channels_16_bits_and_48_khz() {
        for channels in [1u16, 2] {
            let opus = init_segment(&TrackInfo {
                entry: SampleEntry::Opus {
                    pre_skip: 312,
                    input_rate: 44_100,
                },
                timescale: 48_000,
                channels,
                priming: 960,
                duration: 48_000,
                bitrate: (96_000, 96_000),
            })
            .unwrap();
            assert_eq!(entry_fields(&opus, b"Opus"), (channels, 16, 48_000 << 16));
            let dops = opus.windows(4).position(|w| w == b"dOps").unwrap();
            assert_eq!(u16::from(opus[dops + 5]), channels, "OutputChannelCount");
            let aac = init_segment(&TrackInfo {
                entry: SampleEntry::Aac {
                    asc: vec![0x11, 0x80 | (channels as u8) << 3],
                },
                timescale: 48_000,
                channels,
                priming: 1024,
                duration: 48_000,
                bitrate: (128_000, 128_000),
            })
            .unwrap();
            assert_eq!(entry_fields(&aac, b"mp4a"), (channels, 16, 48_000 << 16));
        }
    }

    #[test]
    fn flac_streaminfo_must_be_34_bytes() {
        let track = TrackInfo {
            entry: SampleEntry::Flac {
                streaminfo: vec![0; 10],
            },
            timescale: 96_000,
            channels: 2,
            priming: 0,
            duration: 10,
            bitrate: (0, 0),
        };
        assert!(init_segment(&track).is_err());
    }
}
