// The player that keeps playing: one bar fixed at the bottom of every section, with a queue
// (play now, play next, add to queue, next and previous, shuffle and repeat) that this browser
// remembers, the position of every track remembered, the Media Session (title, artist and
// cover on the lock screen and the notification, and the hardware keys), the document's title
// naming what plays, and the keyboard: space toggles, the arrows seek.
import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';
import { Player } from './player.jsx';

const Queue = createContext(null);
const SAVED = 'veza.queue';
const BASE_TITLE = 'Veza Stream';

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

/** Where a track was left, to carry on from there (nothing near its end). */
function savedPosition(item) {
  if (!item || item.kind !== 'track') return 0;
  const v = Number(localStorage.getItem(`veza.pos.${item.id}`) || 0);
  return Number.isFinite(v) ? v : 0;
}

/** The bar's icons: drawn, so that they show whatever fonts the system has. */
const PATHS = {
  prev: 'M6 5h2v14H6zM20 5v14L9 12z',
  next: 'M16 5h2v14h-2zM4 5l11 7-11 7z',
  shuffle: 'M4 7h4l8 10h4M4 17h4l2.5-3.1M13.5 10.1 16 7h4M18 4l3 3-3 3M18 14l3 3-3 3',
  repeat: 'M4 11V9a3 3 0 0 1 3-3h11M15 3l3 3-3 3M20 13v2a3 3 0 0 1-3 3H6M9 21l-3-3 3-3',
  close: 'M6 6l12 12M18 6 6 18',
};
function Icon({ name, one = false }) {
  const filled = name === 'prev' || name === 'next';
  return (
    <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false"
      fill={filled ? 'currentColor' : 'none'} stroke={filled ? 'none' : 'currentColor'} stroke-width="2"
      stroke-linecap="round" stroke-linejoin="round">
      <path d={PATHS[name]} />
      {one ? <text x="12" y="15" font-size="8" text-anchor="middle" fill="currentColor" stroke="none">1</text> : null}
    </svg>
  );
}

const REPEAT_LABEL = { off: 'Repeat: off', all: 'Repeat: all', one: 'Repeat: this track' };

