// Playlists: create, rename, share; add tracks from the library, reorder them by dragging (or
// with the move buttons, from the keyboard) and remove them, every change sent with `If-Match`
// so that a playlist someone else changed meanwhile is not overwritten; duplicate; and play the
// whole playlist as one gapless stream.
import { useEffect, useState } from 'preact/hooks';
import { api, clock, request, Problem } from './api.js';
import { ProblemBox } from './problem.jsx';
import { ConfirmButton, Mosaic } from './confirm.jsx';
import { playlistItem, trackItem, useQueue } from './queue.jsx';

export function Playlists({ who }) {
  const [items, setItems] = useState([]);
  const [title, setTitle] = useState('');
  const [visibility, setVisibility] = useState('private');
  const [error, setError] = useState(null);
  const owner = who.role !== 'listener';
  const [next, setNext] = useState(null);
  const [sort, setSort] = useState('date');
  const scope = owner ? '' : '&scope=public';
  const base = () => `/v1/playlists?limit=48&sort=${sort}${scope}`;
  const load = () => api('GET', base()).then((p) => { setItems(p.items); setNext(p.next_cursor); }, setError);
  const more = () => api('GET', `${base()}&cursor=${encodeURIComponent(next)}`)
    .then((p) => { setItems((i) => i.concat(p.items)); setNext(p.next_cursor); }, setError);
  useEffect(() => { load(); }, [sort]);
  const create = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const p = await api('POST', '/v1/playlists', { title, visibility });
      setTitle('');
      location.hash = `#/playlists/${p.id}`;
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      {owner ? (
        <form onSubmit={create} aria-labelledby="new-playlist-h">
          <h2 id="new-playlist-h">New playlist</h2>
          <label>Title <input value={title} required maxLength={200} onInput={(e) => setTitle(e.currentTarget.value)} /></label>{' '}
          <label>
            Visibility{' '}
            <select value={visibility} onChange={(e) => setVisibility(e.currentTarget.value)}>
              <option value="private">Private</option>
              <option value="public">Public</option>
            </select>
          </label>{' '}
          <button class="primary" type="submit">Create playlist</button>
        </form>
      ) : null}
      <section aria-labelledby="playlists-h">
        <div class="section-head">
          <h2 id="playlists-h">{owner ? 'Playlists' : 'Public playlists'}</h2>
          <label>Sort by{' '}
            <select value={sort} aria-label="Sort by" onChange={(e) => setSort(e.currentTarget.value)}>
              <option value="date">Newest</option>
              <option value="title">Title</option>
              <option value="duration">Duration</option>
              <option value="plays">Most played</option>
            </select>
          </label>
        </div>
        <ProblemBox error={error} />
        <ul class="grid">
          {items.map((p) => (
            <li key={p.id} class="tile">
              <a href={`#/playlists/${p.id}`} class="tile-link">
                <Mosaic covers={p.covers} size={160} />
                <strong>{p.title}</strong>
              </a>
              <span class="muted">{p.track_count} tracks · {p.visibility}</span>
            </li>
          ))}
        </ul>
        {items.length === 0 ? <p class="muted">No playlists yet.</p> : null}
        {next ? <button type="button" onClick={more}>Show more</button> : null}
      </section>
    </>
  );
}

