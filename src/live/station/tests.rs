//! The programme and the auto-DJ's choices on synthetic time, in milliseconds.

use super::*;
use crate::store::{PlaylistId, TrackId};
use std::collections::{HashMap, HashSet};

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("test instants are RFC 3339")
        .timestamp_millis()
}

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

fn slot(p: PlaylistId, days: &[&str], start: &str, end: &str) -> SlotDoc {
    SlotDoc {
        playlist_id: p.to_string(),
        days: days.iter().map(|d| d.to_string()).collect(),
        start: start.into(),
        end: end.into(),
        order: Order::Sequential,
        interstitial: None,
    }
}

fn doc(tz: &str, default: Option<PlaylistId>, slots: Vec<SlotDoc>) -> Doc {
    Doc {
        timezone: tz.into(),
        default_playlist_id: default.map(|p| p.to_string()),
        slots,
        events: Vec::new(),
    }
}

const ALL: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[test]
fn a_daily_slot_keeps_its_local_time_across_both_dst_changes() {
    let (morning, rest) = (PlaylistId::new(), PlaylistId::new());
    let p = doc(
        "Europe/Paris",
        Some(rest),
        vec![slot(morning, &ALL, "06:00", "10:00")],
    )
    .parse(Order::Sequential)
    .unwrap();
    // Saturday 28 March 2026 is CET (+01:00); Sunday 29 March is CEST (+02:00).
    for day in [
        "2026-03-28",
        "2026-03-29",
        "2026-10-24",
        "2026-10-25",
        "2026-10-26",
    ] {
        for (local, want) in [
            ("05:59", rest),
            ("06:00", morning),
            ("09:59", morning),
            ("10:00", rest),
        ] {
            let t =
                chrono::NaiveDateTime::parse_from_str(&format!("{day} {local}"), "%Y-%m-%d %H:%M")
                    .unwrap();
            let at = resolve::local_ms(p.tz, t.date(), t.time());
            assert_eq!(p.at(at).unwrap().playlist, want, "{day} {local}");
        }
    }
    // The week of the spring change: the slot starts at 05:00 UTC, then at 04:00 UTC.
    assert_eq!(
        p.slot_at(ms("2026-03-28T05:00:00Z")).unwrap().1,
        ms("2026-03-28T05:00:00Z")
    );
    assert_eq!(
        p.slot_at(ms("2026-03-29T04:00:00Z")).unwrap().1,
        ms("2026-03-29T04:00:00Z")
    );
    assert!(p.slot_at(ms("2026-03-29T03:59:00Z")).is_none());
}

#[test]
fn a_slot_in_the_skipped_hour_starts_when_the_clock_resumes_and_the_repeated_hour_counts_once() {
    let (night, rest) = (PlaylistId::new(), PlaylistId::new());
    let p = doc(
        "Europe/Paris",
        Some(rest),
        vec![slot(night, &["sun"], "02:30", "04:00")],
    )
    .parse(Order::Sequential)
    .unwrap();
    // 29 March: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
    let (_, a, b) = p.slot_at(ms("2026-03-29T01:30:00Z")).unwrap();
    assert_eq!(
        (a, b),
        (
            ms("2026-03-29T03:00:00+02:00"),
            ms("2026-03-29T04:00:00+02:00")
        )
    );
    assert_eq!(b - a, HOUR);
    // 25 October: 03:00 CEST goes back to 02:00 CET; the slot starts at the first 02:30.
    let (_, a, b) = p.slot_at(ms("2026-10-25T01:00:00Z")).unwrap();
    assert_eq!(
        (a, b),
        (
            ms("2026-10-25T02:30:00+02:00"),
            ms("2026-10-25T04:00:00+01:00")
        )
    );
    assert_eq!(b - a, 150 * MIN);
}

