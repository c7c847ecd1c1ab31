//! Live and Low-Latency HLS media playlists (draft-pantos-hls-rfc8216bis), rendered from a plain
//! snapshot of what a channel has published. The channel owns the snapshot and the clock; this
//! module only turns one into text, so every tag can be checked on exact strings.
//!
//! Tag order follows the draft's examples: the header (`EXT-X-TARGETDURATION`,
//! `EXT-X-SERVER-CONTROL`, `EXT-X-PART-INF`, `EXT-X-MEDIA-SEQUENCE`, `EXT-X-MAP`), then for a
//! delta update `EXT-X-SKIP` in place of the segments it leaves out (4.4.5.2), then each segment
//! with its `EXT-X-PROGRAM-DATE-TIME` (4.4.4.6), its parts (`EXT-X-PART`, 4.4.4.9) when it is
//! recent, and its `EXTINF`; then the parts of the segment in progress, the `EXT-X-PRELOAD-HINT`
//! of the next part (4.4.5.3) and the `EXT-X-RENDITION-REPORT`s (4.4.5.4).

use std::fmt::Write;

/// One part of a segment.
#[derive(Debug, Clone, PartialEq)]
pub struct LivePart {
    /// URI relative to the playlist.
    pub uri: String,
    /// Seconds.
    pub seconds: f64,
    /// Whether it starts with a sync sample (`INDEPENDENT=YES`).
    pub independent: bool,
}

/// One complete segment.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSegment {
    /// URI relative to the playlist.
    pub uri: String,
    /// Seconds (`EXTINF`).
    pub seconds: f64,
    /// Wall-clock time of its first sample, Unix milliseconds, when known
    /// (`EXT-X-PROGRAM-DATE-TIME`).
    pub program_date_time_ms: Option<i64>,
    /// Its parts, listed for segments within the last few part-hold-backs; empty for older ones.
    pub parts: Vec<LivePart>,
}

/// Where another rendition of the same channel stands (`EXT-X-RENDITION-REPORT`).
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionReport {
    /// Its media playlist, relative to this one.
    pub uri: String,
    /// Its last media sequence number.
    pub last_msn: u64,
    /// Its last part index in that segment.
    pub last_part: u32,
}

/// A now-playing interval (`EXT-X-DATERANGE`, 4.4.5.1), open-ended until the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct DateRange {
    /// `ID`, unique within the playlist.
    pub id: String,
    /// `CLASS`.
    pub class: String,
    /// `START-DATE`, Unix milliseconds.
    pub start_ms: i64,
    /// `X-TITLE`: the title.
    pub title: String,
}

/// Everything a live media playlist says.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSnapshot {
    /// `EXT-X-TARGETDURATION`: whole seconds, no smaller than any rounded `EXTINF`.
    pub target_duration: u32,
    /// `PART-TARGET` of `EXT-X-PART-INF`, seconds; `None` for plain (not low-latency) live HLS.
    pub part_target: Option<f64>,
    /// `PART-HOLD-BACK`: how far behind the live edge players start, at least two part targets.
    pub part_hold_back: Option<f64>,
    /// `CAN-SKIP-UNTIL`: delta updates may skip segments older than this many seconds.
    pub can_skip_until: Option<f64>,
    /// `CAN-BLOCK-RELOAD=YES`.
    pub can_block_reload: bool,
    /// `EXT-X-MEDIA-SEQUENCE`: the sequence number of the first segment the window holds.
    pub media_sequence: u64,
    /// `EXT-X-MAP` URI.
    pub map_uri: String,
    /// Segments of the window that this rendering leaves out (`EXT-X-SKIP`, a delta update);
    /// they are the first `skipped` of `segments`.
    pub skipped: usize,
    /// Complete segments, oldest first.
    pub segments: Vec<LiveSegment>,
    /// Parts of the segment in progress.
    pub partial: Vec<LivePart>,
    /// Wall-clock time of the segment in progress, Unix ms (`EXT-X-PROGRAM-DATE-TIME` before its
    /// parts, so a playlist with no complete segment yet is dated too).
    pub partial_program_date_time_ms: Option<i64>,
    /// URI of the part being made (`EXT-X-PRELOAD-HINT:TYPE=PART`).
    pub preload_hint: Option<String>,
    /// The other renditions.
    pub reports: Vec<RenditionReport>,
    /// Now-playing intervals within the window.
    pub dateranges: Vec<DateRange>,
    /// `EXT-X-ENDLIST`: the channel has ended.
    pub ended: bool,
}

