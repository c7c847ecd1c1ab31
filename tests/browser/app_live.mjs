// The web app's live journey in Debian's headless Chromium, whose fake microphone plays WAV:
// sign in, create a channel (its stream key shown once), go live from the browser (WHIP, the
// level meter moving), while a second page listens over WebRTC and a third over LL-HLS, each
// showing its measured latency.
//
//   node app_live.mjs SERVER_URL WAV SCREENSHOT_DIR
//
// Prints one JSON object of what was seen; exits non-zero on the first step that did not happen.
import { launch } from './chromium.mjs';

const [server, wav, shots] = process.argv.slice(2);
if (!server || !wav || !shots) {
  console.error('usage: node app_live.mjs SERVER_URL WAV SCREENSHOT_DIR');
  process.exit(2);
}
const browser = await launch(['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  `--use-file-for-fake-audio-capture=${wav}`]);
const seen = { consoleErrors: [], screenshots: [] };
let ok = false;
const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
const open = async () => {
  const page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && seen.consoleErrors.push(m.text()));
  page.on('pageerror', (e) => seen.consoleErrors.push(String(e)));
  await page.goto(server);
  return page;
};
const artist = await open();
try {
  await artist.getByRole('button', { name: 'Development sign-in' }).click();
  await artist.getByRole('button', { name: 'Channels' }).click();
  await artist.getByLabel('Title').fill('Studio');
  await artist.getByRole('button', { name: 'Create channel' }).click();
  seen.streamKey = await artist.getByTestId('stream-key').innerText();
  seen.settings = await artist.locator('dl').innerText();
  await artist.getByRole('button', { name: 'Go live' }).click();
  await artist.waitForFunction(() => document.querySelector('[data-testid=state]').textContent === 'live',
    null, { timeout: 30000 });
  seen.meter = await artist.waitForFunction(() => {
    const m = document.querySelector('meter');
    return m && m.value > 0.01 && m.value;
  }, null, { timeout: 10000 }).then((h) => h.jsonValue());

  const listen = async (how) => {
    const page = await open();
    await page.getByRole('button', { name: 'Channels' }).click();
    await page.getByRole('button', { name: how }).click();
    await page.getByTestId('latency').waitFor({ timeout: 30000 });
    const heard = await page.evaluate(async () => {
      const a = document.querySelector('audio');
      const ctx = new AudioContext();
      const analyser = ctx.createAnalyser();
      if (a.srcObject) ctx.createMediaStreamSource(a.srcObject).connect(analyser);
      else ctx.createMediaElementSource(a).connect(analyser);
      await ctx.resume();
      const start = a.currentTime;
      const buf = new Float32Array(2048);
      let peak = 0;
      const until = performance.now() + 4000;
      while (performance.now() < until) {
        await new Promise((res) => setTimeout(res, 100));
        analyser.getFloatTimeDomainData(buf);
        for (const v of buf) peak = Math.max(peak, Math.abs(v));
      }
      return { peak, advanced: a.currentTime - start };
    });
    heard.latency = await page.getByTestId('latency').innerText();
    return heard;
  };
  seen.webrtc = await listen('WebRTC');
  seen.hls = await listen('LL-HLS');
  await artist.waitForTimeout(2500);
  seen.artistSees = await artist.locator('article p').first().innerText();
  const path = `${shots}/live-channel.png`;
  await artist.screenshot({ path, fullPage: true });
  seen.screenshots.push(path);
  await artist.getByRole('button', { name: 'Stop' }).click();
  await artist.waitForFunction(() => document.querySelector('[data-testid=state]').textContent === 'offline',
    null, { timeout: 30000 });
  ok = seen.webrtc.peak > 0.01 && seen.hls.peak > 0.01 && seen.hls.advanced > 2;
} catch (e) {
  seen.error = String(e);
  seen.pageText = await artist.locator('main').innerText().catch(() => null);
  await artist.screenshot({ path: `${shots}/failure-live.png`, fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
process.exit(ok ? 0 : 1);
