//! HLS playlists (RFC 8216 / draft-pantos-hls-rfc8216bis), rendered from plain data.

use std::fmt::Write;

/// One variant stream of a multivariant playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Rendition name, used as NAME and GROUP-ID (`aac-128`).
    pub name: String,
    /// URI of the media playlist, relative to the multivariant playlist.
    pub uri: String,
    /// Peak segment bitrate in bits per second (BANDWIDTH).
    pub bandwidth: u64,
    /// Average bitrate in bits per second (AVERAGE-BANDWIDTH).
    pub average_bandwidth: u64,
    /// RFC 6381 codec string: `mp4a.40.2`, `Opus` or `fLaC`.
    pub codecs: String,
    /// Channel count (CHANNELS).
    pub channels: u16,
}

/// Renders a multivariant playlist.
///
/// Each variant gets an `EXT-X-MEDIA` audio rendition without URI (the audio is in the variant
/// stream itself), which is where RFC 8216 places CHANNELS, and an `EXT-X-STREAM-INF` with CODECS,
/// BANDWIDTH, AVERAGE-BANDWIDTH and that AUDIO group. Put only one codec family in one playlist:
/// players switch between its variants, and switching codecs mid-stream is refused by some.
pub fn render_multivariant(variants: &[Variant]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (i, v) in variants.iter().enumerate() {
        let default = if i == 0 { "YES" } else { "NO" };
        let _ = writeln!(
            out,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{name}\",NAME=\"{name}\",DEFAULT={default},AUTOSELECT=YES,CHANNELS=\"{ch}\"",
            name = v.name,
            ch = v.channels
        );
    }
    for v in variants {
        let _ = writeln!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\",AUDIO=\"{}\"\n{}",
            v.bandwidth, v.average_bandwidth, v.codecs, v.name, v.uri
        );
    }
    out
}

/// One segment of a media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRef {
    /// URI relative to the media playlist.
    pub uri: String,
    /// Presented duration in seconds (EXTINF).
    pub seconds: f64,
}

/// A VOD media playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    /// URI of the init segment (EXT-X-MAP).
    pub map_uri: String,
    /// The segments in order.
    pub segments: Vec<SegmentRef>,
}

/// Renders a VOD media playlist: version 7, EXT-X-MAP, a TARGETDURATION no smaller than any
/// rounded EXTINF (RFC 8216 4.3.3.1), and EXT-X-ENDLIST.
pub fn render_media(p: &MediaPlaylist) -> String {
    render_stitched(std::slice::from_ref(p))
}

