//! Plain HLS in MPEG-TS (RFC 8216 §3.2, ISO/IEC 13818-1) for the devices that play no fragmented
//! MP4: Sonos, Alexa, set-top boxes and old phones. AAC-LC access units become ADTS frames in PES
//! packets on one audio PID; every segment opens with the PAT and the PMT, so that each plays on
//! its own; now-playing travels as timed ID3 (Apple's "Timed Metadata for HTTP Live Streaming":
//! an ID3v2.4 `TIT2` in a PES on a metadata PID of stream type 0x15).
//!
//! The 188-byte packets, the PSI tables with their CRC, the PES headers and the adaptation
//! fields are written by the `mpeg2ts` crate; this module decides what goes where and when.

use crate::error::{Error, Result};
use crate::fmp4::id3_title;
use crate::progressive::Adts;
use mpeg2ts::es::{StreamId, StreamType};
use mpeg2ts::pes::PesHeader;
use mpeg2ts::time::{ClockReference, Timestamp};
use mpeg2ts::ts::payload::{Bytes, Pat, Pes, Pmt};
use mpeg2ts::ts::{
    AdaptationField, ContinuityCounter, Descriptor, EsInfo, Pid, ProgramAssociation,
    TransportScramblingControl, TsHeader, TsPacket, TsPacketWriter, TsPayload, VersionNumber,
    WriteTsPacket,
};

const PMT_PID: u16 = 0x1000;
const AUDIO_PID: u16 = 0x100;
const ID3_PID: u16 = 0x101;
/// Input timestamps are in samples at this rate.
const RATE: u64 = 48_000;
/// Access units per PES packet: 4 AAC frames (85 ms), so that a PCR comes at least every
/// 100 ms, as ISO/IEC 13818-1 asks.
const FRAMES_PER_PES: usize = 4;
/// The PCR runs this far (90 kHz) behind the PTS: the decoder's buffering room.
const PTS_DELAY: u64 = 63_000;
/// Both clocks start here, so that the first PTS is never near zero.
const CLOCK_BASE: u64 = 90_000;
/// `ID3 `: the metadata format of the PMT's descriptors.
const ID3: [u8; 4] = *b"ID3 ";

/// One finished segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsSegment {
    /// Its first sample, at 48 kHz.
    pub start: u64,
    /// Samples it holds, at 48 kHz.
    pub samples: u64,
    /// Its bytes: whole 188-byte packets.
    pub bytes: Vec<u8>,
}

impl TsSegment {
    /// Its length in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples as f64 / RATE as f64
    }
}

/// The segment being written.
struct Building {
    start: u64,
    samples: u64,
    bytes: Vec<u8>,
}

/// Cuts a channel's AAC access units into MPEG-TS segments of about `segment_samples` each.
pub struct TsSegmenter {
    adts: Adts,
    segment_samples: u64,
    cc: [ContinuityCounter; 4],
    current: Option<Building>,
    /// ADTS frames waiting for their PES packet, and the first one's timestamp.
    pending: Vec<u8>,
    pending_frames: usize,
    pending_pts: u64,
    /// The now-playing title, written at each segment's start and whenever it changes.
    title: Option<String>,
    /// A title set since the last access unit: written before the next one.
    title_due: bool,
}

/// Which continuity counter.
#[derive(Clone, Copy)]
enum Cc {
    Pat = 0,
    Pmt = 1,
    Audio = 2,
    Id3 = 3,
}

impl TsSegmenter {
    /// A segmenter for the AAC stream an AudioSpecificConfig describes.
    pub fn new(asc: &[u8], segment_samples: u64) -> Result<TsSegmenter> {
        Ok(TsSegmenter {
            adts: Adts::new(asc)?,
            segment_samples: segment_samples.max(1),
            cc: Default::default(),
            current: None,
            pending: Vec::new(),
            pending_frames: 0,
            pending_pts: 0,
            title: None,
            title_due: false,
        })
    }

    /// Now-playing changed: an ID3 tag goes out with the next access unit, and opens every
    /// segment after it.
    pub fn set_title(&mut self, title: &str) {
        if self.title.as_deref() != Some(title) {
            self.title = Some(title.to_string());
            self.title_due = true;
        }
    }

