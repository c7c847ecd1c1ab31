// Tracks, for artists: uploads (tus, resumable after a reload or a dropped network), the library
// with packaging progress followed live (the track's server-sent events), and a page per track
// with its analysis, its renditions and its share link.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import * as tus from 'tus-js-client';
import WaveformData from 'waveform-data';
import { api, clock, credential, follow, Problem } from './api.js';
import { ProblemBox } from './problem.jsx';
import { Player } from './player.jsx';

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
        headers: { 'tus-resumable': '1.0.0', authorization: `Bearer ${credential()}` },
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
        headers: { authorization: `Bearer ${credential()}` },
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

export function Library({ go }) {
  const [tracks, setTracks] = useState([]);
  const [error, setError] = useState(null);
  const [playing, setPlaying] = useState(null);
  const load = () => api('GET', '/v1/tracks?limit=100').then((p) => setTracks(p.items), setError);
  useEffect(() => {
    load();
    // Uploads from elsewhere (another tab, the API) show up within half a minute.
    const t = setInterval(load, 30000);
    return () => clearInterval(t);
  }, []);
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
  const playback = useCallback(() => api('POST', `/v1/tracks/${playing.id}/playback`), [playing && playing.id]);
  return (
    <>
      <Upload onUploaded={load} />
      <section aria-labelledby="library-h">
        <h2 id="library-h">Library</h2>
        <ProblemBox error={error} />
        <table>
          <thead>
            <tr><th>Title</th><th class="wide">Waveform</th><th>Duration</th><th>Status</th><th class="wide">Loudness</th><th>Actions</th></tr>
          </thead>
          <tbody>
            {tracks.map((t) => (
              <tr key={t.id}>
                <td><a href={`#/tracks/${t.id}`}>{t.title}</a></td>
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
                  <button disabled={t.status !== 'ready'} onClick={() => setPlaying(t)} aria-label={`Play ${t.title}`}>Play</button>
                  {t.status === 'failed' && t.retryable ? (
                    <button onClick={() => act(() => api('POST', `/v1/tracks/${t.id}/retry`))} aria-label={`Retry ${t.title}`}>Retry</button>
                  ) : null}
                  <button onClick={() => act(() => api('DELETE', `/v1/tracks/${t.id}`))} aria-label={`Delete ${t.title}`}>Delete</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {tracks.length === 0 ? <p class="muted">No tracks yet: upload some above.</p> : null}
      </section>
      {playing ? <Player key={playing.id} title={playing.title} load={playback} /> : null}
    </>
  );
}

/** The page of one track: its analysis, its renditions, its player and its share link. */
export function TrackPage({ id }) {
  const [t, setT] = useState(null);
  const [error, setError] = useState(null);
  const load = () => api('GET', `/v1/tracks/${id}`).then(setT, setError);
  useEffect(() => { load(); }, [id]);
  const playback = useCallback(() => api('POST', `/v1/tracks/${id}/playback`), [id]);
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
      <h2>{t.title}</h2>
      <ProblemBox error={error} />
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
      {t.status === 'ready' ? <Player title={t.title} load={playback} label="Player" /> : (
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
