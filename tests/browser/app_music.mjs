// The web app as a music product, in Debian's headless Chromium, as people take it:
//   - an artist signs up (the first account: admin on the embedded defaults), signs out, is told
//     plainly that a wrong password is wrong, and signs in again;
//   - uploads three tagged files and sees their titles, artists and covers from the tags; edits
//     one track's details;
//   - queues the three (play now, add to queue, play next), and the position advances while they
//     go from section to section; next and previous move through the queue;
//   - makes one public; a listener (a second account, in another browser) finds it by typing a
//     word of its title and then its artist, and plays it;
//   - a page of another origin frames the oEmbed HTML of the track, a playlist and a channel, and
//     the track plays in its frame;
//   - password guessing is refused after five failures, in plain words;
//   - no console error anywhere, axe-core on every screen in light and dark, nothing wider than a
//     375 px phone.
//
//   node app_music.mjs SERVER_URL TAGGED1 TAGGED2 TAGGED3 SCREENSHOT_DIR
//
// Prints one JSON object of what was seen; exits non-zero on the first step that did not happen.
import { createServer } from 'node:http';
import { launch } from './chromium.mjs';
import { axe } from './axe.mjs';
import { listen } from './hear.mjs';

const [server, f1, f2, f3, shots] = process.argv.slice(2);
if (!server || !f3 || !shots) {
  console.error('usage: node app_music.mjs SERVER_URL TAGGED1 TAGGED2 TAGGED3 SCREENSHOT_DIR');
  process.exit(2);
}
const base = server.replace(/\/$/, '');
const browser = await launch();
const seen = { consoleErrors: [], screenshots: [], axe: {}, overflow: {} };
let ok = false;
const watch = (p, who) => {
  p.on('console', (m) => {
    // A refused sign-in is a 401/429 the page asked for and shows; Chromium logs every such
    // response as a console error, which is not the page's.
    if (m.type() === 'error' && !/status of (401|429)/.test(m.text())) seen.consoleErrors.push(`${who}: ${m.text()}`);
  });
  p.on('pageerror', (e) => seen.consoleErrors.push(`${who}: ${String(e)}`));
};
const shot = async (p, name) => {
  const path = `${shots}/${name}.png`;
  seen.screenshots.push(path);
  await p.screenshot({ path, fullPage: false });
};
// axe-core in the light theme and the dark one.
const both = async (p, name) => {
  for (const theme of ['light', 'dark']) {
    await p.evaluate((t) => document.documentElement.setAttribute('data-theme', t), theme);
    seen.axe[`${name}-${theme}`] = await axe(p);
  }
  await p.evaluate(() => document.documentElement.removeAttribute('data-theme'));
};
const overflow = (p) => p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
const position = (p) => p.evaluate(() => {
  const a = document.querySelector('.bar audio');
  return a ? a.currentTime : -1;
});

