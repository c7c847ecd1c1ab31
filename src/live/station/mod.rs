//! A station's programme and the auto-DJ's choices, without I/O: weekly slots in the channel's
//! IANA time zone, one-off events, rotation orders, interstitials (jingles, station IDs) and the
//! silence trimming of tracks. Time is Unix milliseconds passed in; nothing here reads a clock,
//! so every rule is tested on synthetic time (`tests.rs`).
//!
//! - [`Doc`] is the programme as the API takes and the store keeps it; [`Doc::parse`] checks it
//!   once and gives a [`Programme`], or a [`Invalid`] naming the field.
//! - [`Programme::at`] says what the programme wants at an instant, [`Programme::upcoming`] the
//!   resolved timeline.
//! - [`Dj`] picks the auto-DJ's next item at each item boundary.
//! - [`Trim`] drops a track's leading and trailing silence as it decodes.

mod dj;
mod resolve;
mod trim;

#[cfg(test)]
mod tests;

pub use dj::{Dj, Kind, Pick};
pub use resolve::{Entry, EntryKind, Want};
pub use trim::{crossfade, Trim};

pub use crate::store::InterstitialDoc;
use crate::store::{PlaylistId, TrackId};
use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Slots a programme may hold.
pub const MAX_SLOTS: usize = 200;
/// Events a programme may hold.
pub const MAX_EVENTS: usize = 500;
/// How long after its instant an event still starts (a channel that came on air late, or was
/// busy with a live source): after this it is missed, never played hours late.
pub const EVENT_GRACE_MS: i64 = 60_000;

/// How a slot's playlist is played.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// In playlist order, resuming where it left off.
    #[default]
    Sequential,
    /// Shuffled, with no track repeated before every track has played.
    Shuffle,
    /// Random, each track's chance growing with the time since it last played; never the same
    /// track twice in a row.
    Weighted,
}

/// One weekly slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotDoc {
    /// What plays.
    pub playlist_id: String,
    /// `mon` … `sun`: the days it starts on.
    pub days: Vec<String>,
    /// Local start, `HH:MM`.
    pub start: String,
    /// Local end, `HH:MM` (`24:00` for midnight); at or before `start`, the next day.
    pub end: String,
    /// Default `sequential`.
    #[serde(default)]
    pub order: Order,
    /// Jingles within this slot, instead of the channel's.
    #[serde(default)]
    pub interstitial: Option<InterstitialDoc>,
}

/// A one-off event: a playlist (or one track) played once from its instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventDoc {
    /// The playlist, played once in order.
    pub playlist_id: Option<String>,
    /// Or one track.
    pub track_id: Option<String>,
    /// RFC 3339, with its offset.
    pub at: String,
}

/// The programme, as `PUT /v1/channels/{id}/schedule` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Doc {
    /// IANA time zone of the slots (`Europe/Paris`).
    pub timezone: String,
    /// What plays outside the slots; the channel's `playlist_id` when absent.
    #[serde(default)]
    pub default_playlist_id: Option<String>,
    /// Weekly slots; they must not overlap.
    #[serde(default)]
    pub slots: Vec<SlotDoc>,
    /// One-off events.
    #[serde(default)]
    pub events: Vec<EventDoc>,
}

/// Why a programme was refused: the field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// JSON pointer-ish path (`slots[2].start`).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// How often interstitials play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interstitial {
    /// The playlist.
    pub playlist: PlaylistId,
    /// After this many tracks.
    pub every_tracks: Option<u32>,
    /// After this many milliseconds.
    pub every_ms: Option<i64>,
}

impl InterstitialDoc {
    /// Checked, with `field` naming it in errors.
    pub fn parse(&self, field: &str) -> Result<Interstitial, Invalid> {
        let playlist = self
            .playlist_id
            .parse()
            .map_err(|_| invalid(format!("{field}.playlist_id"), "not a playlist id"))?;
        if self.every_tracks.is_none() && self.every_minutes.is_none() {
            return Err(invalid(field, "set every_tracks, every_minutes or both"));
        }
        if self.every_tracks.is_some_and(|n| !(1..=1000).contains(&n)) {
            return Err(invalid(format!("{field}.every_tracks"), "1 to 1000"));
        }
        if self.every_minutes.is_some_and(|n| !(1..=1440).contains(&n)) {
            return Err(invalid(format!("{field}.every_minutes"), "1 to 1440"));
        }
        Ok(Interstitial {
            playlist,
            every_tracks: self.every_tracks,
            every_ms: self.every_minutes.map(|m| i64::from(m) * 60_000),
        })
    }
}

