// The shareable pages, `/play/track/{id}`, `/play/playlist/{id}` and `/play/channel/{id}`: they
// play a public item for anyone, signed in or not, with a short-lived token the page asks for.
// The owner, signed in, also plays a private item of theirs from its link.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, Problem } from './api.js';
import { ProblemBox } from './problem.jsx';
import { Player } from './player.jsx';
import { Listen, LiveState, useLive } from './channels.jsx';
import { StationInfo } from './station.jsx';

const PLURAL = { track: 'tracks', playlist: 'playlists', channel: 'channels' };

/** The item and its playback: the public answer, or (signed in) the owner's. */
async function open(kind, id) {
  try {
    return await api('POST', `/v1/public/${PLURAL[kind]}/${id}/playback`);
  } catch (e) {
    if (!(e instanceof Problem) || e.status !== 404) throw e;
    // Not public: its owner, signed in, plays it all the same; anyone else learns it is not
    // public.
    try {
      const item = await api('GET', `/v1/${PLURAL[kind]}/${id}`);
      const playback = await api('POST', `/v1/${PLURAL[kind]}/${id}/playback`);
      return {
        kind, id, title: item.title, description: item.description || '', playback, private: true,
        cover_url: item.cover_url || null,
      };
    } catch {
      throw e;
    }
  }
}

function LiveChannel({ item, load }) {
  const live = useLive({ state: 'offline' }, item.private
    ? `/v1/channels/${item.id}/events` : `/v1/public/channels/${item.id}/events`);
  return (
    <>
      <LiveState live={live} />
      <Listen channel={item} load={load} state={live.state} />
    </>
  );
}

export function PublicPage({ kind, id, embed = false }) {
  const [item, setItem] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!PLURAL[kind]) {
      setError(new Problem(404, 'Not found', `there is no ${kind} page`));
      return;
    }
    open(kind, id).then(setItem, setError);
  }, [kind, id]);
  // The player asks again for a fresh token before the one it has runs out.
  const load = useCallback(() => open(kind, id).then((i) => i.playback), [kind, id]);
  if (!item) {
    return (
      <main>
        {error ? (
          <>
            <h2>This {PLURAL[kind] ? kind : 'page'} cannot be played</h2>
            <ProblemBox error={error} />
            <p>It may be private, or gone. <a href="/">Open Veza Stream</a></p>
          </>
        ) : <p>Loading…</p>}
      </main>
    );
  }
  if (embed) {
    return (
      <main class="embed">
        <article aria-labelledby="item-h" class="embed-card">
          {item.cover_url ? <img class="cover" src={item.cover_url} alt="" width="96" height="96" /> : <div class="cover none" aria-hidden="true" />}
          <div class="embed-body">
            <h1 id="item-h" class="embed-title">
              <a href={`/play/${kind}/${id}`} target="_blank" rel="noopener">{item.title}</a>
            </h1>
            {kind === 'channel'
              ? <LiveChannel item={item} load={load} />
              : <Player title={item.title} load={load} label="Playing" compact />}
          </div>
        </article>
      </main>
    );
  }
  return (
    <main class="public">
      <article aria-labelledby="item-h">
        <div class="hero">
          {item.cover_url ? <img src={item.cover_url} alt={`Cover of ${item.title}`} width="160" height="160" /> : null}
          <div>
            <p class="muted">{kind === 'channel' ? 'Live channel' : kind === 'playlist' ? 'Playlist' : 'Track'}{item.private ? ' · private: only you can play it' : ''}</p>
            <h2 id="item-h">{item.title}</h2>
            {item.description ? <p>{item.description}</p> : null}
          </div>
        </div>
        {kind === 'channel'
          ? <LiveChannel item={item} load={load} />
          : <Player title={item.title} load={load} label="Playing" />}
        {kind === 'channel' && !item.private ? <StationInfo id={id} cover={item.cover_url} /> : null}
      </article>
    </main>
  );
}
