// The Veza Stream web app: sign in, upload tracks (tus, resumable), watch them being packaged,
// and play them (hls.js where Media Source Extensions exist, the browser's own HLS in Safari).
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import Hls from 'hls.js';
import Peaks from 'peaks.js';
import * as tus from 'tus-js-client';
import { api, credential, signIn, signOut, Problem } from './api.js';
import { ProblemBox } from './problem.jsx';
import { Channels } from './channels.jsx';

function SignIn({ onDone }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    signIn(value);
    try {
      await api('GET', '/v1/tracks?limit=1');
      onDone();
    } catch (err) {
      signOut();
      setError(err);
    }
  };
  const dev = async () => {
    try {
      const r = await api('POST', '/app/dev-sign-in');
      signIn(r.credential);
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form onSubmit={submit}>
      <h2>Sign in</h2>
      <p>
        <label for="credential">API key or JWT</label>
        <br />
        <textarea id="credential" rows="3" cols="60" value={value}
          onInput={(e) => setValue(e.currentTarget.value)} />
      </p>
      <button class="primary" type="submit">Sign in</button>{' '}
      <button type="button" onClick={dev}>Development sign-in</button>
      <p class="muted">The development sign-in works on a server started on its embedded defaults,
        from a browser on the same machine.</p>
      <ProblemBox error={error} />
    </form>
  );
}

function seconds(s) {
  if (s == null) return '';
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}

function Upload({ onUploaded }) {
  const [files, setFiles] = useState([]);
  const [over, setOver] = useState(false);
  const start = (list) => {
    for (const file of list) {
      const id = `${file.name}-${file.size}-${Math.random()}`;
      setFiles((f) => [...f, { id, name: file.name, sent: 0, total: file.size, error: null, done: false }]);
      const update = (change) => setFiles((f) => f.map((x) => (x.id === id ? { ...x, ...change } : x)));
      const upload = new tus.Upload(file, {
        endpoint: '/v1/uploads',
        headers: { authorization: `Bearer ${credential()}` },
        metadata: { filename: file.name, filetype: file.type || 'application/octet-stream' },
        chunkSize: 8 * 1024 * 1024,
        retryDelays: [0, 1000, 3000, 5000],
        storeFingerprintForResuming: true,
        removeFingerprintOnSuccess: true,
        onProgress: (sent, total) => update({ sent, total }),
        onError: (e) => update({ error: new Problem(0, 'Upload failed', String(e.message || e)) }),
        onSuccess: (payload) => {
          update({ done: true, sent: file.size });
          onUploaded(payload && payload.lastResponse ? payload.lastResponse.getHeader('veza-track') : null);
        },
      });
      // Resume where an earlier page (or a dropped network) left this file.
      upload.findPreviousUploads().then((previous) => {
        if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
        upload.start();
      });
    }
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
      <ul>
        {files.map((f) => (
          <li key={f.id}>
            {f.name}{' '}
            <progress max={f.total || 1} value={f.sent} aria-label={`Upload of ${f.name}`} />
            {' '}{f.done ? '100 %' : `${Math.floor((100 * f.sent) / (f.total || 1))} %`}
            <ProblemBox error={f.error} />
          </li>
        ))}
      </ul>
    </section>
  );
}

