//! `listeners`: who is listening now. One entry per (track, listener session), updated on every
//! delivery request in a lock-free map, so a busy track never serialises its listeners. It also
//! counts plays: a session that has fetched [`PLAY_SECONDS`] of a track's media played it once.

use crate::store::TrackId;
use dashmap::DashMap;
use std::time::{Duration, Instant};

/// Media a session must fetch for a play to count, seconds.
pub const PLAY_SECONDS: f64 = 30.0;

/// Listener sessions with their last-seen time.
pub struct Listeners {
    seen: DashMap<(TrackId, u128), Instant>,
    /// Media seconds each session fetched, until its play counted (then `None`).
    fetched: DashMap<(TrackId, u128), Option<f64>>,
    /// Plays counted and not yet stored.
    plays: DashMap<TrackId, i64>,
    idle: Duration,
}

impl Listeners {
    /// A session stops counting `idle` after its last request.
    pub fn new(idle: Duration) -> Listeners {
        Listeners {
            seen: DashMap::new(),
            fetched: DashMap::new(),
            plays: DashMap::new(),
            idle,
        }
    }

    /// `session` fetched `seconds` of `track`'s media; counts a play when that makes
    /// [`PLAY_SECONDS`].
    pub fn fetched(&self, track: TrackId, session: u128, seconds: f64) {
        let mut e = self.fetched.entry((track, session)).or_insert(Some(0.0));
        if let Some(s) = e.as_mut() {
            *s += seconds;
            if *s >= PLAY_SECONDS {
                *e = None;
                *self.plays.entry(track).or_insert(0) += 1;
            }
        }
    }

    /// The plays counted since the last call, by track.
    pub fn take_plays(&self) -> Vec<(TrackId, i64)> {
        let tracks: Vec<TrackId> = self.plays.iter().map(|e| *e.key()).collect();
        tracks
            .into_iter()
            .filter_map(|t| self.plays.remove(&t))
            .collect()
    }

    /// Records a request from `session` for `track` at `now`.
    pub fn touch(&self, track: TrackId, session: u128, now: Instant) {
        self.seen.insert((track, session), now);
    }

    /// Sessions of `track` seen within the idle window.
    pub fn count(&self, track: TrackId, now: Instant) -> usize {
        self.seen
            .iter()
            .filter(|e| e.key().0 == track && now.saturating_duration_since(*e.value()) < self.idle)
            .count()
    }

    /// Drops idle sessions and returns how many remain.
    pub fn sweep(&self, now: Instant) -> usize {
        self.seen
            .retain(|_, seen| now.saturating_duration_since(*seen) < self.idle);
        self.fetched.retain(|k, _| self.seen.contains_key(k));
        self.seen.len()
    }

    /// Forgets every session of a deleted track.
    pub fn forget(&self, track: TrackId) {
        self.seen.retain(|k, _| k.0 != track);
        self.fetched.retain(|k, _| k.0 != track);
        self.plays.remove(&track);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_count_until_idle() {
        let l = Listeners::new(Duration::from_secs(60));
        let (a, b) = (TrackId::new(), TrackId::new());
        let t0 = Instant::now();
        l.touch(a, 1, t0);
        l.touch(a, 1, t0);
        l.touch(a, 2, t0 + Duration::from_secs(30));
        l.touch(b, 1, t0);
        assert_eq!(l.count(a, t0 + Duration::from_secs(31)), 2);
        assert_eq!(l.count(a, t0 + Duration::from_secs(61)), 1);
        assert_eq!(l.sweep(t0 + Duration::from_secs(61)), 1);
        l.forget(a);
        assert_eq!(l.sweep(t0), 0);
    }

    #[test]
    fn a_play_counts_once_a_session_fetched_thirty_seconds() {
        let l = Listeners::new(Duration::from_secs(60));
        let (a, b) = (TrackId::new(), TrackId::new());
        for _ in 0..4 {
            l.fetched(a, 1, 6.0);
        }
        l.fetched(b, 1, 6.0);
        assert!(l.take_plays().is_empty(), "24 s is not a play");
        l.fetched(a, 1, 6.0);
        l.fetched(a, 1, 6.0);
        for _ in 0..10 {
            l.fetched(a, 2, 6.0);
        }
        assert_eq!(l.take_plays(), vec![(a, 2)], "one play per session");
        assert!(l.take_plays().is_empty());
    }
}
