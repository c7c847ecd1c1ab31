// The web app's first journeys in Debian's headless Chromium, as a person would take them:
// the development sign-in, two files uploaded by the file picker (progress reaching 100 %),
// the library showing them ready with duration and loudness, then one played (its time
// advancing, audible through a WebAudio analyser) in each codec family offered, and a click at
// the middle of its waveform seeking to the middle.
//
//   node app.mjs SERVER_URL FILE1 FILE2 SCREENSHOT_DIR    (FILE2 is played: make it a long one)
//
// Prints one JSON object: what was seen at each step, the console errors, and the screenshots
// saved. Exits non-zero on the first step that did not happen.
import { launch } from './chromium.mjs';

const [server, file1, file2, shots] = process.argv.slice(2);
if (!server || !file1 || !file2 || !shots) {
  console.error('usage: node app.mjs SERVER_URL FILE1 FILE2 SCREENSHOT_DIR');
  process.exit(2);
}
const browser = await launch();
const seen = { consoleErrors: [], screenshots: [] };
let ok = false;
const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
try {
  page.on('console', (m) => m.type() === 'error' && seen.consoleErrors.push(m.text()));
  page.on('pageerror', (e) => seen.consoleErrors.push(String(e)));
  await page.goto(server);
  await page.getByRole('button', { name: 'Development sign-in' }).click();
  await page.getByRole('heading', { name: 'Library' }).waitFor();
  seen.signedIn = true;

  await page.locator('input[type=file]').setInputFiles([file1, file2]);
  const bars = page.getByRole('progressbar');
  await page.waitForFunction(() => {
    const p = [...document.querySelectorAll('progress')];
    return p.length === 2 && p.every((x) => x.value >= x.max);
  }, null, { timeout: 60000 });
  seen.uploadBars = await bars.count();
  seen.uploadText = await page.locator('main ul').innerText();

  // Both packaged: two rows whose status reads "ready".
  await page.waitForFunction(() => [...document.querySelectorAll('tbody tr')]
    .filter((r) => r.children[2].textContent === 'ready').length === 2, null, { timeout: 120000 });
  seen.rows = await page.locator('tbody tr').allInnerTexts();
  const shot = (name) => {
    const path = `${shots}/${name}.png`;
    seen.screenshots.push(path);
    return page.screenshot({ path, fullPage: true });
  };
  await shot('library');

  // FILE2 is the one played: its row, by the title made of its name.
  const title = file2.split('/').pop().replace(/\.[^.]+$/, '');
  await page.getByRole('row').filter({ hasText: title }).getByRole('button', { name: 'Play' }).click();
  const audio = page.locator('audio');
  await audio.waitFor();
  seen.families = await page.locator('select option').allInnerTexts();
  seen.played = {};
  for (const family of await page.locator('select option').evaluateAll((o) => o.map((x) => x.value))) {
    await page.locator('select').selectOption(family);
    const r = await page.evaluate(async () => {
      const a = document.querySelector('audio');
      await a.play().catch(() => {});
      // One context and one source node for the element: a second MediaElementSource on the
      // same element throws.
      if (!window.analyser) {
        const ctx = new AudioContext();
        window.analyser = ctx.createAnalyser();
        ctx.createMediaElementSource(a).connect(window.analyser);
        await ctx.resume();
      }
      const { analyser } = window;
      const start = a.currentTime;
      const buf = new Float32Array(2048);
      let peak = 0;
      const until = performance.now() + 3000;
      while (performance.now() < until) {
        await new Promise((res) => setTimeout(res, 100));
        analyser.getFloatTimeDomainData(buf);
        for (const v of buf) peak = Math.max(peak, Math.abs(v));
      }
      return { advanced: a.currentTime - start, peak };
    });
    seen.played[family] = r;
  }
  // The waveform is drawn, and a click at its middle seeks there.
  const wave = page.locator('.waveform canvas').first();
  await wave.waitFor({ timeout: 15000 });
  const box = await page.locator('.waveform').boundingBox();
  const duration = await page.evaluate(() => document.querySelector('audio').duration);
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await page.waitForTimeout(500);
  seen.seek = { duration, after: await page.evaluate(() => document.querySelector('audio').currentTime) };
  await shot('player');
  ok = seen.rows.length === 2 && Object.values(seen.played).every((p) => p.advanced > 1 && p.peak > 0.01)
    && Math.abs(seen.seek.after - seen.seek.duration / 2) < seen.seek.duration / 10;
} catch (e) {
  seen.error = String(e);
  seen.pageText = await page.locator('main').innerText().catch(() => null);
  await page.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => {});
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
process.exit(ok ? 0 : 1);
