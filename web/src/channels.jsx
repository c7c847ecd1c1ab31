// Channels: create one (with its auto-DJ playlist), see its stream key once with the settings
// for BUTT, Mixxx, OBS and ffmpeg, go live from the browser's microphone over WHIP with a level
// meter, and listen over WebRTC (WHEP) or LL-HLS with the latency measured.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import Hls from 'hls.js';
import { api, follow, request, Problem } from './api.js';
import { ProblemBox } from './problem.jsx';
import { ConfirmButton, Mosaic } from './confirm.jsx';
import { ChannelStats } from './station.jsx';
import { channelItem, useQueue } from './queue.jsx';

/** Ends a WHIP or WHEP session: its DELETE carries the credential that created it. */
function hangUp(session, bearer) {
  fetch(session, { method: 'DELETE', headers: { authorization: `Bearer ${bearer}` } }).catch(() => {});
}

/** Offer/answer with a WHIP or WHEP endpoint; resolves to the session URL (for DELETE). */
async function negotiate(pc, endpoint, bearer) {
  const url = new URL(endpoint, window.location.href).href;
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
    setTimeout(resolve, 2000);
  });
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', authorization: `Bearer ${bearer}` },
    body: pc.localDescription.sdp,
  });
  const text = await r.text();
  if (r.status !== 201) {
    let doc = {};
    try { doc = JSON.parse(text); } catch { doc = {}; }
    throw new Problem(r.status, doc.title || `HTTP ${r.status}`, doc.detail || '');
  }
  await pc.setRemoteDescription({ type: 'answer', sdp: text });
  return new URL(r.headers.get('location'), url).href;
}

function Copy({ text, label }) {
  const [done, setDone] = useState(false);
  return (
    <button type="button" aria-label={label} onClick={async () => {
      await navigator.clipboard.writeText(text).catch(() => {});
      setDone(true);
    }}>{done ? 'Copied' : 'Copy'}</button>
  );
}

function Settings({ channel, streamKey }) {
  // Sources connect where the server says (live.ingest_url): plain HTTP, or TLS.
  const ingest = new URL(channel.ingest_url);
  const tls = ingest.protocol === 'https:';
  const port = ingest.port || (tls ? 443 : 80);
  const whip = `${location.origin}/whip/${channel.id}`;
  return (
    <section aria-labelledby={`settings-${channel.id}`}>
      <h3 id={`settings-${channel.id}`}>Stream key and source settings</h3>
      <p class="muted">The stream key is shown once: keep it now (a new one can be made later, which
        ends the live source).</p>
      <p>
        Stream key: <code data-testid="stream-key">{streamKey}</code>{' '}
        <Copy text={streamKey} label="Copy the stream key" />
      </p>
      <p>Ingest URL: <code>{channel.ingest_url}</code></p>
      <dl>
        <dt>BUTT</dt>
        <dd>Server type Icecast, address <code>{ingest.hostname}</code>, port <code>{port}</code>,
          password the stream key, mountpoint <code>/ingest/{channel.id}</code>, TLS <code>{tls ? 'on' : 'off'}</code>.</dd>
        <dt>Mixxx</dt>
        <dd>Live Broadcasting: type Icecast 2, host <code>{ingest.hostname}</code>, port <code>{port}</code>,
          mount <code>/ingest/{channel.id}</code>, login <code>source</code>, password the stream key
          {tls ? ' (Mixxx sends plain HTTP only: use the server\'s plain port)' : ''}.</dd>
        <dt>OBS (30 or later)</dt>
        <dd>Stream: service WHIP, server <code>{whip}</code>, bearer token the stream key.</dd>
        <dt>ffmpeg</dt>
        <dd><code>{`ffmpeg -re -i track.mp3 -c:a copy -content_type audio/mpeg${tls ? ' -tls 1' : ''} -f mp3 icecast://source:${streamKey}@${ingest.hostname}:${port}/ingest/${channel.id}`}</code></dd>
      </dl>
    </section>
  );
}