#[test]
fn a_slot_across_midnight_runs_into_the_next_day_and_the_week() {
    let (late, rest) = (PlaylistId::new(), PlaylistId::new());
    let p = doc(
        "UTC",
        Some(rest),
        vec![slot(late, &["sun"], "22:00", "02:00")],
    )
    .parse(Order::Sequential)
    .unwrap();
    // Sunday 6 December 2026, 22:00 to Monday 02:00.
    assert_eq!(p.at(ms("2026-12-06T21:59:59Z")).unwrap().playlist, rest);
    assert_eq!(p.at(ms("2026-12-06T22:00:00Z")).unwrap().playlist, late);
    assert_eq!(p.at(ms("2026-12-07T01:59:59Z")).unwrap().playlist, late);
    assert_eq!(p.at(ms("2026-12-07T02:00:00Z")).unwrap().playlist, rest);
    // And the timeline over that night shows the three stretches.
    let t = p.upcoming(
        ms("2026-12-06T20:00:00Z"),
        ms("2026-12-07T04:00:00Z"),
        &|_| None,
    );
    let kinds: Vec<(EntryKind, i64, Option<i64>)> =
        t.iter().map(|e| (e.kind, e.start, e.end)).collect();
    assert_eq!(
        kinds,
        vec![
            (
                EntryKind::Default,
                ms("2026-12-06T20:00:00Z"),
                Some(ms("2026-12-06T22:00:00Z"))
            ),
            (
                EntryKind::Slot,
                ms("2026-12-06T22:00:00Z"),
                Some(ms("2026-12-07T02:00:00Z"))
            ),
            (
                EntryKind::Default,
                ms("2026-12-07T02:00:00Z"),
                Some(ms("2026-12-07T04:00:00Z"))
            ),
        ]
    );
}

#[test]
fn overlapping_slots_are_refused_naming_both_and_where() {
    let (a, b) = (PlaylistId::new(), PlaylistId::new());
    let e = doc(
        "UTC",
        None,
        vec![
            slot(a, &["mon", "tue"], "06:00", "10:00"),
            slot(b, &["tue"], "09:00", "12:00"),
        ],
    )
    .parse(Order::Sequential)
    .unwrap_err();
    assert_eq!(e.field, "slots[1]");
    assert_eq!(e.reason, "overlaps slots[0] from tue 09:00 to tue 10:00");
    // Across midnight and across the week's end (Sunday night into Monday).
    let e = doc(
        "UTC",
        None,
        vec![
            slot(a, &["sun"], "23:00", "02:00"),
            slot(b, &["mon"], "01:00", "03:00"),
        ],
    )
    .parse(Order::Sequential)
    .unwrap_err();
    assert_eq!(e.reason, "overlaps slots[0] from mon 01:00 to mon 02:00");
    // Back to back is fine.
    doc(
        "UTC",
        None,
        vec![
            slot(a, &ALL, "06:00", "10:00"),
            slot(b, &ALL, "10:00", "06:00"),
        ],
    )
    .parse(Order::Sequential)
    .unwrap();
}

#[test]
fn bad_documents_name_their_field() {
    let p = PlaylistId::new();
    let cases = [
        (doc("Mars/Olympus", None, vec![]), "timezone"),
        (
            doc("UTC", None, vec![slot(p, &["mon"], "6:00", "10:00")]),
            "slots[0].start",
        ),
        (
            doc("UTC", None, vec![slot(p, &["mon"], "06:00", "25:00")]),
            "slots[0].end",
        ),
        (
            doc("UTC", None, vec![slot(p, &["monday"], "06:00", "10:00")]),
            "slots[0].days",
        ),
        (
            doc("UTC", None, vec![slot(p, &[], "06:00", "10:00")]),
            "slots[0].days",
        ),
        (
            doc("UTC", None, vec![slot(p, &["mon"], "06:00", "06:00")]),
            "slots[0].end",
        ),
    ];
    for (d, field) in cases {
        assert_eq!(
            d.parse(Order::Sequential).unwrap_err().field,
            field,
            "{d:?}"
        );
    }
    let mut d = doc("UTC", None, vec![]);
    d.events.push(EventDoc {
        playlist_id: None,
        track_id: None,
        at: "2026-12-24T20:00:00+01:00".into(),
    });
    assert_eq!(d.parse(Order::Sequential).unwrap_err().field, "events[0]");
    d.events[0] = EventDoc {
        playlist_id: Some(p.to_string()),
        track_id: None,
        at: "2026-12-24 20:00".into(),
    };
    assert_eq!(
        d.parse(Order::Sequential).unwrap_err().field,
        "events[0].at"
    );
}