/// A checked slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    /// What plays.
    pub playlist: PlaylistId,
    /// Days it starts on.
    pub days: Vec<Weekday>,
    /// Local start.
    pub start: NaiveTime,
    /// Local end (the next day when at or before `start`).
    pub end: NaiveTime,
    /// Rotation.
    pub order: Order,
    /// Its jingles.
    pub interstitial: Option<Interstitial>,
}

impl Slot {
    /// Whether it ends the day after it starts.
    pub fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }
}

/// What an event plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Play {
    /// A playlist, once, in order.
    Playlist(PlaylistId),
    /// One track.
    Track(TrackId),
}

/// A checked event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What it plays.
    pub play: Play,
    /// Unix ms.
    pub at: i64,
}

/// A checked programme.
#[derive(Debug, Clone, PartialEq)]
pub struct Programme {
    /// The slots' time zone.
    pub tz: Tz,
    /// Outside the slots.
    pub default: Option<PlaylistId>,
    /// How the default plays.
    pub default_order: Order,
    /// Weekly slots, not overlapping.
    pub slots: Vec<Slot>,
    /// Events, by instant.
    pub events: Vec<Event>,
}

impl Order {
    /// How a channel's own playlist plays: its `shuffle` flag.
    pub fn of_shuffle(shuffle: bool) -> Order {
        if shuffle {
            Order::Shuffle
        } else {
            Order::Sequential
        }
    }
}

