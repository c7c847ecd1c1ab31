// The web app's track journey in Debian's headless Chromium, as a person takes it:
//   - the development sign-in;
//   - FILE2 upload cut off after its first chunk (the network drops), the page reloaded, the
//     unfinished upload shown, then FILE1 dropped on the drop zone and FILE2 chosen again: FILE2
//     resumes (no new upload is created) and both reach 100 %;
//   - packaging progress followed live until both are ready, with duration and loudness;
//   - FILE2 played (time advancing, audible through a WebAudio analyser) in each codec family,
//     its bitrate shown; the keys (→ steps 5 s, space pauses); a click at the middle of its
//     waveform seeking to the middle;
//   - its page: the analysis, the renditions, made public, its share link;
//   - the share link opened signed out (a fresh browser context): audible;
//   - axe-core on every page, and the library at phone width.
//
//   node app.mjs SERVER_URL FILE1 FILE2 SCREENSHOT_DIR    (FILE2 is played: make it a long one)
//
// Prints one JSON object: what was seen at each step, the console errors, the accessibility
// violations and the screenshots saved. Exits non-zero on the first step that did not happen.
import { readFileSync } from 'node:fs';
import { launch } from './chromium.mjs';
import { axe } from './axe.mjs';
import { listen } from './hear.mjs';