const context = await browser.newContext({ viewport: { width: 1100, height: 850 } });
const page = await context.newPage();
watch(page, 'artist');
try {
  // Sign up, out, a wrong password, in.
  await page.goto(base);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await both(page, 'signIn');
  await shot(page, 'sign-in');
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.getByLabel('Name shown to listeners').fill('Zoë Keating');
  await page.getByLabel('Email').fill('zoe@example.org');
  await page.getByLabel('Password').fill('a long passphrase');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('link', { name: 'Library', exact: true }).waitFor();
  seen.signedUp = await page.getByTestId('who').innerText();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('Email').fill('zoe@example.org');
  await page.getByLabel('Password').fill('not the passphrase');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  seen.wrongPassword = await page.getByRole('alert').innerText();
  await page.getByLabel('Password').fill('a long passphrase');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('link', { name: 'Library', exact: true }).waitFor();
  seen.signedInAgain = await page.getByTestId('who').innerText();
  // The session is the cookie: the page holds no credential.
  seen.storedCredential = await page.evaluate(() => localStorage.getItem('veza.credential') || sessionStorage.getItem('veza.credential'));

  // Three tagged uploads: titles, artists and covers from the tags.
  await page.getByRole('link', { name: 'Library', exact: true }).click();
  await page.locator('input[type=file]').first().setInputFiles([f1, f2, f3]);
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('table.rows tbody tr')];
    return rows.length === 3 && rows.every((r) => r.children[3].textContent === 'ready')
      && rows.every((r) => r.querySelector('.artist'))
      && rows.every((r) => { const i = r.querySelector('img.cover'); return i && i.complete && i.naturalWidth > 0; });
  }, null, { timeout: 180000 });
  seen.rows = await page.locator('table.rows tbody tr').evaluateAll((rows) => rows.map((r) => ({
    title: r.querySelector('.row-title a').textContent,
    artist: r.querySelector('.artist') ? r.querySelector('.artist').textContent : null,
    cover: !!r.querySelector('img.cover') && r.querySelector('img.cover').naturalWidth > 0,
    seconds: r.children[2].textContent.split(':').reduce((m, x) => m * 60 + Number(x), 0),
  })));
  await shot(page, 'library');
  await both(page, 'library');
  // The longest first: it plays on while the journey moves around.
  const titles = [...seen.rows].sort((a, b) => b.seconds - a.seconds).map((r) => r.title);

  // Edit the first track's details: the artist's own name as its artist.
  await page.getByRole('link', { name: titles[0], exact: true }).click();
  await page.getByRole('heading', { name: 'Details' }).waitFor();
  seen.detailsBefore = {
    artist: await page.getByLabel('Artist').inputValue(),
    album: await page.getByLabel('Album').inputValue(),
    year: await page.getByLabel('Year').inputValue(),
  };
  await page.getByLabel('Artist').fill('Zoë Keating');
  await page.getByLabel('Genre').fill('Ambient');
  await page.getByRole('button', { name: 'Save details' }).click();
  await page.getByRole('status').waitFor();
  seen.genreSaved = await page.getByLabel('Genre').inputValue();
  await page.getByLabel('Visibility').selectOption('public');
  await page.waitForFunction(() => !document.body.innerText.includes('plays only for you'));
  seen.share = await page.getByTestId('share-link').getAttribute('href');
  await shot(page, 'track');
  await both(page, 'track');

  // A queue of three, across sections.
  await page.getByRole('link', { name: 'Library', exact: true }).click();
  await page.getByRole('button', { name: `Play ${titles[0]}`, exact: true }).click();
  await page.getByRole('button', { name: `Add ${titles[1]} to the queue` }).click();
  await page.getByRole('button', { name: `Queue ${titles[2]} next` }).click();
  await page.locator('.bar audio').waitFor();
  await page.waitForFunction(() => document.querySelector('.bar audio').currentTime > 0.5, null, { timeout: 30000 });
  seen.queue = [];
  for (const section of ['Discover', 'Playlists', 'Channels', 'Library']) {
    const before = await position(page);
    await page.getByRole('link', { name: section, exact: true }).click();
    await page.waitForTimeout(1200);
    seen.queue.push({ section, before, after: await position(page), title: await page.getByTestId('bar-title').innerText() });
  }
  seen.documentTitle = await page.title();
  seen.mediaSession = await page.evaluate(() => navigator.mediaSession.metadata
    && { title: navigator.mediaSession.metadata.title, artist: navigator.mediaSession.metadata.artist, artwork: navigator.mediaSession.metadata.artwork.length });
  await page.getByRole('button', { name: 'Queue (3)' }).click();
  seen.queueOrder = await page.locator('.queue li button.link').allInnerTexts();
  await page.getByRole('button', { name: 'Next', exact: true }).click();
  seen.afterNext = await page.getByTestId('bar-title').innerText();
  await page.getByRole('button', { name: 'Previous' }).click();
  seen.afterPrevious = await page.getByTestId('bar-title').innerText();
  // Space toggles, once, from anywhere that is not a control.
  await page.locator('main').click({ position: { x: 5, y: 5 } });
  const wasPaused = await page.evaluate(() => document.querySelector('.bar audio').paused);
  await page.keyboard.press(' ');
  await page.waitForTimeout(300);
  seen.space = { before: wasPaused, after: await page.evaluate(() => document.querySelector('.bar audio').paused) };
  // A reload carries on: the queue is kept, and the track resumes where it was.
  seen.positionBeforeReload = await position(page);
  await page.evaluate(() => document.querySelector('.bar audio').pause());
  await page.waitForTimeout(500);
  await page.reload();
  await page.locator('.bar audio').waitFor();
  await page.waitForFunction(() => document.querySelector('.bar audio').readyState >= 2, null, { timeout: 20000 });
  await page.waitForTimeout(500);
  seen.resumed = { at: await position(page), title: await page.getByTestId('bar-title').innerText() };
  await page.evaluate(() => document.querySelector('.bar audio').pause());
  await shot(page, 'queue');
  await both(page, 'queue');

  // A playlist and a channel to share, for the embeds.
  await page.getByRole('link', { name: 'Playlists', exact: true }).click();
  await page.getByRole('heading', { name: 'New playlist' }).waitFor();
  await page.getByLabel('Title', { exact: true }).fill('Café sessions');
  await page.getByLabel('Visibility').selectOption('public');
  await page.getByRole('button', { name: 'Create playlist' }).click();
  await page.getByRole('heading', { name: 'Café sessions' }).waitFor();
  // The two short clips first: the channel's auto-DJ gets to a history quickly.
  for (const [n, t] of [titles[1], titles[2], titles[0]].entries()) {
    await page.getByLabel('Add a track').selectOption({ label: t });
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await page.waitForFunction((k) => document.querySelectorAll('[data-testid=entries] li').length === k, n + 1);
  }
  const playlistId = page.url().split('/').pop();
  const token = await page.evaluate(async () => (await (await fetch('/v1/me')).json()).csrf);
  const channel = await page.evaluate(async ({ token, playlistId }) => {
    const r = await fetch('/v1/channels', {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': token },
      body: JSON.stringify({ title: 'Night Radio', visibility: 'public', playlist_id: playlistId }),
    });
    return r.json();
  }, { token, playlistId });

  // A listener, in another browser: signs up, finds the public track as they type, plays it.
  const other = await browser.newContext({ viewport: { width: 900, height: 800 } });
  const lp = await other.newPage();
  watch(lp, 'listener');
  await lp.goto(base);
  await lp.getByRole('button', { name: 'Create an account' }).click();
  await lp.getByLabel('Name shown to listeners').fill('Ann');
  await lp.getByLabel('Email').fill('ann@example.org');
  await lp.getByLabel('Password').fill('another passphrase');
  await lp.getByRole('button', { name: 'Create account' }).click();
  await lp.getByRole('link', { name: 'Discover', exact: true }).click();
  await lp.getByRole('search').waitFor();
  seen.search = {};
  const word = titles[0].split(/\s+/)[0];
  for (const [what, typed] of [['title', word.slice(0, 4).toLowerCase()], ['artist', 'zoe kea']]) {
    await lp.getByLabel('Search').fill('');
    await lp.getByLabel('Search').pressSequentially(typed, { delay: 60 });
    await lp.getByTestId('search-results').getByRole('link', { name: titles[0], exact: true }).waitFor({ timeout: 10000 });
    seen.search[what] = await lp.getByTestId('search-results').innerText();
  }
  await both(lp, 'search');
  await shot(lp, 'search');
  await lp.getByTestId('search-results').getByRole('button', { name: `Play ${titles[0]}`, exact: true }).first().click();
  await lp.locator('.bar audio').waitFor();
  seen.listenerPlayed = await listen(lp);
  await lp.evaluate(() => document.querySelector('.bar audio').pause());
  // Nothing wider than a phone.
  await lp.setViewportSize({ width: 375, height: 780 });
  await lp.waitForTimeout(300);
  seen.overflow.search = await overflow(lp);
  await shot(lp, 'phone-search');
  await page.setViewportSize({ width: 375, height: 780 });
  for (const section of ['Library', 'Discover', 'Playlists']) {
    await page.getByRole('link', { name: section, exact: true }).click();
    await page.waitForTimeout(400);
    seen.overflow[section] = await overflow(page);
  }
  await page.goto(`${base}/#/tracks/${seen.share.split('/').pop()}`);
  await page.getByRole('heading', { name: 'Details' }).waitFor();
  seen.overflow.track = await overflow(page);
  await page.setViewportSize({ width: 1100, height: 850 });
  await other.close();

  // Another origin frames the oEmbed HTML of the track, the playlist and the channel.
  const kinds = [['track', seen.share], ['playlist', `${base}/play/playlist/${playlistId}`], ['channel', `${base}/play/channel/${channel.id}`]];
  const embeds = [];
  for (const [kind, link] of kinds) {
    const r = await fetch(`${base}/oembed?format=json&url=${encodeURIComponent(link)}`);
    const o = await r.json();
    embeds.push({ kind, status: r.status, type: o.type, html: o.html, title: o.title });
  }
  seen.oembed = embeds.map(({ html, ...rest }) => rest);
  const site = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>A blog</title><h1>My favourite music</h1>${embeds.map((e) => e.html).join('\n')}`);
  });
  await new Promise((res) => site.listen(0, '127.0.0.1', res));
  const blog = await context.newPage();
  watch(blog, 'blog');
  // localhost, not 127.0.0.1: another origin than the server's.
  await blog.goto(`http://localhost:${site.address().port}/`);
  await blog.waitForFunction(() => document.querySelectorAll('iframe').length === 3);
  const frames = () => blog.frames().filter((f) => f.url().includes('/embed/'));
  await blog.waitForFunction(() => true);
  for (let i = 0; i < 50 && frames().length < 3; i += 1) await blog.waitForTimeout(100);
  seen.frames = [];
  await blog.waitForTimeout(1500);
  seen.frameTexts = await Promise.all(frames().map((f) => f.locator('body').innerText().catch((e) => String(e))));
  for (const f of frames()) {
    await f.locator('.embed-title').waitFor({ timeout: 10000 });
    seen.frames.push({ url: f.url(), title: await f.locator('.embed-title').innerText() });
  }
  const trackFrame = frames().find((f) => f.url().includes('/embed/track/'));
  await trackFrame.locator('audio').waitFor({ timeout: 10000 });
  seen.embedPlayed = await listen(trackFrame);
  await shot(blog, 'embeds');
  site.close();

  // The channel in the bar: one Play, the way to listen picked by itself.
  const programme = await page.evaluate(async ({ token, id, playlistId }) => {
    const r = await fetch(`/v1/channels/${id}/schedule`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'x-csrf-token': token, 'if-match': '"s0"' },
      body: JSON.stringify({
        timezone: 'UTC', default_playlist_id: playlistId,
        slots: [{ playlist_id: playlistId, days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], start: '22:00', end: '23:00' }],
      }),
    });
    return r.status;
  }, { token, id: channel.id, playlistId });
  seen.programme = programme;
  await page.getByRole('link', { name: 'Channels', exact: true }).click();
  await page.getByRole('button', { name: 'Play Night Radio', exact: true }).click();
  await page.locator('.bar audio').waitFor();
  seen.channel = await page.evaluate(async () => {
    const a = document.querySelector('.bar audio');
    const until = performance.now() + 30000;
    while (performance.now() < until && !(a.srcObject || a.currentTime > 0.3)) await new Promise((r) => setTimeout(r, 100));
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    if (a.srcObject) ctx.createMediaStreamSource(a.srcObject).connect(analyser);
    else ctx.createMediaElementSource(a).connect(analyser);
    await ctx.resume();
    const buf = new Float32Array(2048);
    let peak = 0;
    const stop = performance.now() + 3000;
    while (performance.now() < stop) {
      await new Promise((r) => setTimeout(r, 100));
      analyser.getFloatTimeDomainData(buf);
      for (const v of buf) peak = Math.max(peak, Math.abs(v));
    }
    return { peak, over: a.srcObject ? 'webrtc' : 'hls', badge: !!document.querySelector('.bar .badge.live') };
  });
  seen.barTitle = await page.getByTestId('bar-title').innerText();

  // The station page: now playing with its cover, what played, the week, links for players.
  const station = await context.newPage();
  watch(station, 'station');
  await station.goto(`${base}/play/channel/${channel.id}`);
  await station.getByTestId('np-title').waitFor({ timeout: 30000 });
  await station.locator('[data-testid=history] li').first().waitFor({ timeout: 60000 });
  await station.locator('[data-testid=schedule] li').first().waitFor({ timeout: 10000 });
  seen.station = {
    nowPlaying: await station.getByTestId('np-title').innerText(),
    history: await station.locator('[data-testid=history] li').allInnerTexts(),
    schedule: await station.locator('[data-testid=schedule] li').allInnerTexts(),
    links: await station.locator('[data-testid=player-links] a').evaluateAll((as) => as.map((a) => a.getAttribute('href'))),
  };
  await both(station, 'station');
  await shot(station, 'station');
  await station.close();

  // The owner's statistics after that listening: the peak counts the listener.
  seen.stats = null;
  for (let i = 0; i < 30 && !seen.stats; i += 1) {
    await page.getByRole('link', { name: 'Library', exact: true }).click();
    await page.getByRole('link', { name: 'Channels', exact: true }).click();
    const summary = await page.getByTestId('stats-summary').innerText({ timeout: 10000 });
    if (/Peak [1-9]/.test(summary)) seen.stats = summary;
    else await page.waitForTimeout(2000);
  }
  await page.evaluate(() => document.querySelector('.bar audio').pause());
  await page.getByTestId('stats-summary').scrollIntoViewIfNeeded();
  await shot(page, 'stats');
  await both(page, 'channels');

  // Guessing the artist's password: refused after five failures, in plain words.
  const guess = await browser.newContext();
  const gp = await guess.newPage();
  watch(gp, 'guesser');
  await gp.goto(base);
  seen.guesses = [];
  const attempt = async (password) => {
    await gp.getByLabel('Email').fill('zoe@example.org');
    await gp.getByLabel('Password').fill(password);
    const [answer] = await Promise.all([
      gp.waitForResponse((r) => r.url().endsWith('/v1/sessions')),
      gp.getByRole('button', { name: 'Sign in', exact: true }).click(),
    ]);
    await gp.getByRole('alert').waitFor();
    return { status: answer.status(), shown: await gp.getByRole('alert').innerText() };
  };
  for (let i = 0; i < 6; i += 1) seen.guesses.push(await attempt(`guess number ${i}`));
  seen.rightAfterGuessing = await attempt('a long passphrase');
  await guess.close();

  ok = seen.rows.length === 3 && seen.rows.every((r) => r.artist && r.cover)
    && seen.queue.every((q) => q.after > q.before)
    && seen.afterNext !== seen.afterPrevious
    && seen.listenerPlayed.advanced > 1 && seen.listenerPlayed.peak > 0.01
    && seen.embedPlayed.advanced > 1 && seen.embedPlayed.peak > 0.01
    && seen.frames.length === 3
    && seen.channel.peak > 0.01 && seen.station.history.length > 0 && seen.stats;
} catch (e) {
  seen.error = String(e);
  seen.pageText = await page.locator('body').innerText().catch(() => null);
  await page.screenshot({ path: `${shots}/failure-music.png`, fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
process.exit(ok ? 0 : 1);