    /// Adds one AAC access unit of `samples` samples starting at `pts` (48 kHz). Returns the
    /// segment it closed, if starting it would make the current one longer than its target.
    pub fn push(
        &mut self,
        access_unit: &[u8],
        pts: u64,
        samples: u32,
    ) -> Result<Option<TsSegment>> {
        let frame = self.adts.frame(access_unit)?;
        let closed = match &self.current {
            Some(b) if b.samples >= self.segment_samples => self.close()?,
            _ => None,
        };
        if self.current.is_none() {
            self.open(pts)?;
        }
        if self.title_due {
            self.title_due = false;
            self.flush()?;
            self.write_id3(pts)?;
        }
        if self.pending_frames == 0 {
            self.pending_pts = pts;
        }
        self.pending.extend_from_slice(&frame);
        self.pending_frames += 1;
        if let Some(b) = self.current.as_mut() {
            b.samples += u64::from(samples);
        }
        if self.pending_frames >= FRAMES_PER_PES {
            self.flush()?;
        }
        Ok(closed)
    }

    /// Ends the current segment (the stream stopped): it is returned even if short.
    pub fn finish(&mut self) -> Result<Option<TsSegment>> {
        self.close()
    }

    fn close(&mut self) -> Result<Option<TsSegment>> {
        self.flush()?;
        Ok(self.current.take().map(|b| TsSegment {
            start: b.start,
            samples: b.samples,
            bytes: b.bytes,
        }))
    }

    fn open(&mut self, pts: u64) -> Result<()> {
        self.current = Some(Building {
            start: pts,
            samples: 0,
            bytes: Vec::with_capacity(128 << 10),
        });
        self.write_tables()?;
        // A player that starts at this segment learns what plays at once.
        if self.title.is_some() {
            self.title_due = false;
            self.write_id3(pts)?;
        }
        Ok(())
    }

    fn header(&mut self, pid: u16, which: Cc) -> Result<TsHeader> {
        let cc = self.cc[which as usize];
        self.cc[which as usize].increment();
        Ok(TsHeader {
            transport_error_indicator: false,
            transport_priority: false,
            pid: pid_of(pid)?,
            transport_scrambling_control: TransportScramblingControl::NotScrambled,
            continuity_counter: cc,
        })
    }

    fn write(&mut self, packet: &TsPacket) -> Result<()> {
        let out = &mut self.current.as_mut().expect("a segment is open").bytes;
        TsPacketWriter::new(out)
            .write_ts_packet(packet)
            .map_err(ts_error)
    }

    fn write_tables(&mut self) -> Result<()> {
        let pat = TsPacket {
            header: self.header(0, Cc::Pat)?,
            adaptation_field: None,
            payload: Some(TsPayload::Pat(Pat {
                transport_stream_id: 1,
                version_number: VersionNumber::new(),
                table: vec![ProgramAssociation {
                    program_num: 1,
                    program_map_pid: pid_of(PMT_PID)?,
                }],
            })),
        };
        self.write(&pat)?;
        // Apple's timed metadata: a metadata_pointer_descriptor for the program, a
        // metadata_descriptor for the stream, both naming ID3.
        let mut pointer = vec![0xFF, 0xFF];
        pointer.extend_from_slice(&ID3);
        pointer.push(0xFF);
        pointer.extend_from_slice(&ID3);
        pointer.extend_from_slice(&[0x00, 0x1F, 0x00, 0x01]);
        let mut meta = vec![0xFF, 0xFF];
        meta.extend_from_slice(&ID3);
        meta.push(0xFF);
        meta.extend_from_slice(&ID3);
        meta.extend_from_slice(&[0x00, 0x0F]);
        let pmt = TsPacket {
            header: self.header(PMT_PID, Cc::Pmt)?,
            adaptation_field: None,
            payload: Some(TsPayload::Pmt(Pmt {
                program_num: 1,
                pcr_pid: Some(pid_of(AUDIO_PID)?),
                version_number: VersionNumber::new(),
                program_info: vec![Descriptor {
                    tag: 0x25,
                    data: pointer,
                }],
                es_info: vec![
                    EsInfo {
                        stream_type: StreamType::AdtsAac,
                        elementary_pid: pid_of(AUDIO_PID)?,
                        descriptors: Vec::new(),
                    },
                    EsInfo {
                        stream_type: StreamType::PacketizedMetadata,
                        elementary_pid: pid_of(ID3_PID)?,
                        descriptors: vec![Descriptor {
                            tag: 0x26,
                            data: meta,
                        }],
                    },
                ],
            })),
        };
        self.write(&pmt)
    }

    /// Writes the pending ADTS frames as one PES packet, with a PCR in its first TS packet.
    fn flush(&mut self) -> Result<()> {
        if self.pending_frames == 0 {
            return Ok(());
        }
        let data = std::mem::take(&mut self.pending);
        self.pending_frames = 0;
        let pts90 = CLOCK_BASE + self.pending_pts * 90_000 / RATE;
        self.write_pes(
            AUDIO_PID,
            Cc::Audio,
            StreamId::new(0xC0),
            pts90 + PTS_DELAY,
            Some(pts90),
            &data,
        )
    }

