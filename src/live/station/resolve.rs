//! Where the programme stands at an instant, and its timeline: slot instances are computed in
//! the channel's time zone day by day, so a slot keeps its local times across DST changes. A
//! local time that does not exist (the hour skipped in spring) starts at the first one that does;
//! one that happens twice (the hour repeated in autumn) at the first of the two.

use super::{Event, Order, Play, Programme, Slot};
use crate::store::{PlaylistId, TrackId};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

/// What the programme wants played at an instant, outside events.
#[derive(Debug, Clone, PartialEq)]
pub struct Want {
    /// The slot's index, `None` for the default.
    pub slot: Option<usize>,
    /// The playlist.
    pub playlist: PlaylistId,
    /// Its rotation.
    pub order: Order,
}

/// What a stretch of the timeline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A weekly slot.
    Slot,
    /// The default playlist.
    Default,
    /// A one-off event.
    Event,
}

/// One stretch of the resolved timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Unix ms.
    pub start: i64,
    /// Unix ms; `None` for an event of unknown length.
    pub end: Option<i64>,
    /// What it is.
    pub kind: EntryKind,
    /// The slot's index.
    pub slot: Option<usize>,
    /// Its playlist.
    pub playlist: Option<PlaylistId>,
    /// Its track (an event of one track).
    pub track: Option<TrackId>,
}

/// Unix ms of a local date and time in `tz`.
pub(super) fn local_ms(tz: Tz, date: NaiveDate, time: NaiveTime) -> i64 {
    let mut at = NaiveDateTime::new(date, time);
    // A time in a spring-forward gap does not exist: the first minute after it that does. Gaps
    // are at most a few hours in the tz database.
    for _ in 0..(4 * 60) {
        if let Some(t) = tz.from_local_datetime(&at).earliest() {
            return t.timestamp_millis();
        }
        at += Duration::minutes(1);
    }
    // Only reached for a zone with a gap over four hours, which none has.
    tz.from_utc_datetime(&at).timestamp_millis()
}

fn local_date(tz: Tz, ms: i64) -> NaiveDate {
    tz.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// The instance of `slot` starting on local `date`: [start, end) in Unix ms.
pub(super) fn instance(tz: Tz, slot: &Slot, date: NaiveDate) -> Option<(i64, i64)> {
    if !slot.days.contains(&date.weekday()) {
        return None;
    }
    let start = local_ms(tz, date, slot.start);
    let end_date = if slot.crosses_midnight() {
        date.succ_opt()?
    } else {
        date
    };
    let end = local_ms(tz, end_date, slot.end);
    (end > start).then_some((start, end))
}

impl Programme {
    /// Slot instances overlapping [from, to), with their slot's index, by start.
    fn instances(&self, from: i64, to: i64) -> Vec<(i64, i64, usize)> {
        let mut out = Vec::new();
        let (first, last) = (local_date(self.tz, from), local_date(self.tz, to));
        let mut d = first.pred_opt().unwrap_or(first);
        while d <= last {
            for (i, s) in self.slots.iter().enumerate() {
                if let Some((a, b)) = instance(self.tz, s, d) {
                    if a < to && b > from {
                        out.push((a, b, i));
                    }
                }
            }
            match d.succ_opt() {
                Some(n) => d = n,
                None => break,
            }
        }
        out.sort();
        out
    }

    /// The slot playing at `now`, with its instance's bounds.
    pub fn slot_at(&self, now: i64) -> Option<(usize, i64, i64)> {
        self.instances(now, now + 1)
            .into_iter()
            .find(|&(a, b, _)| a <= now && now < b)
            .map(|(a, b, i)| (i, a, b))
    }

    /// What plays at `now` outside events: the slot's playlist, else the default.
    pub fn at(&self, now: i64) -> Option<Want> {
        match self.slot_at(now) {
            Some((i, _, _)) => Some(Want {
                slot: Some(i),
                playlist: self.slots[i].playlist,
                order: self.slots[i].order,
            }),
            None => self.default.map(|p| Want {
                slot: None,
                playlist: p,
                order: self.default_order,
            }),
        }
    }

    /// Events whose instant falls in [from, to).
    pub fn events_between(&self, from: i64, to: i64) -> impl Iterator<Item = (usize, &Event)> {
        self.events
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.at >= from && e.at < to)
    }

    /// The timeline over [from, to): slots and the default between them, cut by events, which
    /// last `event_ms(event)` when known (until the next boundary otherwise).
    pub fn upcoming(
        &self,
        from: i64,
        to: i64,
        event_ms: &dyn Fn(&Event) -> Option<i64>,
    ) -> Vec<Entry> {
        let mut base: Vec<Entry> = Vec::new();
        let mut at = from;
        let mut push = |start: i64, end: i64, slot: Option<usize>| {
            if end <= start {
                return;
            }
            let (kind, playlist) = match slot {
                Some(i) => (EntryKind::Slot, Some(self.slots[i].playlist)),
                None => match self.default {
                    Some(p) => (EntryKind::Default, Some(p)),
                    None => return,
                },
            };
            base.push(Entry {
                start,
                end: Some(end),
                kind,
                slot,
                playlist,
                track: None,
            });
        };
        for (a, b, i) in self.instances(from, to) {
            let (a, b) = (a.max(at), b.min(to));
            push(at, a, None);
            push(a, b, Some(i));
            at = at.max(b);
        }
        push(at, to, None);
        // Events cut what they overlap.
        let mut out = base;
        for (_, e) in self.events_between(from, to) {
            let end = event_ms(e).map(|d| e.at + d);
            let cut = end.unwrap_or(e.at);
            let mut next = Vec::with_capacity(out.len() + 2);
            for x in out {
                let xe = x.end.unwrap_or(x.start);
                if x.kind == EntryKind::Event || xe <= e.at || x.start >= cut {
                    next.push(x);
                    continue;
                }
                if x.start < e.at {
                    next.push(Entry {
                        end: Some(e.at),
                        ..x.clone()
                    });
                }
                if xe > cut {
                    next.push(Entry {
                        start: cut,
                        ..x.clone()
                    });
                }
            }
            let (playlist, track) = match e.play {
                Play::Playlist(p) => (Some(p), None),
                Play::Track(t) => (None, Some(t)),
            };
            next.push(Entry {
                start: e.at,
                end,
                kind: EntryKind::Event,
                slot: None,
                playlist,
                track,
            });
            next.sort_by_key(|x| (x.start, x.kind != EntryKind::Event));
            out = next;
        }
        out
    }
}