function GoLive({ channel, streamKey }) {
  const [key, setKey] = useState(streamKey || '');
  const [live, setLive] = useState(null);
  const [level, setLevel] = useState(0);
  const [error, setError] = useState(null);
  useEffect(() => () => live && live.stop(), [live]);
  const start = async () => {
    setError(null);
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const ctx = new AudioContext();
      const analyser = ctx.createAnalyser();
      ctx.createMediaStreamSource(stream).connect(analyser);
      const buf = new Float32Array(analyser.fftSize);
      const meter = setInterval(() => {
        analyser.getFloatTimeDomainData(buf);
        let peak = 0;
        for (const v of buf) peak = Math.max(peak, Math.abs(v));
        setLevel(peak);
      }, 100);
      const pc = new RTCPeerConnection();
      pc.addTransceiver(stream.getAudioTracks()[0], { direction: 'sendonly' });
      const session = await negotiate(pc, `/whip/${channel.id}`, key);
      let stopped = false;
      setLive({
        stop: () => {
          if (stopped) return;
          stopped = true;
          clearInterval(meter);
          hangUp(session, key);
          pc.close();
          stream.getTracks().forEach((t) => t.stop());
          ctx.close();
        },
      });
    } catch (e) {
      setError(e instanceof Problem ? e : new Problem(0, 'Could not go live', String(e.message || e)));
    }
  };
  return (
    <section aria-labelledby={`live-${channel.id}`}>
      <h3 id={`live-${channel.id}`}>Go live from this browser</h3>
      {streamKey ? null : (
        <p>
          <label>Stream key <input type="password" value={key} onInput={(e) => setKey(e.currentTarget.value)} /></label>
        </p>
      )}
      {live ? (
        <>
          <p>
            <label>Microphone level <meter min="0" max="1" value={level} /></label>
          </p>
          <button type="button" onClick={() => { live.stop(); setLive(null); }}>Stop</button>
        </>
      ) : (
        <button type="button" class="primary" disabled={!key} onClick={start}>Go live</button>
      )}
      <ProblemBox error={error} />
    </section>
  );
}

/** Clears what a previous stream left on the element (a closed WebRTC stream, a source). */
function reset(el) {
  el.pause();
  el.srcObject = null;
  el.removeAttribute('src');
  el.load();
}

/**
 * Listening to a channel over WebRTC or LL-HLS; `load()` resolves to its playback answer
 * (signed URLs) and `state` is the channel's live state. Choosing a protocol while the channel is
 * offline waits for it: listening starts by itself when it goes on the air. Pressing the chosen
 * button again starts over.
 */
