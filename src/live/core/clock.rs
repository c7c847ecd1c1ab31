//! The channel clock: media time from sample counts, mapped to the wall clock.
//!
//! Timestamps come only from samples produced. The wall clock decides two things: when a block
//! is due (nothing is produced before it, whatever the input: a source that sends ahead waits in
//! its buffer), and the `EXT-X-PROGRAM-DATE-TIME` of each segment, which follows media time from
//! the mapping and so only moves forward. A new source restarts the mapping at its first
//! sample's arrival, never earlier than the current one. When media time falls more than a
//! second behind the wall clock (the engine itself was starved: a silent source is filled by the
//! auto-DJ or silence before that), the mapping is moved up to now, once, and counted.

use std::time::{Duration, Instant};

/// 48 kHz ticks.
pub const RATE: u64 = 48_000;

/// How far behind the wall clock media time may fall before the mapping is moved.
const MAX_BEHIND: Duration = Duration::from_secs(1);

/// Maps ticks to instants and Unix milliseconds.
#[derive(Debug, Clone)]
pub struct Clock {
    anchor: Instant,
    anchor_unix_ms: i64,
    anchor_tick: u64,
    /// Times the mapping was moved.
    pub corrections: u64,
}

impl Clock {
    /// A clock on which `tick` is `now` (`unix_ms` on the wall clock).
    pub fn new(tick: u64, now: Instant, unix_ms: i64) -> Clock {
        Clock {
            anchor: now,
            anchor_unix_ms: unix_ms,
            anchor_tick: tick,
            corrections: 0,
        }
    }

    fn offset(&self, tick: u64) -> Duration {
        Duration::from_micros(tick.saturating_sub(self.anchor_tick) * 1_000_000 / RATE)
    }

    /// When `tick` is due.
    pub fn due(&self, tick: u64) -> Instant {
        self.anchor + self.offset(tick)
    }

    /// Wall-clock time of `tick`, Unix ms.
    pub fn unix_ms(&self, tick: u64) -> i64 {
        let delta = tick as i128 - self.anchor_tick as i128;
        self.anchor_unix_ms + (delta * 1000 / RATE as i128) as i64
    }

    /// Before producing the samples from `tick` on: the instant to wait for, if `tick` is not
    /// due at `now`. Moves the mapping when media time is too far behind.
    pub fn gate(&mut self, tick: u64, now: Instant, unix_ms: i64) -> Option<Instant> {
        let due = self.due(tick);
        if now > due + MAX_BEHIND {
            *self = Clock {
                corrections: self.corrections + 1,
                ..Clock::new(tick, now, unix_ms)
            };
            return None;
        }
        (due > now).then_some(due)
    }
}

impl Clock {
    /// Maps `tick` to `now` (`unix_ms`): a new source is paced from its first sample's arrival.
    /// Never earlier than the current mapping puts `tick`, so that dates only move forward and
    /// a part is never due before the one it follows.
    pub fn restart(&mut self, tick: u64, now: Instant, unix_ms: i64) {
        if unix_ms > self.unix_ms(tick) && now > self.due(tick) {
            *self = Clock {
                corrections: self.corrections,
                ..Clock::new(tick, now, unix_ms)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_on_time_is_not_held_and_one_ahead_is() {
        let t0 = Instant::now();
        let mut c = Clock::new(0, t0, 1_000);
        assert_eq!(c.gate(48_000, t0 + Duration::from_secs(1), 2_000), None);
        let wake = c.gate(96_000, t0 + Duration::from_secs(1), 2_000);
        assert_eq!(wake, Some(t0 + Duration::from_secs(2)));
        assert_eq!(c.unix_ms(96_000), 3_000);
        assert_eq!(c.corrections, 0);
    }

    #[test]
    fn a_new_source_restarts_the_mapping_but_never_back() {
        let t0 = Instant::now();
        let mut c = Clock::new(0, t0, 0);
        // A source that arrives later than the mapping expects: paced from its arrival.
        c.restart(48_000, t0 + Duration::from_secs(2), 2_000);
        assert_eq!(c.unix_ms(48_000), 2_000);
        assert_eq!(c.due(96_000), t0 + Duration::from_secs(3));
        // One that would date its first sample earlier than the mapping does (a burst whose
        // backlog puts its arrival back): the mapping stays, dates do not go back.
        c.restart(96_000, t0 + Duration::from_millis(2_500), 2_500);
        assert_eq!(c.unix_ms(96_000), 3_000);
        assert_eq!(c.corrections, 0);
    }

    #[test]
    fn falling_behind_moves_the_mapping_once() {
        let t0 = Instant::now();
        let mut c = Clock::new(0, t0, 0);
        // A 5 s stall after one second of media.
        let now = t0 + Duration::from_secs(6);
        assert_eq!(c.gate(48_000, now, 6_000), None);
        assert_eq!(c.corrections, 1);
        assert_eq!(c.unix_ms(48_000), 6_000);
        assert_eq!(c.unix_ms(96_000), 7_000);
        // Back on time: no further correction.
        assert_eq!(c.gate(96_000, now + Duration::from_secs(1), 7_000), None);
        assert_eq!(c.corrections, 1);
    }
}