const [server, file1, file2, shots] = process.argv.slice(2);
if (!server || !file1 || !file2 || !shots) {
  console.error('usage: node app.mjs SERVER_URL FILE1 FILE2 SCREENSHOT_DIR');
  process.exit(2);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const browser = await launch();
const seen = { consoleErrors: [], screenshots: [], axe: {} };
let ok = false;
const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
const page = await context.newPage();
// The requests this journey cuts itself are reported by Chromium as console errors: those, while
// the network is down, are not the page's.
let dropping = false;
const watch = (p) => {
  p.on('console', (m) => m.type() === 'error'
    && !(dropping && m.text().includes('ERR_CONNECTION_RESET')) && seen.consoleErrors.push(m.text()));
  p.on('pageerror', (e) => seen.consoleErrors.push(String(e)));
};
const shot = async (p, name) => {
  const path = `${shots}/${name}.png`;
  seen.screenshots.push(path);
  await p.screenshot({ path, fullPage: true });
};


try {
  watch(page);
  await page.goto(server);
  seen.axe.signIn = await axe(page);
  await page.getByRole('button', { name: 'Development sign-in' }).click();
  await page.getByRole('heading', { name: 'Library' }).waitFor();
  seen.signedIn = await page.getByTestId('who').innerText();

  // The network drops after FILE2's first chunk: every later PATCH is cut.
  let posts = 0;
  let patches = 0;
  dropping = true;
  await page.route('**/v1/uploads**', (route) => {
    const m = route.request().method();
    if (m === 'POST') posts += 1;
    if (m === 'PATCH') {
      patches += 1;
      if (patches > 1) return route.abort('connectionreset');
    }
    return route.continue();
  });
  await page.locator('input[type=file]').setInputFiles([file2]);
  for (let i = 0; patches < 2 && i < 300; i += 1) await sleep(100);
  seen.patchesBeforeReload = patches;
  // The network stays down until the page has reloaded: tus-js-client's retries meanwhile are
  // cut too, so the upload is left unfinished.
  await page.reload();
  await page.unroute('**/v1/uploads**');
  await page.route('**/v1/uploads**', (route) => {
    if (route.request().method() === 'POST') posts += 1;
    return route.continue();
  });
  dropping = false;
  await page.getByRole('heading', { name: 'Unfinished uploads' }).waitFor();
  seen.pending = await page.getByTestId('pending').innerText();

  // FILE1 dragged and dropped onto the drop zone; FILE2 chosen again with the picker.
  const dropped = readFileSync(file1).toString('base64');
  await page.locator('.drop').evaluate((zone, { name, data }) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, { type: 'audio/flac' }));
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, { name: file1.split('/').pop(), data: dropped });
  await page.locator('input[type=file]').setInputFiles([file2]);
  await page.waitForFunction(() => {
    const p = [...document.querySelectorAll('[data-testid=uploads] progress')];
    return p.length === 2 && p.every((x) => x.value >= x.max);
  }, null, { timeout: 60000 });
  seen.uploads = await page.getByTestId('uploads').innerText();
  seen.uploadCreations = posts;

  // Packaging, followed live: every status the rows show until both read "ready".
  seen.statuses = await page.evaluate(async () => {
    const texts = new Set();
    const until = performance.now() + 120000;
    while (performance.now() < until) {
      const cells = [...document.querySelectorAll('tbody tr')].map((r) => r.children[3].textContent);
      cells.forEach((c) => texts.add(c));
      // Ready, and the reload that brings the analysis done (the event stream says `ready`
      // first): both rows show their loudness.
      const loud = [...document.querySelectorAll('tbody tr')].every((r) => r.children[4].textContent.includes('LUFS'));
      if (cells.length === 2 && cells.every((c) => c === 'ready') && loud) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    return [...texts];
  });
  seen.rows = await page.locator('tbody tr').allInnerTexts();
  // Each ready row draws its waveform.
  seen.miniWaves = await page.waitForFunction(() => {
    const drawn = [...document.querySelectorAll('canvas.miniwave')].filter((c) => c.getContext('2d')
      .getImageData(0, 0, c.width, c.height).data.some((v, i) => i % 4 === 3 && v > 0));
    return drawn.length === 2 && drawn.length;
  }, null, { timeout: 15000 }).then((h) => h.jsonValue());
  await shot(page, 'library');
  seen.axe.library = await axe(page);

  // FILE2 is the one played: its row is the one that is not FILE1's (FILE1 has no tags, so its
  // title is its file name; FILE2's comes from its tags).
  const stem1 = file1.split('/').pop().replace(/\.[^.]+$/, '');
  const title = (await page.locator('tbody tr td:first-child a').allInnerTexts()).find((t) => t !== stem1);
  seen.title = title;
  await page.getByRole('button', { name: `Play ${title}` }).click();
  await page.locator('audio').waitFor();
  const select = page.locator('.player select');
  seen.families = await select.locator('option').allInnerTexts();
  seen.played = {};
  for (const family of await select.locator('option').evaluateAll((o) => o.map((x) => x.value))) {
    await select.selectOption(family);
    const heard = await listen(page);
    seen.played[family] = { ...heard, bitrate: await page.getByTestId('bitrate').innerText() };
  }
  // The keys, with focus on the waveform: → steps 5 s on, space pauses.
  const wave = page.locator('.waveform');
  await wave.locator('canvas').first().waitFor({ timeout: 15000 });
  await wave.focus();
  const before = await page.evaluate(() => document.querySelector('audio').currentTime);
  await page.keyboard.press('ArrowRight');
  const after = await page.evaluate(() => document.querySelector('audio').currentTime);
  await page.keyboard.press(' ');
  seen.keys = { stepped: after - before, paused: await page.evaluate(() => document.querySelector('audio').paused) };
  // A click at the waveform's middle seeks to the middle.
  const box = await wave.boundingBox();
  const duration = await page.evaluate(() => document.querySelector('audio').duration);
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await page.waitForTimeout(500);
  seen.seek = { duration, after: await page.evaluate(() => document.querySelector('audio').currentTime) };
  await shot(page, 'player');
  seen.axe.player = await axe(page);

  // The track's page: analysis and renditions; made public, and its share link.
  await page.getByRole('link', { name: title }).click();
  await page.getByRole('heading', { name: 'Analysis' }).waitFor();
  seen.analysis = await page.locator('dl.facts').innerText();
  seen.renditions = await page.locator('section[aria-labelledby=renditions-h] tbody tr').allInnerTexts();
  await page.getByLabel('Visibility').selectOption('public');
  await page.waitForFunction(() => document.querySelector('.player, main') && !document.body.innerText.includes('plays only for you'));
  seen.share = await page.getByTestId('share-link').getAttribute('href');
  await page.evaluate(() => document.querySelector('audio').pause());
  await shot(page, 'track');
  seen.axe.track = await axe(page);

  // The share link, signed out: a fresh context has no credential.
  const stranger = await browser.newContext({ viewport: { width: 800, height: 700 } });
  const pub = await stranger.newPage();
  watch(pub);
  const html = await (await fetch(seen.share)).text();
  seen.openGraph = [...html.matchAll(/<meta property="(og:[a-z_]+)" content="([^"]*)">/g)].map((m) => [m[1], m[2]]);
  await pub.goto(seen.share);
  await pub.getByRole('heading', { name: title, exact: true }).waitFor();
  await pub.locator('audio').waitFor();
  seen.publicPlayed = await listen(pub);
  seen.publicSignedIn = await pub.evaluate(() => !!localStorage.getItem('veza.credential'));
  await pub.evaluate(() => document.querySelector('audio').pause());
  await shot(pub, 'public-track');
  seen.axe.public = await axe(pub);
  await stranger.close();

  // Phone width: nothing wider than the screen.
  await page.setViewportSize({ width: 375, height: 800 });
  await page.goto(`${server}#/library`);
  await page.getByRole('heading', { name: 'Library' }).waitFor();
  seen.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  // What sticks out, if anything: the innermost elements past the right edge.
  seen.phoneWide = await page.evaluate(() => [...document.querySelectorAll('main *, header *')]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.firstElementChild)
    .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}.${e.className}: ${Math.round(e.getBoundingClientRect().right)}`));
  await shot(page, 'phone');

  ok = seen.rows.length === 2
    && Object.values(seen.played).every((p) => p.advanced > 1 && p.peak > 0.01)
    && Math.abs(seen.seek.after - seen.seek.duration / 2) < seen.seek.duration / 10
    && seen.publicPlayed.advanced > 1 && seen.publicPlayed.peak > 0.01;
} catch (e) {
  seen.error = String(e);
  seen.pageText = await page.locator('main').innerText().catch(() => null);
  await page.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
process.exit(ok ? 0 : 1);
