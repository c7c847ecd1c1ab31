//! Request-rate limits of the control API: token buckets (governor's GCRA) per client IP, checked
//! before anything else, and per subject once the caller is known.

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
        }
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
    }
}
