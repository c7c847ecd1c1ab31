// A station as listeners and owners see it: now playing with its cover, what comes next, what
// played, the week's programme and the links for any player (the public channel page); the
// listener graphs of a channel and the plays of a track (for their owner), drawn with uPlot.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { api, clock, follow } from './api.js';
import { ProblemBox } from './problem.jsx';

const time = (iso) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
const day = (iso) => new Date(iso).toLocaleDateString([], { weekday: 'long', day: 'numeric', month: 'short' });

/** The now-playing document of a public channel, kept live by its event stream. */
function useNowPlaying(id) {
  const [doc, setDoc] = useState(null);
  useEffect(() => {
    api('GET', `/v1/public/channels/${id}/nowplaying`).then(setDoc, () => {});
    return follow(`/v1/public/channels/${id}/events`, (name, d) => {
      if (name === 'nowplaying') setDoc(d);
    });
  }, [id]);
  return doc;
}

/** The week ahead of a channel's programme, by day. */
function Week({ id }) {
  const [items, setItems] = useState(null);
  useEffect(() => {
    api('GET', `/v1/channels/${id}/schedule/upcoming?hours=168`).then((u) => setItems(u.items), () => setItems([]));
  }, [id]);
  if (!items || !items.length) return null;
  const days = new Map();
  for (const e of items) {
    const d = day(e.start);
    if (!days.has(d)) days.set(d, []);
    days.get(d).push(e);
  }
  return (
    <section aria-labelledby="week-h" class="card">
      <h3 id="week-h">This week</h3>
      {[...days].map(([d, list]) => (
        <div key={d} class="day">
          <h4>{d}</h4>
          <ul class="schedule" data-testid="schedule">
            {list.map((e) => (
              <li key={`${e.kind}-${e.start}`}>
                <span class="when">{time(e.start)}{e.end ? `–${time(e.end)}` : ''}</span>
                <span>{e.kind === 'default' ? `Rotation: ${e.title || 'auto-DJ'}` : (e.title || (e.kind === 'event' ? 'Special' : 'Auto-DJ'))}</span>
                {e.kind === 'event' ? <span class="badge">Event</span> : null}
              </li>
            ))}
          </ul>
        </div>
      ))}
    </section>
  );
}

/** A public channel's page: what plays, next and before, the week, and plain links for players. */
export function StationInfo({ id, cover }) {
  const doc = useNowPlaying(id);
  if (!doc) return null;
  const np = doc.now_playing;
  const m = doc.station.mounts || {};
  const links = [['m3u', 'Playlist for any player (.m3u)'], ['pls', 'Winamp and hi-fi streamers (.pls)'],
    ['mp3', 'MP3 stream'], ['aac', 'AAC stream'], ['opus', 'Ogg Opus stream']].filter(([k]) => m[k]);
  return (
    <>
      <section aria-labelledby="np-h" class="card nowplaying">
        <h3 id="np-h">Now playing {doc.live.is_live ? <span class="badge live" data-testid="live-badge">LIVE</span> : null}</h3>
        {np ? (
          <div class="np">
            {np.cover_url || cover ? <img class="cover" src={np.cover_url || cover} alt="" width="96" height="96" /> : <div class="cover none" aria-hidden="true" />}
            <div>
              <strong data-testid="np-title">{np.title}</strong>
              {np.artist ? <span class="muted"> · {np.artist}</span> : null}
              {np.duration ? (
                <p class="muted"><progress max={np.duration} value={np.elapsed} aria-label="Time played" /> {clock(np.elapsed)} / {clock(np.duration)}</p>
              ) : null}
            </div>
          </div>
        ) : <p class="muted">Off the air.</p>}
        {doc.playing_next ? (
          <p data-testid="up-next"><span class="muted">Up next, {time(doc.playing_next.start)}:</span> {doc.playing_next.title || 'Auto-DJ'}</p>
        ) : null}
      </section>
      {doc.song_history.length ? (
        <section aria-labelledby="hist-h" class="card">
          <h3 id="hist-h">Recently played</h3>
          <ol class="history" data-testid="history">
            {doc.song_history.map((h) => (
              <li key={h.id}><span class="when">{time(h.started_at)}</span> {h.title}{h.artist ? <span class="muted"> · {h.artist}</span> : null}</li>
            ))}
          </ol>
        </section>
      ) : null}
      <Week id={id} />
      {links.length ? (
        <section aria-labelledby="players-h" class="card">
          <h3 id="players-h">Listen in your player</h3>
          <p class="muted">For VLC, Winamp, car and hi-fi streamers and smart speakers: open or paste one of these.</p>
          <ul class="links" data-testid="player-links">
            {links.map(([k, label]) => <li key={k}><a href={m[k]}>{label}</a></li>)}
          </ul>
        </section>
      ) : null}
    </>
  );
}

