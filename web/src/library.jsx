// Tracks, for artists: uploads (tus, resumable after a reload or a dropped network), the library
// with packaging progress followed live (the track's server-sent events), and a page per track
// with its analysis, its renditions and its share link.
import { useEffect, useRef, useState } from 'preact/hooks';
import * as tus from 'tus-js-client';
import WaveformData from 'waveform-data';
import { api, authHeaders, clock, follow, Problem } from './api.js';
import { ProblemBox } from './problem.jsx';
import { ConfirmButton } from './confirm.jsx';
import { QueueButtons, trackItem } from './queue.jsx';
import { TrackPlays } from './station.jsx';

// Small enough that a dropped connection loses little, large enough to stay few requests.
const CHUNK = 2 * 1024 * 1024;

/** Uploads this browser started and did not finish, as tus-js-client remembers them. */
async function unfinished() {
  const storage = tus.defaultOptions.urlStorage;
  if (!storage || !storage.findAllUploads) return [];
  const all = await storage.findAllUploads();
  const out = [];
  for (const u of all) {
    let sent = 0;
    try {
      const r = await fetch(u.uploadUrl, {
        method: 'HEAD',
        headers: { 'tus-resumable': '1.0.0', ...authHeaders() },
      });
      if (!r.ok) { await storage.removeUpload(u.urlStorageKey); continue; }
      sent = Number(r.headers.get('upload-offset') || 0);
    } catch {
      sent = 0;
    }
    out.push({ key: u.urlStorageKey, name: (u.metadata && u.metadata.filename) || 'a file', sent, total: u.size });
  }
  return out;
}

