// Discovery: search-as-you-type over public tracks, artists, playlists and channels (and your
// own), browsing by newest or most played, and artists' pages.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, clock } from './api.js';
import { ProblemBox } from './problem.jsx';
import { Mosaic } from './confirm.jsx';
import { QueueButtons, channelItem, playlistItem, trackItem, useQueue } from './queue.jsx';

const KINDS = { track: 'Tracks', artist: 'Artists', playlist: 'Playlists', channel: 'Channels' };

/** Where a result leads in the app. */
function href(item) {
  if (item.kind === 'artist') return `#/artists/${encodeURIComponent(item.id)}`;
  if (item.kind === 'playlist') return `#/playlists/${item.id}`;
  if (item.kind === 'channel') return `/play/channel/${item.id}`;
  return item.mine ? `#/tracks/${item.id}` : `/play/track/${item.id}`;
}

function Result({ item }) {
  const queue = useQueue();
  return (
    <li class="result">
      <Mosaic covers={item.covers} size={48} />
      <span class="result-text">
        <a href={href(item)}>{item.title}</a>
        <span class="muted">{item.subtitle}{item.duration_seconds ? ` · ${clock(item.duration_seconds)}` : ''}{item.public ? '' : ' · private'}</span>
      </span>
      <span class="actions">
        {item.kind === 'track' && queue ? <QueueButtons item={trackItem(item)} /> : null}
        {item.kind === 'channel' && queue ? (
          <button type="button" onClick={() => queue.playNow(channelItem(item))} aria-label={`Play ${item.title}`}>Play</button>
        ) : null}
        {item.kind === 'playlist' && queue ? (
          <button type="button" onClick={() => queue.playNow(playlistItem(item))} aria-label={`Play ${item.title}`}>Play</button>
        ) : null}
      </span>
    </li>
  );
}

function Section({ kind, items }) {
  if (!items.length) return null;
  return (
    <section aria-labelledby={`found-${kind}`}>
      <h3 id={`found-${kind}`}>{KINDS[kind]}</h3>
      <ul class="results">{items.map((i) => <Result key={`${i.kind}-${i.id}`} item={i} />)}</ul>
    </section>
  );
}

export function Discover() {
  const [q, setQ] = useState('');
  const [found, setFound] = useState(null);
  const [kind, setKind] = useState('track');
  const [sort, setSort] = useState('newest');
  const [browse, setBrowse] = useState([]);
  const [next, setNext] = useState(null);
  const [error, setError] = useState(null);
  const asked = useRef(0);
  // As you type: the newest answer wins, older ones are dropped.
  useEffect(() => {
    const words = q.trim();
    if (!words) { setFound(null); return undefined; }
    const n = (asked.current += 1);
    const t = setTimeout(() => {
      api('GET', `/v1/search?q=${encodeURIComponent(words)}&limit=6`).then((p) => {
        if (n === asked.current) setFound(p.items);
      }, setError);
    }, 120);
    return () => clearTimeout(t);
  }, [q]);
  useEffect(() => {
    setError(null);
    api('GET', `/v1/search?kind=${kind}&sort=${sort}&limit=24`).then((p) => {
      setBrowse(p.items);
      setNext(p.next_cursor);
    }, setError);
  }, [kind, sort]);
  const more = async () => {
    try {
      const p = await api('GET', `/v1/search?kind=${kind}&sort=${sort}&limit=24&cursor=${next}`);
      setBrowse((b) => b.concat(p.items));
      setNext(p.next_cursor);
    } catch (e) {
      setError(e);
    }
  };
  const by = (k) => (found || []).filter((i) => i.kind === k);
  return (
    <>
      <search role="search" class="searchbox">
        <label for="q" class="visually-hidden">Search</label>
        <input id="q" type="search" placeholder="Search tracks, artists, albums, playlists, channels" value={q}
          autocomplete="off" onInput={(e) => setQ(e.currentTarget.value)} />
      </search>
      <ProblemBox error={error} />
      {found ? (
        <div aria-live="polite" data-testid="search-results">
          {found.length === 0 ? <p class="muted">Nothing found for “{q.trim()}”.</p> : null}
          {Object.keys(KINDS).map((k) => <Section key={k} kind={k} items={by(k)} />)}
        </div>
      ) : (
        <section aria-labelledby="browse-h">
          <div class="section-head">
            <h2 id="browse-h">Browse</h2>
            <div role="group" aria-label="What to browse" class="tabs">
              {Object.entries(KINDS).map(([k, label]) => (
                <button type="button" key={k} aria-pressed={kind === k} onClick={() => setKind(k)}>{label}</button>
              ))}
            </div>
            <label>Sort by{' '}
              <select value={sort} aria-label="Sort by" onChange={(e) => setSort(e.currentTarget.value)}>
                <option value="newest">Newest</option>
                <option value="plays">Most played</option>
              </select>
            </label>
          </div>
          {browse.length ? <ul class="results">{browse.map((i) => <Result key={`${i.kind}-${i.id}`} item={i} />)}</ul>
            : <p class="muted">Nothing public here yet.</p>}
          {next ? <button type="button" onClick={more}>Show more</button> : null}
        </section>
      )}
    </>
  );
}

/** An artist's page: their public tracks, playlists and channels. */
export function ArtistPage({ handle, standalone = false }) {
  const [a, setA] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => { api('GET', `/v1/public/artists/${encodeURIComponent(handle)}`).then(setA, setError); }, [handle]);
  if (!a) return <ProblemBox error={error} />;
  const cover = a.tracks.flatMap((t) => t.covers)[0];
  const list = (items) => (
    <ul class="results">
      {items.map((i) => (standalone ? (
        <li class="result" key={i.id}>
          <Mosaic covers={i.covers} size={48} />
          <span class="result-text"><a href={i.page_url}>{i.title}</a><span class="muted">{i.subtitle}</span></span>
        </li>
      ) : <Result key={i.id} item={i} />))}
    </ul>
  );
  return (
    <article aria-labelledby="artist-h">
      <div class="hero">
        {cover ? <img class="cover round" src={cover} alt="" width="160" height="160" /> : <div class="cover none large round" aria-hidden="true" />}
        <div>
          <p class="muted">Artist</p>
          <h2 id="artist-h">{a.display_name}</h2>
          <p class="muted">@{a.handle} · {a.tracks.length} tracks</p>
        </div>
      </div>
      {a.tracks.length ? <section aria-labelledby="a-tracks"><h3 id="a-tracks">Tracks</h3>{list(a.tracks)}</section> : null}
      {a.playlists.length ? <section aria-labelledby="a-playlists"><h3 id="a-playlists">Playlists</h3>{list(a.playlists)}</section> : null}
      {a.channels.length ? <section aria-labelledby="a-channels"><h3 id="a-channels">Channels</h3>{list(a.channels)}</section> : null}
      {!a.tracks.length && !a.playlists.length && !a.channels.length ? <p class="muted">Nothing public yet.</p> : null}
    </article>
  );
}