/// Renders a live media playlist.
pub fn render_live(s: &LiveSnapshot) -> String {
    let mut out = String::with_capacity(256 + 96 * s.segments.len());
    // EXT-X-SKIP needs version 9 (4.4.5.2); parts and preload hints need 6 and up.
    let version = if s.skipped > 0 { 9 } else { 6 };
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{}\n",
        s.target_duration
    );
    let mut control = Vec::new();
    if s.can_block_reload {
        control.push("CAN-BLOCK-RELOAD=YES".to_string());
    }
    if let Some(skip) = s.can_skip_until {
        control.push(format!("CAN-SKIP-UNTIL={}", decimal(skip)));
    }
    if let Some(hold) = s.part_hold_back {
        control.push(format!("PART-HOLD-BACK={}", decimal(hold)));
    }
    if !control.is_empty() {
        let _ = writeln!(out, "#EXT-X-SERVER-CONTROL:{}", control.join(","));
    }
    if let Some(target) = s.part_target {
        let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={}", decimal(target));
    }
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", s.media_sequence);
    let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", s.map_uri);
    for d in &s.dateranges {
        let _ = writeln!(
            out,
            "#EXT-X-DATERANGE:ID=\"{}\",CLASS=\"{}\",START-DATE=\"{}\",X-TITLE=\"{}\"",
            quoted(&d.id),
            quoted(&d.class),
            rfc3339(d.start_ms),
            quoted(&d.title)
        );
    }
    let skipped = s.skipped.min(s.segments.len());
    if skipped > 0 {
        let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
    }
    for seg in &s.segments[skipped..] {
        if let Some(ms) = seg.program_date_time_ms {
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", rfc3339(ms));
        }
        for p in &seg.parts {
            part(&mut out, p);
        }
        let _ = writeln!(out, "#EXTINF:{:.5},\n{}", seg.seconds, seg.uri);
    }
    if let (Some(ms), false) = (s.partial_program_date_time_ms, s.partial.is_empty()) {
        let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", rfc3339(ms));
    }
    for p in &s.partial {
        part(&mut out, p);
    }
    if let Some(uri) = &s.preload_hint {
        let _ = writeln!(out, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{uri}\"");
    }
    for r in &s.reports {
        let _ = writeln!(
            out,
            "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={},LAST-PART={}",
            r.uri, r.last_msn, r.last_part
        );
    }
    if s.ended {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

fn part(out: &mut String, p: &LivePart) {
    let _ = write!(
        out,
        "#EXT-X-PART:DURATION={},URI=\"{}\"",
        decimal(p.seconds),
        p.uri
    );
    out.push_str(if p.independent {
        ",INDEPENDENT=YES\n"
    } else {
        "\n"
    });
}

/// A quoted-string (RFC 8216 4.2) holds no double quote, carriage return or line feed.
fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\'',
            '\r' | '\n' => ' ',
            c => c,
        })
        .collect()
}

/// A decimal-floating-point (RFC 8216 4.2) with at most five places and no trailing zeros.
fn decimal(x: f64) -> String {
    let s = format!("{x:.5}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.into()
    }
}

/// Unix milliseconds as an ISO 8601 date-time in UTC with milliseconds (RFC 3339), the form
/// `EXT-X-PROGRAM-DATE-TIME` takes. Days to civil dates by Howard Hinnant's algorithm.
pub(crate) fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
