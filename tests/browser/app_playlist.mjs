// The web app's playlist journey in Debian's headless Chromium, with two ready tracks of about
// 8 s in the library (TITLE1 and TITLE2):
//   - create a public playlist, add both tracks, drag the second above the first;
//   - someone else renames it meanwhile (a request outside the page): the next move is refused
//     with the conflict message and the page shows their version; the move made again works;
//   - add a track and remove it, rename the playlist;
//   - play it as one stream from 5 s: the now-playing title changes at the join, playback goes on
//     across it, audible after it;
//   - duplicate it;
//   - open its share link signed out and hear it;
//   - a listener signs in with a pasted JWT: no library, no uploads, no playlist editing; the
//     public playlist listed and playable;
//   - axe-core on each page.
//
//   node app_playlist.mjs SERVER_URL TITLE1 TITLE2 LISTENER_JWT SCREENSHOT_DIR
//
// Prints one JSON object of what was seen; exits non-zero on the first step that did not happen.
import { launch } from './chromium.mjs';
import { axe } from './axe.mjs';
import { listen } from './hear.mjs';

const [server, title1, title2, listener, shots] = process.argv.slice(2);
if (!server || !title1 || !title2 || !listener || !shots) {
  console.error('usage: node app_playlist.mjs SERVER_URL TITLE1 TITLE2 LISTENER_JWT SCREENSHOT_DIR');
  process.exit(2);
}
const browser = await launch();
const seen = { consoleErrors: [], screenshots: [], axe: {} };
let ok = false;
const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
// Chromium reports the refusal this journey provokes (412) as a console error: that one, while
// it is expected, is not the page's.
let expect412 = false;
const watch = (p) => {
  p.on('console', (m) => m.type() === 'error'
    && !(expect412 && m.text().includes('status of 412')) && seen.consoleErrors.push(m.text()));
  p.on('pageerror', (e) => seen.consoleErrors.push(String(e)));
};
const shot = async (p, name) => {
  const path = `${shots}/${name}.png`;
  seen.screenshots.push(path);
  await p.screenshot({ path, fullPage: true });
};
const order = () => page.locator('[data-testid=entries] .title').allInnerTexts();

// Plays from `from` seconds until `to` (or for `ms` at most, on a starved machine), sampling
// the time, the title shown as now playing, the level heard and the stalls.
const across = (p, from, to, ms) => p.evaluate(async ({ from, to, ms }) => {
  const a = document.querySelector('audio');
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  ctx.createMediaElementSource(a).connect(analyser);
  analyser.connect(ctx.destination);
  await ctx.resume();
  await a.play().catch(() => {});
  // Wait for playback to begin before seeking, so that the seek is not lost.
  while (a.readyState < 3) await new Promise((r) => setTimeout(r, 50));
  a.currentTime = from;
  await new Promise((r) => a.addEventListener('seeked', r, { once: true }));
  let stalls = 0;
  a.addEventListener('waiting', () => { stalls += 1; });
  const samples = [];
  const buf = new Float32Array(2048);
  const until = performance.now() + ms;
  while (performance.now() < until && a.currentTime < to) {
    await new Promise((r) => setTimeout(r, 100));
    analyser.getFloatTimeDomainData(buf);
    let peak = 0;
    for (const v of buf) peak = Math.max(peak, Math.abs(v));
    const np = document.querySelector('[data-testid=now-playing]');
    samples.push({ t: a.currentTime, np: np ? np.textContent : null, peak });
  }
  a.pause();
  return { samples, stalls };
}, { from, to, ms });