function Upload({ onUploaded }) {
  const [files, setFiles] = useState([]);
  const [pending, setPending] = useState([]);
  const [over, setOver] = useState(false);
  useEffect(() => { unfinished().then(setPending, () => {}); }, []);
  const start = (list) => {
    for (const file of list) {
      const id = `${file.name}-${file.size}-${Math.random()}`;
      setFiles((f) => [...f, { id, name: file.name, sent: 0, total: file.size, error: null, done: false, resumed: null }]);
      const update = (change) => setFiles((f) => f.map((x) => (x.id === id ? { ...x, ...change } : x)));
      const upload = new tus.Upload(file, {
        endpoint: '/v1/uploads',
        headers: authHeaders(),
        metadata: { filename: file.name, filetype: file.type || 'application/octet-stream' },
        chunkSize: CHUNK,
        retryDelays: [0, 1000, 3000, 5000, 10000],
        storeFingerprintForResuming: true,
        removeFingerprintOnSuccess: true,
        onProgress: (sent, total) => update({ sent, total, error: null }),
        onError: (e) => update({ error: new Problem(0, 'Upload failed', String(e.message || e)) }),
        onSuccess: (payload) => {
          update({ done: true, sent: file.size });
          setPending((p) => p.filter((u) => u.name !== file.name));
          onUploaded(payload && payload.lastResponse ? payload.lastResponse.getHeader('veza-track') : null);
        },
      });
      // Resume where an earlier page (or a dropped network) left this file.
      upload.findPreviousUploads().then((previous) => {
        if (previous.length) {
          update({ resumed: true });
          upload.resumeFromPreviousUpload(previous[0]);
        }
        upload.start();
      });
    }
  };
  const forget = async (u) => {
    await tus.defaultOptions.urlStorage.removeUpload(u.key);
    setPending((p) => p.filter((x) => x.key !== u.key));
  };
  return (
    <section aria-labelledby="upload-h">
      <h2 id="upload-h">Upload</h2>
      <div class={over ? 'drop over' : 'drop'}
        onDragOver={(e) => { e.preventDefault(); setOver(true); }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => { e.preventDefault(); setOver(false); start([...e.dataTransfer.files]); }}>
        <p>Drop audio files here, or</p>
        <label>
          Choose files <input type="file" multiple accept="audio/*,.flac,.opus,.ogg,.m4a,.aiff,.aif,.wav,.mp3"
            onChange={(e) => start([...e.currentTarget.files])} />
        </label>
      </div>
      {pending.length ? (
        <div aria-labelledby="pending-h">
          <h3 id="pending-h">Unfinished uploads</h3>
          <p class="muted">Choose the same file again to carry on where it stopped.</p>
          <ul data-testid="pending">
            {pending.map((u) => (
              <li key={u.key}>
                {u.name}: {Math.floor((100 * u.sent) / (u.total || 1))} % sent{' '}
                <button type="button" onClick={() => forget(u)} aria-label={`Forget the upload of ${u.name}`}>Forget</button>
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      <ul data-testid="uploads">
        {files.map((f) => (
          <li key={f.id}>
            {f.name}{f.resumed ? ' (resumed)' : ''}{' '}
            <progress max={f.total || 1} value={f.sent} aria-label={`Upload of ${f.name}`} />
            {' '}{f.done ? '100 %' : `${Math.floor((100 * f.sent) / (f.total || 1))} %`}
            <ProblemBox error={f.error} />
          </li>
        ))}
      </ul>
    </section>
  );
}

/** A row's small waveform, drawn from our waveform JSON (waveform-data, peaks.js's data layer). */
function MiniWave({ id, url, title }) {
  const canvas = useRef(null);
  useEffect(() => {
    const c = canvas.current;
    if (!url || !c) return undefined;
    const stop = new AbortController();
    fetch(url, { signal: stop.signal }).then((r) => r.json()).then((json) => {
      const w = WaveformData.create(json).resample({ width: c.width });
      const ch = w.channel(0);
      const g = c.getContext('2d');
      const mid = c.height / 2;
      const scale = mid / 128;
      g.clearRect(0, 0, c.width, c.height);
      g.fillStyle = getComputedStyle(c).color;
      for (let x = 0; x < w.length; x += 1) {
        const top = mid - ch.max_sample(x) * scale;
        const bottom = mid - ch.min_sample(x) * scale;
        g.fillRect(x, top, 1, Math.max(1, bottom - top));
      }
    }).catch(() => {});
    return () => stop.abort();
    // Drawn once per track: the list's reloads sign new URLs for the same waveform.
  }, [id]);
  return <canvas ref={canvas} class="miniwave" width="160" height="28" role="img" aria-label={`Waveform of ${title}`} />;
}

function loudness(t) {
  const l = t.analysis && t.analysis.loudness;
  return l && l.integrated_lufs != null ? `${l.integrated_lufs.toFixed(1)} LUFS` : '';
}

function status(t) {
  if (t.status === 'processing' || t.status === 'queued') {
    return `${t.status} ${Math.round(100 * (t.progress || 0))} %`;
  }
  return t.status;
}

const SORTS = { date: 'Newest', title: 'Title', duration: 'Duration', plays: 'Most played' };
const PAGE = 50;

export function Library() {
  const [tracks, setTracks] = useState([]);
  const [error, setError] = useState(null);
  const [sort, setSort] = useState(localStorage.getItem('veza.library.sort') || 'date');
  const [next, setNext] = useState(null);
  const [shown, setShown] = useState(PAGE);
  // The pages shown so far, again: reloads keep what the listener scrolled to.
  const load = async () => {
    try {
      let all = [];
      let cursor = '';
      do {
        const p = await api('GET', `/v1/tracks?limit=${PAGE}&sort=${sort}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        all = all.concat(p.items);
        cursor = p.next_cursor;
      } while (cursor && all.length < shown);
      setTracks(all);
      setNext(cursor || null);
    } catch (e) {
      setError(e);
    }
  };
  useEffect(() => {
    load();
    localStorage.setItem('veza.library.sort', sort);
    // Uploads from elsewhere (another tab, the API) show up within half a minute.
    const t = setInterval(load, 30000);
    return () => clearInterval(t);
  }, [sort, shown]);
  // Packaging progress, live: one event stream per track still in the queue or being packaged.
  const followed = useRef(new Map());
  useEffect(() => {
    const busy = new Set(tracks.filter((t) => t.status === 'queued' || t.status === 'processing').map((t) => t.id));
    for (const [id, stop] of followed.current) {
      if (!busy.has(id)) { stop(); followed.current.delete(id); }
    }
    for (const id of busy) {
      if (followed.current.has(id)) continue;
      followed.current.set(id, follow(`/v1/tracks/${id}/events`, (name, d) => {
        if (name === 'progress') {
          setTracks((ts) => ts.map((t) => (t.id === id ? { ...t, status: d.status, progress: d.progress, error: d.error } : t)));
          if (d.status === 'ready' || d.status === 'failed') load();
        }
        if (name === 'deleted') load();
      }));
    }
  }, [tracks]);
  useEffect(() => () => { for (const stop of followed.current.values()) stop(); }, []);
  const act = async (fn) => {
    setError(null);
    try {
      await fn();
      load();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <Upload onUploaded={load} />
      <section aria-labelledby="library-h">
        <div class="section-head">
          <h2 id="library-h">Library</h2>
          <label>Sort by{' '}
            <select value={sort} aria-label="Sort by" onChange={(e) => { setShown(PAGE); setSort(e.currentTarget.value); }}>
              {Object.entries(SORTS).map(([v, l]) => <option value={v}>{l}</option>)}
            </select>
          </label>
        </div>
        <ProblemBox error={error} />
        <table class="rows">
          <thead>
            <tr><th>Title</th><th class="wide">Waveform</th><th>Duration</th><th>Status</th><th class="wide">Loudness</th><th>Actions</th></tr>
          </thead>
          <tbody>
            {tracks.map((t) => (
              <tr key={t.id}>
                <td>
                  <span class="row-title">
                    {t.cover_url ? <img class="cover" src={t.cover_url} alt="" width="40" height="40" loading="lazy" /> : <span class="cover none small" aria-hidden="true" />}
                    <span>
                      <a href={`#/tracks/${t.id}`}>{t.title}</a>
                      {t.artist ? <span class="muted artist">{t.artist}</span> : null}
                    </span>
                  </span>
                </td>
                <td class="wide">{t.waveform_url ? <MiniWave id={t.id} url={t.waveform_url} title={t.title} /> : null}</td>
                <td>{clock(t.analysis && t.analysis.duration_seconds)}</td>
                <td>
                  {status(t)}
                  {t.status === 'processing' || t.status === 'queued' ? (
                    <progress max="1" value={t.progress || 0} aria-label={`Packaging of ${t.title}`} />
                  ) : null}
                  {t.error ? <span class="muted"> ({t.error})</span> : null}
                </td>
                <td class="wide">{loudness(t)}</td>
                <td class="actions">
                  <QueueButtons item={trackItem(t)} disabled={t.status !== 'ready'} />
                  {t.status === 'failed' && t.retryable ? (
                    <button onClick={() => act(() => api('POST', `/v1/tracks/${t.id}/retry`))} aria-label={`Retry ${t.title}`}>Retry</button>
                  ) : null}
                  <ConfirmButton label="Delete" aria={`Delete ${t.title}`} question={`Delete “${t.title}”?`}
                    action="Delete" onConfirm={() => act(() => api('DELETE', `/v1/tracks/${t.id}`))} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {tracks.length === 0 ? <p class="muted">No tracks yet: upload some above.</p> : null}
        {next ? <button type="button" onClick={() => setShown((n) => n + PAGE)}>Show more</button> : null}
      </section>
    </>
  );
}

/** The page of one track: its analysis, its renditions, its player and its share link. */
export function TrackPage({ id }) {
  const [t, setT] = useState(null);
  const [error, setError] = useState(null);
  const load = () => api('GET', `/v1/tracks/${id}`).then(setT, setError);
  useEffect(() => { load(); }, [id]);
  if (!t) return <ProblemBox error={error} />;
  const a = t.analysis || {};
  const l = a.loudness || {};
  const share = async (visibility) => {
    setError(null);
    try {
      setT(await api('PATCH', `/v1/tracks/${id}`, { visibility }));
    } catch (e) {
      setError(e);
    }
  };
  const retry = async () => {
    setError(null);
    try {
      setT(await api('POST', `/v1/tracks/${id}/retry`));
    } catch (e) {
      setError(e);
    }
  };
  const fmt = (v, d = 1) => (v == null ? '–' : Number(v).toFixed(d));
  return (
    <>
      <p><a href="#/library">← Library</a></p>
      <div class="hero">
        {t.cover_url ? <img class="cover" src={t.cover_url} alt={`Cover of ${t.title}`} width="200" height="200" /> : <div class="cover none large" aria-hidden="true" />}
        <div>
          <p class="muted">Track{t.album ? ` · ${t.album}` : ''}{t.year ? ` · ${t.year}` : ''}</p>
          <h2>{t.title}</h2>
          {t.artist ? <p class="artist-line">{t.artist}</p> : null}
          {t.status === 'ready' ? <p><QueueButtons item={trackItem(t)} /></p> : null}
        </div>
      </div>
      <ProblemBox error={error} />
      <Details t={t} onSaved={setT} />
      {t.status === 'ready' ? <TrackPlays id={t.id} /> : null}
      <section aria-labelledby="share-h">
        <h3 id="share-h">Share</h3>
        <label>
          Visibility{' '}
          <select value={t.visibility} onChange={(e) => share(e.currentTarget.value)}>
            <option value="private">Private: only you</option>
            <option value="public">Public: anyone with the link</option>
          </select>
        </label>
        <p>
          Link: <a href={t.links.page} data-testid="share-link">{t.links.page}</a>{' '}
          <button type="button" onClick={() => navigator.clipboard.writeText(t.links.page).catch(() => {})}
            aria-label="Copy the share link">Copy</button>
        </p>
        {t.visibility === 'private' ? <p class="muted">The link plays only for you until the track is public.</p> : null}
      </section>
      {t.status === 'ready' ? null : (
        <section aria-labelledby="status-h">
          <h3 id="status-h">Status: {status(t)}</h3>
          {t.error ? <p data-testid="failure-reason" role="alert">{t.status === 'failed' ? 'It failed: ' : 'Last attempt: '}{t.error}</p> : null}
          {t.status === 'failed' && t.retryable ? (
            <button type="button" onClick={retry}>Retry</button>
          ) : null}
          {t.status === 'failed' && !t.retryable ? (
            <p class="muted">The file was rejected and removed: upload it again once it is fixed.</p>
          ) : null}
        </section>
      )}
      <section aria-labelledby="analysis-h">
        <h3 id="analysis-h">Analysis</h3>
        <dl class="facts">
          <dt>File</dt><dd>{t.filename} ({t.content_type}, {(t.size_bytes / 1e6).toFixed(1)} MB)</dd>
          <dt>Source</dt><dd data-testid="source-format">{a.source ? `${a.source.codec} in ${a.source.container} · ${a.source.sample_rate} Hz · ${a.source.channels} ch${a.source.bits_per_sample ? ` · ${a.source.bits_per_sample} bit` : ''}${a.source.lossless ? ' · lossless' : ''}` : '–'}</dd>
          <dt>Duration</dt><dd>{clock(a.duration_seconds)}</dd>
          <dt>Integrated loudness</dt><dd data-testid="loudness">{fmt(l.integrated_lufs)} LUFS</dd>
          <dt>Loudness range</dt><dd>{fmt(l.range_lu)} LU</dd>
          <dt>True peak</dt><dd>{fmt(l.true_peak_dbtp)} dBTP</dd>
          {a.normalization ? <><dt>Normalisation</dt><dd>{fmt(a.normalization.gain_db)} dB</dd></> : null}
        </dl>
        {t.warnings.length ? <ul>{t.warnings.map((w) => <li>{w}</li>)}</ul> : null}
      </section>
      <section aria-labelledby="renditions-h">
        <h3 id="renditions-h">Renditions</h3>
        <table>
          <thead><tr><th>Name</th><th>Codec</th><th>Bitrate</th><th class="wide">Sample rate</th><th class="wide">Channels</th></tr></thead>
          <tbody>
            {t.renditions.map((r) => (
              <tr key={r.name}>
                <td>{r.name}</td><td>{r.codecs}</td><td>{Math.round((r.average_bandwidth || r.bandwidth) / 1000)} kb/s</td>
                <td class="wide">{r.sample_rate} Hz</td><td class="wide">{r.channels}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </>
  );
}

/** The track's details, as its owner edits them, and its cover. */
function Details({ t, onSaved }) {
  const fields = ['title', 'artist', 'album', 'year', 'genre', 'track_number'];
  const initial = () => Object.fromEntries(fields.map((f) => [f, t[f] == null ? '' : String(t[f])]));
  const [v, setV] = useState(initial);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  useEffect(() => setV(initial()), [t.id, t.updated_at]);
  const save = async (e) => {
    e.preventDefault();
    setError(null);
    setSaved(false);
    const body = {};
    for (const f of fields) {
      const value = v[f].trim();
      if (f === 'title') { if (value !== t.title) body.title = value; continue; }
      const now = t[f] == null ? '' : String(t[f]);
      if (value === now) continue;
      body[f] = value === '' ? null : (f === 'year' || f === 'track_number' ? Number(value) : value);
    }
    try {
      onSaved(await api('PATCH', `/v1/tracks/${t.id}`, body));
      setSaved(true);
    } catch (err) {
      setError(err);
    }
  };
  const cover = async (file) => {
    if (!file) return;
    setError(null);
    setBusy(true);
    try {
      const r = await fetch(`/v1/tracks/${t.id}/cover`, { method: 'PUT', headers: { ...authHeaders(), 'content-type': file.type || 'application/octet-stream' }, body: file });
      const doc = await r.json().catch(() => ({}));
      if (!r.ok) throw new Problem(r.status, doc.title || `HTTP ${r.status}`, doc.detail || '', doc.type || '');
      onSaved(doc);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const label = { title: 'Title', artist: 'Artist', album: 'Album', year: 'Year', genre: 'Genre', track_number: 'Track number' };
  return (
    <section aria-labelledby="details-h" class="card">
      <h3 id="details-h">Details</h3>
      <form onSubmit={save} class="details">
        {fields.map((f) => (
          <label class="field" key={f}>{label[f]}
            <input value={v[f]} required={f === 'title'} maxLength={f === 'genre' ? 100 : 200}
              inputMode={f === 'year' || f === 'track_number' ? 'numeric' : undefined}
              onInput={(e) => { setSaved(false); setV({ ...v, [f]: e.currentTarget.value }); }} />
          </label>
        ))}
        <p>
          <button type="submit" class="primary">Save details</button>{' '}
          {saved ? <span role="status" class="muted">Saved.</span> : null}
        </p>
      </form>
      <div class="cover-edit">
        <label class="file-button">
          {t.cover_url ? 'Replace the cover' : 'Add a cover'}
          <input type="file" accept="image/jpeg,image/png,image/webp" disabled={busy}
            onChange={(e) => cover(e.currentTarget.files[0])} />
        </label>
        {t.cover_url ? (
          <button type="button" onClick={async () => {
            setError(null);
            try { onSaved(await api('DELETE', `/v1/tracks/${t.id}/cover`)); } catch (err) { setError(err); }
          }}>Remove the cover</button>
        ) : null}
        <span class="muted">JPEG, PNG or WebP; shown at up to 600 pixels a side.</span>
      </div>
      <ProblemBox error={error} />
    </section>
  );
}
