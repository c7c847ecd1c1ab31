// Whether a page can read the development sign-in: node cross_origin.mjs FOREIGN_PAGE SIGN_IN
// OWN_PAGE. FOREIGN_PAGE is another origin (the same server as `localhost`), OWN_PAGE the app's
// own; each page POSTs to SIGN_IN as any script could. Prints {"foreign": {...}, "own": {...}}.
import { launch } from './chromium.mjs';

const [foreign, signIn, own] = process.argv.slice(2);
if (!foreign || !signIn || !own) {
  console.error('usage: node cross_origin.mjs FOREIGN_PAGE SIGN_IN OWN_PAGE');
  process.exit(2);
}
const browser = await launch();
const attempt = async (page) => {
  const tab = await browser.newPage();
  await tab.goto(page);
  return tab.evaluate(async (url) => {
    try {
      const r = await fetch(url, { method: 'POST' });
      const body = await r.json();
      return { read: typeof body.credential === 'string', role: body.role, status: r.status };
    } catch (e) {
      return { read: false, error: String(e) };
    }
  }, signIn);
};
try {
  console.log(JSON.stringify({ foreign: await attempt(foreign), own: await attempt(own) }));
} finally {
  await browser.close();
}