/** The bar: what plays, its controls and its queue. Hidden while nothing is queued. */
export function PlayerBar() {
  const q = useQueue();
  const audio = useRef(null);
  const [open, setOpen] = useState(false);
  const [playing, setPlaying] = useState(false);
  const item = q.current;
  const saved = useRef(0);
  const load = useCallback(() => {
    if (!item) return Promise.reject(new Error('nothing queued'));
    return api('POST', `/v1/${item.kind === 'playlist' ? 'playlists' : 'tracks'}/${item.id}/playback`);
  }, [item && item.key]);
  // The position of a track, every few seconds and when it ends.
  const onPosition = (t, duration) => {
    if (!item || item.kind !== 'track') return;
    if (Math.abs(t - saved.current) < 3) return;
    saved.current = t;
    if (Number.isFinite(duration) && duration - t < 5) localStorage.removeItem(`veza.pos.${item.id}`);
    else localStorage.setItem(`veza.pos.${item.id}`, String(Math.floor(t)));
  };
  const onEnded = () => {
    if (item && item.kind === 'track') localStorage.removeItem(`veza.pos.${item.id}`);
    q.next(true);
  };
  // Playing or not, for the document's title and the Media Session.
  useEffect(() => {
    const a = audio.current;
    if (!a) return undefined;
    const on = () => setPlaying(!a.paused);
    a.addEventListener('play', on);
    a.addEventListener('pause', on);
    return () => { a.removeEventListener('play', on); a.removeEventListener('pause', on); };
  }, [item && item.key]);
  useEffect(() => {
    document.title = item && playing ? `▶ ${item.title}${item.artist ? ` · ${item.artist}` : ''} · ${BASE_TITLE}` : BASE_TITLE;
  }, [item && item.key, playing]);
  useEffect(() => () => { document.title = BASE_TITLE; }, []);
  // The Media Session: lock screen, notification and hardware keys.
  useEffect(() => {
    const ms = navigator.mediaSession;
    if (!ms || !item) return undefined;
    ms.metadata = new MediaMetadata({
      title: item.title,
      artist: item.artist || '',
      album: item.kind === 'playlist' ? item.title : '',
      artwork: item.cover ? [{ src: item.cover, sizes: '600x600', type: 'image/jpeg' }] : [],
    });
    const a = () => audio.current;
    const handlers = {
      play: () => a() && a().play(),
      pause: () => a() && a().pause(),
      previoustrack: () => q.prev(),
      nexttrack: () => q.next(),
      seekbackward: (d) => { if (a()) a().currentTime = Math.max(0, a().currentTime - (d.seekOffset || 10)); },
      seekforward: (d) => { if (a()) a().currentTime += d.seekOffset || 10; },
      seekto: (d) => { if (a() && d.seekTime != null) a().currentTime = d.seekTime; },
    };
    for (const [k, f] of Object.entries(handlers)) {
      try { ms.setActionHandler(k, f); } catch { /* an action this browser does not know */ }
    }
    return () => {
      for (const k of Object.keys(handlers)) {
        try { ms.setActionHandler(k, null); } catch { /* as above */ }
      }
    };
  }, [item && item.key]);
  // Space and the arrows anywhere but in a field or a control (the player's own keys answer
  // inside it, and a control answers its own keys).
  useEffect(() => {
    const on = (e) => {
      const a = audio.current;
      const t = e.target;
      if (!a || e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
      if (t.closest && (t.closest('input, textarea, select, button, a, audio, [contenteditable], section.player, [role=dialog]'))) return;
      if (e.key === ' ') { e.preventDefault(); if (a.paused) a.play(); else a.pause(); }
      if (e.key === 'ArrowRight') { e.preventDefault(); a.currentTime += 5; }
      if (e.key === 'ArrowLeft') { e.preventDefault(); a.currentTime = Math.max(0, a.currentTime - 5); }
    };
    document.addEventListener('keydown', on);
    return () => document.removeEventListener('keydown', on);
  }, []);
  if (!item) return null;
  return (
    <div class="bar" role="region" aria-label="Player">
      <div class="bar-now">
        {item.cover ? <img class="cover" src={item.cover} alt="" width="56" height="56" /> : <div class="cover none" aria-hidden="true" />}
        <div class="bar-text">
          <strong data-testid="bar-title">{item.title}</strong>
          <span class="muted">{item.artist}</span>
        </div>
      </div>
      <div class="bar-controls">
        <button type="button" class="icon" onClick={() => q.prev()} disabled={q.index === 0} aria-label="Previous"><Icon name="prev" /></button>
        <button type="button" class="icon" onClick={() => q.next()} disabled={q.index + 1 >= q.items.length && q.repeat !== 'all'} aria-label="Next"><Icon name="next" /></button>
        <button type="button" class="icon" aria-pressed={q.shuffle} onClick={() => q.toggleShuffle()} aria-label="Shuffle"><Icon name="shuffle" /></button>
        <button type="button" class="icon" aria-pressed={q.repeat !== 'off'} onClick={() => q.cycleRepeat()}
          aria-label={REPEAT_LABEL[q.repeat]} title={REPEAT_LABEL[q.repeat]}><Icon name="repeat" one={q.repeat === 'one'} /></button>
        <button type="button" aria-expanded={open} onClick={() => setOpen(!open)}>Queue ({q.items.length})</button>
      </div>
      <div class="bar-player">
        <Player key={item.key} title={item.title} load={load} label="Now playing" compact audioRef={audio}
          startAt={savedPosition(item)} onEnded={onEnded} onPosition={onPosition} />
      </div>
      {open ? (
        <ol class="queue" aria-label="Queue">
          {q.items.map((x, i) => (
            <li key={x.key} aria-current={i === q.index ? 'true' : undefined}>
              <button type="button" class="link" onClick={() => q.jump(i)} aria-label={`Jump to ${x.title}`}>
                {x.title}
              </button>
              <span class="muted">{x.artist}</span>
              <button type="button" class="icon" onClick={() => q.remove(i)} aria-label={`Remove ${x.title} from the queue`}><Icon name="close" /></button>
            </li>
          ))}
        </ol>
      ) : null}
    </div>
  );
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