impl Programme {
    /// A programme of the default playlist only.
    pub fn plain(default: Option<PlaylistId>, order: Order) -> Programme {
        Programme {
            tz: Tz::UTC,
            default,
            default_order: order,
            slots: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Every playlist it names, the channel's interstitial's aside.
    pub fn playlists(&self) -> Vec<PlaylistId> {
        let mut all: Vec<PlaylistId> = self.default.into_iter().collect();
        for s in &self.slots {
            all.push(s.playlist);
            all.extend(s.interstitial.as_ref().map(|i| i.playlist));
        }
        for e in &self.events {
            if let Play::Playlist(p) = e.play {
                all.push(p);
            }
        }
        all.sort_by_key(|p| p.to_string());
        all.dedup();
        all
    }
}

fn parse_time(s: &str, field: &str, end: bool) -> Result<NaiveTime, Invalid> {
    if end && s == "24:00" {
        return Ok(NaiveTime::MIN);
    }
    let ok = s.len() == 5 && s.as_bytes()[2] == b':';
    ok.then(|| NaiveTime::parse_from_str(s, "%H:%M").ok())
        .flatten()
        .ok_or_else(|| invalid(field, format!("{s:?} is not a local time HH:MM")))
}

fn parse_day(s: &str, field: &str) -> Result<Weekday, Invalid> {
    Ok(match s {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return Err(invalid(field, format!("{s:?} is not mon … sun"))),
    })
}

/// Minutes since Monday 00:00 of a local weekday and time.
fn week_minute(d: Weekday, t: NaiveTime) -> u32 {
    use chrono::Timelike;
    d.num_days_from_monday() * 1440 + t.hour() * 60 + t.minute()
}

const WEEK: u32 = 7 * 1440;

fn day_name(m: u32) -> String {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let m = m % WEEK;
    format!(
        "{} {:02}:{:02}",
        DAYS[(m / 1440) as usize],
        m % 1440 / 60,
        m % 60
    )
}

impl Doc {
    /// Checks the document; `channel_order` is how the default playlist plays (the channel's
    /// `shuffle`).
    pub fn parse(&self, channel_order: Order) -> Result<Programme, Invalid> {
        let tz: Tz = self.timezone.parse().map_err(|_| {
            invalid(
                "timezone",
                format!("{:?} is not an IANA time zone", self.timezone),
            )
        })?;
        let default = match &self.default_playlist_id {
            Some(p) => Some(
                p.parse()
                    .map_err(|_| invalid("default_playlist_id", "not a playlist id"))?,
            ),
            None => None,
        };
        if self.slots.len() > MAX_SLOTS {
            return Err(invalid("slots", format!("at most {MAX_SLOTS}")));
        }
        if self.events.len() > MAX_EVENTS {
            return Err(invalid("events", format!("at most {MAX_EVENTS}")));
        }
        let mut slots = Vec::with_capacity(self.slots.len());
        for (i, s) in self.slots.iter().enumerate() {
            let f = format!("slots[{i}]");
            let playlist = s
                .playlist_id
                .parse()
                .map_err(|_| invalid(format!("{f}.playlist_id"), "not a playlist id"))?;
            if s.days.is_empty() {
                return Err(invalid(format!("{f}.days"), "name at least one day"));
            }
            let mut days = Vec::new();
            for d in &s.days {
                let d = parse_day(d, &format!("{f}.days"))?;
                if days.contains(&d) {
                    return Err(invalid(format!("{f}.days"), "a day is named twice"));
                }
                days.push(d);
            }
            let start = parse_time(&s.start, &format!("{f}.start"), false)?;
            let end = parse_time(&s.end, &format!("{f}.end"), true)?;
            if start == end && s.end != "24:00" {
                return Err(invalid(format!("{f}.end"), "a slot ends after it starts"));
            }
            let interstitial = s
                .interstitial
                .as_ref()
                .map(|x| x.parse(&format!("{f}.interstitial")))
                .transpose()?;
            slots.push(Slot {
                playlist,
                days,
                start,
                end,
                order: s.order,
                interstitial,
            });
        }
        check_overlaps(&slots)?;
        let mut events = Vec::with_capacity(self.events.len());
        for (i, e) in self.events.iter().enumerate() {
            let f = format!("events[{i}]");
            let at = chrono::DateTime::parse_from_rfc3339(&e.at)
                .map_err(|_| {
                    invalid(
                        format!("{f}.at"),
                        "not an RFC 3339 date-time with its offset",
                    )
                })?
                .timestamp_millis();
            let play = match (&e.playlist_id, &e.track_id) {
                (Some(p), None) => Play::Playlist(
                    p.parse()
                        .map_err(|_| invalid(format!("{f}.playlist_id"), "not a playlist id"))?,
                ),
                (None, Some(t)) => Play::Track(
                    t.parse()
                        .map_err(|_| invalid(format!("{f}.track_id"), "not a track id"))?,
                ),
                _ => return Err(invalid(&f, "name a playlist_id or a track_id, not both")),
            };
            events.push(Event { play, at });
        }
        events.sort_by_key(|e| e.at);
        Ok(Programme {
            tz,
            default,
            default_order: channel_order,
            slots,
            events,
        })
    }
}

/// Refuses slots whose weekly local intervals intersect, naming both and where.
fn check_overlaps(slots: &[Slot]) -> Result<(), Invalid> {
    // Each slot instance as [start, end) in minutes of the local week, unwrapped past Sunday.
    let mut spans: Vec<(usize, u32, u32)> = Vec::new();
    for (i, s) in slots.iter().enumerate() {
        for &d in &s.days {
            let a = week_minute(d, s.start);
            let mut b = week_minute(d, s.end);
            if s.crosses_midnight() {
                b += 1440;
            }
            spans.push((i, a, b));
        }
    }
    for (x, &(i, a1, b1)) in spans.iter().enumerate() {
        for &(j, a2, b2) in &spans[x + 1..] {
            if i == j {
                continue;
            }
            // Compare on the circle: shift the second by a week either way.
            for shift in [0i64, WEEK as i64, -(WEEK as i64)] {
                let (a2, b2) = (a2 as i64 + shift, b2 as i64 + shift);
                let (lo, hi) = ((a1 as i64).max(a2), (b1 as i64).min(b2));
                if lo < hi {
                    let (i, j) = (i.min(j), i.max(j));
                    return Err(invalid(
                        format!("slots[{j}]"),
                        format!(
                            "overlaps slots[{i}] from {} to {}",
                            day_name(lo.rem_euclid(WEEK as i64) as u32),
                            day_name(hi.rem_euclid(WEEK as i64) as u32)
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
