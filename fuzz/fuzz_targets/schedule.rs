//! A station's programme as an artist sends it (`PUT /v1/channels/{id}/schedule`): any JSON is
//! parsed and checked, and a programme that passes is resolved (what plays at an instant, the
//! timeline of a day from an arbitrary instant) and asked for auto-DJ choices; silence trimming
//! takes the same bytes as samples. Checks the invariants each promises.
//!
//! Input: 8 bytes of instant (little-endian Unix ms), 1 byte of seed, then the JSON, so a corpus
//! is seeded with real programmes behind 9 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veza_stream::live::station::{Doc, Dj, Kind, Order, Trim};
use veza_stream::store::{PlaylistId, TrackId};

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let mut at = [0u8; 8];
    at.copy_from_slice(&data[..8]);
    // Instants within ±200 years of the epoch, as the API's RFC 3339 dates can name.
    let at = i64::from_le_bytes(at) % (200 * 365 * 86_400_000);
    let seed = data[8];
    let json = &data[9..];
    if let Ok(doc) = serde_json::from_slice::<Doc>(json) {
        if let Ok(p) = doc.parse(Order::Shuffle) {
            let timeline = p.upcoming(at, at + 86_400_000, &|e| Some(e.at.rem_euclid(7_200_000)));
            for e in &timeline {
                assert!(e.end.is_none_or(|end| end >= e.start), "{e:?}");
            }
            for w in timeline.windows(2) {
                assert!(w[0].start <= w[1].start, "{timeline:?}");
            }
            if let Some((_, a, b)) = p.slot_at(at) {
                assert!(a <= at && at < b);
            }
            let tracks: Vec<TrackId> = (0..=seed % 5).map(|_| TrackId::new()).collect();
            let lib = |_: PlaylistId| tracks.clone();
            let mut dj = Dj::new(u64::from(seed));
            for i in 0..8 {
                if let Some(pick) = dj.next(&p, None, at + i * 180_000, &lib) {
                    assert!(tracks.contains(&pick.track) || pick.kind == Kind::Event);
                }
            }
        }
    }
    let samples: Vec<f32> = json.iter().map(|&b| (b as i8) as f32 / 128.0).collect();
    let n = samples.len();
    let mut t = Trim::new(Some(-50.0), 64);
    let out = t.push([samples.clone(), samples]);
    assert!(out[0].len() <= n && out[0].len() == out[1].len());
});