/// Renders several VOD media playlists as one, in order: each after the first opens with
/// `EXT-X-DISCONTINUITY` (its timestamps start again and its encoding may differ, RFC 8216
/// 4.3.2.3) and its own `EXT-X-MAP`. Nothing is re-encoded and every EXTINF is kept, so the
/// stream lasts exactly the sum of its parts.
pub fn render_stitched(parts: &[MediaPlaylist]) -> String {
    let target = parts
        .iter()
        .flat_map(|p| &p.segments)
        .map(|s| s.seconds.round() as u64)
        .max()
        .unwrap_or(0)
        .max(1);
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    );
    if parts.len() < 2 {
        // A single part keeps the plain VOD shape.
        out = out.replace("#EXT-X-DISCONTINUITY-SEQUENCE:0\n", "");
    }
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}\"", p.map_uri);
        for s in &p.segments {
            let _ = writeln!(out, "#EXTINF:{:.6},\n{}", s.seconds, s.uri);
        }
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// Reads back a VOD media playlist of the shape [`render_media`] writes: one `EXT-X-MAP` and
/// `EXTINF`/URI pairs. Other tags are skipped. `None` when the map or a duration is missing or
/// malformed, or a duration is not finite or under a microsecond (the precision EXTINF is written
/// with).
pub fn parse_media(text: &str) -> Option<MediaPlaylist> {
    let mut map_uri = None;
    let mut segments = Vec::new();
    let mut pending: Option<f64> = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(attrs) = line.strip_prefix("#EXT-X-MAP:") {
            let uri = attrs.strip_prefix("URI=\"")?.split('"').next()?;
            map_uri = Some(uri.to_owned());
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            let secs: f64 = d.split(',').next()?.trim().parse().ok()?;
            if !(secs.is_finite() && secs >= 1e-6) || pending.is_some() {
                return None;
            }
            pending = Some(secs);
        } else if line.starts_with('#') {
            continue;
        } else {
            segments.push(SegmentRef {
                uri: line.to_owned(),
                seconds: pending.take()?,
            });
        }
    }
    if pending.is_some() {
        return None;
    }
    Some(MediaPlaylist {
        map_uri: map_uri?,
        segments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_playlist_round_trips_through_m3u8_rs() {
        let text = render_media(&MediaPlaylist {
            map_uri: "init.mp4".into(),
            segments: vec![
                SegmentRef {
                    uri: "seg_00000.m4s".into(),
                    seconds: 6.08,
                },
                SegmentRef {
                    uri: "seg_00001.m4s".into(),
                    seconds: 6.6,
                },
            ],
        });
        assert!(text.contains("#EXT-X-TARGETDURATION:7\n"));
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(parsed.segments.len(), 2);
        assert!(parsed.end_list);
        assert_eq!(parsed.version, Some(7));
    }

    #[test]
    fn stitched_playlists_mark_each_join_and_keep_every_duration() {
        let a = MediaPlaylist {
            map_uri: "a/init.mp4".into(),
            segments: vec![
                SegmentRef {
                    uri: "a/seg_00000.m4s".into(),
                    seconds: 6.4,
                },
                SegmentRef {
                    uri: "a/seg_00001.m4s".into(),
                    seconds: 1.234567,
                },
            ],
        };
        let b = MediaPlaylist {
            map_uri: "b/init.mp4".into(),
            segments: vec![SegmentRef {
                uri: "b/seg_00000.m4s".into(),
                seconds: 3.2,
            }],
        };
        let text = render_stitched(&[a.clone(), b.clone()]);
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
        assert_eq!(text.matches("#EXT-X-MAP:").count(), 2);
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(parsed.segments.len(), 3);
        assert!(parsed.segments[2].discontinuity);
        assert_eq!(
            parsed.segments[2].map.as_ref().map(|m| m.uri.as_str()),
            Some("b/init.mp4")
        );
        let total: f64 = parsed.segments.iter().map(|s| s.duration as f64).sum();
        assert!((total - (6.4 + 1.234567 + 3.2)).abs() < 1e-5);
        assert_eq!(parse_media(&render_media(&a)), Some(a));
        assert_eq!(parse_media("#EXTM3U\n#EXTINF:1.0,\nx.m4s\n"), None);
        assert_eq!(parse_media("#EXT-X-MAP:URI=\"i\"\n#EXTINF:nan,\nx\n"), None);
        assert_eq!(parse_media("#EXT-X-MAP:URI=\"i\"\n#EXTINF:1,\n"), None);
        assert_eq!(
            parse_media("#EXT-X-MAP:URI=\"i\"\n#EXTINF:1e-9,\nx\n"),
            None
        );
    }

    #[test]
    fn multivariant_lists_codecs_and_channels() {
        let text = render_multivariant(&[Variant {
            name: "aac-128".into(),
            uri: "aac-128/index.m3u8".into(),
            bandwidth: 140_000,
            average_bandwidth: 130_000,
            codecs: "mp4a.40.2".into(),
            channels: 2,
        }]);
        assert!(text.contains("CHANNELS=\"2\""));
        assert!(text.contains("CODECS=\"mp4a.40.2\""));
        let parsed = m3u8_rs::parse_master_playlist_res(text.as_bytes()).unwrap();
        assert_eq!(parsed.variants.len(), 1);
        assert_eq!(parsed.variants[0].bandwidth, 140_000);
    }
}
