//! Who listens to a channel, as its statistics count them: sessions started per protocol,
//! progressive listeners by player family, and the per-minute figures the engine stores
//! ([`Minutes`]). The player family comes from the `User-Agent`.

use crate::store::{ChannelId, ListenerMinute};
use dashmap::DashMap;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// The protocols statistics count, in this order.
pub const PROTOCOLS: [&str; 3] = ["hls", "webrtc", "progressive"];

/// The player family of a `User-Agent`: what a station reports listeners by.
pub fn family(agent: Option<&str>) -> &'static str {
    let Some(a) = agent.map(str::to_ascii_lowercase) else {
        return "Unknown";
    };
    const FAMILIES: &[(&str, &str)] = &[
        ("vlc", "VLC"),
        ("mpv", "mpv"),
        ("lavf", "FFmpeg"),
        ("ffmpeg", "FFmpeg"),
        ("gstreamer", "GStreamer"),
        ("winamp", "Winamp"),
        ("foobar2000", "foobar2000"),
        ("itunes", "Apple"),
        ("applecoremedia", "Apple"),
        ("sonos", "Sonos"),
        ("alexa", "Alexa"),
        ("crkey", "Google Cast"),
        ("googlechromecast", "Google Cast"),
        ("tunein", "TuneIn"),
        ("radio.garden", "Radio Garden"),
        ("python", "Script"),
        ("curl", "Script"),
        ("wget", "Script"),
        ("edg/", "Edge"),
        ("firefox", "Firefox"),
        ("chrom", "Chrome"),
        ("safari", "Safari"),
    ];
    FAMILIES
        .iter()
        .find(|(needle, _)| a.contains(needle))
        .map_or("Other", |(_, f)| f)
}

/// A channel's audience counters, shared by its listeners' handlers and its engine.
#[derive(Debug, Default)]
pub struct Audience {
    /// Sessions started, by protocol ([`PROTOCOLS`]).
    started: [AtomicU64; 3],
    /// Progressive listeners connected now, by family.
    progressive: DashMap<&'static str, Arc<AtomicI64>>,
}

/// A progressive listener counted while it is held.
#[derive(Debug)]
pub struct Tuned(Arc<AtomicI64>);

impl Drop for Tuned {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Audience {
    /// A session of protocol `p` (an index in [`PROTOCOLS`]) started.
    pub fn started(&self, p: usize) {
        if let Some(c) = self.started.get(p) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A progressive listener with this `User-Agent` connected, until the guard drops.
    pub fn tune_in(&self, agent: Option<&str>) -> Tuned {
        self.started(2);
        let c = self.progressive.entry(family(agent)).or_default().clone();
        c.fetch_add(1, Ordering::Relaxed);
        Tuned(c)
    }

    /// Sessions started so far, by protocol.
    pub fn started_so_far(&self) -> [u64; 3] {
        self.started.each_ref().map(|c| c.load(Ordering::Relaxed))
    }

    /// Progressive listeners now, by family.
    pub fn progressive(&self) -> Vec<(&'static str, u64)> {
        self.progressive
            .iter()
            .map(|e| (*e.key(), e.value().load(Ordering::Relaxed).max(0) as u64))
            .filter(|e| e.1 > 0)
            .collect()
    }
}

/// One count of a channel's listeners.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Listeners now, by protocol ([`PROTOCOLS`]).
    pub protocols: [u64; 3],
    /// Listeners now, by player family.
    pub families: Vec<(&'static str, u64)>,
    /// Sessions started since the channel started, by protocol.
    pub started: [u64; 3],
}

#[derive(Debug, Default)]
struct Acc {
    peak: u64,
    sum: u64,
}

/// Per-minute figures from samples taken every second or so: peak, mean (over the samples
/// taken) and sessions started. Time is Unix ms passed in.
#[derive(Debug)]
pub struct Minutes {
    channel: ChannelId,
    minute: Option<i64>,
    samples: u64,
    acc: BTreeMap<(&'static str, &'static str), Acc>,
    started_at_minute: [u64; 3],
    last_started: [u64; 3],
}

const MINUTE: i64 = 60_000;

impl Minutes {
    /// Nothing counted yet.
    pub fn new(channel: ChannelId) -> Minutes {
        Minutes {
            channel,
            minute: None,
            samples: 0,
            acc: BTreeMap::new(),
            started_at_minute: [0; 3],
            last_started: [0; 3],
        }
    }

