// The queue that the player bar (bar.jsx) plays: play now, play next, add to queue, next and
// previous, shuffle and repeat, remembered by this browser; and the buttons a list's rows use.
import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';

const Queue = createContext(null);
const SAVED = 'veza.queue';

/** The queue's actions and state, anywhere under the provider. */
export function useQueue() {
  return useContext(Queue);
}

/** A queue item of a track (as the API lists tracks, or as search lists them). */
export function trackItem(t) {
  return {
    kind: 'track', id: t.id, title: t.title,
    artist: t.artist || t.subtitle || '',
    cover: t.cover_url || (t.covers && t.covers[0]) || null,
  };
}

/** A queue item of a live channel: the bar picks how to listen. */
export function channelItem(c) {
  return {
    kind: 'channel', id: c.id, title: c.title, artist: 'Live channel',
    cover: (c.covers && c.covers[0]) || null,
  };
}

/** A queue item of a playlist, played as one gapless stream. */
export function playlistItem(p) {
  return {
    kind: 'playlist', id: p.id, title: p.title, artist: 'Playlist',
    cover: (p.covers && p.covers[0]) || null,
  };
}

function restore() {
  try {
    const s = JSON.parse(localStorage.getItem(SAVED) || 'null');
    if (s && Array.isArray(s.items)) return { shuffle: false, repeat: 'off', ...s, playing: false };
  } catch { /* a damaged record: start empty */ }
  return { items: [], index: 0, shuffle: false, repeat: 'off', playing: false };
}

let serial = 0;
const keyed = (item) => ({ ...item, key: `${item.kind}-${item.id}-${(serial += 1)}` });

function shuffled(list) {
  const a = [...list];
  for (let i = a.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

export function QueueProvider({ children }) {
  const [q, setQ] = useState(restore);
  useEffect(() => {
    const { playing, ...kept } = q;
    localStorage.setItem(SAVED, JSON.stringify(kept));
  }, [q]);
  const actions = {
    ...q,
    current: q.items[q.index] || null,
    /** Plays `items` now, replacing what is queued after the current item. */
    playNow: (items) => setQ((s) => {
      const list = (Array.isArray(items) ? items : [items]).map(keyed);
      const head = s.items.slice(0, s.items.length ? s.index + 1 : 0);
      return { ...s, items: [...head, ...list], index: head.length, playing: true };
    }),
    playNext: (item) => setQ((s) => {
      const items = [...s.items];
      items.splice(s.items.length ? s.index + 1 : 0, 0, keyed(item));
      return { ...s, items, playing: s.playing || s.items.length === 0 };
    }),
    add: (item) => setQ((s) => ({ ...s, items: [...s.items, keyed(item)], playing: s.playing || s.items.length === 0 })),
    jump: (i) => setQ((s) => ({ ...s, index: i, playing: true })),
    remove: (i) => setQ((s) => {
      const items = s.items.filter((_, j) => j !== i);
      const index = i < s.index ? s.index - 1 : Math.min(s.index, Math.max(0, items.length - 1));
      return { ...s, items, index };
    }),
    next: (auto = false) => setQ((s) => {
      if (auto && s.repeat === 'one') return { ...s, items: s.items.map((x, j) => (j === s.index ? keyed(x) : x)) };
      if (s.index + 1 < s.items.length) return { ...s, index: s.index + 1, playing: true };
      if (s.repeat === 'all' && s.items.length) return { ...s, index: 0, playing: true };
      return auto ? { ...s, playing: false } : s;
    }),
    prev: () => setQ((s) => ({ ...s, index: Math.max(0, s.index - 1), playing: true })),
    toggleShuffle: () => setQ((s) => {
      if (s.shuffle) return { ...s, shuffle: false };
      const upcoming = shuffled(s.items.slice(s.index + 1));
      return { ...s, shuffle: true, items: [...s.items.slice(0, s.index + 1), ...upcoming] };
    }),
    cycleRepeat: () => setQ((s) => ({ ...s, repeat: { off: 'all', all: 'one', one: 'off' }[s.repeat] || 'off' })),
    clear: () => setQ((s) => ({ ...s, items: [], index: 0, playing: false })),
  };
  return <Queue.Provider value={actions}>{children}</Queue.Provider>;
}

/** Play, play next and add to the queue, for a list's row. */
export function QueueButtons({ item, disabled = false }) {
  const q = useQueue();
  return (
    <>
      <button type="button" disabled={disabled} onClick={() => q.playNow(item)} aria-label={`Play ${item.title}`}>Play</button>
      <button type="button" disabled={disabled} onClick={() => q.playNext(item)} aria-label={`Queue ${item.title} next`}>Play next</button>
      <button type="button" disabled={disabled} onClick={() => q.add(item)} aria-label={`Add ${item.title} to the queue`}>Add to queue</button>
    </>
  );
}
