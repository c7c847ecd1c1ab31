//! Arbitrary bytes through the whole decode path: probe, demux, decode, tags, MP4 edit lists;
//! and, directly, through the gapless parser (`moov_window`: edit lists and iTunSMPB), which
//! otherwise sees only inputs that start like an MP4 file.
//! Every input must end in `Ok` or a typed `Err`, never a panic, and stay within the limits: the
//! header checks (`StreamDecoder::open`: sample rate, channels, declared duration) run on every
//! input before anything is sized from it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veza_codecs::{decode, Limits};

fuzz_target!(|data: &[u8]| {
    if let Some(w) = veza_codecs::moov_window(data) {
        assert!(w.skip_seconds >= 0.0 && w.skip_seconds.is_finite());
    }
    let limits = Limits { max_seconds: 30.0, max_channels: 8, max_cover_bytes: 1 << 16 };
    if let Ok(d) = decode(Box::new(std::io::Cursor::new(data.to_vec())), None, &limits, &mut |_| {}) {
        assert!(d.pcm.seconds() <= 31.0);
        assert!(d.pcm.channels() <= 8);
        assert!(veza_codecs::RATE_RANGE.contains(&d.info.sample_rate.hz()));
    }
});
