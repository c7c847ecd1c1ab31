//! The channel clock: media time from sample counts, mapped to the wall clock.
//!
//! Timestamps come only from samples produced. The wall clock decides two things: how long to
//! wait before producing more (the auto-DJ is paced by it; a source is paced by its sender and
//! only held back when it runs ahead), and the `EXT-X-PROGRAM-DATE-TIME` of each segment. When
//! media time falls more than a second behind the wall clock (a source that stalled or sends
//! slower than real time), the mapping is moved up to now: the drift is absorbed at that instant
//! and counted, instead of accumulating into a growing delay.

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

    /// Before producing the samples from `tick` on: the instant to wait for, if media time is
    /// more than `lead` ahead of `now`. Moves the mapping when media time is too far behind.
    pub fn gate(
        &mut self,
        tick: u64,
        lead: Duration,
        now: Instant,
        unix_ms: i64,
    ) -> Option<Instant> {
        let due = self.due(tick);
        if now > due + MAX_BEHIND {
            *self = Clock {
                corrections: self.corrections + 1,
                ..Clock::new(tick, now, unix_ms)
            };
            return None;
        }
        let wake = due.checked_sub(lead).unwrap_or(due);
        (wake > now).then_some(wake)
    }
}

impl Clock {
    /// Dates `tick` by an observation: the sample arrived at `unix_ms` (`now` on the monotonic
    /// clock). A sample is never dated after it arrived: when the mapping would put it later
    /// (a source that sent a burst), the mapping moves back to the observation; when it would put
    /// it more than a second earlier (a stall), it moves up, and that is counted.
    pub fn observe(&mut self, tick: u64, now: Instant, unix_ms: i64) {
        let dated = self.unix_ms(tick);
        if dated > unix_ms + 20 || dated < unix_ms - MAX_BEHIND.as_millis() as i64 {
            let corrections = self.corrections + u64::from(dated < unix_ms);
            *self = Clock {
                corrections,
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
        assert_eq!(
            c.gate(48_000, Duration::ZERO, t0 + Duration::from_secs(1), 2_000),
            None
        );
        let wake = c.gate(
            96_000,
            Duration::from_millis(500),
            t0 + Duration::from_secs(1),
            2_000,
        );
        assert_eq!(wake, Some(t0 + Duration::from_millis(1_500)));
        assert_eq!(c.unix_ms(96_000), 3_000);
        assert_eq!(c.corrections, 0);
    }

    #[test]
    fn observations_keep_dates_honest() {
        let t0 = Instant::now();
        let mut c = Clock::new(0, t0, 0);
        // A burst: 2 s of samples arrived within 1 s.
        c.observe(96_000, t0 + Duration::from_secs(1), 1_000);
        assert_eq!(c.unix_ms(96_000), 1_000);
        assert_eq!(c.corrections, 0);
        // On time within 20 ms: untouched.
        c.observe(144_000, t0 + Duration::from_secs(2), 2_010);
        assert_eq!(c.unix_ms(144_000), 2_000);
        // Late by more than a second: moved up and counted.
        c.observe(192_000, t0 + Duration::from_secs(5), 5_000);
        assert_eq!(c.unix_ms(192_000), 5_000);
        assert_eq!(c.corrections, 1);
    }

    #[test]
    fn falling_behind_moves_the_mapping_once() {
        let t0 = Instant::now();
        let mut c = Clock::new(0, t0, 0);
        // A 5 s stall after one second of media.
        let now = t0 + Duration::from_secs(6);
        assert_eq!(c.gate(48_000, Duration::ZERO, now, 6_000), None);
        assert_eq!(c.corrections, 1);
        assert_eq!(c.unix_ms(48_000), 6_000);
        assert_eq!(c.unix_ms(96_000), 7_000);
        // Back on time: no further correction.
        assert_eq!(
            c.gate(96_000, Duration::ZERO, now + Duration::from_secs(1), 7_000),
            None
        );
        assert_eq!(c.corrections, 1);
    }
}
