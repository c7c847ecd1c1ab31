// The listener's paths of the web app that used to break (issue 23), in Debian's headless
// Chromium:
// - choosing LL-HLS on an offline channel says it waits, and playback starts by itself when the
//   channel goes live (the test starts the source once this page waits: it writes
//   SHOTS/waiting-CHANNEL);
// - switching to WebRTC and back to LL-HLS plays each time (the closed WebRTC stream used to stay
//   on the element);
// - space on the focused audio element toggles it once (the app and the native control both did);
// - a rejected upload's page says why and offers no retry (which always answered 409);
// - at 375 px, the sign-in box, a track's analysis and the share links fit the screen.
//
//   node app_listen.mjs SERVER_URL CHANNEL_ID REJECTED_TRACK READY_TRACK SCREENSHOT_DIR
//
// Prints one JSON object of what was seen; exits non-zero on the first step that did not happen.
import { writeFileSync } from 'node:fs';
import { launch } from './chromium.mjs';
import { listen as hear } from './hear.mjs';

const [server, channel, rejected, ready, shots] = process.argv.slice(2);
if (!server || !channel || !rejected || !ready || !shots) {
  console.error('usage: node app_listen.mjs SERVER_URL CHANNEL_ID REJECTED_TRACK READY_TRACK SCREENSHOT_DIR');
  process.exit(2);
}
const browser = await launch();
const seen = { consoleErrors: [], screenshots: [] };
let ok = false;
const watch = (page) => {
  page.on('console', (m) => m.type() === 'error' && seen.consoleErrors.push(`${m.text()} (${m.location().url})`));
  page.on('pageerror', (e) => seen.consoleErrors.push(String(e)));
};
// Whether the page is wider than the screen (something overflows sideways).
const overflow = (page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
const page = await context.newPage();
watch(page);
try {
  await page.goto(server);
  await page.getByRole('button', { name: 'Development sign-in' }).click();
  await page.getByRole('link', { name: 'Channels' }).click();
  const article = page.locator('article.channel');
  await article.getByTestId('state').filter({ hasText: 'Offline' }).waitFor({ timeout: 10000 });

  // Offline: LL-HLS (chosen by hand under Connection) waits, says so, and starts once the
  // channel is on the air.
  await article.getByText('Connection', { exact: true }).click();
  await article.getByRole('button', { name: 'LL-HLS' }).click();
  seen.waiting = await article.getByTestId('waiting').innerText({ timeout: 10000 });
  writeFileSync(`${shots}/waiting-${channel}`, 'waiting');
  await article.getByTestId('state').filter({ hasText: 'Live' }).waitFor({ timeout: 60000 });
  await article.getByTestId('latency').waitFor({ timeout: 30000 });
  seen.hlsAfterWaiting = await hear(page, 3000);

  // WebRTC, then back to LL-HLS: each plays.
  await article.getByRole('button', { name: 'WebRTC' }).click();
  await page.waitForFunction(() => !!document.querySelector('audio').srcObject, null, { timeout: 30000 });
  await article.getByTestId('latency').waitFor({ timeout: 30000 });
  seen.webrtc = await hear(page, 3000);
  await article.getByRole('button', { name: 'LL-HLS' }).click();
  await page.waitForFunction(() => !document.querySelector('audio').srcObject, null, { timeout: 10000 });
  await article.getByTestId('latency').waitFor({ timeout: 30000 });
  seen.hlsAfterWebrtc = await hear(page, 3000);

  await page.screenshot({ path: `${shots}/listen-switch.png`, fullPage: true });
  seen.screenshots.push(`${shots}/listen-switch.png`);

  // A track's player (the bar's, started from its page): space on the focused native control
  // toggles it once.
  await page.goto(`${server}#/tracks/${ready}`);
  await page.locator('main').getByRole('button', { name: /^Play / }).first().click();
  const audio = page.locator('section.player audio');
  await audio.waitFor({ timeout: 10000 });
  await page.waitForFunction(() => {
    const a = document.querySelector('section.player audio');
    return a && a.readyState >= 2;
  }, null, { timeout: 20000 });
  await audio.focus();
  const before = await audio.evaluate((a) => a.paused);
  await page.keyboard.press(' ');
  await page.waitForFunction((b) => document.querySelector('section.player audio').paused !== b, before,
    { timeout: 3000 }).catch(() => {});
  await page.waitForTimeout(300);
  seen.space = { before, after: await audio.evaluate((a) => a.paused) };

  // A rejected upload: its page says why, and nothing offers a retry.
  await page.goto(`${server}#/tracks/${rejected}`);
  seen.reason = await page.getByTestId('failure-reason').innerText({ timeout: 10000 });
  seen.trackRetry = await page.getByRole('button', { name: 'Retry' }).count();
  await page.goto(`${server}#/library`);
  await page.locator('table').waitFor({ timeout: 10000 });
  await page.getByText('failed').first().waitFor({ timeout: 10000 });
  seen.libraryRetry = await page.getByRole('button', { name: /^Retry/ }).count();

  // A phone's width.
  const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true });
  const small = await phone.newPage();
  watch(small);
  await small.goto(server);
  await small.getByRole('button', { name: 'Development sign-in' }).waitFor();
  seen.narrow = { signIn: await overflow(small) };
  await small.getByRole('button', { name: 'Development sign-in' }).click();
  await small.goto(`${server}#/tracks/${ready}`);
  await small.getByTestId('share-link').waitFor({ timeout: 10000 });
  await small.getByTestId('loudness').waitFor({ timeout: 10000 });
  seen.narrow.track = await overflow(small);
  await small.screenshot({ path: `${shots}/narrow-track.png`, fullPage: true });
  seen.screenshots.push(`${shots}/narrow-track.png`);
  await small.goto(`${server}#/channels`);
  await small.locator('article.channel a[href*="/play/channel/"]').waitFor({ timeout: 10000 });
  seen.narrow.channels = await overflow(small);
  await phone.close();

  ok = seen.hlsAfterWaiting.peak > 0.01 && seen.webrtc.peak > 0.01 && seen.hlsAfterWebrtc.peak > 0.01
    && seen.hlsAfterWebrtc.advanced > 1 && seen.space.before !== seen.space.after
    && seen.trackRetry === 0 && seen.libraryRetry === 0
    && Object.values(seen.narrow).every((px) => px <= 0);
} catch (e) {
  seen.error = String(e);
  seen.pageText = await page.locator('main').innerText().catch(() => null);
  await page.screenshot({ path: `${shots}/failure-listen.png`, fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
process.exit(ok ? 0 : 1);