export function Listen({ channel, load, state, start = null, audioRef = null, onPlay = null }) {
  const own = useRef(null);
  const audio = audioRef || own;
  const [how, setHow] = useState(start);
  const [attempt, setAttempt] = useState(0);
  const [latency, setLatency] = useState(null);
  const [error, setError] = useState(null);
  const onAir = state !== 'offline';
  const choose = (h) => { setHow(h); setAttempt((n) => n + 1); };
  useEffect(() => {
    const el = audio.current;
    if (!how || !el) return undefined;
    let stop = () => {};
    let gone = false;
    setError(null);
    setLatency(null);
    reset(el);
    if (!onAir) return () => reset(el);
    const hls = (pb) => {
      if (Hls.isSupported()) {
        const h = new Hls({ lowLatencyMode: true });
        h.on(Hls.Events.ERROR, (_, d) => {
          if (!d.fatal) return;
          const status = d.response && d.response.code;
          setError(new Problem(status || 0, 'The channel cannot be played',
            status === 404 ? 'it is not on the air here' : `${d.details}`));
          h.destroy();
        });
        h.loadSource(pb.master_url);
        h.attachMedia(el);
        // hls.js reports a latency once it plays; 0 before.
        const t = setInterval(() => setLatency(h.latency > 0 ? h.latency : null), 500);
        stop = () => { clearInterval(t); h.destroy(); };
      } else {
        el.src = pb.master_url;
        stop = () => reset(el);
      }
    };
    (async () => {
      const pb = await load();
      if (gone) return;
      // The automatic choice: WebRTC where the channel offers it and it connects within a few
      // seconds (a network may block UDP), else LL-HLS.
      if (how === 'hls' || (how === 'auto' && !pb.whep_url)) { hls(pb); return; }
      const pc = new RTCPeerConnection();
      pc.addTransceiver('audio', { direction: 'recvonly' });
      let heard = false;
      pc.ontrack = (e) => { heard = true; el.srcObject = new MediaStream([e.track]); };
      stop = () => pc.close();
      let session = null;
      const fallBack = () => {
        if (gone || how !== 'auto') return false;
        if (session) hangUp(session, pb.token);
        pc.close();
        reset(el);
        hls(pb);
        return true;
      };
      try {
        session = await negotiate(pc, pb.whep_url, pb.token);
      } catch (e) {
        if (fallBack()) return;
        throw e;
      }
      if (gone) { hangUp(session, pb.token); return; }
      const watchdog = how === 'auto' ? setTimeout(() => { if (!heard || pc.connectionState === 'failed') fallBack(); }, 5000) : null;
      // What the listener hears behind the network: the jitter buffer's delay plus the round trip.
      const t = setInterval(async () => {
        let jb = 0;
        let rtt = 0;
        (await pc.getStats()).forEach((s) => {
          if (s.type === 'inbound-rtp' && s.jitterBufferEmittedCount) {
            jb = s.jitterBufferDelay / s.jitterBufferEmittedCount;
          }
          if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime != null) {
            rtt = s.currentRoundTripTime;
          }
        });
        setLatency(jb > 0 ? jb + rtt / 2 : null);
      }, 500);
      stop = () => {
        clearTimeout(watchdog);
        clearInterval(t);
        hangUp(session, pb.token);
        pc.close();
        reset(el);
      };
    })().catch((e) => { if (!gone) setError(e); });
    return () => { gone = true; stop(); };
  }, [how, attempt, onAir]);
  const live = state === 'live';
  return (
    <section aria-labelledby={`listen-${channel.id}`} class="listen">
      <h3 id={`listen-${channel.id}`}>Listen {live ? <span class="badge live">LIVE</span> : null}</h3>
      {onPlay ? (
        <button type="button" class="primary" onClick={onPlay} aria-label={`Play ${channel.title}`}>Play</button>
      ) : (
        <button type="button" class="primary" aria-pressed={how === 'auto'} onClick={() => choose('auto')}>Play</button>
      )}{' '}
      {how ? <button type="button" onClick={() => { setHow(null); if (audio.current) reset(audio.current); }}>Stop</button> : null}
      <details class="connection">
        <summary>Connection</summary>
        <p class="muted">Play picks the quickest way that works here. To choose:</p>
        <button type="button" aria-pressed={how === 'webrtc'} onClick={() => choose('webrtc')}>WebRTC</button>{' '}
        <button type="button" aria-pressed={how === 'hls'} onClick={() => choose('hls')}>LL-HLS</button>
        {latency != null ? <p data-testid="latency">Latency: {Math.round(latency * 1000)} ms</p> : null}
      </details>
      <audio ref={audio} autoplay controls aria-label={`Listen to ${channel.title}`} />
      {how && !onAir ? (
        <p data-testid="waiting" aria-live="polite">The channel is offline: listening starts when it goes on the air.</p>
      ) : null}
      <ProblemBox error={error} />
    </section>
  );
}

const STATES = { offline: 'Offline', autodj: 'Auto-DJ', live: 'Live' };

/**
 * A channel's state, now-playing and listener counts, kept live by its event stream (`path`),
 * starting from `channel` as listed.
 */
export function useLive(channel, path) {
  const [live, setLive] = useState({ state: channel.state, now_playing: channel.now_playing, listeners: channel.listeners });
  useEffect(() => follow(path, (name, d) => {
    if (name === 'state') setLive((l) => ({ ...l, state: d.state, now_playing: d.state === 'offline' ? null : l.now_playing }));
    if (name === 'now_playing') setLive((l) => ({ ...l, now_playing: d }));
    if (name === 'listeners') setLive((l) => ({ ...l, listeners: d }));
  }), [path]);
  return live;
}

/** What a listener reads of a channel's live state; its owner (`detail`) also reads the listeners by protocol. */
export function LiveState({ live, detail = false }) {
  const l = live.listeners || {};
  return (
    <p aria-live="polite">
      <span class={`state ${live.state}`} data-testid="state">{STATES[live.state] || live.state}</span>
      {live.now_playing ? <> · now playing <em data-testid="channel-now-playing">{live.now_playing.title}</em></> : null}
      {' '}· <span data-testid="listeners">
        {(l.hls || 0) + (l.webrtc || 0) + (l.mp3 || 0) + (l.aac || 0) + (l.opus || 0)} listening
        {detail ? `: ${l.hls || 0} LL-HLS, ${l.webrtc || 0} WebRTC, ${(l.mp3 || 0) + (l.aac || 0) + (l.opus || 0)} in players` : ''}</span>
    </p>
  );
}

