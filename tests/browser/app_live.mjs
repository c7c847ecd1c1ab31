// The web app's live journey in Debian's headless Chromium, whose fake microphone plays WAV:
// sign in, create a channel (its stream key shown once), go live from the browser (WHIP, the
// level meter moving), while a second page listens over WebRTC and a third over LL-HLS, each
// showing its measured latency; then the channel's share link, opened signed out, shows it live
// and plays it; axe-core on the artist's page and the public one.
//
//   node app_live.mjs SERVER_URL WAV SCREENSHOT_DIR
//
// Prints one JSON object of what was seen; exits non-zero on the first step that did not happen.
import { launch } from './chromium.mjs';
import { axe } from './axe.mjs';

const [server, wav, shots] = process.argv.slice(2);
if (!server || !wav || !shots) {
  console.error('usage: node app_live.mjs SERVER_URL WAV SCREENSHOT_DIR');
  process.exit(2);
}
const browser = await launch(['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
  `--use-file-for-fake-audio-capture=${wav}`]);
const seen = { consoleErrors: [], screenshots: [], axe: {} };
let ok = false;
const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
const open = async () => {
  const page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && seen.consoleErrors.push(`${m.text()} (${m.location().url})`));
  page.on('pageerror', (e) => seen.consoleErrors.push(String(e)));
  await page.goto(server);
  return page;
};
const artist = await open();
try {
  await artist.getByRole('button', { name: 'Development sign-in' }).click();
  await artist.getByRole('link', { name: 'Channels' }).click();
  await artist.getByLabel('Title').fill('Studio');
  await artist.getByRole('button', { name: 'Create channel' }).click();
  seen.streamKey = await artist.getByTestId('stream-key').innerText();
  seen.settings = await artist.locator('dl').innerText();
  await artist.getByRole('button', { name: 'Go live' }).click();
  await artist.waitForFunction(() => document.querySelector('[data-testid=state]').textContent === 'Live',
    null, { timeout: 30000 });
  seen.meter = await artist.waitForFunction(() => {
    const m = document.querySelector('meter');
    return m && m.value > 0.01 && m.value;
  }, null, { timeout: 10000 }).then((h) => h.jsonValue());

  const listen = async (how) => {
    const page = await open();
    await page.getByRole('link', { name: 'Channels' }).click();
    // The way to listen, chosen by hand (Play picks it by itself).
    await page.getByText('Connection', { exact: true }).click();
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
    listening.push(page);
    return heard;
  };
  // The listening pages, closed before the channel stops: one still listening then would fetch
  // playlists of a channel that is gone (404, which the console reports).
  const listening = [];
  seen.webrtc = await listen('WebRTC');
  seen.hls = await listen('LL-HLS');
  await artist.waitForTimeout(2500);
  seen.artistSees = await artist.locator('article p').first().innerText();
  const path = `${shots}/live-channel.png`;
  await artist.screenshot({ path, fullPage: true });
  seen.screenshots.push(path);
  seen.axe.artist = await axe(artist);

  // The share link, signed out: the state and now-playing come from the public event stream.
  const share = await artist.locator('article a[href*="/play/channel/"]').getAttribute('href');
  const stranger = await browser.newContext();
  const pub = await stranger.newPage();
  pub.on('console', (m) => m.type() === 'error' && seen.consoleErrors.push(m.text()));
  pub.on('pageerror', (e) => seen.consoleErrors.push(String(e)));
  await pub.goto(share);
  await pub.waitForFunction(() => {
    const s = document.querySelector('[data-testid=state]');
    return s && s.textContent === 'Live';
  }, null, { timeout: 30000 });
  seen.liveBadge = await pub.locator('.listen .badge.live').innerText();
  await pub.getByText('Connection', { exact: true }).click();
  await pub.getByRole('button', { name: 'LL-HLS' }).click();
  await pub.getByTestId('latency').waitFor({ timeout: 30000 });
  seen.public = await pub.evaluate(async () => {
    const a = document.querySelector('audio');
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    ctx.createMediaElementSource(a).connect(analyser);
    await ctx.resume();
    const buf = new Float32Array(2048);
    let peak = 0;
    const until = performance.now() + 3000;
    while (performance.now() < until) {
      await new Promise((res) => setTimeout(res, 100));
      analyser.getFloatTimeDomainData(buf);
      for (const v of buf) peak = Math.max(peak, Math.abs(v));
    }
    return { peak, signedIn: !!localStorage.getItem('veza.credential') };
  });
  seen.public.og = await pub.locator('meta[property="og:type"]').getAttribute('content');
  const pubShot = `${shots}/public-channel.png`;
  await pub.screenshot({ path: pubShot, fullPage: true });
  seen.screenshots.push(pubShot);
  seen.axe.public = await axe(pub);
  await stranger.close();

  for (const page of listening) await page.close();
  await artist.getByRole('button', { name: 'Stop' }).click();
  await artist.waitForFunction(() => document.querySelector('[data-testid=state]').textContent === 'Offline',
    null, { timeout: 30000 });
  ok = seen.webrtc.peak > 0.01 && seen.hls.peak > 0.01 && seen.hls.advanced > 2 && seen.public.peak > 0.01;
} catch (e) {
  seen.error = String(e);
  seen.pageText = await artist.locator('main').innerText().catch(() => null);
  await artist.screenshot({ path: `${shots}/failure-live.png`, fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
process.exit(ok ? 0 : 1);
