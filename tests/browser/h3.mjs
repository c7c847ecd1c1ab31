// Chromium over HTTP/3: the web app's public pages of a track and of a live channel, loaded from
// an HTTPS origin that Chromium is told to reach over QUIC, with the development certificate's
// public key pinned. hls.js plays each (audible through a WebAudio analyser), and the protocol
// of every playlist, init and segment request is read from the Resource Timing entries.
//
//   node h3.mjs ORIGIN SPKI_SHA256_BASE64 TRACK_PAGE CHANNEL_PAGE SCREENSHOT_DIR
//
// Prints one JSON object; exits non-zero when a page did not play or a media request was not h3.
import { launch } from './chromium.mjs';
import { listen } from './hear.mjs';

const [origin, spki, trackPage, channelPage, shots] = process.argv.slice(2);
if (!origin || !spki || !trackPage || !channelPage || !shots) {
  console.error('usage: node h3.mjs ORIGIN SPKI TRACK_PAGE CHANNEL_PAGE SCREENSHOT_DIR');
  process.exit(2);
}
const host = new URL(origin).host;
const browser = await launch([`--origin-to-force-quic-on=${host}`,
  `--ignore-certificate-errors-spki-list=${spki}`], { quic: true });
const seen = { consoleErrors: [], screenshots: [] };
let ok = false;
// The protocol of the page itself and of each media request it made.
const protocols = (page) => page.evaluate(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const media = performance.getEntriesByType('resource')
    .filter((e) => /\.(m3u8|m4s|mp4)$/.test(new URL(e.name).pathname))
    .map((e) => e.nextHopProtocol);
  return { page: nav && nav.nextHopProtocol, media: [...new Set(media)], count: media.length };
});
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && seen.consoleErrors.push(m.text()));
  page.on('pageerror', (e) => seen.consoleErrors.push(String(e)));

  await page.goto(trackPage);
  await page.locator('audio').waitFor();
  seen.track = await listen(page, 4000);
  seen.track.protocols = await protocols(page);
  await page.screenshot({ path: `${shots}/h3-track.png`, fullPage: true });
  seen.screenshots.push(`${shots}/h3-track.png`);

  await page.goto(channelPage);
  await page.getByText('Connection', { exact: true }).click();
  await page.getByRole('button', { name: 'LL-HLS' }).click();
  await page.getByTestId('latency').waitFor({ timeout: 30000 });
  seen.channel = await listen(page, 4000);
  seen.channel.protocols = await protocols(page);
  seen.channel.latency = await page.getByTestId('latency').innerText();
  ok = [seen.track, seen.channel].every((r) => r.peak > 0.01 && r.advanced > 1
    && r.protocols.page === 'h3' && r.protocols.count > 0
    && r.protocols.media.length === 1 && r.protocols.media[0] === 'h3');
} catch (e) {
  seen.error = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
process.exit(ok ? 0 : 1);