/// A library of playlists with fixed tracks.
struct Lib(HashMap<PlaylistId, Vec<TrackId>>);

impl Lib {
    fn with(lists: &[(PlaylistId, usize)]) -> Lib {
        Lib(lists
            .iter()
            .map(|&(p, n)| (p, (0..n).map(|_| TrackId::new()).collect()))
            .collect())
    }
    fn f(&self) -> impl Fn(PlaylistId) -> Vec<TrackId> + '_ {
        |p| self.0.get(&p).cloned().unwrap_or_default()
    }
}

#[test]
fn an_event_preempts_at_its_instant_plays_once_and_hands_back() {
    let (rest, show) = (PlaylistId::new(), PlaylistId::new());
    let lib = Lib::with(&[(rest, 5), (show, 2)]);
    let mut d = doc("Europe/Paris", Some(rest), vec![]);
    d.events.push(EventDoc {
        playlist_id: Some(show.to_string()),
        track_id: None,
        at: "2026-12-24T20:00:00+01:00".into(),
    });
    let p = d.parse(Order::Sequential).unwrap();
    let at = ms("2026-12-24T19:00:00Z");
    let mut dj = Dj::new(7);
    // A track starts at 19:57:00 local; nothing is due until 20:00:00.000.
    assert_eq!(
        dj.next(&p, None, at - 3 * MIN, &lib.f()).unwrap().kind,
        Kind::Track
    );
    assert_eq!(dj.due(&p, at - 1), None);
    assert_eq!(dj.due(&p, at), Some(0));
    // At the instant the driver cuts the track: the event's tracks play in order, once.
    let a = dj.next(&p, None, at, &lib.f()).unwrap();
    assert_eq!((a.track, a.kind), (lib.0[&show][0], Kind::Event));
    assert!(dj.in_event());
    assert_eq!(dj.due(&p, at + 1), None);
    let b = dj.next(&p, None, at + 4 * MIN, &lib.f()).unwrap();
    assert_eq!((b.track, b.kind), (lib.0[&show][1], Kind::Event));
    // Then the default again, where it left off.
    let c = dj.next(&p, None, at + 8 * MIN, &lib.f()).unwrap();
    assert_eq!((c.track, c.kind), (lib.0[&rest][1], Kind::Track));
    // An event missed by more than the grace never plays late.
    let mut late = Dj::new(7);
    assert_eq!(late.due(&p, at + EVENT_GRACE_MS + 1), None);
    assert_eq!(
        late.next(&p, None, at + 2 * MIN, &lib.f()).unwrap().kind,
        Kind::Track
    );
    // The timeline shows it cutting the default for its known length.
    let t = p.upcoming(at - HOUR, at + HOUR, &|_| Some(8 * MIN));
    let kinds: Vec<(EntryKind, i64)> = t.iter().map(|e| (e.kind, e.start)).collect();
    assert_eq!(
        kinds,
        vec![
            (EntryKind::Default, at - HOUR),
            (EntryKind::Event, at),
            (EntryKind::Default, at + 8 * MIN)
        ]
    );
    assert_eq!(t[0].end, Some(at));
}

#[test]
fn an_event_of_one_track_plays_that_track() {
    let rest = PlaylistId::new();
    let lib = Lib::with(&[(rest, 3)]);
    let premiere = TrackId::new();
    let mut d = doc("UTC", Some(rest), vec![]);
    d.events.push(EventDoc {
        playlist_id: None,
        track_id: Some(premiere.to_string()),
        at: "2026-12-24T20:00:00Z".into(),
    });
    let p = d.parse(Order::Sequential).unwrap();
    let mut dj = Dj::new(1);
    let pick = dj
        .next(&p, None, ms("2026-12-24T20:00:00.010Z"), &lib.f())
        .unwrap();
    assert_eq!(
        pick,
        Pick {
            track: premiere,
            kind: Kind::Event
        }
    );
    assert_eq!(
        dj.next(&p, None, ms("2026-12-24T20:03:00Z"), &lib.f())
            .unwrap()
            .kind,
        Kind::Track
    );
}