/** A channel's settings, as its owner changes them (with If-Match on the version shown). */
function EditChannel({ channel, playlists, onSaved }) {
  const [v, setV] = useState({
    title: channel.title, description: channel.description, playlist_id: channel.playlist_id || '',
    shuffle: channel.shuffle, slug: channel.slug || '', record_live: channel.record_live, visibility: channel.visibility,
  });
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(false);
  const set = (k) => (e) => { setSaved(false); setV({ ...v, [k]: e.currentTarget.type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value }); };
  const save = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const body = { ...v, playlist_id: v.playlist_id || null, slug: v.slug.trim() || null };
      const { doc } = await request('PATCH', `/v1/channels/${channel.id}`, body, { 'if-match': `"v${channel.version}"` });
      setSaved(true);
      onSaved(doc);
    } catch (err) {
      setError(err);
    }
  };
  const id = channel.id;
  return (
    <details class="card">
      <summary>Edit the channel</summary>
      <form onSubmit={save} class="details">
        <label class="field">Title<input value={v.title} required maxLength={200} onInput={set('title')} /></label>
        <label class="field">Address name (slug)<input value={v.slug} pattern="[a-z0-9][a-z0-9-]*" maxLength={64} onInput={set('slug')} aria-describedby={`slug-${id}`} /></label>
        <label class="field">Auto-DJ playlist
          <select value={v.playlist_id} onChange={set('playlist_id')}>
            <option value="">none</option>
            {playlists.map((p) => <option value={p.id}>{p.title}</option>)}
          </select>
        </label>
        <label class="field">Visibility
          <select value={v.visibility} onChange={set('visibility')}>
            <option value="public">Public</option>
            <option value="private">Private</option>
          </select>
        </label>
        <label class="field wide-field">Description<textarea rows="3" value={v.description} maxLength={5000} onInput={set('description')} /></label>
        <label class="check"><input type="checkbox" checked={v.shuffle} onChange={set('shuffle')} /> Shuffle the auto-DJ</label>
        <label class="check"><input type="checkbox" checked={v.record_live} onChange={set('record_live')} /> Record live shows</label>
        <p id={`slug-${id}`} class="muted">The slug names its stream for players: /listen/slug.mp3.</p>
        <p>
          <button type="submit" class="primary">Save the channel</button>{' '}
          {saved ? <span role="status" class="muted">Saved.</span> : null}
        </p>
      </form>
      <ProblemBox error={error} />
    </details>
  );
}

