//! The auto-DJ's choice at each item boundary: an event that is due, else an interstitial that
//! is due, else the next track of what the programme wants now, in its slot's order.
//!
//! The driver asks [`Dj::due`] at every block, so an event preempts the item playing at its
//! instant, and [`Dj::next`] at every item boundary. Playlists are read through `lib`, which
//! gives a playlist's playable tracks in order.

use super::{Interstitial, Order, Play, Programme, EVENT_GRACE_MS};
use crate::store::{PlaylistId, TrackId};
use std::collections::{BTreeSet, HashMap, VecDeque};

/// What an item on air is.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A track of the slot or the default playlist.
    #[default]
    Track,
    /// A track of an event.
    Event,
    /// A jingle or station ID.
    Interstitial,
    /// A live source (and each title it sent).
    Live,
}

impl Kind {
    /// Its name in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Track => "track",
            Kind::Event => "event",
            Kind::Interstitial => "interstitial",
            Kind::Live => "live",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "track" => Kind::Track,
            "event" => Kind::Event,
            "interstitial" => Kind::Interstitial,
            "live" => Kind::Live,
            _ => return None,
        })
    }
}

/// The next item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    /// The track.
    pub track: TrackId,
    /// Why it plays.
    pub kind: Kind,
}

/// The auto-DJ's memory between items.
#[derive(Debug)]
pub struct Dj {
    rng: u64,
    cursors: HashMap<PlaylistId, usize>,
    bags: HashMap<PlaylistId, VecDeque<TrackId>>,
    last_played: HashMap<TrackId, i64>,
    last: Option<TrackId>,
    /// Tracks since the last interstitial.
    tracks_since: u32,
    /// When the last interstitial played (the first track, before any).
    jingle_at: Option<i64>,
    /// What is left of the event playing.
    queue: VecDeque<TrackId>,
    /// Events started, by (instant, index).
    fired: BTreeSet<(i64, usize)>,
}

impl Dj {
    /// A fresh memory; `seed` drives shuffling.
    pub fn new(seed: u64) -> Dj {
        Dj {
            rng: seed | 1,
            cursors: HashMap::new(),
            bags: HashMap::new(),
            last_played: HashMap::new(),
            last: None,
            tracks_since: 0,
            jingle_at: None,
            queue: VecDeque::new(),
            fired: BTreeSet::new(),
        }
    }

    /// The index of an event whose instant has come by `now` and which has not started, if any
    /// (one missed by more than [`EVENT_GRACE_MS`] never starts).
    pub fn due(&self, p: &Programme, now: i64) -> Option<usize> {
        p.events_between(now - EVENT_GRACE_MS, now + 1)
            .find(|(i, e)| !self.fired.contains(&(e.at, *i)))
            .map(|(i, _)| i)
    }

    /// Whether an event is playing (tracks of it remain).
    pub fn in_event(&self) -> bool {
        !self.queue.is_empty()
    }

    /// The next item at `now`, `None` when nothing is playable. `jingles` is the channel's
    /// interstitial (a slot's own replaces it).
    pub fn next(
        &mut self,
        p: &Programme,
        jingles: Option<&Interstitial>,
        now: i64,
        lib: &dyn Fn(PlaylistId) -> Vec<TrackId>,
    ) -> Option<Pick> {
        self.fired.retain(|&(at, _)| at >= now - 2 * EVENT_GRACE_MS);
        if let Some(i) = self.due(p, now) {
            let e = &p.events[i];
            self.fired.insert((e.at, i));
            self.queue = match e.play {
                Play::Playlist(pl) => lib(pl).into(),
                Play::Track(t) => VecDeque::from([t]),
            };
        }
        if let Some(t) = self.queue.pop_front() {
            self.played(t, now);
            return Some(Pick {
                track: t,
                kind: Kind::Event,
            });
        }
        let want = p.at(now)?;
        let slot_jingles = want.slot.and_then(|i| p.slots[i].interstitial.as_ref());
        if let Some(j) = slot_jingles.or(jingles) {
            if self.jingle_due(j, now) {
                let list = lib(j.playlist);
                if !list.is_empty() {
                    let t = self.sequential(j.playlist, &list);
                    self.tracks_since = 0;
                    self.jingle_at = Some(now);
                    self.played(t, now);
                    return Some(Pick {
                        track: t,
                        kind: Kind::Interstitial,
                    });
                }
            }
        }
        let (mut playlist, mut order) = (want.playlist, want.order);
        let mut list = lib(playlist);
        if list.is_empty() && want.slot.is_some() {
            // An empty slot falls back to the default rather than dead air.
            if let Some(d) = p.default {
                (playlist, order) = (d, p.default_order);
                list = lib(playlist);
            }
        }
        if list.is_empty() {
            return None;
        }
        let t = match order {
            Order::Sequential => self.sequential(playlist, &list),
            Order::Shuffle => self.shuffled(playlist, &list),
            Order::Weighted => self.weighted(&list, now),
        };
        self.tracks_since += 1;
        self.jingle_at.get_or_insert(now);
        self.played(t, now);
        Some(Pick {
            track: t,
            kind: Kind::Track,
        })
    }

    fn jingle_due(&self, j: &Interstitial, now: i64) -> bool {
        j.every_tracks.is_some_and(|n| self.tracks_since >= n)
            || j.every_ms
                .is_some_and(|m| self.jingle_at.is_some_and(|a| now - a >= m))
    }

    fn played(&mut self, t: TrackId, now: i64) {
        self.last = Some(t);
        self.last_played.insert(t, now);
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: enough for a rotation, and reproducible from the seed in tests.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn sequential(&mut self, playlist: PlaylistId, list: &[TrackId]) -> TrackId {
        let at = self.cursors.entry(playlist).or_insert(0);
        let t = list[*at % list.len()];
        *at = (*at + 1) % list.len();
        t
    }

    fn shuffled(&mut self, playlist: PlaylistId, list: &[TrackId]) -> TrackId {
        loop {
            let bag = self.bags.entry(playlist).or_default();
            while let Some(t) = bag.pop_front() {
                // A track taken out of the playlist since the bag was filled is skipped.
                if list.contains(&t) {
                    return t;
                }
            }
            let mut fresh = list.to_vec();
            for i in (1..fresh.len()).rev() {
                let j = (self.random() % (i as u64 + 1)) as usize;
                fresh.swap(i, j);
            }
            // The new round never starts with the track that ended the last one.
            if fresh.len() > 1 && Some(fresh[0]) == self.last {
                let n = fresh.len() - 1;
                fresh.swap(0, n);
            }
            self.bags.insert(playlist, fresh.into());
        }
    }

    fn weighted(&mut self, list: &[TrackId], now: i64) -> TrackId {
        const NEVER: i64 = 24 * 3600 * 1000;
        let candidates: Vec<(TrackId, u64)> = list
            .iter()
            .filter(|&&t| list.len() == 1 || Some(t) != self.last)
            .map(|&t| {
                let since = self.last_played.get(&t).map_or(NEVER, |&at| now - at);
                (t, since.clamp(1, NEVER) as u64)
            })
            .collect();
        let total: u64 = candidates.iter().map(|c| c.1).sum();
        let mut x = self.random() % total.max(1);
        for (t, w) in &candidates {
            if x < *w {
                return *t;
            }
            x -= w;
        }
        candidates[candidates.len() - 1].0
    }
}
