//! Criterion benches of the station core: what the API and the auto-DJ ask of the programme.
//!
//! - `upcoming_week`: the resolved timeline of a week for a programme of 35 slots (five a day,
//!   every day) and 20 events, in a DST zone: what `GET …/schedule/upcoming?hours=168` computes.
//! - `dj_next`: one auto-DJ choice (shuffle, with jingles) from that programme: made once per
//!   item on air, so any figure under a millisecond is far from mattering.
//! - `trim_second`: silence trimming of one second of stereo 48 kHz, per track decode chunk.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use veza_stream::live::station::{Dj, Doc, EventDoc, Interstitial, Order, SlotDoc, Trim};
use veza_stream::store::{PlaylistId, TrackId};

const START: i64 = 1_796_600_000_000;

fn programme() -> (
    veza_stream::live::station::Programme,
    Vec<TrackId>,
    PlaylistId,
) {
    let lists: Vec<PlaylistId> = (0..5).map(|_| PlaylistId::new()).collect();
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let slots = days
        .iter()
        .flat_map(|d| {
            lists.iter().enumerate().map(move |(i, p)| SlotDoc {
                playlist_id: p.to_string(),
                days: vec![d.to_string()],
                start: format!("{:02}:00", i * 4),
                end: format!("{:02}:00", i * 4 + 3),
                order: Order::Shuffle,
                interstitial: None,
            })
        })
        .collect();
    let events = (0..20)
        .map(|i| EventDoc {
            playlist_id: Some(lists[0].to_string()),
            track_id: None,
            at: chrono::DateTime::from_timestamp_millis(START + i * 7_200_000)
                .unwrap()
                .to_rfc3339(),
        })
        .collect();
    let doc = Doc {
        timezone: "Europe/Paris".into(),
        default_playlist_id: Some(lists[1].to_string()),
        slots,
        events,
    };
    let p = doc.parse(Order::Sequential).expect("a valid programme");
    (p, (0..200).map(|_| TrackId::new()).collect(), lists[2])
}

fn station(c: &mut Criterion) {
    let (p, tracks, jingles) = programme();
    let mut g = c.benchmark_group("station");
    g.bench_function("upcoming_week", |b| {
        b.iter(|| p.upcoming(START, START + 168 * 3_600_000, &|_| Some(3_600_000)))
    });
    let lib = |_: PlaylistId| tracks.clone();
    let j = Interstitial {
        playlist: jingles,
        every_tracks: Some(4),
        every_ms: Some(900_000),
    };
    let mut dj = Dj::new(7);
    let mut now = START;
    g.bench_function("dj_next", |b| {
        b.iter(|| {
            now += 200_000;
            dj.next(&p, Some(&j), now, &lib)
        })
    });
    let second = [vec![0.25f32; 48_000], vec![0.25f32; 48_000]];
    g.throughput(Throughput::Elements(48_000));
    g.bench_function("trim_second", |b| {
        let mut t = Trim::new(Some(-50.0), 48_000 * 30);
        b.iter(|| t.push(second.clone()))
    });
    g.finish();
}

criterion_group!(benches, station);
criterion_main!(benches);
