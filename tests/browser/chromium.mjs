// Debian's headless Chromium for the browser tests: no sandbox (root), no GPU, no QUIC (unless
// `quic`), none of the background connections this closed network refuses, audio allowed to
// start without a gesture. `extra` adds flags (a fake microphone, say).
import { chromium } from 'playwright-core';

export function launch(extra = [], { quic = false } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', quic ? '--enable-quic' : '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required', ...extra],
  });
}

// Runs `fn(arg)` in a fresh page opened at `url` (an origin for fetch and WebRTC) and returns
// what it returns, with the page's uncaught errors as `pageErrors`. The browser is closed after.
export async function onPage(url, fn, arg, extra = []) {
  const browser = await launch(extra);
  try {
    const tab = await browser.newPage();
    const errors = [];
    tab.on('pageerror', (e) => errors.push(String(e)));
    await tab.goto(url);
    const result = await tab.evaluate(fn, arg);
    return { ...result, pageErrors: errors };
  } finally {
    await browser.close();
  }
}
