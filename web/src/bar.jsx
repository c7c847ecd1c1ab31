// The player that keeps playing: one bar fixed at the bottom of every section, playing the queue
// (queue.jsx): tracks and playlists through the player, channels live with the way to listen
// picked for the listener; the position of every track remembered, the Media Session (title,
// artist and cover on the lock screen and the notification, and the hardware keys), the
// document's title naming what plays, and the keyboard: space toggles, the arrows seek.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';
import { Player } from './player.jsx';
import { Listen, useLive } from './channels.jsx';
import { useQueue } from './queue.jsx';

const BASE_TITLE = 'Veza Stream';

/** A channel in the bar: live, over WebRTC where it connects, else LL-HLS; it waits while the
 * channel is off the air and starts when it comes on. */
function ChannelPlayer({ item, audioRef }) {
  const live = useLive({ state: 'offline' }, `/v1/channels/${item.id}/events`);
  const load = useCallback(() => api('POST', `/v1/channels/${item.id}/playback`), [item.id]);
  return (
    <div class="player compact">
      <Listen channel={{ id: item.id, title: item.title }} load={load} state={live.state} start="auto" audioRef={audioRef} />
    </div>
  );
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
        {item.kind === 'channel' ? <ChannelPlayer key={item.key} item={item} audioRef={audio} /> : (
          <Player key={item.key} title={item.title} load={load} label="Now playing" compact audioRef={audio}
            startAt={savedPosition(item)} onEnded={onEnded} onPosition={onPosition} />
        )}
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

