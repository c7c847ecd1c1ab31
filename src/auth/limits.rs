//! Request-rate limits of the control API: token buckets (governor's GCRA) per client IP, checked
//! before anything else, and per subject once the caller is known. Also the stream-key failure
//! limit: a client address that sends wrong stream keys too often (an Icecast source, a WHIP
//! publisher, `/admin/metadata`) is refused for a while, whatever key it sends then.

use crate::config;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// The control API's rate limiters.
pub struct Limiters {
    subject: Option<DefaultKeyedRateLimiter<String>>,
    ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    key_failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Addresses refused until an instant, after too many wrong stream keys.
    key_blocked: dashmap::DashMap<IpAddr, std::time::Instant>,
}

impl Limiters {
    /// Builds the limiters of `[limits]`; a rate of 0 turns one off.
    pub fn new(limits: &config::Limits) -> Limiters {
        let burst = NonZeroU32::new(limits.burst).unwrap_or(NonZeroU32::MIN);
        let quota = |per_minute: u32| {
            NonZeroU32::new(per_minute).map(|n| Quota::per_minute(n).allow_burst(burst))
        };
        Limiters {
            subject: quota(limits.per_subject_per_minute).map(RateLimiter::keyed),
            ip: quota(limits.per_ip_per_minute).map(RateLimiter::keyed),
            key_failures: NonZeroU32::new(limits.stream_key_failures_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            key_blocked: Default::default(),
        }
    }

    /// How long `ip` is still refused for wrong stream keys, if it is.
    pub fn key_blocked(&self, ip: IpAddr) -> Option<Duration> {
        let until = *self.key_blocked.get(&ip)?;
        let left = until.saturating_duration_since(std::time::Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// Counts a wrong stream key from `ip`; past the limit, `ip` is refused for the time its
    /// bucket takes to hold one more, which is returned.
    pub fn key_failed(&self, ip: IpAddr) -> Option<Duration> {
        let wait = self
            .key_failures
            .as_ref()?
            .check_key(&ip)
            .err()?
            .wait_time_from(DefaultClock::default().now());
        self.key_blocked
            .insert(ip, std::time::Instant::now() + wait);
        Some(wait)
    }

    /// Takes one request from `ip`'s bucket, or says how long until it holds one.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        match &self.ip {
            Some(l) => l
                .check_key(&ip)
                .map_err(|n| n.wait_time_from(DefaultClock::default().now())),
            None => Ok(()),
        }
    }

    /// Takes one request from `subject`'s bucket, or says how long until it holds one.
    pub fn check_subject(&self, subject: &str) -> Result<(), Duration> {
        match &self.subject {
            Some(l) => l
                .check_key(&subject.to_string())
                .map_err(|n| n.wait_time_from(DefaultClock::default().now())),
            None => Ok(()),
        }
    }

    /// Forgets buckets that are full again, so the maps stay as small as the active clients.
    pub fn sweep(&self) {
        if let Some(l) = &self.subject {
            l.retain_recent();
        }
        if let Some(l) = &self.ip {
            l.retain_recent();
        }
        if let Some(l) = &self.key_failures {
            l.retain_recent();
        }
        let now = std::time::Instant::now();
        self.key_blocked.retain(|_, until| *until > now);
    }
}
