//! `listeners`: who is listening now. One entry per (track, listener session), updated on every
//! delivery request in a lock-free map, so a busy track never serialises its listeners.

use crate::store::TrackId;
use dashmap::DashMap;
use std::time::{Duration, Instant};

/// Listener sessions with their last-seen time.
pub struct Listeners {
    seen: DashMap<(TrackId, u128), Instant>,
    idle: Duration,
}

impl Listeners {
    /// A session stops counting `idle` after its last request.
    pub fn new(idle: Duration) -> Listeners {
        Listeners {
            seen: DashMap::new(),
            idle,
        }
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
        self.seen.len()
    }

    /// Forgets every session of a deleted track.
    pub fn forget(&self, track: TrackId) {
        self.seen.retain(|k, _| k.0 != track);
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
}