    fn write_id3(&mut self, pts: u64) -> Result<()> {
        let Some(title) = self.title.clone() else {
            return Ok(());
        };
        let pts90 = CLOCK_BASE + pts * 90_000 / RATE;
        self.write_pes(
            ID3_PID,
            Cc::Id3,
            StreamId::new(StreamId::PRIVATE_STREAM_1),
            pts90 + PTS_DELAY,
            None,
            &id3_title(&title),
        )
    }

    fn write_pes(
        &mut self,
        pid: u16,
        which: Cc,
        stream_id: StreamId,
        pts: u64,
        pcr: Option<u64>,
        data: &[u8],
    ) -> Result<()> {
        let header = PesHeader {
            stream_id,
            priority: false,
            data_alignment_indicator: true,
            copyright: false,
            original_or_copy: false,
            pts: Some(Timestamp::new(pts % (1 << 33)).map_err(ts_error)?),
            dts: None,
            escr: None,
        };
        let header_len = header_len(&header);
        let pes_len = header_len - 6 + data.len();
        // Longer than a PES length can say (never for 4 AAC frames or a title): unbounded.
        let pes_packet_len = u16::try_from(pes_len).unwrap_or(0);
        let adaptation = pcr
            .map(|p| -> Result<AdaptationField> {
                Ok(AdaptationField {
                    discontinuity_indicator: false,
                    random_access_indicator: true,
                    es_priority_indicator: false,
                    pcr: Some(ClockReference::new((p % (1 << 33)) * 300).map_err(ts_error)?),
                    opcr: None,
                    splice_countdown: None,
                    transport_private_data: Vec::new(),
                    extension: None,
                })
            })
            .transpose()?;
        let room = Bytes::MAX_SIZE - header_len - adaptation.as_ref().map_or(0, |_| 8);
        let (first, mut rest) = data.split_at(room.min(data.len()));
        let packet = TsPacket {
            header: self.header(pid, which)?,
            adaptation_field: adaptation,
            payload: Some(TsPayload::PesStart(Pes {
                header,
                pes_packet_len,
                data: Bytes::new(first).map_err(ts_error)?,
            })),
        };
        self.write(&packet)?;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(Bytes::MAX_SIZE.min(rest.len()));
            rest = later;
            let packet = TsPacket {
                header: self.header(pid, which)?,
                adaptation_field: None,
                payload: Some(TsPayload::PesContinuation(
                    Bytes::new(now).map_err(ts_error)?,
                )),
            };
            self.write(&packet)?;
        }
        Ok(())
    }
}

/// Bytes of a PES header: start code, stream id, length, flags, and the PTS.
fn header_len(h: &PesHeader) -> usize {
    6 + 3 + h.pts.map_or(0, |_| 5)
}

fn pid_of(pid: u16) -> Result<Pid> {
    Pid::new(pid).map_err(ts_error)
}

fn ts_error(e: mpeg2ts::Error) -> Error {
    Error::Overflow(format!("MPEG-TS: {e}"))
}

/// A segment as a TS media playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct TsEntry {
    /// Its media sequence number.
    pub sequence: u64,
    /// Seconds (`EXTINF`).
    pub seconds: f64,
    /// Wall-clock time of its first sample, Unix ms (`EXT-X-PROGRAM-DATE-TIME`).
    pub program_date_time_ms: i64,
}

