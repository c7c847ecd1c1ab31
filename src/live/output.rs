//! One rendition of a live channel as listeners see it: the init segment and a window of parts
//! and segments, published by the channel's engine and read by every listener.
//!
//! The window is an immutable value behind an [`ArcSwap`]: the engine builds the next one (a
//! few hundred pointer copies per 320 ms part) and swaps it in; readers load it without a lock
//! and never block the engine. A `watch` channel carries the live edge, which is what blocked
//! playlist requests and preload-hinted part requests wait on. Memory is the DVR window, whatever
//! the listeners do.
//!
//! The media playlist text rendered from a window is kept with it (`Output::playlist`), so that
//! thousands of listeners reloading at each part cost one render per part, not one each.

use crate::rendition::Rendition;
use arc_swap::ArcSwap;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use veza_hls::{Edge, Part, UriSlots};

/// One published part.
#[derive(Debug)]
pub struct PartOut {
    /// Its segment's media sequence number.
    pub msn: u64,
    /// Its index in the segment.
    pub index: u32,
    /// Its length.
    pub seconds: f64,
    /// The CMAF chunk.
    pub data: Bytes,
}

/// One complete segment: its parts end to end.
#[derive(Debug)]
pub struct SegmentOut {
    /// Media sequence number.
    pub msn: u64,
    /// Wall-clock time of its first sample, Unix ms.
    pub pdt_ms: i64,
    /// Its length.
    pub seconds: f64,
    /// Its parts.
    pub parts: Vec<Arc<PartOut>>,
    /// The segment's bytes.
    pub data: Bytes,
}

/// What a rendition holds at one instant.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// Complete segments, oldest first, consecutive.
    pub segments: VecDeque<Arc<SegmentOut>>,
    /// Parts of the segment in progress.
    pub partial: Vec<Arc<PartOut>>,
    /// Wall-clock time of the segment in progress, Unix ms.
    pub partial_pdt_ms: i64,
    /// The stream has ended (`EXT-X-ENDLIST`).
    pub ended: bool,
}

impl Window {
    /// The segment `msn`, if the window holds it complete.
    pub fn segment(&self, msn: u64) -> Option<&Arc<SegmentOut>> {
        let first = self.segments.front()?.msn;
        let i = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.segments.get(i)
    }

    /// Part `index` of segment `msn`.
    pub fn part(&self, msn: u64, index: u32) -> Option<&Arc<PartOut>> {
        if let Some(p) = self.partial.first().filter(|p| p.msn == msn) {
            let _ = p;
            return self.partial.get(index as usize);
        }
        self.segment(msn)?.parts.get(index as usize)
    }

    /// The part that comes after the last one published, by its canonical name: the one
    /// playlists hint (`EXT-X-PRELOAD-HINT`, 4.4.5.3) and the one a part request may wait for.
    pub fn preload_hint(&self, parts_per_segment: u32) -> Option<(u64, u32)> {
        if parts_per_segment == 0 {
            return None;
        }
        match self.partial.last() {
            Some(p) if p.index + 1 >= parts_per_segment => Some((p.msn + 1, 0)),
            Some(p) => Some((p.msn, p.index + 1)),
            None => self.segments.back().map(|s| (s.msn + 1, 0)),
        }
    }
}

/// A rendition's output.
pub struct Output {
    /// The codec and bitrate.
    pub rendition: Rendition,
    /// Its name in URLs (`aac-128`).
    pub name: String,
    /// The init segment.
    pub init: Bytes,
    /// Channels (2).
    pub channels: u16,
    window: ArcSwap<Window>,
    edge: watch::Sender<Option<Edge>>,
    dvr_ms: i64,
    epoch: std::time::Instant,
    /// When the last part was published, µs after `epoch`.
    published_us: std::sync::atomic::AtomicU64,
    /// The last media playlists rendered, plain and with skipped segments.
    rendered: [parking_lot::Mutex<Option<Rendered>>; 2],
}

/// A media playlist rendered from a window, with what else it showed.
struct Rendered {
    window: Arc<Window>,
    stamp: Vec<u64>,
    playlist: Arc<UriSlots>,
}

impl Output {
    /// An empty output.
    pub fn new(rendition: Rendition, init: Bytes, dvr_seconds: u64) -> Output {
        Output {
            name: rendition.name(),
            rendition,
            init,
            channels: 2,
            window: ArcSwap::from_pointee(Window::default()),
            edge: watch::Sender::new(None),
            dvr_ms: i64::try_from(dvr_seconds.saturating_mul(1000)).unwrap_or(i64::MAX),
            epoch: std::time::Instant::now(),
            published_us: std::sync::atomic::AtomicU64::new(0),
            rendered: Default::default(),
        }
    }

    /// The current window.
    pub fn window(&self) -> Arc<Window> {
        self.window.load_full()
    }

    /// The last part published.
    pub fn edge(&self) -> Option<Edge> {
        *self.edge.borrow()
    }

    /// The media playlist of the current window (with skipped segments when `skip`): the one
    /// rendered last if neither the window nor `stamp` (whatever else the playlist shows: other
    /// renditions' edges, now-playing) changed since, or else what `render` makes of the window.
    pub fn playlist(
        &self,
        skip: bool,
        stamp: Vec<u64>,
        render: impl FnOnce(&Window) -> String,
    ) -> Arc<UriSlots> {
        let window = self.window();
        let slot = &self.rendered[usize::from(skip)];
        if let Some(r) = slot.lock().as_ref() {
            if Arc::ptr_eq(&r.window, &window) && r.stamp == stamp {
                return r.playlist.clone();
            }
        }
        let playlist = Arc::new(UriSlots::new(&render(&window)));
        *slot.lock() = Some(Rendered {
            window,
            stamp,
            playlist: playlist.clone(),
        });
        playlist
    }

