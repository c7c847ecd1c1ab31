use super::*;

fn part(uri: &str) -> LivePart {
    LivePart {
        uri: uri.into(),
        seconds: 0.32,
        independent: true,
    }
}

fn segment(msn: u64, parts: bool, pdt: Option<i64>) -> LiveSegment {
    LiveSegment {
        uri: format!("seg_{msn}.m4s"),
        seconds: 1.28,
        program_date_time_ms: pdt,
        parts: if parts {
            (0..4)
                .map(|i| part(&format!("part_{msn}_{i}.m4s")))
                .collect()
        } else {
            Vec::new()
        },
    }
}

fn snapshot() -> LiveSnapshot {
    LiveSnapshot {
        target_duration: 2,
        part_target: Some(0.32),
        part_hold_back: Some(0.96),
        can_skip_until: Some(12.0),
        can_block_reload: true,
        media_sequence: 100,
        map_uri: "init.mp4".into(),
        skipped: 0,
        segments: vec![
            segment(100, false, Some(1_764_668_470_000)),
            segment(101, true, None),
        ],
        partial: vec![part("part_102_0.m4s")],
        preload_hint: Some("part_102_1.m4s".into()),
        reports: vec![RenditionReport {
            uri: "../aac-128/index.m3u8".into(),
            last_msn: 102,
            last_part: 0,
        }],
        partial_program_date_time_ms: None,
        dateranges: Vec::new(),
        ended: false,
    }
}

#[test]
fn a_low_latency_playlist_has_every_tag_in_the_drafts_order() {
    assert_eq!(
        render_live(&snapshot()),
        "#EXTM3U\n\
         #EXT-X-VERSION:6\n\
         #EXT-X-TARGETDURATION:2\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=0.96\n\
         #EXT-X-PART-INF:PART-TARGET=0.32\n\
         #EXT-X-MEDIA-SEQUENCE:100\n\
         #EXT-X-MAP:URI=\"init.mp4\"\n\
         #EXT-X-PROGRAM-DATE-TIME:2025-12-02T09:41:10.000Z\n\
         #EXTINF:1.28000,\n\
         seg_100.m4s\n\
         #EXT-X-PART:DURATION=0.32,URI=\"part_101_0.m4s\",INDEPENDENT=YES\n\
         #EXT-X-PART:DURATION=0.32,URI=\"part_101_1.m4s\",INDEPENDENT=YES\n\
         #EXT-X-PART:DURATION=0.32,URI=\"part_101_2.m4s\",INDEPENDENT=YES\n\
         #EXT-X-PART:DURATION=0.32,URI=\"part_101_3.m4s\",INDEPENDENT=YES\n\
         #EXTINF:1.28000,\n\
         seg_101.m4s\n\
         #EXT-X-PART:DURATION=0.32,URI=\"part_102_0.m4s\",INDEPENDENT=YES\n\
         #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part_102_1.m4s\"\n\
         #EXT-X-RENDITION-REPORT:URI=\"../aac-128/index.m3u8\",LAST-MSN=102,LAST-PART=0\n"
    );
}

#[test]
fn a_delta_update_skips_old_segments_and_says_version_9() {
    let s = LiveSnapshot {
        skipped: 1,
        ..snapshot()
    };
    let text = render_live(&s);
    assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:9\n"));
    assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n#EXT-X-PART:DURATION=0.32,URI=\"part_101_0.m4s\""));
    assert!(!text.contains("seg_100.m4s"));
    // The media sequence still names the first segment of the whole window (4.4.5.2).
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:100\n"));
}

#[test]
fn plain_live_has_no_low_latency_tags_and_an_ended_channel_says_so() {
    let s = LiveSnapshot {
        part_target: None,
        part_hold_back: None,
        can_skip_until: None,
        can_block_reload: false,
        partial: Vec::new(),
        preload_hint: None,
        reports: Vec::new(),
        segments: vec![segment(7, false, None)],
        media_sequence: 7,
        ended: true,
        ..snapshot()
    };
    assert_eq!(
        render_live(&s),
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
         #EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:1.28000,\nseg_7.m4s\n#EXT-X-ENDLIST\n"
    );
}

#[test]
fn decimals_and_dates_have_one_spelling() {
    assert_eq!(decimal(0.32), "0.32");
    assert_eq!(decimal(1.0), "1");
    assert_eq!(decimal(0.0), "0");
    assert_eq!(decimal(0.333333), "0.33333");
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
    assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
}

#[test]
fn now_playing_is_a_daterange_with_a_safe_title() {
    let s = LiveSnapshot {
        dateranges: vec![DateRange {
            id: "np-1".into(),
            class: "com.veza.now-playing".into(),
            start_ms: 0,
            title: "A \"quoted\"\ntitle".into(),
        }],
        ..snapshot()
    };
    let text = render_live(&s);
    assert!(text.contains(
        "#EXT-X-DATERANGE:ID=\"np-1\",CLASS=\"com.veza.now-playing\",START-DATE=\"1970-01-01T00:00:00.000Z\",X-TITLE=\"A 'quoted' title\"\n"
    ));
}

#[test]
fn the_segment_in_progress_is_dated() {
    let s = LiveSnapshot {
        segments: Vec::new(),
        partial: vec![part("part_9_0.m4s")],
        partial_program_date_time_ms: Some(1_000),
        ..snapshot()
    };
    assert!(render_live(&s).contains(
        "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:01.000Z\n#EXT-X-PART:DURATION=0.32,URI=\"part_9_0.m4s\""
    ));
}
