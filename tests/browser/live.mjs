// Plays a live LL-HLS master in Debian's headless Chromium with hls.js in low-latency mode.
//
//   node live.mjs MASTER_URL SECONDS
//
// Serves a page and hls.js on a loopback port and plays MASTER_URL (cross-origin) for SECONDS.
// Prints one JSON object: how far media time advanced, stalls (their count, and the seconds from
// the start at which each began: hls.js BUFFER_STALLED_ERROR and the
// element's `waiting` events after playback started), fatal errors, the peak level of the audio
// (a WebAudio analyser on the element's output), hls.js's live latency sampled every 250 ms
// (median, max), and the titles of the ID3 now-playing cues hls.js parsed from `emsg` boxes, with
// the wall-clock instant of each (`cues`: its fragment's program date-time plus its offset).
// Exits non-zero on a fatal error or when nothing was heard; the caller judges the rest.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const [src, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!src || !seconds) {
  console.error('usage: node live.mjs MASTER_URL SECONDS');
  process.exit(2);
}
const hlsJs = fs.readFileSync(path.join(here, 'node_modules/hls.js/dist/hls.min.js'));
const page = '<!doctype html><html><body><audio id="a" crossorigin="anonymous"></audio><script src="/hls.min.js"></script></body></html>';
const server = http.createServer((req, res) => {
  if (req.url === '/hls.min.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' });
    return res.end(hlsJs);
  }
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end(page);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const browser = await launch();
const tab = await browser.newPage();
await tab.goto(`http://127.0.0.1:${server.address().port}/`);
const result = await tab.evaluate(async ({ src, seconds }) => {
  const audio = document.getElementById('a');
  const errors = [];
  const stalls = [];
  const t0 = performance.now();
  const titles = [];
  const latencies = [];
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 2048;
  ctx.createMediaElementSource(audio).connect(analyser);
  analyser.connect(ctx.destination);
  const tit2 = (bytes) => {
    // ID3v2.4: a 10-byte header, then frames of id(4) size(4, synchsafe) flags(2).
    let i = 10;
    while (i + 10 <= bytes.length) {
      const id = String.fromCharCode(...bytes.slice(i, i + 4));
      const size = (bytes[i + 4] << 21) | (bytes[i + 5] << 14) | (bytes[i + 6] << 7) | bytes[i + 7];
      if (id === 'TIT2') return new TextDecoder().decode(bytes.slice(i + 11, i + 10 + size));
      i += 10 + size;
    }
    return null;
  };
  const hls = new Hls({ lowLatencyMode: true });
  let playing = false;
  // One stall is reported twice (hls.js's bufferStalledError and the element's `waiting`, in
  // the same tenth of a second): a report within half a second of the last is the same stall.
  const stalled = () => {
    const now = performance.now();
    if (!stalls.length || now - stalls[stalls.length - 1] > 500) stalls.push(now);
  };
  hls.on(Hls.Events.ERROR, (_, d) => {
    if (d.fatal) errors.push(`${d.type}: ${d.details}`);
    else if (d.details === 'bufferStalledError' && playing) stalled();
  });
  const cues = [];
  hls.on(Hls.Events.FRAG_PARSING_METADATA, (_, d) => {
    for (const s of d.samples) {
      const t = tit2(s.data);
      if (t && titles[titles.length - 1] !== t) {
        titles.push(t);
        // The cue's wall-clock instant: its fragment's EXT-X-PROGRAM-DATE-TIME plus its offset.
        const pdt = d.frag.programDateTime;
        cues.push({ title: t, pdt_ms: pdt ? Math.round(pdt + (s.pts - d.frag.start) * 1000) : null });
      }
    }
  });
  audio.addEventListener('playing', () => { playing = true; });
  audio.addEventListener('waiting', () => { if (playing) stalled(); });
  hls.loadSource(src);
  hls.attachMedia(audio);
  await ctx.resume();
  try { await audio.play(); } catch (e) { errors.push('play(): ' + e.message); }
  let peak = 0;
  const buf = new Float32Array(analyser.fftSize);
  const start = performance.now();
  let firstTime = null;
  while (performance.now() - start < seconds * 1000 && errors.length === 0) {
    await new Promise((r) => setTimeout(r, 250));
    analyser.getFloatTimeDomainData(buf);
    for (const v of buf) peak = Math.max(peak, Math.abs(v));
    if (playing && firstTime === null) firstTime = audio.currentTime;
    if (playing && Number.isFinite(hls.latency) && hls.latency > 0) latencies.push(hls.latency);
  }
  const advanced = firstTime === null ? 0 : audio.currentTime - firstTime;
  hls.destroy();
  latencies.sort((a, b) => a - b);
  return {
    advanced,
    stalls: stalls.length,
    stall_at_s: stalls.map((t) => Math.round((t - t0) / 100) / 10),
    errors,
    peak,
    titles,
    cues,
    latency_median: latencies.length ? latencies[Math.floor(latencies.length / 2)] : null,
    latency_max: latencies.length ? latencies[latencies.length - 1] : null,
  };
}, { src, seconds });
console.log(JSON.stringify(result));
await browser.close();
server.close();
process.exit(result.errors.length === 0 && result.peak > 0.01 ? 0 : 1);
