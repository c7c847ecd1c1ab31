// Plays a progressive mount in Debian's headless Chromium with a plain <audio src>, as a
// station's own web page or a browser opening the URL does: no hls.js, no MSE.
//
//   node audio_src.mjs MOUNT_URL SECONDS
//
// Prints one JSON object: how far media time advanced while playing, the element's error (if
// any), and the peak level of the audio (a WebAudio analyser on the element's output; the
// mount's `Access-Control-Allow-Origin: *` lets a page on another origin read it). Exits
// non-zero on an error or when nothing was heard.
import http from 'node:http';
import { launch } from './chromium.mjs';

const [src, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
if (!src || !seconds) {
  console.error('usage: node audio_src.mjs MOUNT_URL SECONDS');
  process.exit(2);
}
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end('<!doctype html><html><body><audio id="a" crossorigin="anonymous"></audio></body></html>');
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const browser = await launch();
const tab = await browser.newPage();
await tab.goto(`http://127.0.0.1:${server.address().port}/`);
const result = await tab.evaluate(async ({ src, seconds }) => {
  const audio = document.getElementById('a');
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 2048;
  ctx.createMediaElementSource(audio).connect(analyser);
  analyser.connect(ctx.destination);
  let error = null;
  audio.addEventListener('error', () => { error = `media error ${audio.error && audio.error.code}`; });
  audio.src = src;
  await ctx.resume();
  try { await audio.play(); } catch (e) { error = 'play(): ' + e.message; }
  const buf = new Float32Array(analyser.fftSize);
  let peak = 0;
  let first = null;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000 && !error) {
    await new Promise((r) => setTimeout(r, 250));
    analyser.getFloatTimeDomainData(buf);
    for (const v of buf) peak = Math.max(peak, Math.abs(v));
    if (!audio.paused && first === null && audio.currentTime > 0) first = audio.currentTime;
  }
  return { advanced: first === null ? 0 : audio.currentTime - first, error, peak };
}, { src, seconds });
console.log(JSON.stringify(result));
await browser.close();
server.close();
process.exit(!result.error && result.peak > 0.01 ? 0 : 1);