    /// Counts `s`, taken at `now`; the minutes that ended before it, as rows.
    pub fn add(&mut self, now: i64, s: &Sample) -> Vec<ListenerMinute> {
        let minute = now - now.rem_euclid(MINUTE);
        let mut out = Vec::new();
        if self.minute.is_some_and(|m| m != minute) {
            out = self.flush();
        }
        if self.minute.is_none() {
            self.minute = Some(minute);
            self.samples = 0;
            self.started_at_minute = self.last_started;
        }
        self.samples += 1;
        self.last_started = s.started;
        for (i, n) in s.protocols.iter().enumerate() {
            let a = self.acc.entry(("protocol", PROTOCOLS[i])).or_default();
            a.peak = a.peak.max(*n);
            a.sum += n;
        }
        for &(f, n) in &s.families {
            let a = self.acc.entry(("family", f)).or_default();
            a.peak = a.peak.max(n);
            a.sum += n;
        }
        out
    }

    /// The minute in progress, as rows, ending it (at the end of the channel).
    pub fn flush(&mut self) -> Vec<ListenerMinute> {
        let rows = self.current();
        self.minute = None;
        self.acc.clear();
        rows
    }

    /// The minute in progress as rows so far, which a later write of the same minute replaces:
    /// the figures are readable before the minute ends.
    pub fn current(&self) -> Vec<ListenerMinute> {
        let Some(minute) = self.minute else {
            return Vec::new();
        };
        let samples = self.samples.max(1) as f64;
        self.acc
            .iter()
            .map(|(&(dimension, name), a)| {
                let sessions = PROTOCOLS
                    .iter()
                    .position(|p| dimension == "protocol" && *p == name)
                    .map_or(0, |i| {
                        self.last_started[i].saturating_sub(self.started_at_minute[i])
                    });
                ListenerMinute {
                    channel_id: self.channel,
                    minute,
                    dimension: dimension.into(),
                    name: name.into(),
                    peak: a.peak as i64,
                    mean: a.sum as f64 / samples,
                    sessions: sessions as i64,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn players_are_named_by_family() {
        for (ua, f) in [
            (Some("VLC/3.0.21 LibVLC/3.0.21"), "VLC"),
            (Some("mpv 0.35.1"), "mpv"),
            (Some("Lavf/59.27.100"), "FFmpeg"),
            (Some("GStreamer souphttpsrc 1.22.0 libsoup/3.2.2"), "GStreamer"),
            (Some("WinampMPEG/5.66, Ultravox/2.1"), "Winamp"),
            (Some("Sonos/80.1-55014 (ZPS1)"), "Sonos"),
            (Some("AppleCoreMedia/1.0.0.21A329 (iPhone; U; CPU OS 17_0 like Mac OS X)"), "Apple"),
            (Some("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"), "Chrome"),
            (Some("Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"), "Safari"),
            (Some("something"), "Other"),
            (None, "Unknown"),
        ] {
            assert_eq!(family(ua), f, "{ua:?}");
        }
    }

    #[test]
    fn a_minute_has_its_peak_mean_and_sessions() {
        let ch = ChannelId::new();
        let mut m = Minutes::new(ch);
        let t0 = 1_800_000_000_000 - 1_800_000_000_000 % MINUTE;
        let s = |hls, prog, started| Sample {
            protocols: [hls, 0, prog],
            families: vec![("VLC", prog)],
            started,
        };
        assert!(m.add(t0, &s(2, 1, [2, 0, 1])).is_empty());
        assert!(m.add(t0 + 30_000, &s(4, 1, [5, 0, 1])).is_empty());
        let rows = m.add(t0 + MINUTE, &s(0, 0, [6, 0, 1]));
        let hls = rows.iter().find(|r| r.name == "hls").unwrap();
        assert_eq!(
            (hls.minute, hls.peak, hls.mean, hls.sessions),
            (t0, 4, 3.0, 5)
        );
        let vlc = rows.iter().find(|r| r.name == "VLC").unwrap();
        assert_eq!(
            (vlc.dimension.as_str(), vlc.peak, vlc.mean),
            ("family", 1, 1.0)
        );
        // The next minute counts the session that started between the two.
        let rows = m.flush();
        let hls = rows.iter().find(|r| r.name == "hls").unwrap();
        assert_eq!((hls.minute, hls.peak, hls.sessions), (t0 + MINUTE, 0, 1));
    }
}
