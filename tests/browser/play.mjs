// Plays HLS playlists in Debian's headless Chromium, with hls.js and with Chromium's native HLS.
//
//   node play.mjs DIR SECONDS [--native] PLAYLIST...
//
// A PLAYLIST that is an absolute http:// URL is played from there (cross-origin, so the server's
// CORS headers are exercised too).
// Serves DIR and hls.js on a loopback port, then for each PLAYLIST (relative to DIR) plays it for
// SECONDS and checks that media time advances past most of that span, that no fatal or media error
// occurs, and that the audio is not silent (a WebAudio analyser on the element's output). With
// --native the same is done through <audio src=...> without hls.js. Prints one JSON line per
// playlist and exits non-zero if any check fails.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch } from './chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const native = args.includes('--native');
const [dir, secondsArg, ...playlists] = args.filter((a) => a !== '--native');
const seconds = Number(secondsArg);
if (!dir || !seconds || playlists.length === 0) {
  console.error('usage: node play.mjs DIR SECONDS [--native] PLAYLIST...');
  process.exit(2);
}

const types = { '.m3u8': 'application/vnd.apple.mpegurl', '.mp4': 'video/mp4', '.m4s': 'video/iso.segment', '.js': 'text/javascript', '.html': 'text/html' };
const hlsJs = path.join(here, 'node_modules/hls.js/dist/hls.min.js');
const page = `<!doctype html><html><body><audio id="a" crossorigin="anonymous"></audio><script src="/hls.min.js"></script></body></html>`;
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  let file;
  if (url.pathname === '/') {
    res.writeHead(200, { 'content-type': 'text/html' });
    return res.end(page);
  } else if (url.pathname === '/hls.min.js') {
    file = hlsJs;
  } else {
    file = path.join(dir, path.normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, ''));
  }
  fs.readFile(file, (err, data) => {
    if (err) {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, { 'content-type': types[path.extname(file)] || 'application/octet-stream' });
    res.end(data);
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await launch();
let failed = 0;
for (const playlist of playlists) {
  const tab = await browser.newPage();
  await tab.goto(base + '/');
  const result = await tab.evaluate(async ({ src, seconds, native }) => {
    const audio = document.getElementById('a');
    const errors = [];
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    ctx.createMediaElementSource(audio).connect(analyser);
    analyser.connect(ctx.destination);
    let hls = null;
    if (native) {
      if (!audio.canPlayType('application/vnd.apple.mpegurl')) return { ok: false, errors: ['no native HLS'] };
      audio.addEventListener('error', () => errors.push('media error ' + (audio.error && audio.error.message)));
      audio.src = src;
    } else {
      hls = new Hls();
      hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) errors.push(`${d.type}: ${d.details}`); });
      hls.loadSource(src);
      hls.attachMedia(audio);
    }
    await ctx.resume();
    try { await audio.play(); } catch (e) { errors.push('play(): ' + e.message); }
    let peak = 0;
    const buf = new Float32Array(analyser.fftSize);
    const start = performance.now();
    while (performance.now() - start < seconds * 1000 && errors.length === 0) {
      await new Promise((r) => setTimeout(r, 50));
      analyser.getFloatTimeDomainData(buf);
      for (const v of buf) peak = Math.max(peak, Math.abs(v));
    }
    const t = audio.currentTime;
    if (hls) hls.destroy();
    return { ok: errors.length === 0, currentTime: t, peak, errors };
  }, { src: playlist.startsWith('http') ? playlist : `${base}/${playlist}`, seconds, native });
  const pass = result.ok && result.currentTime > seconds * 0.5 && result.peak > 0.01;
  if (!pass) failed += 1;
  console.log(JSON.stringify({ playlist, native, pass, ...result }));
  await tab.close();
}
await browser.close();
server.close();
process.exit(failed ? 1 : 0);