/** A uPlot chart of `series` over `xs` (Unix seconds), as wide as its box. */
function Chart({ xs, series, label }) {
  const box = useRef(null);
  useEffect(() => {
    if (!box.current || !xs.length) return undefined;
    const colors = ['#5b3fd6', '#1f9d8b', '#d9822b', '#c4161c'];
    const plot = new uPlot({
      width: Math.max(280, box.current.clientWidth),
      height: 220,
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: colors[i % colors.length], width: 2 }))],
      axes: [{ stroke: 'currentColor' }, { stroke: 'currentColor' }],
    }, [xs, ...series.map((s) => s.values)], box.current);
    return () => plot.destroy();
  }, [xs, series]);
  return <div ref={box} class="chart" role="img" aria-label={label} />;
}

/** A channel's listeners for its owner: peak and mean by protocol, and listening hours. */
export function ChannelStats({ id }) {
  const [span, setSpan] = useState('day');
  const [stats, setStats] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    const now = Date.now();
    const ms = span === 'day' ? 86400000 : 7 * 86400000;
    const step = span === 'day' ? 3600 : 86400;
    const from = new Date(Math.floor((now - ms) / (step * 1000)) * step * 1000).toISOString();
    api('GET', `/v1/channels/${id}/stats?step=${step}&from=${encodeURIComponent(from)}`).then(setStats, setError);
  }, [id, span]);
  if (!stats) return <ProblemBox error={error} />;
  const xs = stats.steps.map((s) => Date.parse(s.start) / 1000);
  const protocols = [...new Set(stats.steps.flatMap((s) => Object.keys(s.protocols)))];
  const series = [
    { label: 'Peak listeners', values: stats.steps.map((s) => s.total.peak) },
    ...protocols.map((p) => ({ label: `Mean, ${p}`, values: stats.steps.map((s) => (s.protocols[p] ? s.protocols[p].mean : 0)) })),
  ];
  const hours = stats.steps.reduce((h, s) => h + s.total.listening_hours, 0);
  const peak = stats.steps.reduce((m, s) => Math.max(m, s.total.peak), 0);
  return (
    <section aria-labelledby={`stats-${id}`} class="card">
      <div class="section-head">
        <h3 id={`stats-${id}`}>Listeners</h3>
        <div role="group" aria-label="Period" class="tabs">
          <button type="button" aria-pressed={span === 'day'} onClick={() => setSpan('day')}>24 hours</button>
          <button type="button" aria-pressed={span === 'week'} onClick={() => setSpan('week')}>7 days</button>
        </div>
      </div>
      <p data-testid="stats-summary">Peak <strong>{peak}</strong> · <strong>{hours.toFixed(2)}</strong> listening hours</p>
      <Chart xs={xs} series={series} label={`Listeners of the last ${span === 'day' ? '24 hours' : '7 days'}: peak ${peak}`} />
    </section>
  );
}

/** A track's plays by day, for its owner. */
export function TrackPlays({ id }) {
  const [s, setS] = useState(null);
  useEffect(() => {
    const from = new Date(Date.now() - 30 * 86400000).toISOString();
    api('GET', `/v1/tracks/${id}/stats?step=86400&from=${encodeURIComponent(from)}`).then(setS, () => {});
  }, [id]);
  if (!s) return null;
  const xs = s.days.map((d) => Date.parse(d.day) / 1000);
  return (
    <section aria-labelledby="plays-h" class="card">
      <h3 id="plays-h">Plays</h3>
      <p data-testid="plays"><strong>{s.plays}</strong> plays in the last 30 days (a play is 30 seconds of listening).</p>
      {xs.length > 1 ? <Chart xs={xs} series={[{ label: 'Plays', values: s.days.map((d) => d.plays) }]} label={`${s.plays} plays in 30 days`} /> : null}
    </section>
  );
}
