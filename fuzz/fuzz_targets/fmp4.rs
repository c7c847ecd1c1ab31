//! Arbitrary inputs to the fMP4 writer and the segmenter: plans for any duration, packets of any
//! size and duration, any codec configuration; and arbitrary bytes (or our own segments) through
//! the reader behind stitched playlists (`timing`, `retime_segment`). Nothing may panic, and every
//! box's size field must match its bytes.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use veza_hls::{
    init_segment, media_segment, retime_segment, timing, Plan, SampleEntry, Segmenter, TrackInfo,
};

#[derive(Debug, Arbitrary)]
struct Input {
    duration: u32,
    segment_tenths: u8,
    packets: Vec<(Vec<u8>, u16)>,
    entry: u8,
    config: Vec<u8>,
    priming: u16,
    timescale: u32,
    shift: u64,
}

/// Retiming never panics; what it accepts keeps its boxes whole.
fn check_retime(data: &[u8], shift: u64) {
    let _ = timing(data);
    if let Ok(moved) = retime_segment(data, shift) {
        check_boxes(&moved);
    }
}

fn check_boxes(mut data: &[u8]) {
    while !data.is_empty() {
        let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
        assert!(size >= 8 && size <= data.len(), "box size {size} of {}", data.len());
        data = &data[size..];
    }
}

fuzz_target!(|input: Input| {
    let plan = Plan::new(u64::from(input.duration), f64::from(input.segment_tenths.max(4)) / 10.0);
    let priming = plan.priming_for(1024, 1024);
    assert_eq!((u64::from(priming) + plan.duration()) % 1024, 0);
    let mut segmenter = Segmenter::new(plan.decode_boundaries(priming));
    let mut fragments = Vec::new();
    for (data, duration) in input.packets.into_iter().take(512) {
        fragments.extend(segmenter.push(data, u32::from(duration)));
    }
    fragments.extend(segmenter.flush());
    for f in fragments {
        if let Ok(seg) = media_segment(f.index, f.base_time, &f.samples) {
            check_boxes(&seg);
            check_retime(&seg, input.shift);
        }
    }
    check_retime(&input.config, input.shift);
    let entry = match input.entry % 3 {
        0 => SampleEntry::Opus { pre_skip: input.priming, input_rate: input.timescale },
        1 => SampleEntry::Aac { asc: input.config.into_iter().take(64).collect() },
        _ => SampleEntry::Flac { streaminfo: input.config },
    };
    let track = TrackInfo {
        entry,
        timescale: input.timescale.max(1),
        channels: 2,
        priming: u32::from(input.priming),
        duration: u64::from(input.duration),
        bitrate: (1, 1),
    };
    if let Ok(init) = init_segment(&track) {
        check_boxes(&init);
        assert!(timing(&init).is_ok());
    }
});