try {
  watch(page);
  await page.goto(server);
  await page.getByRole('button', { name: 'Development sign-in' }).click();
  await page.getByRole('link', { name: 'Playlists' }).click();
  await page.getByLabel('Title').fill('Road trip');
  await page.getByLabel('Visibility').selectOption('public');
  await page.getByRole('button', { name: 'Create playlist' }).click();
  await page.getByRole('heading', { name: 'Road trip', exact: true }).waitFor();
  const id = page.url().split('/').pop();

  for (const t of [title1, title2]) {
    await page.getByLabel('Add a track').selectOption({ label: t });
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await page.waitForFunction((t) => [...document.querySelectorAll('[data-testid=entries] .title')]
      .some((e) => e.textContent === t), t);
  }
  seen.added = await order();

  // Drag the second track above the first.
  const items = page.locator('[data-testid=entries] li');
  await items.nth(1).dragTo(items.nth(0));
  await page.waitForFunction((t) => document.querySelector('[data-testid=entries] .title').textContent === t, title2);
  seen.dragged = await order();

  // Someone else renames it: the page's next change names an older version.
  await page.evaluate(async (id) => {
    const r = await fetch(`/v1/playlists/${id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${localStorage.getItem('veza.credential')}`, 'content-type': 'application/json', 'if-match': '*' },
      body: JSON.stringify({ title: 'Renamed elsewhere' }),
    });
    if (!r.ok) throw new Error(`rename: ${r.status}`);
  }, id);
  expect412 = true;
  await page.getByRole('button', { name: `Move ${title2} down` }).click();
  await page.getByTestId('conflict').waitFor();
  await page.getByRole('heading', { name: 'Renamed elsewhere', exact: true }).waitFor();
  seen.conflict = await page.getByTestId('conflict').innerText();
  seen.problem = await page.locator('.error strong').last().innerText();
  expect412 = false;
  await shot(page, 'playlist-conflict');
  await page.getByRole('button', { name: `Move ${title2} down` }).click();
  await page.waitForFunction((t) => document.querySelector('[data-testid=entries] .title').textContent === t, title1);
  seen.movedAgain = await order();

  // Add one more and remove it; rename.
  await page.getByLabel('Add a track').selectOption({ label: title1 });
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=entries] li').length === 3);
  await page.getByRole('button', { name: `Remove ${title1}` }).last().click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=entries] li').length === 2);
  seen.afterRemove = await order();
  await page.getByLabel('Title').fill('Road trip');
  await page.getByRole('button', { name: 'Rename' }).click();
  await page.getByRole('heading', { name: 'Road trip', exact: true }).waitFor();

  // Played as one stream, across the join.
  await page.getByRole('button', { name: 'Play as one stream' }).click();
  await page.getByTestId('now-playing').waitFor();
  const run = await across(page, 5, 10.5, 30000);
  seen.stalls = run.stalls;
  seen.nowPlaying = [...new Set(run.samples.map((s) => s.np))];
  const last = run.samples[run.samples.length - 1];
  const after = run.samples.filter((s) => s.t > 8.4);
  seen.join = {
    from: run.samples[0].t,
    to: last.t,
    titleAfter: after.length ? after[after.length - 1].np : null,
    peakAfter: Math.max(0, ...after.map((s) => s.peak)),
  };
  await shot(page, 'playlist');
  seen.axe.playlist = await axe(page);

  // Duplicate.
  await page.getByRole('button', { name: 'Duplicate' }).click();
  await page.getByRole('heading', { name: 'Road trip (copy)', exact: true }).waitFor();
  seen.duplicate = { id: page.url().split('/').pop(), entries: await order() };

  // The share link, signed out.
  const stranger = await browser.newContext();
  const pub = await stranger.newPage();
  watch(pub);
  await pub.goto(`${server}play/playlist/${id}`);
  await pub.getByRole('heading', { name: 'Road trip', exact: true }).waitFor();
  await pub.getByTestId('now-playing').waitFor();
  seen.publicPlayed = {
    ...await listen(pub),
    chapters: await pub.locator('.chapters li').count(),
  };
  await pub.evaluate(() => document.querySelector('audio').pause());
  await shot(pub, 'public-playlist');
  seen.axe.public = await axe(pub);
  await stranger.close();

  // A listener, signed in with a pasted token, sees what a listener may do.
  const fan = await browser.newContext();
  const lp = await fan.newPage();
  watch(lp);
  await lp.goto(server);
  await lp.getByLabel('API key or JWT').fill(listener);
  await lp.getByRole('button', { name: 'Sign in with the key' }).click();
  await lp.getByRole('link', { name: 'Playlists', exact: true }).click();
  await lp.getByRole('heading', { name: 'Public playlists' }).waitFor();
  // The list arrives after its heading.
  await lp.locator('main ul li a strong').first().waitFor();
  seen.listener = {
    role: await lp.getByTestId('who').innerText(),
    sections: await lp.getByRole('navigation').getByRole('link').allInnerTexts(),
    playlists: await lp.locator('main ul li a strong').allInnerTexts(),
    canCreate: await lp.getByRole('button', { name: 'Create playlist' }).count(),
  };
  await lp.getByRole('link', { name: 'Road trip', exact: true }).click();
  await lp.getByRole('button', { name: 'Play as one stream' }).waitFor();
  seen.listener.canEdit = await lp.getByRole('heading', { name: 'Edit' }).count();
  seen.listener.canDuplicate = await lp.getByRole('button', { name: 'Duplicate' }).count();
  seen.axe.listener = await axe(lp);
  await fan.close();

  ok = seen.dragged[0] === title2 && seen.movedAgain[0] === title1
    && seen.join.titleAfter === title2 && seen.join.peakAfter > 0.01
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