#[test]
fn an_interstitial_plays_every_n_tracks() {
    let (rest, ids) = (PlaylistId::new(), PlaylistId::new());
    let lib = Lib::with(&[(rest, 10), (ids, 2)]);
    let p = Programme::plain(Some(rest), Order::Sequential);
    let j = Interstitial {
        playlist: ids,
        every_tracks: Some(3),
        every_ms: None,
    };
    let mut dj = Dj::new(3);
    let kinds: Vec<Kind> = (0..9)
        .map(|i| dj.next(&p, Some(&j), i * 3 * MIN, &lib.f()).unwrap().kind)
        .collect();
    use Kind::{Interstitial as J, Track as T};
    assert_eq!(kinds, vec![T, T, T, J, T, T, T, J, T]);
}

#[test]
fn an_interstitial_plays_every_m_minutes_or_n_tracks_whichever_first() {
    let (rest, ids) = (PlaylistId::new(), PlaylistId::new());
    let lib = Lib::with(&[(rest, 10), (ids, 2)]);
    let p = Programme::plain(Some(rest), Order::Sequential);
    let j = Interstitial {
        playlist: ids,
        every_tracks: Some(10),
        every_ms: Some(15 * MIN),
    };
    let mut dj = Dj::new(3);
    // Tracks of 4 minutes: the 15 minutes come after the fourth, long before ten tracks.
    let mut t = 0;
    let mut kinds = Vec::new();
    for _ in 0..6 {
        let k = dj.next(&p, Some(&j), t, &lib.f()).unwrap().kind;
        t += if k == Kind::Interstitial {
            10_000
        } else {
            4 * MIN
        };
        kinds.push(k);
    }
    use Kind::{Interstitial as J, Track as T};
    assert_eq!(kinds, vec![T, T, T, T, J, T]);
    // A slot's own interstitial replaces the channel's.
    let (night, night_ids) = (PlaylistId::new(), PlaylistId::new());
    let lib = Lib::with(&[(rest, 3), (night, 3), (night_ids, 1), (ids, 1)]);
    let mut s = slot(night, &ALL, "00:00", "24:00");
    s.interstitial = Some(InterstitialDoc {
        playlist_id: night_ids.to_string(),
        every_tracks: Some(1),
        every_minutes: None,
    });
    let p = doc("UTC", Some(rest), vec![s])
        .parse(Order::Sequential)
        .unwrap();
    let mut dj = Dj::new(3);
    dj.next(&p, Some(&j), 0, &lib.f()).unwrap();
    let pick = dj.next(&p, Some(&j), MIN, &lib.f()).unwrap();
    assert_eq!(
        (pick.kind, pick.track),
        (Kind::Interstitial, lib.0[&night_ids][0])
    );
}

#[test]
fn shuffle_never_repeats_before_every_track_has_played() {
    let rest = PlaylistId::new();
    let lib = Lib::with(&[(rest, 7)]);
    let mut d = doc("UTC", Some(rest), vec![]);
    d.slots.push(SlotDoc {
        order: Order::Shuffle,
        ..slot(rest, &ALL, "00:00", "24:00")
    });
    let p = d.parse(Order::Sequential).unwrap();
    for seed in 1..50 {
        let mut dj = Dj::new(seed);
        let picks: Vec<TrackId> = (0..70)
            .map(|i| dj.next(&p, None, i * MIN, &lib.f()).unwrap().track)
            .collect();
        for round in picks.chunks(7) {
            assert_eq!(round.iter().collect::<HashSet<_>>().len(), 7, "seed {seed}");
        }
        assert!(
            picks.windows(2).all(|w| w[0] != w[1]),
            "seed {seed}: a track twice in a row"
        );
    }
}

