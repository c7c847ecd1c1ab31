// The player of tracks and playlists: hls.js where Media Source Extensions exist, the browser's
// own HLS in Safari; a codec-family choice (AAC, Opus, lossless FLAC) that keeps the position,
// with the bitrate shown; a peaks.js waveform where a click seeks; keys; and, for a playlist
// played as one gapless stream, the track now playing from its chapters.
import { useEffect, useRef, useState } from 'preact/hooks';
import Hls from 'hls.js';
import Peaks from 'peaks.js';
import { Problem, clock } from './api.js';
import { ProblemBox } from './problem.jsx';

const NAMES = { aac: 'AAC', opus: 'Opus', flac: 'FLAC (lossless)' };

/**
 * `load()` resolves to a playback answer (`masters`, `master_url`, `expires_at`, and
 * `waveform_url` or `chapters` when there are some). It is asked again before the token in it
 * runs out, and playback carries on from where it was.
 */
export function Player({
  title, load, label = 'Now playing', compact = false, audioRef = null, startAt = 0,
  onEnded = undefined, onPosition = undefined,
}) {
  const own = useRef(null);
  const audio = audioRef || own;
  const [family, setFamily] = useState('aac');
  const [answer, setAnswer] = useState(null);
  const [error, setError] = useState(null);
  const [bitrate, setBitrate] = useState(null);
  const [at, setAt] = useState(0);
  const resume = useRef(startAt);
  useEffect(() => {
    setError(null);
    load().then(setAnswer, setError);
  }, [load]);
  // A fresh token a minute before this one runs out.
  useEffect(() => {
    if (!answer || !answer.expires_at) return undefined;
    const wait = Date.parse(answer.expires_at) - Date.now() - 60000;
    if (wait > 2 ** 31 - 1) return undefined;
    const t = setTimeout(() => {
      resume.current = audio.current ? audio.current.currentTime : 0;
      load().then(setAnswer, setError);
    }, Math.max(wait, 1000));
    return () => clearTimeout(t);
  }, [answer]);
  useEffect(() => {
    if (!answer || !audio.current) return undefined;
    const url = answer.masters[family] || answer.master_url;
    // A codec change carries on from where the listener was (noted when it was chosen: the
    // previous player is gone by now, and its element reset).
    const start = resume.current;
    setBitrate(null);
    if (Hls.isSupported()) {
      const hls = new Hls({ startPosition: start });
      hls.loadSource(url);
      hls.attachMedia(audio.current);
      hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => setBitrate(hls.levels[d.level] && hls.levels[d.level].bitrate));
      hls.on(Hls.Events.ERROR, (_, d) => d.fatal && setError(new Problem(0, 'Playback failed', d.details)));
      return () => hls.destroy();
    }
    audio.current.src = url;
    audio.current.currentTime = start;
    return undefined;
  }, [answer, family]);
  // The waveform (our audiowaveform JSON) under the player: a click on it seeks.
  const wave = useRef(null);
  useEffect(() => {
    if (!answer || !answer.waveform_url || !wave.current || !audio.current) return undefined;
    let peaks = null;
    let gone = false;
    Peaks.init({
      overview: { container: wave.current, waveformColor: '#8a7cf0', playedWaveformColor: '#5b4bd6' },
      mediaElement: audio.current,
      dataUri: { json: answer.waveform_url },
      keyboard: false,
      logger: () => {},
    }, (err, p) => {
      if (err) setError(new Problem(0, 'The waveform could not be drawn', String(err.message || err)));
      else if (gone) p.destroy();
      else peaks = p;
    });
    return () => { gone = true; if (peaks) peaks.destroy(); };
  }, [answer && answer.waveform_url]);
  // Space plays and pauses, the arrows step 5 seconds, while focus is in the player.
  const keys = (e) => {
    const a = audio.current;
    // Controls that answer the key themselves: a select, a button, and the audio element,
    // whose native controls already toggle on space (toggling here too would undo it).
    if (!a || ['SELECT', 'BUTTON', 'AUDIO', 'INPUT'].includes(e.target.tagName)) return;
    if (e.key === ' ') { e.preventDefault(); if (a.paused) a.play(); else a.pause(); }
    if (e.key === 'ArrowRight') { e.preventDefault(); a.currentTime += 5; }
    if (e.key === 'ArrowLeft') { e.preventDefault(); a.currentTime = Math.max(0, a.currentTime - 5); }
  };
  const chapters = (answer && answer.chapters) || [];
  const current = chapters.filter((c) => c.start_seconds <= at + 0.05).pop();
  return (
    <section aria-labelledby="player-h" onKeyDown={keys} class={compact ? 'player compact' : 'player'}>
      <h2 id="player-h" class={compact ? 'visually-hidden' : undefined}>{label}: {title}</h2>
      {current ? <p>Track {chapters.indexOf(current) + 1} of {chapters.length}: <strong data-testid="now-playing">{current.title}</strong></p> : null}
      {answer && answer.waveform_url ? (
        <div ref={wave} class="waveform" role="group" tabIndex={0}
          aria-label="Waveform: click to seek, or use the arrow keys" />
      ) : null}
      <label>
        Codec{' '}
        <select value={family} onChange={(e) => {
          resume.current = audio.current ? audio.current.currentTime : 0;
          setFamily(e.currentTarget.value);
        }}>
          {['aac', 'opus', 'flac'].filter((f) => !answer || answer.masters[f]).map((f) => (
            <option value={f}>{NAMES[f]}</option>
          ))}
        </select>
      </label>{' '}
      <span data-testid="bitrate" class="muted">{bitrate ? `${Math.round(bitrate / 1000)} kb/s` : ''}</span>
      <audio ref={audio} controls autoplay aria-label={`Player: ${title}`}
        onEnded={onEnded}
        onTimeUpdate={(e) => {
          setAt(e.currentTarget.currentTime);
          if (onPosition) onPosition(e.currentTarget.currentTime, e.currentTarget.duration);
        }} />
      {chapters.length > 1 ? (
        <ol class="chapters">
          {chapters.map((c) => (
            <li key={c.entry_id} aria-current={c === current ? 'true' : undefined}>
              <button type="button" onClick={() => { if (audio.current) audio.current.currentTime = c.start_seconds; }}>
                {c.title}
              </button>{' '}
              <span class="muted">{clock(c.duration_seconds)}</span>
            </li>
          ))}
        </ol>
      ) : null}
      <ProblemBox error={error} />
    </section>
  );
}
