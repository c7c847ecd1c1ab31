//! Live media playlists (draft-pantos-hls-rfc8216bis 4.4): what a rendition's window shows, with
//! parts, delta updates, the preload hint, rendition reports and now-playing date ranges. The
//! HTTP handler only answers with what this renders; [`Output::playlist`] keeps the text.

use super::channel::Channel;
use super::output::{Output, PartOut, Window};
use super::{PARTS_PER_SEGMENT, PART_TARGET};
use veza_hls::{render_live, LivePart, LiveSegment, LiveSnapshot, RenditionReport};

/// `EXT-X-TARGETDURATION`: segments are 1.92 s.
pub const TARGET_DURATION: u32 = 2;
/// `PART-HOLD-BACK` (4.4.3.8): at least twice the part target, which the spec requires; under
/// the three it recommends, so that hls.js (which starts this far behind the edge, then needs
/// about a quarter second to play) stays under a second behind it. Players reload with blocking
/// requests and preload hints, so the next part is on its way before the buffer runs low.
pub const PART_HOLD_BACK: f64 = 0.7;
/// `CAN-SKIP-UNTIL`: six target durations (4.4.3.8).
const CAN_SKIP_UNTIL: f64 = 6.0 * TARGET_DURATION as f64;
/// Segments whose parts are listed: those within three target durations of the edge, and one
/// more (4.4.4.9).
const SEGMENTS_WITH_PARTS: usize = 4;

/// The media playlist of `out` showing window `w`, with segments older than `CAN-SKIP-UNTIL`
/// skipped when `skip` (a delta update, 6.2.5.1).
pub fn render_media(ch: &Channel, out: &Output, w: &Window, skip: bool) -> String {
    let n = w.segments.len();
    let media_sequence = w
        .segments
        .front()
        .map(|s| s.msn)
        .or_else(|| w.partial.first().map(|p| p.msn))
        .unwrap_or(0);
    let mut skipped = 0;
    if skip {
        // Segments wholly older than CAN-SKIP-UNTIL from the end of the playlist (4.4.5.2).
        let mut tail = w.partial.iter().map(|p| p.seconds).sum::<f64>();
        for s in w.segments.iter().rev() {
            tail += s.seconds;
            if tail > CAN_SKIP_UNTIL {
                break;
            }
            skipped += 1;
        }
        skipped = n - skipped.min(n);
    }
    let part = |p: &PartOut| LivePart {
        uri: format!("part_{}_{}.m4s", p.msn, p.index),
        seconds: p.seconds,
        independent: true,
    };
    let segments = w
        .segments
        .iter()
        .enumerate()
        .map(|(i, s)| LiveSegment {
            uri: format!("seg_{}.m4s", s.msn),
            seconds: s.seconds,
            program_date_time_ms: Some(s.pdt_ms),
            parts: if i + SEGMENTS_WITH_PARTS >= n {
                s.parts.iter().map(|p| part(p)).collect()
            } else {
                Vec::new()
            },
        })
        .collect();
    let window_start = w.segments.front().map_or(w.partial_pdt_ms, |s| s.pdt_ms);
    let reports = ch
        .outputs
        .iter()
        .filter(|o| o.name != out.name)
        .filter_map(|o| {
            o.edge().map(|e| RenditionReport {
                uri: format!("../{}/index.m3u8", o.name),
                last_msn: e.msn,
                last_part: e.part,
            })
        })
        .collect();
    let preload_hint = (!w.ended)
        .then(|| w.preload_hint(PARTS_PER_SEGMENT))
        .flatten()
        .map(|(msn, i)| format!("part_{msn}_{i}.m4s"));
    let snapshot = LiveSnapshot {
        target_duration: TARGET_DURATION,
        part_target: Some(PART_TARGET),
        part_hold_back: Some(PART_HOLD_BACK),
        can_skip_until: Some(CAN_SKIP_UNTIL),
        can_block_reload: true,
        media_sequence,
        map_uri: "init.mp4".into(),
        skipped,
        segments,
        partial: w.partial.iter().map(|p| part(p)).collect(),
        partial_program_date_time_ms: Some(w.partial_pdt_ms),
        preload_hint,
        reports,
        dateranges: ch
            .dateranges()
            .into_iter()
            .filter(|d| d.start_ms >= window_start)
            .collect(),
        ended: w.ended,
    };
    render_live(&snapshot)
}