    /// Publishes a part that starts at `pdt_ms` on the wall clock.
    pub fn publish(&self, part: Part, pdt_ms: i64) {
        let old = self.window.load();
        let mut w = Window::clone(&old);
        if w.partial.is_empty() {
            w.partial_pdt_ms = pdt_ms;
        }
        let edge = Edge {
            msn: part.msn,
            part: part.index,
        };
        let out = Arc::new(PartOut {
            msn: part.msn,
            index: part.index,
            seconds: part.duration.seconds(),
            data: Bytes::from(part.data),
        });
        w.partial.push(out);
        if part.ends_segment {
            let parts = std::mem::take(&mut w.partial);
            let mut data = Vec::with_capacity(parts.iter().map(|p| p.data.len()).sum());
            parts.iter().for_each(|p| data.extend_from_slice(&p.data));
            w.segments.push_back(Arc::new(SegmentOut {
                msn: part.msn,
                pdt_ms: w.partial_pdt_ms,
                seconds: parts.iter().map(|p| p.seconds).sum(),
                parts,
                data: Bytes::from(data),
            }));
            // The DVR window: drop segments that ended before it.
            while w.segments.len() > 1
                && w.segments.front().is_some_and(|s| {
                    pdt_ms.saturating_sub(s.pdt_ms + (s.seconds * 1000.0) as i64) > self.dvr_ms
                })
            {
                w.segments.pop_front();
            }
        }
        self.window.store(Arc::new(w));
        self.published_us.store(
            self.epoch.elapsed().as_micros() as u64,
            std::sync::atomic::Ordering::Release,
        );
        self.edge.send_replace(Some(edge));
    }

    /// Time since the last part was published.
    pub fn since_publish(&self) -> Duration {
        let at = self.published_us.load(std::sync::atomic::Ordering::Acquire);
        self.epoch
            .elapsed()
            .saturating_sub(Duration::from_micros(at))
    }

    /// Ends the stream: the playlist gets `EXT-X-ENDLIST` and waiters are released.
    pub fn end(&self) {
        let mut w = Window::clone(&self.window.load());
        w.ended = true;
        self.window.store(Arc::new(w));
        self.edge.send_modify(|_| {});
    }

    /// Waits until the edge reaches `want` or the stream ends, for at most `limit`. True when
    /// `want` is published.
    pub async fn wait(&self, want: Edge, limit: Duration) -> bool {
        let mut rx = self.edge.subscribe();
        let reached = |e: &Option<Edge>| e.is_some_and(|e| e >= want);
        let ended = || self.window.load().ended;
        let wait = async {
            loop {
                if reached(&rx.borrow_and_update()) || ended() {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
        reached(&self.edge.borrow())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use veza_hls::{PartCutter, GRID, LOSSY_TIMESCALE};

    fn output(dvr: u64) -> Output {
        Output::new(Rendition::Opus(128), Bytes::from_static(b"init"), dvr)
    }

    fn feed(o: &Output, parts: usize) {
        let mut c = PartCutter::new(LOSSY_TIMESCALE, GRID, 6, 0, 0).unwrap();
        let mut n = 0;
        let mut pdt = 0;
        while n < parts {
            if let Some(p) = c.push(vec![1, 2, 3], 960).unwrap() {
                let ms = (p.duration.seconds() * 1000.0) as i64;
                o.publish(p, pdt);
                pdt += ms;
                n += 1;
            }
        }
    }

    #[test]
    fn parts_gather_into_segments_and_stay_addressable() {
        let o = output(300);
        feed(&o, 14);
        let w = o.window();
        assert_eq!(w.segments.len(), 2);
        assert_eq!(w.partial.len(), 2);
        assert_eq!(o.edge(), Some(Edge { msn: 2, part: 1 }));
        let seg = w.segment(1).unwrap();
        let joined: Vec<u8> = seg.parts.iter().flat_map(|p| p.data.to_vec()).collect();
        assert_eq!(seg.data.to_vec(), joined);
        assert!(w.part(2, 1).is_some());
        assert!(w.part(2, 2).is_none());
        assert!(w.part(0, 5).is_some());
        assert_eq!(w.preload_hint(6), Some((2, 2)));
    }

    #[test]
    fn the_window_is_bounded_by_the_dvr_length() {
        let o = output(10);
        // 60 parts of 0.32 s: 19.2 s, ten segments.
        feed(&o, 60);
        let w = o.window();
        let held: f64 = w.segments.iter().map(|s| s.seconds).sum();
        assert!(held <= 10.0 + 1.92 + 1e-9, "{held}");
        assert!(w.segment(0).is_none());
        assert_eq!(w.segments.back().unwrap().msn, 9);
    }

    #[tokio::test]
    async fn waiters_are_released_by_their_part_or_time_out() {
        let o = Arc::new(output(300));
        let want = Edge { msn: 0, part: 2 };
        let w = tokio::spawn({
            let o = o.clone();
            async move { o.wait(want, Duration::from_secs(5)).await }
        });
        tokio::task::yield_now().await;
        feed(&o, 3);
        assert!(w.await.unwrap());
        assert!(
            !o.wait(Edge { msn: 9, part: 0 }, Duration::from_millis(20))
                .await
        );
    }
}