function Player({ track }) {
  const audio = useRef(null);
  const [family, setFamily] = useState('aac');
  const [answer, setAnswer] = useState(null);
  const [error, setError] = useState(null);
  const resume = useRef(0);
  useEffect(() => {
    setError(null);
    api('POST', `/v1/tracks/${track.id}/playback`).then(setAnswer, setError);
  }, [track.id]);
  useEffect(() => {
    if (!answer || !audio.current) return undefined;
    const url = answer.masters[family] || answer.master_url;
    // A codec change carries on from where the listener was (noted when it was chosen: the
    // previous player is gone by now, and its element reset).
    const at = resume.current;
    if (Hls.isSupported()) {
      const hls = new Hls({ startPosition: at });
      hls.loadSource(url);
      hls.attachMedia(audio.current);
      hls.on(Hls.Events.ERROR, (_, d) => d.fatal && setError(new Problem(0, 'Playback failed', d.details)));
      return () => hls.destroy();
    }
    audio.current.src = url;
    audio.current.currentTime = at;
    return undefined;
  }, [answer, family]);
  // The waveform (our audiowaveform JSON) under the player: a click on it seeks.
  const wave = useRef(null);
  useEffect(() => {
    if (!answer || !wave.current || !audio.current) return undefined;
    let peaks = null;
    Peaks.init({
      overview: { container: wave.current, waveformColor: '#8a7cf0', playedWaveformColor: '#5b4bd6' },
      mediaElement: audio.current,
      dataUri: { json: answer.waveform_url },
      keyboard: false,
      logger: () => {},
    }, (err, p) => {
      if (err) setError(new Problem(0, 'The waveform could not be drawn', String(err.message || err)));
      else peaks = p;
    });
    return () => peaks && peaks.destroy();
  }, [answer]);
  // Space plays and pauses, the arrows step 5 seconds, while focus is in the player.
  const keys = (e) => {
    const a = audio.current;
    if (!a || e.target.tagName === 'SELECT') return;
    if (e.key === ' ') { e.preventDefault(); if (a.paused) a.play(); else a.pause(); }
    if (e.key === 'ArrowRight') { e.preventDefault(); a.currentTime += 5; }
    if (e.key === 'ArrowLeft') { e.preventDefault(); a.currentTime = Math.max(0, a.currentTime - 5); }
  };
  return (
    <section aria-labelledby="player-h" onKeyDown={keys}>
      <h2 id="player-h">Now playing: {track.title}</h2>
      <div ref={wave} class="waveform" role="group"
        aria-label="Waveform: click to seek (or use the arrow keys)" />
      <label>
        Codec{' '}
        <select value={family} onChange={(e) => {
          resume.current = audio.current ? audio.current.currentTime : 0;
          setFamily(e.currentTarget.value);
        }}>
          {['aac', 'opus', 'flac'].filter((f) => !answer || answer.masters[f]).map((f) => (
            <option value={f}>{f === 'flac' ? 'FLAC (lossless)' : f.toUpperCase()}</option>
          ))}
        </select>
      </label>
      <audio ref={audio} controls autoplay aria-label={`Player: ${track.title}`} />
      <ProblemBox error={error} />
    </section>
  );
}

function Library() {
  const [tracks, setTracks] = useState([]);
  const [error, setError] = useState(null);
  const [playing, setPlaying] = useState(null);
  const load = () => api('GET', '/v1/tracks?limit=100').then((p) => setTracks(p.items), setError);
  useEffect(() => {
    load();
    const t = setInterval(load, 2000);
    return () => clearInterval(t);
  }, []);
  const remove = async (t) => {
    try {
      await api('DELETE', `/v1/tracks/${t.id}`);
      load();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <>
      <Upload onUploaded={load} />
      <section aria-labelledby="library-h">
        <h2 id="library-h">Library</h2>
        <ProblemBox error={error} />
        <table>
          <thead>
            <tr><th>Title</th><th>Duration</th><th>Status</th><th class="wide">Loudness</th><th>Actions</th></tr>
          </thead>
          <tbody>
            {tracks.map((t) => (
              <tr key={t.id}>
                <td>{t.title}</td>
                <td>{seconds(t.analysis && t.analysis.duration_seconds)}</td>
                <td>{t.status === 'processing' ? `processing ${Math.round(100 * t.progress)} %` : t.status}</td>
                <td class="wide">{t.analysis && t.analysis.loudness && t.analysis.loudness.integrated_lufs != null ? `${t.analysis.loudness.integrated_lufs.toFixed(1)} LUFS` : ''}</td>
                <td>
                  <button disabled={t.status !== 'ready'} onClick={() => setPlaying(t)}>Play</button>{' '}
                  <button onClick={() => remove(t)} aria-label={`Delete ${t.title}`}>Delete</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      {playing ? <Player key={playing.id} track={playing} /> : null}
    </>
  );
}

const VIEWS = { library: 'Library', channels: 'Channels' };

function App() {
  const [signedIn, setSignedIn] = useState(!!credential());
  const [view, setView] = useState('library');
  return (
    <>
      <header>
        <h1>Veza Stream</h1>
        {signedIn ? (
          <nav aria-label="Sections">
            {Object.entries(VIEWS).map(([v, label]) => (
              <button key={v} aria-current={view === v ? 'page' : undefined} onClick={() => setView(v)}>{label}</button>
            ))}
          </nav>
        ) : null}
        {signedIn ? <button onClick={() => { signOut(); setSignedIn(false); }}>Sign out</button> : null}
      </header>
      <main>
        {!signedIn ? <SignIn onDone={() => setSignedIn(true)} /> : view === 'library' ? <Library /> : <Channels />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app'));