/// The live media playlist of TS segments (RFC 8216 §4.3, version 3): the newest `entries`,
/// oldest first, each named `seg_{sequence}.ts` followed by `query`. `ended` closes it with
/// `EXT-X-ENDLIST`. A gap in the sequence (a restarted encoder) is marked with
/// `EXT-X-DISCONTINUITY`.
pub fn render_ts_media(entries: &[TsEntry], query: &str, ended: bool) -> String {
    use std::fmt::Write;
    let target = entries
        .iter()
        .map(|e| e.seconds.round() as u64)
        .max()
        .unwrap_or(6)
        .max(1);
    let first = entries.first().map_or(0, |e| e.sequence);
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:{first}\n"
    );
    let mut previous: Option<u64> = None;
    for e in entries {
        if previous.is_some_and(|p| p + 1 != e.sequence) {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        previous = Some(e.sequence);
        let _ = write!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:{:.3},\nseg_{}.ts{query}\n",
            crate::live::rfc3339(e.program_date_time_ms),
            e.seconds,
            e.sequence
        );
    }
    if ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpeg2ts::ts::{ReadTsPacket, TsPacketReader};

    /// AAC-LC, 48 kHz, stereo.
    const ASC: [u8; 2] = [0x11, 0x90];

    fn packets(bytes: &[u8]) -> Vec<TsPacket> {
        let mut r = TsPacketReader::new(bytes);
        let mut out = Vec::new();
        while let Some(p) = r.read_ts_packet().expect("a valid packet") {
            out.push(p);
        }
        out
    }

    #[test]
    fn segments_are_about_their_target_and_open_with_tables_and_the_title() {
        let mut s = TsSegmenter::new(&ASC, 6 * 48_000).unwrap();
        s.set_title("Artist – “Title”");
        let mut segments = Vec::new();
        for i in 0..1000u64 {
            if let Some(seg) = s.push(&[0x21; 300], i * 1024, 1024).unwrap() {
                segments.push(seg);
            }
        }
        segments.extend(s.finish().unwrap());
        assert!(segments.len() >= 3);
        let mut next = 0;
        for seg in &segments[..segments.len() - 1] {
            assert_eq!(seg.start, next, "segments follow each other");
            next = seg.start + seg.samples;
            assert!((6.0..6.03).contains(&seg.seconds()), "{}", seg.seconds());
            assert_eq!(seg.bytes.len() % 188, 0);
            let p = packets(&seg.bytes);
            assert!(matches!(p[0].payload, Some(TsPayload::Pat(_))));
            assert!(matches!(p[1].payload, Some(TsPayload::Pmt(_))));
            let Some(TsPayload::PesStart(id3)) = &p[2].payload else {
                panic!("the title opens the segment");
            };
            assert_eq!(p[2].header.pid.as_u16(), ID3_PID);
            assert!(id3.data.starts_with(b"ID3\x04"));
            // Every audio PES carries a PCR, at most 100 ms apart.
            let pcrs: Vec<u64> = p
                .iter()
                .filter_map(|p| p.adaptation_field.as_ref()?.pcr)
                .map(|c| c.as_u64() / 300)
                .collect();
            assert!(pcrs.windows(2).all(|w| w[1] > w[0] && w[1] - w[0] <= 9_000));
            // Continuity counters count up per PID.
            let audio: Vec<u8> = p
                .iter()
                .filter(|p| p.header.pid.as_u16() == AUDIO_PID)
                .map(|p| p.header.continuity_counter.as_u8())
                .collect();
            assert!(audio.windows(2).all(|w| w[1] == (w[0] + 1) % 16));
        }
    }

    #[test]
    fn a_title_change_goes_out_with_the_next_frame() {
        let mut s = TsSegmenter::new(&ASC, 6 * 48_000).unwrap();
        for i in 0..10u64 {
            s.push(&[0x21; 300], i * 1024, 1024).unwrap();
        }
        s.set_title("Next");
        s.push(&[0x21; 300], 10 * 1024, 1024).unwrap();
        let seg = s.finish().unwrap().unwrap();
        let p = packets(&seg.bytes);
        let id3: Vec<_> = p
            .iter()
            .filter(|p| p.header.pid.as_u16() == ID3_PID)
            .collect();
        assert_eq!(id3.len(), 1);
        let Some(TsPayload::PesStart(pes)) = &id3[0].payload else {
            panic!("a PES");
        };
        let want = CLOCK_BASE + 10 * 1024 * 90_000 / 48_000 + PTS_DELAY;
        assert_eq!(pes.header.pts.unwrap().as_u64(), want);
        assert_eq!(&pes.data[..], &id3_title("Next")[..]);
    }

    #[test]
    fn the_media_playlist_lists_segments_with_their_dates() {
        let e = |sequence, seconds| TsEntry {
            sequence,
            seconds,
            program_date_time_ms: 1_800_000_000_000 + sequence as i64 * 6000,
        };
        let text = render_ts_media(&[e(7, 6.016), e(8, 6.016), e(10, 4.0)], "?token=t", false);
        let want = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:7\n\
            #EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:42.000Z\n#EXTINF:6.016,\nseg_7.ts?token=t\n\
            #EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:48.000Z\n#EXTINF:6.016,\nseg_8.ts?token=t\n\
            #EXT-X-DISCONTINUITY\n\
            #EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:01:00.000Z\n#EXTINF:4.000,\nseg_10.ts?token=t\n";
        assert_eq!(text, want);
        assert!(render_ts_media(&[e(1, 6.0)], "", true).ends_with("seg_1.ts\n#EXT-X-ENDLIST\n"));
    }
}