/** One playlist: its entries in order, the changes its owner may make, and its player. */
export function PlaylistPage({ id, who }) {
  const [p, setP] = useState(null);
  const [etag, setEtag] = useState(null);
  const [error, setError] = useState(null);
  const [conflict, setConflict] = useState(false);
  const [library, setLibrary] = useState([]);
  const [adding, setAdding] = useState('');
  const [title, setTitle] = useState('');
  const [dragged, setDragged] = useState(null);
  const queue = useQueue();
  const take = ({ doc, etag: tag }) => {
    setP(doc);
    setEtag(tag);
    setTitle(doc.title);
  };
  const load = () => request('GET', `/v1/playlists/${id}`).then(take, setError);
  useEffect(() => {
    load();
    if (who.role !== 'listener') {
      api('GET', '/v1/tracks?limit=100').then((t) => setLibrary(t.items.filter((x) => x.status === 'ready')), () => {});
    }
  }, [id]);
  // Every change names the version it was made on; a 412 means someone else changed it first.
  const change = async (method, path, body) => {
    setError(null);
    setConflict(false);
    try {
      take(await request(method, path, body, { 'if-match': etag }));
    } catch (e) {
      setError(e);
      if (e instanceof Problem && e.status === 412) {
        setConflict(true);
        load();
      }
    }
  };
  if (!p) return <ProblemBox error={error} />;
  const mine = who.role === 'admin' || who.subject === p.owner;
  const base = `/v1/playlists/${id}`;
  const move = (entry, to) => change('PATCH', `${base}/tracks/${entry}`, { position: to });
  const duplicate = async () => {
    setError(null);
    try {
      const copy = await api('POST', `${base}/duplicate`, {});
      location.hash = `#/playlists/${copy.id}`;
    } catch (e) {
      setError(e);
    }
  };
  const remove = async () => {
    setError(null);
    try {
      await api('DELETE', base);
      location.hash = '#/playlists';
    } catch (e) {
      setError(e);
    }
  };
  const page = `${location.origin}/play/playlist/${id}`;
  return (
    <>
      <p><a href="#/playlists">← Playlists</a></p>
      <div class="hero">
        <Mosaic covers={p.covers} size={160} label={`Covers of ${p.title}`} />
        <div>
          <p class="muted">Playlist</p>
          <h2>{p.title}</h2>
          <p class="muted">{p.entries.length} tracks · {clock(p.duration_seconds)} · {p.visibility}</p>
        </div>
      </div>
      {conflict ? (
        <p class="error" role="alert" data-testid="conflict">
          Someone else changed this playlist while you were editing it. It now shows their version:
          make your change again.
        </p>
      ) : null}
      <ProblemBox error={error} />
      {mine ? (
        <section aria-labelledby="edit-h">
          <h3 id="edit-h">Edit</h3>
          <form onSubmit={(e) => { e.preventDefault(); change('PATCH', base, { title }); }}>
            <label>Title <input value={title} required maxLength={200} onInput={(e) => setTitle(e.currentTarget.value)} /></label>{' '}
            <button type="submit">Rename</button>
          </form>
          <p>
            <label>
              Visibility{' '}
              <select value={p.visibility} onChange={(e) => change('PATCH', base, { visibility: e.currentTarget.value })}>
                <option value="private">Private: only you</option>
                <option value="public">Public: anyone with the link</option>
              </select>
            </label>
          </p>
          <form onSubmit={(e) => { e.preventDefault(); if (adding) change('POST', `${base}/tracks`, { track_id: adding }); }}>
            <label>
              Add a track{' '}
              <select value={adding} onChange={(e) => setAdding(e.currentTarget.value)}>
                <option value="">choose…</option>
                {library.map((t) => <option value={t.id}>{t.title}</option>)}
              </select>
            </label>{' '}
            <button type="submit" disabled={!adding}>Add</button>
          </form>
        </section>
      ) : null}
      <section aria-labelledby="entries-h">
        <h3 id="entries-h">Tracks</h3>
        {mine ? <p class="muted">Drag a track to reorder, or use its move buttons.</p> : null}
        <ol class="entries" data-testid="entries">
          {p.entries.map((e, i) => (
            <li key={e.entry_id} draggable={mine}
              class={dragged === e.entry_id ? 'dragging' : ''}
              onDragStart={(ev) => { setDragged(e.entry_id); ev.dataTransfer.setData('text/plain', e.entry_id); }}
              onDragEnd={() => setDragged(null)}
              onDragOver={(ev) => ev.preventDefault()}
              onDrop={(ev) => {
                ev.preventDefault();
                const from = ev.dataTransfer.getData('text/plain') || dragged;
                setDragged(null);
                if (from && from !== e.entry_id) move(from, i);
              }}>
              {e.cover_url ? <img class="cover" src={e.cover_url} alt="" width="40" height="40" /> : <div class="cover none small" aria-hidden="true" />}
              <span class="title">{e.title || '(deleted track)'}{e.artist ? <span class="muted"> · {e.artist}</span> : null}</span>{' '}
              <span class="muted">{e.playable ? clock(e.duration_seconds) : e.status}</span>
              {mine ? (
                <span class="actions">
                  <button type="button" disabled={i === 0} onClick={() => move(e.entry_id, i - 1)}
                    aria-label={`Move ${e.title} up`}>↑</button>
                  <button type="button" disabled={i === p.entries.length - 1} onClick={() => move(e.entry_id, i + 1)}
                    aria-label={`Move ${e.title} down`}>↓</button>
                  <button type="button" onClick={() => change('DELETE', `${base}/tracks/${e.entry_id}`)}
                    aria-label={`Remove ${e.title}`}>Remove</button>
                </span>
              ) : null}
            </li>
          ))}
        </ol>
        <p>
          <button type="button" class="primary" disabled={!p.playable_count}
            onClick={() => queue.playNow(playlistItem(p))}>Play as one stream</button>{' '}
          <button type="button" disabled={!p.playable_count}
            onClick={() => queue.add(playlistItem(p))}>Add to queue</button>{' '}
          <button type="button" disabled={!p.playable_count}
            onClick={() => queue.playNow(p.entries.filter((e) => e.playable).map((e) => trackItem({ id: e.track_id, title: e.title, artist: e.artist, cover_url: e.cover_url })))}>
            Queue its tracks</button>{' '}
          {who.role !== 'listener' ? <button type="button" onClick={duplicate}>Duplicate</button> : null}{' '}
          {mine ? (
            <ConfirmButton label="Delete playlist" question={`Delete “${p.title}” for good?`}
              action="Delete" onConfirm={remove} />
          ) : null}
        </p>
        <p>Share: <a href={page} data-testid="share-link">{page}</a> <span class="muted">({p.visibility === 'public' ? 'plays for anyone' : 'only you until it is public'})</span></p>
      </section>
    </>
  );
}