function Channel({ channel: listed, streamKey, who, playlists, onKey, onGone }) {
  const [channel, setChannel] = useState(listed);
  useEffect(() => setChannel(listed), [listed.version]);
  const live = useLive(channel, `/v1/channels/${channel.id}/events`);
  const mine = who.role === 'admin' || who.subject === channel.owner;
  const [error, setError] = useState(null);
  const queue = useQueue();
  // Its cover: the mosaic of its auto-DJ playlist (when the caller may read that playlist).
  const [covers, setCovers] = useState([]);
  useEffect(() => {
    if (!channel.playlist_id) { setCovers([]); return; }
    api('GET', `/v1/playlists/${channel.playlist_id}`).then((p) => setCovers(p.covers || []), () => setCovers([]));
  }, [channel.playlist_id]);
  const load = useCallback(() => api('POST', `/v1/channels/${channel.id}/playback`), [channel.id]);
  const rotate = async () => {
    setError(null);
    try {
      const k = await api('POST', `/v1/channels/${channel.id}/stream-key`, {});
      onKey(channel.id, k.stream_key);
    } catch (e) {
      setError(e);
    }
  };
  const remove = async () => {
    setError(null);
    try {
      await api('DELETE', `/v1/channels/${channel.id}`);
      onGone();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <article class="channel" aria-labelledby={`ch-${channel.id}`}>
      <div class="hero">
        <Mosaic covers={covers} size={120} label={covers.length ? `Covers of ${channel.title}` : ''} />
        <div>
          <div class="muted">Channel</div>
          <h2 id={`ch-${channel.id}`}>{channel.title}</h2>
          <LiveState live={live} detail={mine} />
        </div>
      </div>
      <p>Share: <a href={`${location.origin}/play/channel/${channel.id}`}>{`${location.origin}/play/channel/${channel.id}`}</a></p>
      {streamKey ? <Settings channel={channel} streamKey={streamKey} /> : null}
      {mine ? <GoLive channel={channel} streamKey={streamKey} /> : null}
      <Listen channel={channel} load={load} state={live.state} onPlay={queue ? () => queue.playNow(channelItem({ ...channel, covers })) : null} />
      {mine ? (
        <>
          <EditChannel channel={channel} playlists={playlists} onSaved={setChannel} />
          <ChannelStats id={channel.id} />
          <p class="actions">
            <ConfirmButton label="New stream key" question="A new key ends the live source, and the old key stops working. Make one?"
              action="Make a new key" onConfirm={rotate} />
            <ConfirmButton label="Delete channel" question={`Delete “${channel.title}” for good?`}
              action="Delete" onConfirm={remove} />
          </p>
          <ProblemBox error={error} />
        </>
      ) : null}
    </article>
  );
}

export function Channels({ who }) {
  const [channels, setChannels] = useState([]);
  const [playlists, setPlaylists] = useState([]);
  const [keys, setKeys] = useState({});
  const [title, setTitle] = useState('');
  const [playlist, setPlaylist] = useState('');
  const [visibility, setVisibility] = useState('public');
  const [error, setError] = useState(null);
  const owner = who.role !== 'listener';
  const [next, setNext] = useState(null);
  const [sort, setSort] = useState('date');
  const load = () => api('GET', `/v1/channels?limit=20&sort=${sort}`).then((p) => { setChannels(p.items); setNext(p.next_cursor); }, setError);
  const more = () => api('GET', `/v1/channels?limit=20&sort=${sort}&cursor=${encodeURIComponent(next)}`)
    .then((p) => { setChannels((c) => c.concat(p.items)); setNext(p.next_cursor); }, setError);
  useEffect(() => {
    if (owner) api('GET', '/v1/playlists?limit=100').then((p) => setPlaylists(p.items), () => {});
  }, []);
  useEffect(() => { load(); }, [sort]);
  const sorter = (
    <label class="sorter">Sort by{' '}
      <select value={sort} aria-label="Sort by" onChange={(e) => setSort(e.currentTarget.value)}>
        <option value="date">Newest</option>
        <option value="title">Title</option>
        <option value="plays">Most listened</option>
      </select>
    </label>
  );
  const create = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const body = { title, visibility };
      if (playlist) body.playlist_id = playlist;
      const c = await api('POST', '/v1/channels', body);
      setKeys((k) => ({ ...k, [c.id]: c.stream_key }));
      setTitle('');
      load();
    } catch (err) {
      setError(err);
    }
  };
  const list = channels.map((c) => (
    <Channel key={c.id} channel={c} streamKey={keys[c.id]} who={who} playlists={playlists}
      onKey={(id, key) => setKeys((k) => ({ ...k, [id]: key }))} onGone={load} />
  )).concat(next ? [<button key="more" type="button" onClick={more}>Show more channels</button>] : []);
  if (!owner) {
    return (
      <>
        <div class="section-head"><h2>Channels</h2>{sorter}</div>
        <ProblemBox error={error} />
        {list.length ? list : <p class="muted">No public channel yet.</p>}
      </>
    );
  }
  return (
    <>
      <form onSubmit={create} aria-labelledby="new-channel-h">
        <h2 id="new-channel-h">New channel</h2>
        <label>Title <input value={title} required onInput={(e) => setTitle(e.currentTarget.value)} /></label>{' '}
        <label>
          Auto-DJ playlist{' '}
          <select value={playlist} onChange={(e) => setPlaylist(e.currentTarget.value)}>
            <option value="">none</option>
            {playlists.map((p) => <option value={p.id}>{p.title}</option>)}
          </select>
        </label>{' '}
        <label>
          Visibility{' '}
          <select value={visibility} onChange={(e) => setVisibility(e.currentTarget.value)}>
            <option value="public">Public</option>
            <option value="private">Private</option>
          </select>
        </label>{' '}
        <button class="primary" type="submit">Create channel</button>
        <ProblemBox error={error} />
      </form>
      <div class="section-head"><h2>Your channels</h2>{sorter}</div>
      {list}
    </>
  );
}