#[test]
fn weighted_never_plays_a_track_twice_in_a_row_and_favours_the_longest_unplayed() {
    let rest = PlaylistId::new();
    let lib = Lib::with(&[(rest, 4)]);
    let mut d = doc("UTC", None, vec![]);
    d.slots.push(SlotDoc {
        order: Order::Weighted,
        ..slot(rest, &ALL, "00:00", "24:00")
    });
    let p = d.parse(Order::Sequential).unwrap();
    let mut dj = Dj::new(11);
    let picks: Vec<TrackId> = (0..400)
        .map(|i| dj.next(&p, None, i * 4 * MIN, &lib.f()).unwrap().track)
        .collect();
    assert!(picks.windows(2).all(|w| w[0] != w[1]));
    for t in &lib.0[&rest] {
        let n = picks.iter().filter(|x| *x == t).count();
        assert!(
            (60..=140).contains(&n),
            "{n} plays of 400 for one of 4 tracks"
        );
    }
}

#[test]
fn an_empty_slot_falls_back_to_the_default_and_nothing_playable_is_none() {
    let (rest, empty) = (PlaylistId::new(), PlaylistId::new());
    let lib = Lib::with(&[(rest, 2), (empty, 0)]);
    let p = doc("UTC", Some(rest), vec![slot(empty, &ALL, "00:00", "24:00")])
        .parse(Order::Sequential)
        .unwrap();
    let mut dj = Dj::new(1);
    assert_eq!(
        dj.next(&p, None, 0, &lib.f()).unwrap().track,
        lib.0[&rest][0]
    );
    let p = doc("UTC", None, vec![slot(empty, &ALL, "00:00", "24:00")])
        .parse(Order::Sequential)
        .unwrap();
    assert_eq!(dj.next(&p, None, 0, &lib.f()), None);
}

#[test]
fn silence_is_trimmed_at_both_ends_only() {
    let th = Some(-50.0);
    let quiet = 0.001f32; // -60 dBFS
    let mut t = Trim::new(th, 48_000);
    let mut pcm = vec![0.0; 100];
    pcm.extend([0.5, quiet, 0.5]);
    pcm.extend(vec![quiet; 50]);
    let out = t.push([pcm.clone(), pcm.clone()]);
    // The lead is gone; the quiet frame between loud ones plays; the tail is held.
    assert_eq!(out[0], vec![0.5, quiet, 0.5]);
    let out = t.push([vec![quiet; 10], vec![0.4; 10]]);
    assert_eq!(
        out[0].len(),
        50 + 10,
        "held quiet frames play once something loud follows"
    );
    let out = t.push([vec![0.0; 30], vec![0.0; 30]]);
    assert!(out[0].is_empty());
    assert_eq!(t.finish(), 30, "the trailing silence is dropped");
    // A long quiet passage is let through once it passes the hold.
    let mut t = Trim::new(th, 20);
    t.push([vec![0.5], vec![0.5]]);
    let out = t.push([vec![0.0; 30], vec![0.0; 30]]);
    assert_eq!(out[0].len(), 30);
    // No threshold: everything plays.
    let mut t = Trim::new(None, 20);
    assert_eq!(t.push([vec![0.0; 5], vec![0.0; 5]])[0].len(), 5);
}

#[test]
fn a_crossfade_is_equal_power_and_ends_on_the_incoming_track() {
    let mut out = [vec![1.0f32; 100], vec![1.0; 100]];
    let inc = [vec![0.0f32; 40], vec![0.0; 40]];
    crossfade(&mut out, &inc);
    assert_eq!(out[0][59], 1.0);
    assert!(out[0][60] > 0.99 && out[0][99] < 0.05);
    let mut out = [vec![0.5f32; 40], vec![0.5; 40]];
    crossfade(&mut out, &[vec![0.5; 40], vec![0.5; 40]]);
    // cos + sin ≥ 1: correlated material swells by at most 3 dB, never drops.
    assert!(out[0].iter().all(|&x| (0.5..=0.71).contains(&x)));
}
